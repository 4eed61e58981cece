//! `DiskLog` persistence under power cuts inside `persist` (issue 13,
//! bugs 1 and 4): the commit index on disk never exceeds the log, a
//! corrupt acknowledged record is told from a torn tail, and chain hashes
//! are recomputed on read-back.

use continuum_node::DiskLog;
use continuum_raft::{
    compute_chain_hash, Entry, EntryKind, HardState, LogChainHash, Ready, Storage,
    GENESIS_CHAIN_HASH,
};
use continuum_storage::{CrashMode, Identity, MemDisk, OpenError, Record, Store, StoreError};

fn identity() -> Identity {
    Identity {
        cluster_id: 13,
        node_id: 1,
    }
}

fn entries(from: u64, prev: LogChainHash, n: u64) -> Vec<Entry> {
    let mut prev = prev;
    (from..from + n)
        .map(|index| {
            let data = vec![index as u8; 40];
            let chain_hash = compute_chain_hash(&prev, index, 1, EntryKind::Normal, &data);
            prev = chain_hash;
            Entry {
                index,
                term: 1,
                kind: EntryKind::Normal,
                data,
                chain_hash,
            }
        })
        .collect()
}

fn ready(commit: u64, entries: Vec<Entry>) -> Ready {
    ready_in(1, commit, entries)
}

fn ready_in(term: u64, commit: u64, entries: Vec<Entry>) -> Ready {
    Ready {
        hard_state: Some(HardState {
            term,
            vote: 1,
            commit,
        }),
        entries,
        ..Ready::default()
    }
}

fn fresh_log() -> DiskLog<MemDisk> {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    DiskLog::new(store, vec![1, 2, 3]).expect("empty log")
}

/// Bug 1: a follower's Ready carries entries and a commit covering them
/// (and a new term, so the slot is written: a commit-only change writes
/// none). The device may make the slot durable and lose the WAL batch; the
/// disk must then still hold a commit index within its log (before the fix
/// it held commit 3 over an empty log, and `Raft::new` panicked on every
/// boot).
#[test]
fn a_power_cut_inside_persist_never_leaves_a_commit_beyond_the_log() {
    let mut slot_without_wal = 0;
    for seed in 0..64 {
        // Operations inside that persist: WAL write, slot write, flush.
        for cut_at in 0..3 {
            let mut log = fresh_log();
            log.persist(&ready(0, entries(1, GENESIS_CHAIN_HASH, 2)))
                .expect("first batch");
            let prev = log.chain_hash(2).expect("entry 2");
            log.device_mut().cut_power_after(cut_at, 0);
            assert!(log.persist(&ready_in(2, 5, entries(3, prev, 3))).is_err());
            let mut disk = log.into_store().into_device();
            disk.crash(CrashMode::KeepRandomSubset { seed });
            let (store, report) = Store::open(&mut disk, identity()).expect("recovers");
            if store.last_index() == 2 && (report.hard_state.commit == 2) {
                slot_without_wal += 1;
            }
            assert_eq!(
                report.commit_clamped, None,
                "seed {seed}, cut at {cut_at}: the slot held a commit beyond the log\n{report}"
            );
            assert!(store.hard_state().commit <= store.last_index());
        }
    }
    assert!(
        slot_without_wal > 0,
        "no run lost the batch behind the slot"
    );
}

/// Bug 4: a flushed, acknowledged last record that later reads back
/// corrupt must stop the node (it may hold an entry a quorum counted),
/// not be dropped as a torn tail. The node closes the witness window of a
/// quiet log's last batch (`close_witness`, off the commit path), so a
/// flushed slot witnesses the record.
#[test]
fn a_corrupt_acknowledged_last_record_is_refused_not_dropped_as_a_torn_tail() {
    let mut log = fresh_log();
    log.persist(&ready(0, entries(1, GENESIS_CHAIN_HASH, 3)))
        .expect("entries, flushed: acknowledged now");
    log.persist(&ready(3, vec![])).expect("commit only");
    assert!(log.close_witness().expect("witness"));
    let store = log.into_store();
    let at = store.wal_device_offset() + store.record_extent(3).expect("3").offset + 100;
    let mut disk = store.into_device();
    disk.crash(CrashMode::LoseUnflushed);
    disk.flip_bit(at as usize, 2);
    match Store::open(&mut disk, identity()) {
        Err(OpenError::CorruptRecord { index: 3, .. }) => {}
        Err(e) => panic!("unexpected refusal: {e}"),
        Ok((_, report)) => panic!("corrupt acknowledged record dropped as a tail:\n{report}"),
    }
}

/// The other side of bug 4: a batch torn by a power cut during its flush
/// was never acknowledged and is still dropped as a tail.
#[test]
fn a_torn_unacknowledged_batch_is_still_dropped() {
    let mut log = fresh_log();
    log.persist(&ready(0, entries(1, GENESIS_CHAIN_HASH, 2)))
        .expect("first batch");
    log.persist(&ready(2, vec![])).expect("commit");
    let prev = log.chain_hash(2).expect("2");
    let mut disk = log.into_store().into_device();
    let (store, _) = Store::open(&mut disk, identity()).expect("reopen");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    // The WAL write is torn after 100 bytes, inside record 3 (power lost during it).
    log.device_mut().cut_power_after(0, 100);
    assert!(log.persist(&ready(2, entries(3, prev, 4))).is_err());
    drop(log);
    disk.crash(CrashMode::LoseUnflushed);
    let (store, report) = Store::open(&mut disk, identity()).expect("a torn tail recovers");
    assert_eq!(store.last_index(), 2, "{report}");
}

/// A record whose checksum holds but whose chain hash is not the hash of
/// its contents on its predecessor is refused at open.
#[test]
fn a_record_with_a_wrong_chain_hash_is_refused_at_open() {
    let (mut store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut records = records_of(&entries(1, GENESIS_CHAIN_HASH, 3));
    records[1].payload[0] ^= 1;
    store.append(&records).expect("append");
    store.sync().expect("sync");
    match DiskLog::new(store, vec![1, 2, 3]) {
        Err(StoreError::CorruptRecord { index: 2, .. }) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a broken chain was accepted"),
    }
}

fn records_of(entries: &[Entry]) -> Vec<Record> {
    entries
        .iter()
        .map(|e| Record {
            index: e.index,
            term: e.term,
            kind: e.kind.byte(),
            chain_hash: e.chain_hash,
            payload: e.data.clone(),
        })
        .collect()
}

/// Open takes the stored chain hashes of entries the recovered clean mark
/// vouches for, but still re-hashes every record after it: that is where
/// a power cut can leave a stale record (a lost rewrite followed by a
/// surviving later write).
#[test]
fn a_broken_chain_after_the_clean_mark_is_still_refused_at_open() {
    let (mut store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let good = entries(1, GENESIS_CHAIN_HASH, 6);
    let mut records = records_of(&good);
    store.append(&records[..3]).expect("append");
    // Records 4.. say entries up to 3 were applied here.
    store.set_mark(3);
    records[4].payload[0] ^= 1;
    store.append(&records[3..]).expect("append");
    store.sync().expect("sync");
    let (store, _) = Store::open(store.into_device(), identity()).expect("reopen");
    assert_eq!(store.recovered_mark(), Some(3));
    match DiskLog::new(store, vec![1, 2, 3]) {
        Err(StoreError::CorruptRecord { index: 5, .. }) => {}
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a broken chain after the mark was accepted"),
    }
}

/// The same log intact opens, with the mark recovered and every entry's
/// chain hash in the table (reads that miss the cache check against it).
#[test]
fn a_log_with_a_clean_mark_opens_and_reads_back_every_entry() {
    let (mut store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let good = entries(1, GENESIS_CHAIN_HASH, 6);
    let records = records_of(&good);
    store.append(&records[..3]).expect("append");
    store.set_mark(3);
    store.append(&records[3..]).expect("append");
    store.sync().expect("sync");
    let (store, _) = Store::open(store.into_device(), identity()).expect("reopen");
    let log = DiskLog::new(store, vec![1, 2, 3]).expect("open");
    assert_eq!(log.recovered_clean_mark(), Some(3));
    let read = log.entries(1, 7, u64::MAX as usize).expect("entries");
    assert_eq!(read, good);
}
