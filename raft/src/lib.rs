//! A deterministic Raft core for Continuum, in the style of etcd-io/raft and
//! tikv/raft-rs.
//!
//! **Contract.** This crate implements the algorithm; the caller does all
//! I/O. It never touches a disk, network or clock: inputs are ticks,
//! messages and proposals; outputs are [`Ready`] batches. Messages in a
//! Ready may be sent **only after** that Ready's entries and hard state are
//! durably persisted (Raft §5 "persistent state ... updated on stable
//! storage before responding to RPCs"; thesis §3.8; etcd raft README).
//! Breaking this loses votes and acknowledged entries across crashes.
//!
//! # The driving loop
//!
//! ```
//! use continuum_raft::{Config, MemStorage, Raft};
//! # fn send(_: continuum_raft::Message) {}
//! let storage = MemStorage::new(vec![1]);           // cluster {1}
//! let mut node = Raft::new(Config::new(1), storage, 7).unwrap();
//! for _ in 0..100 {
//!     node.tick();                                   // every tick period (10 ms by default)
//!     // node.step(message) for each message that arrived, decoded by
//!     // Message::decode; node.propose(bytes) on the leader; node.read_index(id).
//!     while node.has_ready() {
//!         let ready = node.ready();
//!         // 0. a follower may get a snapshot (InstallSnapshot): install it in
//!         //    storage and restore the application from it, before the rest.
//!         if let Some(snapshot) = ready.snapshot { node.storage_mut().apply_snapshot(snapshot); }
//!         // 1. persist (truncate at ready.truncate_from, append ready.entries,
//!         //    store ready.hard_state), then flush.
//!         if let Some(hs) = ready.hard_state { node.storage_mut().set_hard_state(hs); }
//!         node.storage_mut().append(&ready.entries);
//!         // 2. only now send the messages.
//!         for message in ready.messages { send(message); }
//!         // 3. apply committed entries in order; 4. serve ready.read_states
//!         //    once applied >= their index.
//!         for _entry in &ready.committed_entries {}
//!         // 5. acknowledge.
//!         node.advance();
//!     }
//! }
//! assert_eq!(node.role(), continuum_raft::Role::Leader);
//! ```
//!
//! Between [`Raft::ready`] and [`Raft::advance`] the node takes no input
//! (it panics if it does): this keeps the unstable-log bookkeeping trivially
//! correct. The node (`continuum_node::Node::drive`) therefore persists one
//! Ready at a time;
//! batching happens inside Raft (proposals between two Readies share one
//! AppendEntries per follower).
//!
//! # What is implemented
//!
//! Leader election with randomized timeouts and the up-to-date check (Raft
//! §5.2, §5.4.1), pre-vote (thesis §9.6), check-quorum (thesis §6.2), log
//! replication with conflict-term fast backtracking and truncation of only
//! conflicting suffixes (§5.3), the current-term commit rule (§5.4.2) with a
//! leader no-op on election (§8), probe/replicate flow control with a
//! bounded pipeline (thesis §10.2.2), ReadIndex and opt-in, drift-bounded
//! lease reads (thesis §6.4, see [`read_only`]), leadership transfer (thesis §3.10), and a SHA-256 hash
//! chain over the log verified by followers ([`entry`]). Log compaction and
//! InstallSnapshot (§7): the application compacts storage into a
//! [`Snapshot`] of its state ([`MemStorage::compact`]); a leader whose
//! follower needs a compacted entry sends that snapshot as a manifest of
//! content-addressed chunks and then only the chunks the follower lacks
//! (verified, resumable; `snapshot.rs`), and the follower's Ready carries it.
//! Membership changes one server at a time through the log, with learners
//! (thesis §4.1–§4.2 and its errata fix): [`Raft::propose_conf_change`],
//! design and rules in [`membership`].
//!
//! # Identifiers and randomness
//!
//! Node ids are `u64`, non-zero ([`NO_NODE`] = 0 means "none"). Randomness
//! comes from a caller-supplied seed ([`SplitMix64`]), so runs are
//! reproducible.
//!
//! # Safety assertions
//!
//! Invariants whose violation would corrupt the replicated log halt the node
//! with a panic in production builds: the commit index never decreases, a
//! committed entry is never truncated, the term never goes backwards, and a
//! Ready is never acknowledged before its entries reach storage.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod client;
pub mod codec;
pub mod config;
mod election;
pub mod entry;
mod log;
pub mod membership;
pub mod message;
pub mod progress;
mod raft;
pub mod read_only;
mod ready;
mod replication;
pub mod snapshot;
pub mod storage;

pub use client::{ProposeError, ReadIndexError, TransferError};
pub use codec::{
    check_decode_canonical, DecodeError, MAX_CLUSTER_MEMBERS, MAX_ENTRIES_PER_MESSAGE,
    MAX_MANIFEST_ENTRIES_PER_MESSAGE, MAX_MESSAGE_BYTES, MAX_SNAPSHOT_CHUNK_BYTES,
};
pub use config::{Config, ConfigError, ReadOnlyOption, MAX_ENTRY_DATA_BYTES};
pub use continuum_base::SplitMix64;
pub use entry::{compute_chain_hash, Entry, EntryKind, LogChainHash, GENESIS_CHAIN_HASH};
pub use membership::{
    ConfChange, ConfChangeError, ConfChangeKind, ConfEntry, MAX_CONF_CONTEXT_BYTES,
};
pub use message::{ChunkRef, Message, MessageBody, SnapshotPart};
pub use progress::{Progress, ProgressState};
pub use raft::{Raft, Role, SoftState, Stats, StepError};
pub use read_only::ReadState;
pub use ready::Ready;
pub use snapshot::{
    manifest_hash, manifest_of, snapshot_digest, ContentChunks, SnapshotChunkStats, SnapshotDigest,
    SnapshotWant,
};
pub use storage::{
    ConfState, HardState, MemStorage, Snapshot, SnapshotMetadata, Storage, StorageError,
};

/// Identifier of a cluster member (`continuum_base`: one type everywhere).
pub use continuum_base::{NodeId, NO_NODE};
