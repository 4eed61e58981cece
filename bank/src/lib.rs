//! # continuum-bank: the replicated ledger state machine
//!
//! A deterministic `no_std` + `alloc` state machine that the node applies to
//! every committed Raft entry, in log order, on every replica. It knows
//! nothing of Raft, networks or clocks: same log in, same state, same
//! outcomes and same receipt chain out.
//!
//! ## Driving it
//! ```text
//! let mut ledger = Ledger::genesis(GenesisConfig { cluster_id, operator_key,
//!                                  reserve_account, supply, limits })?;
//! // for each committed entry (index strictly increasing):
//! let result = ledger.apply(index, &entry_bytes);   // never panics on bytes
//! reply(result.outcomes, result.chain_head);
//! // queries: balance, account, transfer_outcome, session_outcome, chain_head
//! // compaction: ledger.snapshot() / Ledger::restore(&bytes)
//! ```
//! Clients build entries with [`Transfer::sign`], [`CreateAccount::sign`]
//! and [`Entry::new`]/[`Entry::encode`].
//!
//! ## Model (after TigerBeetle, cut to what a small bank needs)
//! * Genesis puts the whole `supply` in `reserve_account`, owned by the
//!   operator key. Money only moves; the sum of balances equals the supply
//!   after every entry (asserted in production, `Ledger::assert_invariants`).
//! * Accounts are created by the operator (`command.rs` says why) and
//!   debited only by transfers signed by their owner key.
//! * **Exactly-once**: a transfer id applies at most once for ever (the id
//!   index of applied transfers is permanent, bounded by
//!   `Limits::max_transfers`); client sessions dedupe retries and order a
//!   client's requests with bounded memory (`session.rs`, Raft thesis §6.3).
//! * Signatures: strict Ed25519 over a domain-separated message, verified
//!   at apply time, batched per entry with a rule that makes batching
//!   invisible (`verify.rs`).
//! * Receipts: a SHA-256 chain over (index, entry bytes, outcomes)
//!   (`receipt.rs`).
//! * Snapshots: canonical bytes, checksummed, restored by a total decoder
//!   (`snapshot.rs`).
//!
//! Shaped for later: account flags have reserved bits and commands a kind
//! byte, so pending/linked transfers can be new kinds and flags.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod codec;
mod command;
mod entry;
mod execute;
pub mod fuzzing;
mod ledger;
mod outcome;
mod receipt;
mod session;
mod snapshot;
pub mod verify;

pub use codec::DecodeError;
pub use command::{
    AccountFlags, Command, CommandKind, CreateAccount, SignedCommand, SigningMessage, Transfer,
    CREATE_ACCOUNT_BODY_LEN, SIGNATURE_LEN, SIGNING_DOMAIN, TRANSFER_BODY_LEN,
};
pub use entry::{
    Entry, ENTRY_VERSION, MAX_COMMANDS_PER_BATCH, MAX_ENTRY_BYTES, MAX_SIGNED_COMMAND_LEN,
};
pub use ledger::{
    Account, AppliedTransfer, ApplyResult, GenesisConfig, GenesisError, Ledger, Limits,
    DEFAULT_MAX_ACCOUNTS, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TRANSFERS, GENESIS_CONFIG_LEN,
};
pub use outcome::Outcome;
pub use receipt::ChainHash;
pub use session::{Session, SessionKey};
pub use snapshot::{SnapshotError, SNAPSHOT_MAGIC};
pub use verify::OwnerKey;
