//! Crash and corruption scenarios: whatever the device does, recovery
//! yields a valid prefix of the log that includes everything flushed, or
//! refuses to start when flushed data is provably damaged.

mod common;

use common::*;
use continuum_storage::{
    CrashMode, HardState, MemDisk, OpenError, Record, RecordDefect, Tail, Witness,
};

/// Byte offset on the device and length of record `index`.
fn extent(disk: &mut MemDisk, index: u64) -> (usize, usize) {
    let (store, _) = open(disk).unwrap();
    let e = store.record_extent(index).unwrap();
    (
        (store.wal_device_offset() + e.offset) as usize,
        e.len as usize,
    )
}

/// A disk holding records 1..=9 in three synced batches, and record 10
/// synced alone as the last batch, with no hard-state write after it.
fn ten_records() -> (MemDisk, Vec<Record>) {
    let mut disk = formatted(512);
    let mut expected = recs(1, 4, 1);
    expected.extend(recs(5, 9, 2));
    expected.push(rec(10, 2, 300, 9));
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_synced(&mut store, &expected[..4]);
        append_synced(&mut store, &expected[4..6]);
        append_synced(&mut store, &expected[6..9]);
        append_synced(&mut store, &expected[9..]);
    }
    (disk, expected)
}

#[test]
fn torn_write_at_every_byte_of_the_last_record_keeps_the_flushed_prefix() {
    let (base, expected) = ten_records();
    let last = rec(11, 3, 700, 4);
    let len = last.encoded_len();
    let padded = len.div_ceil(512) * 512;
    for keep in 0..=padded {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.device_mut().tear_next_write(keep);
            assert!(store.append(std::slice::from_ref(&last)).is_err());
        }
        disk.crash(CrashMode::LoseUnflushed);
        let (mut store, report) = open(&mut disk).expect("torn tail recovers");
        let got = all(&mut store);
        assert_eq!(got[..10], expected[..], "flushed prefix, keep={keep}");
        if keep >= len {
            assert_eq!(got.len(), 11, "complete record survives, keep={keep}");
            assert_eq!(got[10], last);
        } else {
            assert_eq!(got.len(), 10, "torn record dropped, keep={keep}");
            match report.tail {
                Tail::Blank => assert_eq!(keep, 0),
                Tail::Discarded { bytes, .. } => {
                    assert!(keep > 0 && bytes > 0, "keep={keep} {report}")
                }
                Tail::RegionEnd => panic!("unexpected region end"),
            }
        }
        // The log keeps working after the torn tail: append past it and
        // recover again.
        let next = store.last_index() + 1;
        append_synced(&mut store, &[rec(next, 3, 50, 7)]);
        drop(store);
        let (mut store, _) = open(&mut disk).unwrap();
        assert_eq!(store.last_index(), next, "keep={keep}");
        assert_eq!(all(&mut store).last(), Some(&rec(next, 3, 50, 7)));
    }
}

#[test]
fn torn_multi_block_batch_at_block_granularity_keeps_the_prefix() {
    let (base, expected) = ten_records();
    let batch: Vec<Record> = (11..=30).map(|i| rec(i, 3, 150, 1)).collect();
    let bytes: usize = batch.iter().map(Record::encoded_len).sum();
    for keep in (0..=bytes.div_ceil(512) * 512).step_by(64) {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.device_mut().tear_next_write(keep);
            assert!(store.append(&batch).is_err());
        }
        disk.crash(CrashMode::LoseUnflushed);
        let (mut store, _) = open(&mut disk).expect("recovers");
        let got = all(&mut store);
        assert!(got.len() >= 10);
        assert_eq!(got[..10], expected[..]);
        assert_eq!(got[10..], batch[..got.len() - 10], "keep={keep}");
        // Appending after a tail torn inside a batch rewrites the shared
        // block's live prefix, then recovers cleanly.
        let next = store.last_index() + 1;
        let more = [rec(next, 4, 120, 9), rec(next + 1, 4, 60, 9)];
        append_synced(&mut store, &more);
        drop(store);
        let (mut store, _) = open(&mut disk).unwrap();
        let again = all(&mut store);
        assert_eq!(again[..got.len()], got[..], "keep={keep}");
        assert_eq!(again[got.len()..], more[..], "keep={keep}");
    }
}

#[test]
fn bit_flip_anywhere_in_the_unwitnessed_last_record_truncates_it() {
    let (base, expected) = ten_records();
    let (at, len) = extent(&mut base.clone(), 10);
    for byte in at..at + len {
        let mut disk = base.clone();
        disk.flip_bit(byte, (byte % 8) as u8);
        let (mut store, report) = open(&mut disk).expect("tail corruption recovers");
        assert_eq!(all(&mut store), expected[..9], "byte {}", byte - at);
        assert!(
            matches!(report.tail, Tail::Discarded { .. }),
            "byte {}: {report}",
            byte - at
        );
    }
}

#[test]
fn bit_flip_in_a_record_after_a_hard_state_write_refuses_to_start() {
    // Same as above, but a hard-state update after the flush witnesses
    // that record 10 was durable: losing it would lose an acknowledged entry.
    let (mut base, _) = ten_records();
    {
        let (mut store, _) = open(&mut base).unwrap();
        store
            .set_hard_state(HardState {
                term: 2,
                vote: 1,
                commit: 10,
            })
            .unwrap();
        store.sync().unwrap();
    }
    let (at, len) = extent(&mut base.clone(), 10);
    for byte in (at..at + len).step_by(7) {
        let mut disk = base.clone();
        disk.flip_bit(byte, 1);
        let err = open(&mut disk).err().expect("refused");
        match err {
            OpenError::CorruptRecord {
                index: 10,
                witness: Witness::HardStateSlot { .. },
                ..
            } => {}
            other => panic!("byte {}: {other}", byte - at),
        }
    }
}

#[test]
fn bit_flip_in_the_middle_refuses_to_start_with_a_clear_error() {
    let (base, _) = ten_records();
    for index in [1u64, 4, 5, 7, 9] {
        let (at, len) = extent(&mut base.clone(), index);
        for byte in at..at + len {
            let mut disk = base.clone();
            disk.flip_bit(byte, (byte % 8) as u8);
            // No hard-state write after the batches: the proof must come
            // from a later record.
            let err = open(&mut disk).err().expect("mid-log corruption refused");
            match err {
                OpenError::CorruptRecord {
                    index: i,
                    witness: Witness::Record { index: w },
                    ..
                } => {
                    assert_eq!(i, index);
                    assert!(w > index);
                }
                other => panic!("record {index} byte {}: {other}", byte - at),
            }
            let text = err.to_string();
            assert!(
                text.contains("corrupt") && text.contains("refusing"),
                "{text}"
            );
        }
    }
}

#[test]
fn lost_unflushed_writes_never_lose_flushed_ones() {
    let (base, expected) = ten_records();
    let pending: Vec<Record> = (11..=40).map(|i| rec(i, 3, 400, 2)).collect();
    let mut seen_lengths = std::collections::BTreeSet::new();
    for seed in 0..200u64 {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            // Three unflushed batches, each spanning several blocks.
            store.append(&pending[..10]).unwrap();
            store.append(&pending[10..20]).unwrap();
            store.append(&pending[20..]).unwrap();
            store
                .set_hard_state(HardState {
                    term: 3,
                    vote: 0,
                    commit: 5,
                })
                .unwrap();
        }
        let mode = if seed == 0 {
            CrashMode::LoseUnflushed
        } else {
            CrashMode::KeepRandomSubset { seed }
        };
        disk.crash(mode);
        let (mut store, report) = open(&mut disk).expect("never refused after a crash");
        let got = all(&mut store);
        assert_eq!(got[..10], expected[..], "seed {seed}");
        assert_eq!(got[10..], pending[..got.len() - 10], "seed {seed}");
        assert!(
            report.hard_state == HardState::default()
                || report.hard_state
                    == HardState {
                        term: 3,
                        vote: 0,
                        commit: 5
                    },
            "seed {seed}: {report}"
        );
        seen_lengths.insert(got.len());
    }
    assert!(
        seen_lengths.len() > 3,
        "crashes kept varied prefixes: {seen_lengths:?}"
    );
    assert!(seen_lengths.contains(&10));
}

#[test]
fn crash_between_truncate_and_reappend() {
    let (base, expected) = ten_records();
    // Truncation is durable on return; nothing re-appended yet.
    let mut disk = base.clone();
    {
        let (mut store, _) = open(&mut disk).unwrap();
        store.truncate_from(6).unwrap();
        assert_eq!(store.last_index(), 5);
    }
    disk.crash(CrashMode::LoseUnflushed);
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!(all(&mut store), expected[..5]);
    assert!(
        matches!(
            report.tail,
            Tail::Discarded {
                defect: RecordDefect::Stale { .. },
                ..
            }
        ),
        "{report}"
    );
    drop(store);

    // Truncate, re-append (unflushed), crash with arbitrary loss: the old
    // suffix never comes back, the re-appended one survives as a prefix.
    let replacement: Vec<Record> = (6..=12).map(|i| rec(i, 5, 90, 3)).collect();
    for seed in 0..100u64 {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.truncate_from(6).unwrap();
            store.append(&replacement).unwrap();
        }
        disk.crash(CrashMode::KeepRandomSubset { seed });
        let (mut store, _) = open(&mut disk).unwrap();
        let got = all(&mut store);
        assert_eq!(got[..5], expected[..5]);
        assert_eq!(got[5..], replacement[..got.len() - 5], "seed {seed}");
    }
}

#[test]
fn identical_reappend_after_truncation_does_not_resurrect_the_old_suffix() {
    // Records 1..=10 in one batch (so 6 starts mid-block); truncate at 6
    // and re-append a byte-identical record 6: the old 7..=10 follow it
    // physically and would link to it but for the generation.
    let mut disk = formatted(512);
    let records: Vec<Record> = (1..=10).map(|i| rec(i, 1, 40, 0)).collect();
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_synced(&mut store, &records);
        store.truncate_from(6).unwrap();
        append_synced(&mut store, &records[5..6]);
    }
    let (mut store, _) = open(&mut disk).unwrap();
    assert_eq!(all(&mut store), records[..6]);
}

#[test]
fn torn_rewrite_of_a_shared_block_after_mid_block_truncation_keeps_the_prefix() {
    let mut base = formatted(512);
    let records: Vec<Record> = (1..=10).map(|i| rec(i, 1, 40, 0)).collect();
    {
        let (mut store, _) = open(&mut base).unwrap();
        append_synced(&mut store, &records);
        store.truncate_from(6).unwrap();
    }
    let replacement = rec(6, 2, 500, 1);
    for keep in 0..=1536 {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.device_mut().tear_next_write(keep);
            assert!(store.append(std::slice::from_ref(&replacement)).is_err());
        }
        disk.crash(CrashMode::LoseUnflushed);
        let (mut store, _) = open(&mut disk).expect("recovers");
        let got = all(&mut store);
        assert_eq!(got[..5], records[..5], "keep={keep}");
        assert!(
            got.len() == 5 || got[5..] == [replacement.clone()],
            "keep={keep}"
        );
    }
}

#[test]
fn torn_hard_state_write_keeps_the_old_value() {
    let old = HardState {
        term: 4,
        vote: 2,
        commit: 3,
    };
    let new = HardState {
        term: 5,
        vote: 3,
        commit: 9,
    };
    let mut base = formatted(256);
    {
        let (mut store, _) = open(&mut base).unwrap();
        store.set_hard_state(old).unwrap();
        store.sync().unwrap();
    }
    for keep in 0..=512 {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.device_mut().tear_next_write(keep);
            assert!(store.set_hard_state(new).is_err());
        }
        disk.crash(CrashMode::LoseUnflushed);
        let (_, report) = open(&mut disk).expect("a valid slot remains");
        // The slot body and checksum end at byte 104: a shorter prefix is a
        // torn slot, a longer one is the complete new value.
        let want = if keep >= 104 { new } else { old };
        assert_eq!(report.hard_state, want, "keep={keep}");
    }
    // A torn update that follows an unsynced one must not touch the slot
    // holding the durable value either.
    let mid = HardState {
        term: 4,
        vote: 2,
        commit: 4,
    };
    for keep in [0, 1, 40, 91] {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.set_hard_state(mid).unwrap();
            store.sync().unwrap();
            store.set_hard_state(new).unwrap();
            store.device_mut().tear_next_write(keep);
            assert!(store.set_hard_state(HardState { term: 6, ..new }).is_err());
        }
        disk.crash(CrashMode::LoseUnflushed);
        let (_, report) = open(&mut disk).expect("a valid slot remains");
        assert_eq!(report.hard_state, mid, "keep={keep}");
    }
    // Several unsynced updates then a crash keep the durable value or one
    // of the updates, never anything else.
    let updates: Vec<HardState> = (6..10)
        .map(|t| HardState {
            term: t,
            vote: 0,
            commit: t,
        })
        .collect();
    for seed in 0..50 {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            for u in &updates {
                store.set_hard_state(*u).unwrap();
            }
        }
        disk.crash(CrashMode::KeepRandomSubset { seed });
        let (_, report) = open(&mut disk).unwrap();
        assert!(
            report.hard_state == old || updates.contains(&report.hard_state),
            "seed {seed}: {}",
            report.hard_state
        );
    }
}

#[test]
fn stale_records_from_an_earlier_format_are_ignored() {
    let (mut disk, _) = ten_records();
    {
        let (mut store, _) = continuum_storage::Store::format(&mut disk, ID).unwrap();
        append_synced(&mut store, &recs(1, 2, 8));
    }
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!(all(&mut store), recs(1, 2, 8));
    assert_eq!(report.format_epoch, 2);
}

#[test]
fn power_loss_at_any_write_of_format_leaves_a_blank_or_valid_disk() {
    // Format issues 4 writes (two slots, two superblock copies).
    for skip in 0..4 {
        for keep in [0usize, 1, 60, 100, 511, 512] {
            let mut disk = MemDisk::new(256);
            disk.tear_write(skip, keep);
            assert!(continuum_storage::Store::format(&mut disk, ID).is_err());
            disk.crash(CrashMode::LoseUnflushed);
            let (mut store, _) =
                open(&mut disk).unwrap_or_else(|e| panic!("skip {skip} keep {keep}: {e}"));
            append_synced(&mut store, &recs(1, 3, 1));
            drop(store);
            let (mut store, _) = open(&mut disk).unwrap();
            assert_eq!(all(&mut store), recs(1, 3, 1), "skip {skip} keep {keep}");
        }
    }
}

#[test]
fn power_loss_during_truncate_or_open_keeps_a_consistent_log() {
    let (base, expected) = ten_records();
    // truncate_from: flush, slot write (torn here), flush.
    for keep in [0usize, 50, 103, 104, 512] {
        let mut disk = base.clone();
        {
            let (mut store, _) = open(&mut disk).unwrap();
            store.device_mut().tear_next_write(keep);
            assert!(store.truncate_from(4).is_err());
        }
        disk.crash(CrashMode::LoseUnflushed);
        let (mut store, _) = open(&mut disk).unwrap();
        let got = all(&mut store);
        // Either the truncation took (complete slot) or it did not.
        let want = if keep >= 104 { 3 } else { 10 };
        assert_eq!(got, expected[..want], "keep {keep}");
    }
    // open's generation bump torn: the next open still recovers it all.
    for keep in [0usize, 30, 103, 104] {
        let mut disk = base.clone();
        disk.tear_next_write(keep);
        assert!(open(&mut disk).is_err());
        disk.crash(CrashMode::LoseUnflushed);
        let (mut store, _) = open(&mut disk).unwrap();
        assert_eq!(all(&mut store), expected, "keep {keep}");
    }
}
