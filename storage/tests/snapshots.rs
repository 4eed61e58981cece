//! Snapshots, compaction and the circular WAL: round trips, reuse of the
//! released space over many laps, and power cuts at every device
//! operation of a snapshot write, a compaction, a wrapping append and an
//! install.

mod common;

use common::*;
use continuum_storage::crc32c::crc32c;
use continuum_storage::layout::{Geometry, FORMAT_VERSION};
use continuum_storage::snapshot::SlotGeometry;
use continuum_storage::{
    BlockDevice, CrashMode, MemDisk, OpenError, Reconciled, Record, SnapshotMeta, Store,
    StoreError, BLOCK_SIZE,
};

/// Disk size for these tests: 120 WAL blocks (60 KiB), 64-block slots.
const BLOCKS: u64 = 256;

fn data_at(index: u64) -> Vec<u8> {
    (0..300 + (index as usize * 13) % 700)
        .map(|i| (i as u8) ^ (index as u8))
        .collect()
}

/// The record every test writes at `index` (one term, varying sizes).
fn model(index: u64) -> Record {
    rec(index, 1, (index as usize * 53) % 420, 7)
}

fn meta_at(index: u64) -> SnapshotMeta {
    let r = model(index);
    SnapshotMeta::for_data(
        index,
        r.term,
        r.chain_hash,
        vec![1, 2, 3],
        index.to_le_bytes().to_vec(),
        &data_at(index),
    )
}

fn snapshot_and_compact<D: BlockDevice>(store: &mut Store<D>, index: u64) {
    store
        .write_snapshot(&meta_at(index), &data_at(index))
        .expect("snapshot");
    store.compact_to(index).expect("compact");
}

/// Every entry the store holds is the model's, and it starts right after
/// its snapshot or, when the compaction after the snapshot was cut short,
/// earlier but still holding the snapshot's entry.
fn check_log<D: BlockDevice>(store: &mut Store<D>) {
    let (first, snapshot) = (store.first_index(), store.snapshot_index());
    assert!(
        first == snapshot + 1 || (first <= snapshot && snapshot <= store.last_index()),
        "log {first}..={} with snapshot {snapshot}",
        store.last_index()
    );
    for r in all(store) {
        assert_eq!(r, model(r.index), "entry {}", r.index);
    }
    if let Some((meta, data)) = store.read_snapshot().expect("snapshot reads") {
        assert_eq!(meta, meta_at(meta.index));
        assert_eq!(data, data_at(meta.index));
    }
}

fn append_model<D: BlockDevice>(store: &mut Store<D>, lo: u64, hi: u64) -> Result<(), StoreError> {
    let batch: Vec<Record> = (lo..=hi).map(model).collect();
    store.append(&batch)?;
    store.sync()
}

#[test]
fn snapshot_round_trips_and_alternates_slots() {
    let mut disk = formatted(BLOCKS);
    {
        let (mut store, report) = open(&mut disk).unwrap();
        assert_eq!(report.snapshot_index, 0);
        assert_eq!(store.read_snapshot().unwrap(), None);
        append_model(&mut store, 1, 40).unwrap();
        snapshot_and_compact(&mut store, 20);
        assert_eq!(store.first_index(), 21);
        assert_eq!(store.snapshot_meta(), Some(&meta_at(20)));
        snapshot_and_compact(&mut store, 30);
        check_log(&mut store);
        // Not newer, bad digest, beyond the snapshot: clear errors.
        assert_eq!(
            store.write_snapshot(&meta_at(30), &data_at(30)),
            Err(StoreError::SnapshotNotNewer {
                index: 30,
                current: 30
            })
        );
        assert_eq!(
            store.write_snapshot(&meta_at(35), &data_at(36)),
            Err(StoreError::SnapshotDigestMismatch { index: 35 })
        );
        assert_eq!(
            store.compact_to(35),
            Err(StoreError::CompactBeyondSnapshot {
                index: 35,
                snapshot_index: 30
            })
        );
        let big = vec![0u8; store.snapshot_capacity_bytes() as usize + 1];
        let meta = SnapshotMeta::for_data(36, 1, [0; 32], vec![1], vec![], &big);
        assert!(matches!(
            store.write_snapshot(&meta, &big),
            Err(StoreError::SnapshotTooLarge { .. })
        ));
        // Compacting what is already released is a no-op.
        store.compact_to(25).unwrap();
    }
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!((report.snapshot_index, report.first_index), (30, 31));
    assert_eq!(report.last_index, 40);
    assert!(format!("{report}").contains("snapshot at index 30"));
    check_log(&mut store);
    // Later reads re-read and re-verify: rot after open is an error.
    let slots = SlotGeometry::of(&Geometry::for_capacity(BLOCKS).unwrap());
    let at = (slots.header_lba(1) + 1) as usize * BLOCK_SIZE + 3;
    store.device_mut().flip_bit(at, 0);
    assert!(matches!(
        store.read_snapshot(),
        Err(StoreError::CorruptSnapshot { index: 30, .. })
    ));
}

#[test]
fn released_space_is_reused_over_many_laps() {
    let mut disk = formatted(BLOCKS);
    let (mut store, _) = open(&mut disk).unwrap();
    let wal = store.wal_capacity_bytes();
    let mut next = 1u64;
    let mut written = 0u64;
    let mut wraps = 0;
    let mut last_offset = 0;
    while next < 4000 {
        let hi = next + (next % 7);
        append_model(&mut store, next, hi).expect("compaction keeps room");
        for i in next..=hi {
            written += model(i).encoded_len() as u64;
            let at = store.record_extent(i).unwrap().offset;
            if at < last_offset {
                wraps += 1;
            }
            last_offset = at;
        }
        next = hi + 1;
        if store.last_index() - store.snapshot_index() >= 60 {
            let at = store.last_index() - 5;
            snapshot_and_compact(&mut store, at);
        }
        assert!(store.wal_used_bytes() <= wal);
        if next.is_multiple_of(11) {
            // Reopen mid-history: the scan follows the wrap.
            drop(store);
            let (reopened, report) = open(&mut disk).unwrap();
            store = reopened;
            assert_eq!(report.last_index, next - 1);
            check_log(&mut store);
        }
    }
    check_log(&mut store);
    assert!(
        written > 10 * wal,
        "wrote {written} bytes through a {wal}-byte WAL"
    );
    assert!(wraps >= 10, "the WAL wrapped {wraps} times");
}

#[test]
fn wal_full_only_when_the_live_log_fills_the_region() {
    let mut disk = formatted(BLOCKS);
    let (mut store, _) = open(&mut disk).unwrap();
    let mut next = 1;
    let err = loop {
        match append_model(&mut store, next, next + 3) {
            Ok(()) => next += 4,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StoreError::WalFull { .. }), "{err}");
    assert!(format!("{err}").contains("compact"));
    // Releasing the prefix makes room; nothing was lost.
    snapshot_and_compact(&mut store, next - 1 - 8);
    append_model(&mut store, next, next + 3).unwrap();
    check_log(&mut store);
}

#[test]
fn install_resets_the_log_after_the_snapshot() {
    let mut disk = formatted(BLOCKS);
    let (mut store, _) = open(&mut disk).unwrap();
    append_model(&mut store, 1, 30).unwrap();
    store.install_snapshot(&meta_at(90), &data_at(90)).unwrap();
    assert_eq!((store.first_index(), store.last_index()), (91, 90));
    append_model(&mut store, 91, 95).unwrap();
    drop(store);
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!((report.first_index, report.last_index), (91, 95));
    check_log(&mut store);
}

#[test]
fn a_corrupt_newest_snapshot_falls_back_or_refuses() {
    let geometry = Geometry::for_capacity(BLOCKS).unwrap();
    let slots = SlotGeometry::of(&geometry);
    let slot1_data = (slots.header_lba(1) + 1) as usize * BLOCK_SIZE;
    // Newest written but not yet compacted to: the older one still pairs
    // with the log.
    let mut disk = formatted(BLOCKS);
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_model(&mut store, 1, 60).unwrap();
        snapshot_and_compact(&mut store, 20);
        store.write_snapshot(&meta_at(40), &data_at(40)).unwrap();
    }
    let mut fallback = disk.clone();
    fallback.flip_bit(slot1_data + 5, 3);
    let (mut store, report) = open(&mut fallback).unwrap();
    assert_eq!((report.snapshot_index, report.first_index), (20, 21));
    assert!(format!("{report}").contains("slot 1 unusable"));
    check_log(&mut store);
    drop(store);
    // Compacted to the newest, which then rots: entries are gone, refuse.
    {
        let (mut store, report) = open(&mut disk).unwrap();
        // A log holding the snapshot's entry pairs with it as it is.
        assert_eq!(report.reconciled, None);
        assert_eq!(store.first_index(), 21);
        store.compact_to(40).unwrap();
        assert_eq!(store.first_index(), 41);
    }
    disk.flip_bit(slot1_data + 5, 3);
    match open(&mut disk) {
        Err(
            e @ OpenError::SnapshotBehindLog {
                snapshot_index: 20,
                first_index: 41,
            },
        ) => assert!(format!("{e}").contains("lost")),
        other => panic!("expected SnapshotBehindLog, got {:?}", other.map(|r| r.1)),
    }
}

#[test]
fn an_older_format_is_refused_with_a_clear_error() {
    let mut disk = formatted(BLOCKS);
    let mut sb = disk.durable_image()[..BLOCK_SIZE].to_vec();
    sb[8..12].copy_from_slice(&(FORMAT_VERSION - 1).to_le_bytes());
    let crc = crc32c(&sb[..96]);
    sb[96..100].copy_from_slice(&crc.to_le_bytes());
    disk.poke(0, &sb);
    disk.poke(BLOCK_SIZE, &sb);
    let err = open(&mut disk).err().expect("refused");
    assert_eq!(
        err,
        OpenError::UnsupportedFormat {
            version: FORMAT_VERSION - 1
        }
    );
    assert!(format!("{err}").contains("format version 1"));
}

/// The configuration (learners, configuration index) survives a reopen,
/// and a snapshot header of a version this build does not know makes open
/// refuse the disk by name instead of falling back to the older slot.
#[test]
fn configuration_persists_and_an_unknown_snapshot_version_is_refused() {
    let geometry = Geometry::for_capacity(BLOCKS).unwrap();
    let slots = SlotGeometry::of(&geometry);
    let mut disk = formatted(BLOCKS);
    let meta = SnapshotMeta {
        learners: vec![4],
        conf_index: 18,
        ..meta_at(20)
    };
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_model(&mut store, 1, 30).unwrap();
        store.write_snapshot(&meta, &data_at(20)).unwrap();
    }
    {
        let (mut store, _) = open(&mut disk).unwrap();
        assert_eq!(store.snapshot_meta(), Some(&meta));
        let (read, _) = store.read_snapshot().unwrap().expect("a snapshot");
        assert_eq!((read.learners, read.conf_index), (vec![4], 18));
    }
    // The first snapshot went to slot 0. As an earlier build wrote it
    // (version 2: no data CRC), it still opens, its data checked by SHA-256.
    let at = slots.header_lba(0) as usize * BLOCK_SIZE;
    let written = disk.durable_image()[at..at + BLOCK_SIZE].to_vec();
    assert_eq!(&written[..8], b"CNTMSNV\x03");
    let reseal = |mut header: Vec<u8>, version: u8| {
        header[7] = version;
        let crc = crc32c(&header[..500]);
        header[500..504].copy_from_slice(&crc.to_le_bytes());
        header
    };
    let mut v2 = written.clone();
    v2[494..498].fill(0);
    disk.poke(at, &reseal(v2, 2));
    {
        let (mut store, _) = open(&mut disk).expect("a version-2 snapshot opens");
        assert_eq!(store.snapshot_meta(), Some(&meta));
        let (_, data) = store.read_snapshot().unwrap().expect("a snapshot");
        assert_eq!(data, data_at(20));
    }
    // A version-4 header (a newer build) is refused by name.
    disk.poke(at, &reseal(written, 4));
    let err = open(&mut disk).err().expect("refused");
    assert_eq!(
        err,
        OpenError::UnknownSnapshotVersion {
            slot: 0,
            version: 4
        }
    );
    assert!(format!("{err}").contains("header version 4"), "{err}");
}

/// A disk whose WAL has wrapped, with a snapshot, and its last index.
fn wrapped_base() -> (MemDisk, u64) {
    let mut disk = formatted(BLOCKS);
    let (mut store, _) = open(&mut disk).unwrap();
    let mut next = 1;
    while next < 700 {
        append_model(&mut store, next, next + 4).unwrap();
        next += 5;
        if store.last_index() - store.snapshot_index() >= 80 {
            let at = store.last_index() - 10;
            snapshot_and_compact(&mut store, at);
        }
    }
    drop(store);
    (disk, next - 1)
}

fn crash_mode(k: u64) -> CrashMode {
    if k.is_multiple_of(2) {
        CrashMode::LoseUnflushed
    } else {
        CrashMode::KeepRandomSubset { seed: k }
    }
}

/// What a cut sequence had made durable when the power went.
#[derive(Default)]
struct Promised {
    last_index: u64,
    snapshot_index: u64,
    compacted: bool,
}

#[test]
fn power_cut_at_every_operation_of_snapshot_compaction_and_wrap() {
    let (base, last) = wrapped_base();
    let mut fired = 0;
    for k in 0..80u64 {
        let mut disk = base.clone();
        let old_snapshot;
        let mut promised = Promised::default();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            old_snapshot = store.snapshot_index();
            promised.last_index = last;
            promised.snapshot_index = old_snapshot;
            store
                .device_mut()
                .cut_power_after(k, (k as usize * 97) % 1400);
            // Appends that wrap, a snapshot, its compaction, more appends.
            let steps = (|| -> Result<(), StoreError> {
                let mut next = last + 1;
                for _ in 0..6 {
                    append_model(&mut store, next, next + 6)?;
                    promised.last_index = next + 6;
                    next += 7;
                }
                let at = next - 3;
                store.write_snapshot(&meta_at(at), &data_at(at))?;
                promised.snapshot_index = at;
                store.compact_to(at)?;
                promised.compacted = true;
                append_model(&mut store, next, next + 2)?;
                promised.last_index = next + 2;
                Ok(())
            })();
            if steps.is_err() {
                fired += 1;
            }
            store.device_mut().cancel_power_cut();
        }
        disk.crash(crash_mode(k));
        let (mut store, report) = open(&mut disk).unwrap_or_else(|e| panic!("cut at op {k}: {e}"));
        let snapshot = store.snapshot_index();
        assert!(
            snapshot == old_snapshot || snapshot == last + 40,
            "cut at op {k}: snapshot {snapshot}"
        );
        assert!(snapshot >= promised.snapshot_index, "cut at op {k}");
        if promised.compacted {
            assert_eq!(store.first_index(), snapshot + 1);
        }
        assert!(
            report.last_index >= promised.last_index,
            "cut at op {k}: durable entry {} lost (recovered up to {})",
            promised.last_index,
            report.last_index
        );
        check_log(&mut store);
        // The recovered pair keeps working.
        let next = store.last_index() + 1;
        append_model(&mut store, next, next + 3).unwrap();
        drop(store);
        let (mut store, _) = open(&mut disk).unwrap();
        assert_eq!(store.last_index(), next + 3);
        check_log(&mut store);
    }
    assert!(fired >= 20, "only {fired} cuts fired");
}

#[test]
fn power_cut_at_every_operation_of_an_install() {
    let (base, last) = wrapped_base();
    let target = last + 500;
    for k in 0..12u64 {
        let mut disk = base.clone();
        let (old_first, old_snapshot);
        let mut installed = false;
        {
            let (mut store, _) = open(&mut disk).unwrap();
            (old_first, old_snapshot) = (store.first_index(), store.snapshot_index());
            store.device_mut().cut_power_after(k, 300);
            installed = store
                .install_snapshot(&meta_at(target), &data_at(target))
                .is_ok()
                || installed;
            store.device_mut().cancel_power_cut();
        }
        disk.crash(crash_mode(k));
        let (mut store, report) = open(&mut disk).unwrap_or_else(|e| panic!("cut at op {k}: {e}"));
        if store.snapshot_index() == target {
            // The new snapshot with nothing before it.
            assert_eq!(
                (store.first_index(), store.last_index()),
                (target + 1, target)
            );
            // A cut between the snapshot and the log reset: open finished
            // the reset.
            if k == 3 {
                assert_eq!(report.reconciled, Some(Reconciled::Reset), "cut at op {k}");
            }
        } else {
            assert!(!installed, "cut at op {k}: a completed install was lost");
            assert_eq!(store.snapshot_index(), old_snapshot);
            assert_eq!((store.first_index(), store.last_index()), (old_first, last));
        }
        check_log(&mut store);
        let next = store.last_index() + 1;
        append_model(&mut store, next, next + 1).unwrap();
    }
}

#[test]
fn power_cut_while_reusing_just_released_space() {
    // A WAL filled to the brim: the append after the compaction can only
    // go into the space the compaction released.
    let mut base = formatted(BLOCKS);
    let last = {
        let (mut store, _) = open(&mut base).unwrap();
        let mut next = 1;
        while append_model(&mut store, next, next + 3).is_ok() {
            next += 4;
        }
        next - 1
    };
    let at = last - 2;
    for k in 0..24u64 {
        for mode in [crash_mode(2 * k), crash_mode(2 * k + 1)] {
            let mut disk = base.clone();
            let mut promised = last;
            let mut compacted = false;
            {
                let (mut store, _) = open(&mut disk).unwrap();
                store.device_mut().cut_power_after(k, 4096);
                let _ = (|| -> Result<(), StoreError> {
                    store.write_snapshot(&meta_at(at), &data_at(at))?;
                    store.compact_to(at)?;
                    compacted = true;
                    append_model(&mut store, last + 1, last + 40)?;
                    promised = last + 40;
                    Ok(())
                })();
                store.device_mut().cancel_power_cut();
            }
            disk.crash(mode);
            let (mut store, report) =
                open(&mut disk).unwrap_or_else(|e| panic!("cut at op {k} ({mode:?}): {e}"));
            assert!(report.last_index >= promised, "cut at op {k}: lost entries");
            if compacted {
                assert_eq!(store.first_index(), at + 1, "cut at op {k}");
            }
            check_log(&mut store);
        }
    }
}

#[test]
fn truncating_back_to_a_mid_block_start_then_reopening_keeps_new_entries() {
    // Records 1..=4 share a block; compacting to 1 puts the log start in
    // the middle of it, and truncating to 2 empties the log there.
    let mut disk = formatted(BLOCKS);
    {
        let (mut store, _) = open(&mut disk).unwrap();
        let small: Vec<Record> = (1..=4).map(|i| rec(i, 1, 10, 0)).collect();
        store.append(&small).unwrap();
        store.sync().unwrap();
        let r = &small[0];
        let data = data_at(1);
        let meta = SnapshotMeta::for_data(1, r.term, r.chain_hash, vec![1], vec![], &data);
        store.write_snapshot(&meta, &data).unwrap();
        store.compact_to(1).unwrap();
        store.truncate_from(2).unwrap();
    }
    disk.crash(CrashMode::LoseUnflushed);
    let fresh: Vec<Record> = (2..=3).map(|i| rec(i, 1, 20, 9)).collect();
    {
        let (mut store, _) = open(&mut disk).unwrap();
        store.append(&fresh).unwrap();
        store.sync().unwrap();
    }
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!((report.first_index, report.last_index), (2, 3), "{report}");
    assert_eq!(all(&mut store), fresh);
}
