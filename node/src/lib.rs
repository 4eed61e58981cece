//! # continuum-node: one consensus node, without the hardware
//!
//! The kernel moves bytes and time; this crate decides. It composes the
//! portable crates into one deterministic state machine per node:
//!
//! * [`DiskLog`]: Raft's `Storage` over the durable WAL
//!   (`continuum-storage`), and the persistence step of the Ready loop.
//! * [`Node`]: Raft + the bank ledger + the client requests waiting on
//!   them. Inputs: [`Node::tick`] (every 10 ms), [`Node::on_peer`] (an
//!   authenticated peer datagram's [`Envelope`] body), [`Node::on_client`]
//!   (a decoded client request). Then [`Node::drive`], which loops over
//!   Raft's Readies: **persist (one write, at most one flush), then hand
//!   over the messages**, apply committed entries to the ledger, answer
//!   clients. Outputs: [`Node::take_outbox`] (peer bodies to wrap in
//!   envelopes with the node's Lamport and HLC clocks) and
//!   [`Node::take_replies`]; or, with [`Node::drive_sending`], a callback
//!   that gets each Ready's messages as soon as it is durable (before its
//!   entries apply) and the replies as soon as they exist.
//!
//! ## Signatures off the commit path
//! Every replica verifies every signature itself, once. The contact node
//! verifies at admission; every node verifies an entry it persisted but
//! has not applied right after handing over that Ready's messages (a
//! follower after its ack left, a leader after its appends left), while
//! the entry travels to a quorum. The verdicts wait in a bounded memo
//! keyed by (owner key, message, signature) (`continuum_bank::verdicts`);
//! apply takes them from there and verifies only on a miss, so outcomes
//! never depend on the memo ([`MAX_VERIFY_AHEAD`] bounds the queue).
//!
//! ## The witness flush
//! A flushed batch is witnessed by the next one; only the last batch
//! before a pause needs a slot flushed for it, which the node does once the
//! log has been quiet for [`WITNESS_QUIET_TICKS`] — never on the commit
//! path (`disk_log.rs`).
//!
//! ## The path of a write
//! A client sends `Submit{entry: command}` to any node. The node checks it decodes
//! as a bank entry and fits one datagram ([`MAX_ENTRY_BYTES`]), verifies
//! every signature in it ([`admission`]: a forged command gets
//! `BadSignature` and never reaches the log), tags it, and either proposes
//! it (leader) or forwards it to the leader in a [`Body::Forward`]
//! (follower: atomic broadcast, any node accepts). Every queue a request
//! waits in is bounded ([`MAX_WAITING_WRITES`], [`MAX_WAITING_READS`]):
//! past the bound the client gets `Busy`. The
//! leader stamps its HLC and proposes `origin | tag | hlc | command`
//! ([`EntryHeader`]); that HLC's milliseconds are the bank's log time for
//! the entry (expiry of signed commands, `continuum_bank::Ledger::apply`).
//! Every node applies committed entries in log order;
//! the origin node, on applying its own tagged entry, answers the client
//! with the bank outcomes, the entry's index, term and HLC, and the receipt
//! chain head. A request not answered within `request_timeout_ticks` gets
//! `Timeout` (outcome unknown: the client retries with the same transfer
//! id, which the bank applies at most once, or queries the outcome).
//!
//! ## Reads
//! Queries are linearizable: ReadIndex (Raft thesis §6.4). A follower's
//! read goes through the leader's confirmation; the answer is served from
//! the local ledger once it has applied the confirmed index.
//!
//! ## Divergence check
//! Every [`CHECKPOINT_EVERY`] applied indexes a node records its receipt
//! chain head; periodically it sends its latest checkpoint to every peer
//! ([`Body::ChainCheck`]). If a majority of the cluster (counting peers
//! only) report one head at an index and this node has another, this node
//! diverged: [`Node::drive`]/[`Node::on_peer`] return
//! [`NodeError::Diverged`] and the kernel halts loudly.
//!
//! ## Snapshots and restart
//! Every [`NodeConfig::snapshot_entries`] applied entries the node takes
//! `Ledger::snapshot()` (the receipt-chain head goes in the snapshot's
//! metadata too), stores it and compacts the log up to it
//! ([`DiskLog::compact`]): the WAL space is reused, so disk use stays
//! bounded by the snapshot slots plus the entries since the last snapshot.
//! No tail is kept past the snapshot; a follower that needs a released
//! entry gets the snapshot by InstallSnapshot (chunked and verified by
//! Raft), and the node restores its ledger from it before applying the
//! entries after it. On restart the node restores the ledger from the
//! stored snapshot and replays only the committed log after it.
//! [`Node::take_snapshot_events`] reports restores, installs and snapshots
//! taken for the console; [`Node::snapshot_status`] the figures for
//! `/status`.

#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod admission;
mod disk_log;
pub mod fuzz_check;
pub mod membership;
mod node;
pub mod stages;
pub mod trace;
pub mod wire;

pub use disk_log::{DiskLog, PersistError, ENTRY_CACHE_BYTES};
pub use node::{
    transfer_answer, Hex, MembershipEvent, MembershipStatus, Metrics, Node, NodeConfig,
    NodeConfigError, NodeError, SnapshotEvent, SnapshotStatus, CHECKPOINTS_KEPT, CHECKPOINT_EVERY,
    MAX_APPEND_BYTES, MAX_ENTRY_BYTES, MAX_MEMBERSHIP_EVENTS, MAX_SNAPSHOT_EVENTS,
    MAX_VERIFY_AHEAD, MAX_WAITING_READS, MAX_WAITING_WRITES, PROMOTE_CHECK_TICKS, TICK_MS,
    WITNESS_QUIET_TICKS,
};
pub use stages::StageSample;
pub use wire::{Body, EntryHeader, Envelope, ForwardRefusal, WireError};
