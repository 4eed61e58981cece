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
//!                                  reserve_account, supply,
//!                                  limits: Limits::for_heap(heap_mib),
//!                                  max_expiry_window_ms })?;
//! // for each committed entry (index strictly increasing), with the HLC
//! // milliseconds the leader stamped on it:
//! let result = ledger.apply(index, entry_hlc_ms, &entry_bytes); // never panics on bytes
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
//! * **Exactly-once with bounded memory**: every command carries a signed
//!   `expires_at` (cluster HLC ms). The ledger's log time is the largest
//!   entry HLC applied; a command applied after its `expires_at` is
//!   `Expired`, one asking for more than the genesis window is
//!   `ExpiryTooFar`. Every transfer id the bank decided (applied *or*
//!   rejected) is kept until its `expires_at` passes in log time, then
//!   forgotten, since any replay is `Expired` by rule (`dedup.rs`). Memory
//!   is bounded by rate × window, and exactly-once depends on nothing a
//!   client can churn.
//! * Sessions (`session.rs`, Raft thesis §6.3) no longer carry exactly-once;
//!   they stay because they still earn their place as a cheap per-client
//!   ordering rule: an old, superseded request of a client (a delayed retry)
//!   cannot apply after a newer one (`StaleSessionSeq`). LRU eviction only
//!   weakens that ordering for the evicted client, never exactly-once.
//! * Limits come from a heap budget ([`Limits::for_heap`]); full tables give
//!   outcomes (`AccountsFull`, `TransfersFull`), never a halt.
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
#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;

mod codec;
mod command;
mod dedup;
mod entry;
mod execute;
pub mod fuzzing;
mod ledger;
mod outcome;
mod receipt;
mod session;
mod snapshot;
pub mod verdicts;
pub mod verify;

pub use codec::DecodeError;
pub use command::{
    AccountFlags, Command, CommandKind, CreateAccount, SignedCommand, SigningMessage, Transfer,
    CREATE_ACCOUNT_BODY_LEN, SIGNATURE_LEN, SIGNING_DOMAIN, TRANSFER_BODY_LEN,
};
pub use dedup::DecidedTransfer;
pub use entry::{
    Entry, ENTRY_VERSION, MAX_COMMANDS_PER_BATCH, MAX_ENTRY_BYTES, MAX_SIGNED_COMMAND_LEN,
};
pub use ledger::{
    Account, ApplyResult, GenesisConfig, GenesisError, Ledger, Limits, ACCOUNT_COST_BYTES,
    DECIDED_TRANSFER_COST_BYTES, DEFAULT_LEDGER_HEAP_MIB, DEFAULT_MAX_EXPIRY_WINDOW_MS,
    GENESIS_CONFIG_LEN, SESSION_COST_BYTES,
};
pub use outcome::{Outcome, OutcomeDecodeError};
pub use receipt::ReceiptChainHash;
pub use session::{Session, SessionKey};
pub use snapshot::{SnapshotError, SNAPSHOT_MAGIC};
pub use verdicts::{VerdictMemo, VERDICT_MEMO_ENTRIES};
pub use verify::OwnerKey;
