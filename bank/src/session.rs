//! Client sessions (Raft thesis §6.3): per `(debit account, client)` the last
//! sequence number, the transfer it carried and its outcome, so an old
//! request cannot apply after a newer one of the same client. Retries are
//! answered by the id index (`dedup.rs`), not here: sessions are an
//! ordering aid and carry no exactly-once duty.
//!
//! Sessions are keyed by the *debit account* as well as the client id because
//! only the account's owner can sign transfers from it: another key holder
//! cannot advance (and so block) someone else's session.
//!
//! ## Bound and eviction
//! At most `Limits::max_sessions` sessions are kept. When a new session would
//! exceed it, the session whose last transfer applied at the smallest log
//! index is evicted (ties — several sessions touched by one batch entry —
//! broken by the smaller `(account, client)`): least recently used by applied
//! index, the same on every replica. Eviction never breaks exactly-once:
//! every decided transfer id (applied or rejected) stays in the id index
//! until it expires, and after that any replay is `Expired`. An evicted
//! session only loses seq ordering for that client: its next transfer opens
//! a fresh session.

use crate::outcome::Outcome;
use alloc::collections::{BTreeMap, BTreeSet};

/// `(debit account, client id)`.
pub type SessionKey = (u128, u128);

/// What a session remembers about its last transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// Sequence number of the session's last transfer.
    pub last_seq: u64,
    /// Its transfer id.
    pub last_id: u128,
    /// Its credited account.
    pub last_to: u128,
    /// Its amount.
    pub last_amount: u64,
    /// What the bank decided for it.
    pub last_outcome: Outcome,
    /// Log index of the entry that applied the last transfer (LRU key).
    pub last_index: u64,
}

/// Bounded session table with deterministic LRU eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionTable {
    max: u64,
    by_key: BTreeMap<SessionKey, Session>,
    by_age: BTreeSet<(u64, u128, u128)>,
}

impl SessionTable {
    pub fn new(max: u64) -> SessionTable {
        assert!(max > 0, "max_sessions must be positive");
        SessionTable {
            max,
            by_key: BTreeMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    pub fn get(&self, key: &SessionKey) -> Option<&Session> {
        self.by_key.get(key)
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Sessions in key order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&SessionKey, &Session)> {
        self.by_key.iter()
    }

    /// Stores `session` under `key`, evicting the least recently used
    /// session if a new key would exceed the bound.
    pub fn record(&mut self, key: SessionKey, session: Session) {
        match self.by_key.get(&key) {
            Some(old) => {
                assert!(
                    self.by_age.remove(&(old.last_index, key.0, key.1)),
                    "session age index out of sync"
                );
            }
            None => {
                if self.by_key.len() as u64 >= self.max {
                    if let Some(oldest) = self.by_age.pop_first() {
                        assert!(
                            self.by_key.remove(&(oldest.1, oldest.2)).is_some(),
                            "session age index out of sync"
                        );
                    }
                }
            }
        }
        self.by_age.insert((session.last_index, key.0, key.1));
        self.by_key.insert(key, session);
        assert!(self.by_key.len() as u64 <= self.max);
        assert_eq!(self.by_key.len(), self.by_age.len());
    }
}
