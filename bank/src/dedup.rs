//! The transfer-id index: exactly-once with memory bounded by a time window.
//!
//! Every transfer id the bank *decided* — applied (`Ok`) or rejected by a
//! rule about the ledger (`InsufficientFunds`, `ZeroAmount`,
//! `StaleSessionSeq`, …) — is kept here with its fields and first outcome
//! until its signed `expires_at` has passed in **log time** (the largest
//! entry HLC the ledger has applied, in milliseconds; it never goes back).
//! After that the id is forgotten: any replay of the same signed bytes now
//! carries an `expires_at` below the log time, so `execute` refuses it as
//! `Expired` before it looks the id up. Exactly-once therefore holds for
//! ever, and memory is bounded by (decision rate × window), not by history:
//!
//! * inside the window, a replay finds the id here and gets `Exists` (if it
//!   applied) or its first rejection again (same fields), or
//!   `ExistsWithDifferentFields`;
//! * after the window, the rule answers `Expired`.
//!
//! Nothing here is evicted early: a full index refuses *new* ids with
//! `TransfersFull` (not remembered, the client may resubmit), it never drops
//! a live one. Refusals that are not decisions are not remembered either:
//! `NoSuchDebitAccount` and `BadSignature` (unauthenticated, so a forger
//! cannot burn an id), `Expired` (can never apply) and `ExpiryTooFar` (the
//! signer asked for a window the cluster does not hold; the client library
//! never signs one).

use crate::command::Transfer;
use crate::outcome::Outcome;
use alloc::collections::{BTreeMap, BTreeSet};

/// A transfer the bank decided, kept by id until `transfer.expires_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecidedTransfer {
    /// The transfer as decided (every signed field).
    pub transfer: Transfer,
    /// Log index of the entry that decided it.
    pub index: u64,
    /// The decision: `Ok` (applied) or the rejection.
    pub outcome: Outcome,
}

impl DecidedTransfer {
    /// Whether the money moved.
    pub fn applied(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Whether `outcome` is one `execute` records in the id index (a decision,
/// as opposed to a refusal that leaves no trace).
pub(crate) fn is_decision(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Ok
            | Outcome::DuplicateSessionSeq
            | Outcome::StaleSessionSeq
            | Outcome::ZeroAmount
            | Outcome::SameAccount
            | Outcome::NoSuchCreditAccount
            | Outcome::DebitForbidden
            | Outcome::InsufficientFunds
            | Outcome::Overflow
    )
}

/// Decided ids by id, plus an expiry-ordered index to forget them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdIndex {
    max: u64,
    by_id: BTreeMap<u128, DecidedTransfer>,
    by_expiry: BTreeSet<(u64, u128)>,
}

impl IdIndex {
    pub fn new(max: u64) -> IdIndex {
        assert!(max > 0, "max_transfers must be positive");
        IdIndex {
            max,
            by_id: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    pub fn get(&self, id: &u128) -> Option<&DecidedTransfer> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_full(&self) -> bool {
        self.by_id.len() as u64 >= self.max
    }

    /// Decided transfers in id order (snapshots).
    pub fn iter(&self) -> impl Iterator<Item = &DecidedTransfer> {
        self.by_id.values()
    }

    /// Remembers a new decision. The caller checked `get` (the id is new)
    /// and `is_full`; a violation of either is a bank bug and halts.
    pub fn record(&mut self, decided: DecidedTransfer) {
        assert!(!self.is_full(), "id index over its bound");
        assert!(
            is_decision(decided.outcome),
            "a refusal recorded as a decision"
        );
        let t = decided.transfer;
        assert!(
            self.by_id.insert(t.id, decided).is_none(),
            "transfer id decided twice"
        );
        assert!(self.by_expiry.insert((t.expires_at, t.id)));
    }

    /// Forgets every id whose `expires_at` is below `log_time_ms` (a replay
    /// of it is `Expired` by rule from now on). Returns how many.
    pub fn forget_expired(&mut self, log_time_ms: u64) -> usize {
        let mut forgotten = 0;
        while let Some(&(expires_at, id)) = self.by_expiry.first() {
            if expires_at >= log_time_ms {
                break;
            }
            self.by_expiry.pop_first();
            assert!(
                self.by_id.remove(&id).is_some(),
                "id expiry index out of sync"
            );
            forgotten += 1;
        }
        forgotten
    }

    /// Every remembered id is still inside its window and both indexes agree.
    pub fn assert_consistent(&self, log_time_ms: u64) {
        assert!(self.by_id.len() as u64 <= self.max);
        assert_eq!(self.by_id.len(), self.by_expiry.len());
        if let Some(&(oldest, _)) = self.by_expiry.first() {
            assert!(oldest >= log_time_ms, "an expired id is still remembered");
        }
    }
}
