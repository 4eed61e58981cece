//! A replica-local memo of signature verdicts, so a signature verified once
//! (at admission, or in the background after a follower acknowledged the
//! entry) is not verified again on the commit → apply → reply path.
//!
//! ## What is remembered
//! A verdict depends only on (owner key, signing message, signature): the
//! module rule of `verify.rs` is a pure function of the three. The memo maps
//! `SHA-256(domain ‖ key ‖ signature ‖ message)` to the verdict, so a hit
//! requires all three to be byte-for-byte the ones verified (SHA-256's
//! collision resistance is the only assumption). The memo is never
//! replicated, never part of a snapshot and never carried in an entry:
//! every replica still verifies every signature itself, once, and outcomes
//! are the same whether a verdict came from the memo or was computed inline
//! (a miss simply verifies).
//!
//! Keying by content rather than by (entry index, chain hash) lets one
//! memo serve both places a verdict is computed before apply: admission on
//! the contact node (which knows no index yet) and the background pass over
//! persisted but uncommitted entries. An entry's verdicts are consumed
//! (removed) when the entry applies.
//!
//! ## Bounds
//! At most [`VERDICT_MEMO_ENTRIES`] verdicts (`VERDICT_MEMO_ENTRIES` × ~48
//! bytes); the oldest insert is evicted first. An eviction costs one
//! inline verify at apply, never a wrong outcome.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

use crate::verify::{verify_all, VerifyItem};

/// Most verdicts the memo holds: well above what the log can hold
/// uncommitted at once (Raft's uncommitted bound × commands per entry is in
/// the low thousands).
pub const VERDICT_MEMO_ENTRIES: usize = 8192;

/// Domain tag of the memo's digests.
const DOMAIN: &[u8] = b"continuum-bank/verdict/1";

type Digest32 = [u8; 32];

/// The memo (see the module doc).
#[derive(Clone, Debug)]
pub struct VerdictMemo {
    capacity: usize,
    verdicts: BTreeMap<Digest32, bool>,
    /// Insertion order, for eviction; may name digests already consumed.
    order: VecDeque<Digest32>,
    hits: u64,
    misses: u64,
}

impl VerdictMemo {
    /// An empty memo of [`VERDICT_MEMO_ENTRIES`].
    pub fn new() -> VerdictMemo {
        VerdictMemo::with_capacity(VERDICT_MEMO_ENTRIES)
    }

    /// An empty memo holding at most `capacity` verdicts (at least one).
    pub fn with_capacity(capacity: usize) -> VerdictMemo {
        VerdictMemo {
            capacity: capacity.max(1),
            verdicts: BTreeMap::new(),
            order: VecDeque::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// Verdicts held now.
    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    /// Whether no verdict is held.
    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }

    /// Lookups answered from the memo, over its life.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that had to verify, over its life.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Verifies every item as [`verify_all`] does (same answers), taking
    /// verdicts from the memo where it has them and remembering the new
    /// ones. Returns the answers and how many signatures were verified.
    pub fn verify_and_remember(
        &mut self,
        items: &[VerifyItem<'_>],
        batch: bool,
    ) -> (Vec<bool>, usize) {
        let (valid, digests, verified) = self.verify(items, batch, false);
        for (digest, ok) in digests.into_iter().zip(&valid) {
            self.remember(digest, *ok);
        }
        (valid, verified)
    }

    /// Verifies every item as [`verify_all`] does (same answers), consuming
    /// the memo's verdicts for them: used at apply, after which the same
    /// signed bytes are never applied again by this entry.
    pub fn verify_and_consume(&mut self, items: &[VerifyItem<'_>], batch: bool) -> Vec<bool> {
        self.verify(items, batch, true).0
    }

    fn verify(
        &mut self,
        items: &[VerifyItem<'_>],
        batch: bool,
        consume: bool,
    ) -> (Vec<bool>, Vec<Digest32>, usize) {
        let digests: Vec<Digest32> = items.iter().map(digest).collect();
        let mut valid = alloc::vec![false; items.len()];
        let mut missing = Vec::new();
        for (i, d) in digests.iter().enumerate() {
            let found = if consume {
                self.verdicts.remove(d)
            } else {
                self.verdicts.get(d).copied()
            };
            match found {
                Some(ok) => {
                    self.hits += 1;
                    valid[i] = ok;
                }
                None => {
                    self.misses += 1;
                    missing.push(i);
                }
            }
        }
        let unknown: Vec<VerifyItem<'_>> = missing
            .iter()
            .map(|&i| VerifyItem {
                key: items[i].key,
                message: items[i].message,
                signature: items[i].signature,
            })
            .collect();
        let verified = unknown.len();
        for (&i, ok) in missing.iter().zip(verify_all(&unknown, batch)) {
            valid[i] = ok;
        }
        (valid, digests, verified)
    }

    fn remember(&mut self, digest: Digest32, valid: bool) {
        if self.verdicts.insert(digest, valid).is_none() {
            self.order.push_back(digest);
        }
        // `order` may hold consumed digests: drop those for free, and
        // evict the oldest live verdicts beyond the bound.
        while self.verdicts.len() > self.capacity || self.order.len() > 2 * self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.verdicts.len() > self.capacity {
                self.verdicts.remove(&oldest);
            }
        }
    }
}

impl Default for VerdictMemo {
    fn default() -> VerdictMemo {
        VerdictMemo::new()
    }
}

fn digest(item: &VerifyItem<'_>) -> Digest32 {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(item.key.as_bytes());
    h.update(item.signature);
    h.update(item.message);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::OwnerKey;
    use alloc::vec;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(seed: u8, message: &[u8]) -> (OwnerKey, [u8; 64]) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let owner = OwnerKey::parse(&key.verifying_key().to_bytes()).unwrap();
        (owner, key.sign(message).to_bytes())
    }

    #[test]
    fn a_remembered_verdict_is_reused_then_consumed() {
        let (key, sig) = signed(1, b"pay 5");
        let items = [VerifyItem {
            key,
            message: b"pay 5",
            signature: &sig,
        }];
        let mut memo = VerdictMemo::new();
        assert_eq!(memo.verify_and_remember(&items, true), (vec![true], 1));
        assert_eq!(memo.verify_and_remember(&items, true), (vec![true], 0));
        assert_eq!(memo.verify_and_consume(&items, true), vec![true]);
        assert!(memo.is_empty());
        assert_eq!((memo.hits(), memo.misses()), (2, 1));
    }

    #[test]
    fn a_verdict_never_answers_other_bytes() {
        let (key, sig) = signed(2, b"pay 5");
        let (other_key, _) = signed(3, b"x");
        let mut memo = VerdictMemo::new();
        let good = [VerifyItem {
            key,
            message: b"pay 5",
            signature: &sig,
        }];
        memo.verify_and_remember(&good, true);
        // Same signature, other message; same message, other key.
        for item in [
            VerifyItem {
                key,
                message: b"pay 6",
                signature: &sig,
            },
            VerifyItem {
                key: other_key,
                message: b"pay 5",
                signature: &sig,
            },
        ] {
            assert_eq!(memo.verify_and_consume(&[item], true), vec![false]);
        }
        // A remembered *invalid* verdict stays invalid.
        let mut bad = sig;
        bad[0] ^= 1;
        let forged = [VerifyItem {
            key,
            message: b"pay 5",
            signature: &bad,
        }];
        assert_eq!(memo.verify_and_remember(&forged, true).0, vec![false]);
        assert_eq!(memo.verify_and_consume(&forged, true), vec![false]);
    }

    #[test]
    fn the_memo_is_bounded() {
        let (key, sig) = signed(4, b"m");
        let mut memo = VerdictMemo::with_capacity(16);
        let messages: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
        for chunk in messages.chunks(7) {
            let items: Vec<VerifyItem<'_>> = chunk
                .iter()
                .map(|m| VerifyItem {
                    key,
                    message: m,
                    signature: &sig,
                })
                .collect();
            memo.verify_and_remember(&items, true);
        }
        assert_eq!(memo.len(), 16);
        assert!(memo.order.len() <= 32);
        // The newest verdicts are the ones kept.
        let newest = VerifyItem {
            key,
            message: &messages[99],
            signature: &sig,
        };
        assert_eq!(memo.verify_and_remember(&[newest], true).1, 0);
    }
}
