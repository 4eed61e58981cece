//! Log entries and the hash chain that links them.
//!
//! Every entry carries `chain_hash = SHA-256(prev_chain ‖ index ‖ term ‖ kind ‖ data)`
//! where integers are 8-byte big-endian, `kind` is one byte, and `prev_chain`
//! is the chain hash of the entry at `index - 1` ([`GENESIS_CHAIN_HASH`] for
//! index 1). Because fixed-width fields precede `data`, the preimage is
//! unambiguous. Two logs with the same chain hash at an index therefore have
//! identical prefixes up to that index (Raft §5.3 Log Matching, made
//! checkable). The leader computes the hash when it appends a proposal; a
//! follower recomputes it on append and rejects a mismatch
//! ([`crate::Stats::chain_hash_mismatches`]), never accepting silently.

use alloc::vec::Vec;
use sha2::{Digest, Sha256};

/// SHA-256 chain value of a log entry (the *log chain*; the bank's
/// receipt chain is `continuum_bank::ReceiptChainHash`).
pub type LogChainHash = [u8; 32];

/// Chain hash "before" the first entry (index 0). All zeroes, by definition.
pub const GENESIS_CHAIN_HASH: LogChainHash = [0u8; 32];

/// Fixed part of an encoded entry: index, term, kind, chain hash, data length.
pub const ENTRY_HEADER_BYTES: usize = 8 + 8 + 1 + 32 + 4;

/// What an entry means to the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A client proposal; `data` is opaque to Raft.
    Normal,
    /// Empty entry a new leader appends so that it can commit entries of
    /// earlier terms (Raft §5.4.2, §8; thesis §3.6.2). Applications skip it.
    LeaderNoOp,
    /// A membership change; `data` is a [`crate::ConfEntry`]. Raft acts on
    /// it when it is appended; the application sees it when it commits.
    ConfChange,
}

impl EntryKind {
    /// Wire / hash byte of this kind.
    pub fn byte(self) -> u8 {
        match self {
            EntryKind::Normal => 0,
            EntryKind::LeaderNoOp => 1,
            EntryKind::ConfChange => 2,
        }
    }

    /// Inverse of [`EntryKind::byte`]; `None` for unknown kind bytes.
    pub fn from_byte(kind: u8) -> Option<EntryKind> {
        match kind {
            0 => Some(EntryKind::Normal),
            1 => Some(EntryKind::LeaderNoOp),
            2 => Some(EntryKind::ConfChange),
            _ => None,
        }
    }
}

/// One replicated log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Normal proposal, leader no-op or configuration change.
    pub kind: EntryKind,
    /// Opaque payload (empty for no-ops).
    pub data: Vec<u8>,
    /// Hash chain value, see the module doc.
    pub chain_hash: LogChainHash,
}

impl Entry {
    /// Builds an entry and computes its chain hash from `prev_chain`, the
    /// chain hash of the entry at `index - 1`.
    pub fn new(
        prev_chain: &LogChainHash,
        index: u64,
        term: u64,
        kind: EntryKind,
        data: Vec<u8>,
    ) -> Entry {
        let chain_hash = compute_chain_hash(prev_chain, index, term, kind, &data);
        Entry {
            index,
            term,
            kind,
            data,
            chain_hash,
        }
    }

    /// Bytes this entry takes in a message; used for the byte limits.
    pub fn encoded_len(&self) -> usize {
        ENTRY_HEADER_BYTES + self.data.len()
    }

    /// Whether `chain_hash` is the hash of this entry on top of `prev_chain`.
    pub fn verify_chain(&self, prev_chain: &LogChainHash) -> bool {
        compute_chain_hash(prev_chain, self.index, self.term, self.kind, &self.data)
            == self.chain_hash
    }
}

/// SHA-256(prev_chain ‖ index ‖ term ‖ kind ‖ data), see the module doc.
pub fn compute_chain_hash(
    prev_chain: &LogChainHash,
    index: u64,
    term: u64,
    kind: EntryKind,
    data: &[u8],
) -> LogChainHash {
    let mut hasher = Sha256::new();
    hasher.update(prev_chain);
    hasher.update(index.to_be_bytes());
    hasher.update(term.to_be_bytes());
    hasher.update([kind.byte()]);
    hasher.update(data);
    hasher.finalize().into()
}
