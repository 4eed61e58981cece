//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use continuum_storage::{BlockDevice, Identity, MemDisk, OpenError, Record, RecoveryReport, Store};

/// The identity every test disk is formatted for.
pub const ID: Identity = Identity {
    cluster_id: 0xC0FF_EE00_0000_0000_0000_0000_0000_0001,
    node_id: 1,
};

/// A deterministic record: payload bytes derived from (index, term, salt).
pub fn rec(index: u64, term: u64, len: usize, salt: u8) -> Record {
    let payload = (0..len)
        .map(|i| (index as u8).wrapping_mul(31) ^ (term as u8) ^ (i as u8) ^ salt)
        .collect();
    let mut chain_hash = [0u8; 32];
    chain_hash[..8].copy_from_slice(&index.to_le_bytes());
    chain_hash[8..16].copy_from_slice(&term.to_le_bytes());
    chain_hash[16] = salt;
    Record {
        index,
        term,
        kind: (index % 3) as u8,
        chain_hash,
        payload,
    }
}

/// Records `lo..=hi`, all in `term`, payload lengths varying with the index.
pub fn recs(lo: u64, hi: u64, term: u64) -> Vec<Record> {
    (lo..=hi)
        .map(|i| rec(i, term, (i as usize * 37) % 300, 0))
        .collect()
}

pub type MemStore<'a> = Store<&'a mut MemDisk>;

pub fn open(disk: &mut MemDisk) -> Result<(MemStore<'_>, RecoveryReport), OpenError> {
    Store::open(disk, ID)
}

/// Format a fresh disk of `blocks` blocks.
pub fn formatted(blocks: u64) -> MemDisk {
    let mut disk = MemDisk::new(blocks);
    let (_, report) = Store::format(&mut disk, ID).expect("format");
    assert!(report.formatted);
    disk
}

/// Every entry in the store.
pub fn all<D: BlockDevice>(store: &mut Store<D>) -> Vec<Record> {
    let (first, last) = (store.first_index(), store.last_index());
    if last < first {
        return Vec::new();
    }
    store.entries(first, last + 1, u64::MAX).expect("entries")
}

/// Append and sync.
pub fn append_synced<D: BlockDevice>(store: &mut Store<D>, records: &[Record]) {
    store.append(records).expect("append");
    store.sync().expect("sync");
}
