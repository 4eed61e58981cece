//! Format, reopen, identity checks, API contracts, group commit, full disk.

mod common;

use common::*;
use continuum_storage::{
    DeviceError, HardState, Identity, MemDisk, OpenError, OpenOptions, Store, StoreError,
    SuperblockDefect, Tail, INJECTED_READ_ERROR, MAX_PAYLOAD_BYTES,
};

#[test]
fn blank_disk_is_formatted_then_reopened_with_everything_synced() {
    let mut disk = MemDisk::new(1024);
    {
        let (mut store, report) = open(&mut disk).expect("blank disk opens");
        assert!(report.formatted);
        assert_eq!((report.records, report.last_index), (0, 0));
        assert_eq!(store.last_index(), 0);
        assert_eq!(store.first_index(), 1);
        assert_eq!(store.term(0), Ok(0));
        append_synced(&mut store, &recs(1, 5, 1));
        append_synced(&mut store, &recs(6, 9, 2));
        let hs = HardState {
            term: 2,
            vote: 3,
            commit: 7,
        };
        store.set_hard_state(hs).unwrap();
        store.sync().unwrap();
    }
    let (mut store, report) = open(&mut disk).expect("reopen");
    assert!(!report.formatted);
    assert_eq!(report.records, 9);
    assert_eq!(report.last_index, 9);
    assert_eq!(report.last_term, 2);
    assert_eq!(report.tail, Tail::Blank);
    assert_eq!(
        report.hard_state,
        HardState {
            term: 2,
            vote: 3,
            commit: 7
        }
    );
    let text = report.to_string();
    assert!(text.contains("9 records"), "{text}");
    assert!(text.contains("term 2 vote 3 commit 7"), "{text}");
    let mut expected = recs(1, 5, 1);
    expected.extend(recs(6, 9, 2));
    assert_eq!(all(&mut store), expected);
    assert_eq!(store.term(5), Ok(1));
    assert_eq!(store.term(6), Ok(2));
    assert!(matches!(store.term(10), Err(StoreError::OutOfRange { .. })));
}

#[test]
fn another_nodes_or_clusters_disk_is_refused() {
    let mut disk = formatted(256);
    let other_node = Identity { node_id: 2, ..ID };
    let other_cluster = Identity {
        cluster_id: 7,
        ..ID
    };
    let err = Store::open(&mut disk, other_node).err().expect("refused");
    assert_eq!(
        err,
        OpenError::WrongNode {
            expected: other_node,
            found: ID
        }
    );
    assert!(err.to_string().contains("another node"), "{err}");
    let err = Store::open(&mut disk, other_cluster)
        .err()
        .expect("refused");
    assert!(matches!(err, OpenError::WrongCluster { .. }), "{err}");
    assert!(err.to_string().contains("another cluster"), "{err}");
    // The refusal changed nothing: the owner still opens it.
    assert!(open(&mut disk).is_ok());
}

#[test]
fn unreadable_non_blank_disk_is_refused_not_formatted() {
    let mut disk = MemDisk::new(256);
    disk.poke(0, b"some other filesystem");
    disk.poke(512, b"more of it");
    let before = disk.durable_image().to_vec();
    let err = open(&mut disk).err().expect("refused");
    assert_eq!(
        err,
        OpenError::NoValidSuperblock([SuperblockDefect::BadMagic, SuperblockDefect::BadMagic])
    );
    assert_eq!(disk.durable_image(), &before[..], "nothing written");
}

#[test]
fn one_damaged_superblock_copy_is_repaired() {
    for copy in 0..2usize {
        let mut disk = formatted(256);
        {
            let (mut store, _) = open(&mut disk).unwrap();
            append_synced(&mut store, &recs(1, 3, 1));
        }
        disk.flip_bit(copy * 512 + 20, 3);
        let (mut store, report) = open(&mut disk).expect("one good copy suffices");
        assert_eq!(
            report.superblock_repaired,
            Some((copy, SuperblockDefect::BadChecksum))
        );
        assert_eq!(all(&mut store), recs(1, 3, 1));
        drop(store);
        let image = disk.durable_image();
        assert_eq!(image[..512], image[512..1024], "copies equal again");
        let (_, report) = open(&mut disk).unwrap();
        assert_eq!(report.superblock_repaired, None);
    }
}

#[test]
fn both_superblocks_destroyed_is_refused() {
    let mut disk = formatted(256);
    disk.flip_bit(20, 0);
    disk.flip_bit(512 + 40, 0);
    assert!(matches!(
        open(&mut disk),
        Err(OpenError::NoValidSuperblock(_))
    ));
}

#[test]
fn reformat_makes_the_old_log_invisible() {
    let mut disk = formatted(512);
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_synced(&mut store, &recs(1, 20, 1));
    }
    let (mut store, report) = Store::format(&mut disk, ID).unwrap();
    assert_eq!(report.format_epoch, 2);
    assert_eq!(report.records, 0);
    assert_eq!(store.last_index(), 0);
    append_synced(&mut store, &recs(1, 2, 5));
    drop(store);
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(all(&mut store), recs(1, 2, 5));
}

#[test]
fn device_without_flush_is_refused_unless_explicitly_allowed() {
    let mut disk = MemDisk::new(256);
    disk.set_flush_supported(false);
    let err = open(&mut disk).err().unwrap();
    assert_eq!(err, OpenError::NoFlushSupport);
    assert!(err.to_string().contains("unsafe-no-flush"));
    let options = OpenOptions {
        unsafe_no_flush: true,
        ..OpenOptions::default()
    };
    let (mut store, _) = Store::open_with(&mut disk, ID, options).expect("allowed");
    append_synced(&mut store, &recs(1, 3, 1));
    assert_eq!(all(&mut store).len(), 3);
}

#[test]
fn tiny_device_is_refused() {
    let mut disk = MemDisk::new(10);
    assert_eq!(
        open(&mut disk).err(),
        Some(OpenError::TooSmall { blocks: 10 })
    );
}

#[test]
fn group_commit_is_one_write_and_one_flush() {
    let mut disk = formatted(4096);
    let (mut store, _) = open(&mut disk).unwrap();
    let (w0, f0) = (store.device().writes, store.device().flushes);
    store.append(&recs(1, 256, 1)).unwrap();
    store.sync().unwrap();
    assert_eq!(store.device().writes - w0, 1, "one write for 256 records");
    assert_eq!(store.device().flushes - f0, 1, "one flush");
    // A sync with nothing new to flush does no I/O.
    store.sync().unwrap();
    assert_eq!(store.device().flushes - f0, 1);
    assert_eq!(store.last_index(), 256);
}

#[test]
fn append_contract_violations_are_errors() {
    let mut disk = formatted(256);
    let (mut store, _) = open(&mut disk).unwrap();
    append_synced(&mut store, &recs(1, 3, 2));
    assert_eq!(
        store.append(&recs(5, 5, 2)),
        Err(StoreError::NotContiguous {
            expected: 4,
            found: 5
        })
    );
    assert_eq!(
        store.append(&recs(3, 3, 2)),
        Err(StoreError::NotContiguous {
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        store.append(&[rec(4, 1, 10, 0)]),
        Err(StoreError::TermRegression { index: 4 })
    );
    let big = rec(4, 2, MAX_PAYLOAD_BYTES + 1, 0);
    assert!(matches!(
        store.append(&[big]),
        Err(StoreError::PayloadTooLarge { index: 4, .. })
    ));
    assert!(matches!(
        store.truncate_from(0),
        Err(StoreError::OutOfRange { .. })
    ));
    // Nothing was written by the rejected calls.
    assert_eq!(all(&mut store), recs(1, 3, 2));
    store.truncate_from(4).unwrap(); // last + 1: no-op
    assert_eq!(store.last_index(), 3);
}

#[test]
fn entries_respects_max_bytes_but_returns_at_least_one() {
    let mut disk = formatted(1024);
    let (mut store, _) = open(&mut disk).unwrap();
    let records: Vec<_> = (1..=10).map(|i| rec(i, 1, 100, 0)).collect();
    append_synced(&mut store, &records);
    assert_eq!(store.entries(1, 11, 0).unwrap(), records[..1].to_vec());
    assert_eq!(store.entries(3, 11, 250).unwrap(), records[2..4].to_vec());
    assert_eq!(store.entries(4, 4, 0).unwrap(), vec![]);
    assert!(store.entries(9, 12, u64::MAX).is_err());
}

#[test]
fn full_disk_is_a_clear_error_and_the_log_stays_usable() {
    let mut disk = formatted(96);
    let mut appended = Vec::new();
    let (mut store, _) = open(&mut disk).unwrap();
    let err = loop {
        let r = rec(appended.len() as u64 + 1, 1, 200, 0);
        match store.append(std::slice::from_ref(&r)) {
            Ok(()) => {
                store.sync().unwrap();
                appended.push(r);
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, StoreError::WalFull { .. }), "{err}");
    assert!(err.to_string().contains("WAL full"), "{err}");
    assert!(appended.len() > 10);
    // Still usable: hard state, truncation, reads.
    store
        .set_hard_state(HardState {
            term: 1,
            vote: 0,
            commit: 3,
        })
        .unwrap();
    store.sync().unwrap();
    assert_eq!(all(&mut store), appended);
    drop(store);
    let (mut store, report) = open(&mut disk).unwrap();
    assert_eq!(report.records, appended.len() as u64);
    assert_eq!(all(&mut store), appended);
    // Truncating frees space again.
    store.truncate_from(5).unwrap();
    append_synced(&mut store, &[rec(5, 2, 200, 0)]);
}

#[test]
fn read_errors_are_reported_and_fail_the_store() {
    let mut disk = formatted(256);
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_synced(&mut store, &recs(1, 5, 1));
    }
    // Header blocks unreadable: open fails with the device error.
    disk.fail_reads(Some(0..2));
    assert_eq!(
        open(&mut disk).err(),
        Some(OpenError::Device(DeviceError::Io {
            code: INJECTED_READ_ERROR
        }))
    );
    // WAL unreadable (256 blocks: WAL starts at block 8 + 64).
    disk.fail_reads(Some(72..256));
    assert!(matches!(open(&mut disk), Err(OpenError::Device(_))));
    disk.fail_reads(None);
    let (mut store, _) = open(&mut disk).unwrap();
    store.device_mut().fail_reads(Some(72..256));
    let err = store.entries(1, 6, u64::MAX).unwrap_err();
    assert!(matches!(err, StoreError::Device(_)), "{err}");
    // A failed read says nothing about durability: once the device
    // recovers, the store works on.
    store.device_mut().fail_reads(None);
    assert_eq!(all(&mut store), recs(1, 5, 1));
    append_synced(&mut store, &recs(6, 6, 1));
}

#[test]
fn write_or_flush_errors_fail_the_store() {
    let mut disk = formatted(256);
    let (mut store, _) = open(&mut disk).unwrap();
    append_synced(&mut store, &recs(1, 2, 1));
    // Power fails during the next write: durability is unknown, so the
    // store refuses all further work until recovery.
    store.device_mut().tear_next_write(0);
    assert!(matches!(
        store.append(&recs(3, 3, 1)),
        Err(StoreError::Device(_))
    ));
    store
        .device_mut()
        .crash(continuum_storage::CrashMode::LoseUnflushed);
    assert_eq!(store.append(&recs(3, 3, 1)), Err(StoreError::Failed));
    assert_eq!(store.sync(), Err(StoreError::Failed));
    assert_eq!(
        store.set_hard_state(HardState::default()),
        Err(StoreError::Failed)
    );
    drop(store);
    let (mut store, _) = open(&mut disk).unwrap();
    assert_eq!(all(&mut store), recs(1, 2, 1));
}

#[test]
fn large_appends_are_split_into_bounded_batches_and_recover() {
    use continuum_storage::{CrashMode, MAX_BATCH_BYTES};
    let mut disk = formatted(32 * 1024); // 16 MiB
    let big: Vec<_> = (1..=12).map(|i| rec(i, 1, 200 * 1024, 3)).collect();
    let bytes: usize = big.iter().map(|r| r.encoded_len()).sum();
    {
        let (mut store, _) = open(&mut disk).unwrap();
        let w0 = store.device().writes;
        store.append(&big).unwrap();
        let writes = store.device().writes - w0;
        assert!(writes as usize >= bytes.div_ceil(MAX_BATCH_BYTES));
        // Over MAX_UNSYNCED_BYTES: the store synced part of it on its own.
        assert!(store.device().flushes > 0);
        store.sync().unwrap();
        assert_eq!(all(&mut store), big);
        // More, unsynced, then crash: the synced part survives.
        store.append(&[rec(13, 1, 1000, 0)]).unwrap();
    }
    disk.crash(CrashMode::KeepRandomSubset { seed: 3 });
    let (mut store, report) = open(&mut disk).unwrap();
    assert!(report.records >= 12, "{report}");
    assert_eq!(all(&mut store)[..12], big[..]);
}

#[test]
fn index_bound_and_shrunk_device_are_refused() {
    let mut disk = formatted(512);
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_synced(&mut store, &recs(1, 10, 1));
    }
    let small = OpenOptions {
        max_entries: 8,
        ..OpenOptions::default()
    };
    assert_eq!(
        Store::open_with(&mut disk, ID, small).err(),
        Some(OpenError::TooManyRecords { max_entries: 8 })
    );
    let roomy = OpenOptions {
        max_entries: 12,
        ..OpenOptions::default()
    };
    let (mut store, _) = Store::open_with(&mut disk, ID, roomy).unwrap();
    assert_eq!(
        store.append(&recs(11, 13, 1)),
        Err(StoreError::IndexFull { max_entries: 12 })
    );
    drop(store);

    let mut shrunk = MemDisk::new(256);
    shrunk.poke(0, &disk.durable_image()[..256 * 512]);
    assert_eq!(
        open(&mut shrunk).err(),
        Some(OpenError::DeviceShrunk {
            formatted_blocks: 512,
            device_blocks: 256
        })
    );
}

#[test]
fn a_used_disk_with_both_superblocks_gone_is_never_reformatted() {
    let mut disk = formatted(256);
    {
        let (mut store, _) = open(&mut disk).unwrap();
        append_synced(&mut store, &recs(1, 3, 1));
    }
    // Copy 0 damaged, copy 1 zeroed: looks like an interrupted format,
    // but the slots show the disk was opened (and may hold votes).
    disk.flip_bit(3, 1);
    disk.poke(512, &[0u8; 512]);
    assert!(matches!(
        open(&mut disk),
        Err(OpenError::NoValidSuperblock(_))
    ));
}

#[test]
fn the_newest_live_mark_survives_a_reopen() {
    let mut disk = MemDisk::new(1024);
    {
        let (mut store, _) = open(&mut disk).expect("blank disk opens");
        assert_eq!(store.recovered_mark(), None);
        append_synced(&mut store, &recs(1, 5, 1)); // no mark yet
        store.set_mark(3);
        append_synced(&mut store, &recs(6, 8, 1));
        store.set_mark(7);
        append_synced(&mut store, &recs(9, 9, 1));
    }
    let (store, _) = open(&mut disk).expect("reopen");
    assert_eq!(store.recovered_mark(), Some(7));
    drop(store);
    // A record that ends up out of the recovered log takes its mark
    // along: truncate past 8, reopen, the newest live mark is 3.
    {
        let (mut store, _) = open(&mut disk).expect("reopen");
        store.truncate_from(9).unwrap();
        store.sync().unwrap();
    }
    let (store, _) = open(&mut disk).expect("reopen");
    assert_eq!(store.recovered_mark(), Some(3));
}
