//! The receipt chain: a SHA-256 hash chain over every applied entry and its
//! outcomes. Replicas that applied the same log have the same head; the
//! cluster compares heads (with the applied index) to detect divergence.
//!
//! `head₀ = SHA-256(GENESIS_DOMAIN ‖ genesis config encoding)`;
//! `headᵢ = SHA-256(headᵢ₋₁ ‖ index (8, LE) ‖ log time ms (8, LE) ‖ entry
//! length (8, LE) ‖ entry bytes ‖ outcome count (2, LE) ‖ outcome
//! encodings)`. The log time is in because outcomes depend on it (`Expired`). Lengths make the
//! concatenation unambiguous. The entry bytes are hashed as received (also
//! when they did not decode), so a head commits to the exact log.

use crate::outcome::Outcome;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// Prefix of the genesis head.
pub const GENESIS_DOMAIN: &[u8] = b"continuum-bank/genesis/2";

/// A head of the receipt chain (the ledger's, after each applied entry;
/// not the Raft log chain).
pub type ReceiptChainHash = [u8; 32];

/// The head before any entry.
pub fn genesis_head(config_encoding: &[u8]) -> ReceiptChainHash {
    let mut h = Sha256::new();
    h.update(GENESIS_DOMAIN);
    h.update(config_encoding);
    h.finalize().into()
}

/// Extends `prev` by one applied entry.
pub fn extend(
    prev: &ReceiptChainHash,
    index: u64,
    log_time_ms: u64,
    entry: &[u8],
    outcomes: &[Outcome],
) -> ReceiptChainHash {
    let entry_len = entry.len() as u64;
    let mut codes = Vec::with_capacity(outcomes.len() * 2);
    for o in outcomes {
        o.encode_into(&mut codes);
    }
    let count = u16::try_from(outcomes.len()).expect("outcome count bounded by batch cap");
    let mut h = Sha256::new();
    h.update(prev);
    h.update(index.to_le_bytes());
    h.update(log_time_ms.to_le_bytes());
    h.update(entry_len.to_le_bytes());
    h.update(entry);
    h.update(count.to_le_bytes());
    h.update(&codes);
    h.finalize().into()
}
