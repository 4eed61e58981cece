//! The fuzz target's body, shared with a proptest so `cargo test` covers
//! it too: open a disk image damaged in arbitrary ways and check that the
//! store either refuses it with an error or serves a consistent log.
//! Decoding anything read from disk must never panic.

use alloc::vec;
use alloc::vec::Vec;

use crate::{HardState, Identity, MemDisk, Record, Store, StoreError};

/// Disk size of the fuzzed image (128 KiB).
pub const IMAGE_BLOCKS: u64 = 256;

const ID: Identity = Identity {
    cluster_id: 0xF022,
    node_id: 1,
};

fn sample_record(index: u64) -> Record {
    Record {
        index,
        term: 1 + index / 8,
        kind: (index % 3) as u8,
        chain_hash: [index as u8; 32],
        payload: vec![index as u8; (index as usize * 29) % 400],
    }
}

/// A formatted image holding records 1..=24 in several batches and a hard
/// state.
pub fn sample_image() -> MemDisk {
    let mut disk = MemDisk::new(IMAGE_BLOCKS);
    let result = Store::format(&mut disk, ID);
    let (mut store, _) = result.expect("formatting a fresh MemDisk cannot fail");
    for lo in [1u64, 9, 17] {
        let batch: Vec<Record> = (lo..lo + 8).map(sample_record).collect();
        store.append(&batch).expect("fits");
        store.sync().expect("MemDisk flush");
    }
    store
        .set_hard_state(HardState {
            term: 3,
            vote: 1,
            commit: 20,
        })
        .expect("MemDisk write");
    store.sync().expect("MemDisk flush");
    disk
}

/// Apply `damage` to `disk`: a sequence of (3-byte little-endian offset,
/// 1-byte length <= 32, bytes) pokes; a short tail is ignored.
pub fn apply_damage(disk: &mut MemDisk, damage: &[u8]) {
    let size = (IMAGE_BLOCKS as usize) * crate::BLOCK_SIZE;
    let mut rest = damage;
    while rest.len() >= 4 {
        let at = (rest[0] as usize | (rest[1] as usize) << 8 | (rest[2] as usize) << 16) % size;
        let len = (rest[3] as usize % 32).min(rest.len() - 4);
        let bytes = &rest[4..4 + len];
        let end = (at + bytes.len()).min(size);
        disk.poke(at, &bytes[..end - at]);
        rest = &rest[4 + len..];
    }
}

/// Damage a sample image, open it and check the store's consistency.
/// Panics only if the store breaks an invariant (or itself panics).
pub fn open_damaged_image(damage: &[u8]) {
    let mut disk = sample_image();
    apply_damage(&mut disk, damage);
    let Ok((mut store, report)) = Store::open(&mut disk, ID) else {
        return;
    };
    let _ = alloc::format!("{report}");
    let (first, last) = (store.first_index(), store.last_index());
    assert_eq!(report.records, last + 1 - first);
    if last >= first {
        let entries = store
            .entries(first, last + 1, u64::MAX)
            .expect("every recovered entry reads back");
        assert_eq!(entries.len() as u64, report.records);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.index, first + i as u64);
            assert_eq!(Ok(e.term), store.term(e.index));
        }
    }
    // The recovered store accepts the next entry and recovers it again.
    let next = sample_record(last + 1);
    let term = store.term(last).unwrap_or(0).max(next.term);
    let next = Record { term, ..next };
    match store.append(core::slice::from_ref(&next)) {
        Ok(()) => {}
        Err(StoreError::WalFull { .. }) => return,
        Err(e) => panic!("append after recovery failed: {e}"),
    }
    store.sync().expect("MemDisk flush");
    drop(store);
    let (store, _) = Store::open(&mut disk, ID).expect("a store we just wrote reopens");
    assert_eq!(store.last_index(), last + 1);
}
