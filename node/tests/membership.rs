//! Membership changes in the node (issue 16): the configuration in the
//! durable log and its snapshots, operator-signed membership commands from
//! admission to apply, the membership table (ids, addresses, keys), learner
//! promotion, removal, and power cuts with a change in flight.

use continuum_node::DiskLog;
use continuum_raft::{
    compute_chain_hash, ChainHash, ConfChange, ConfChangeKind, ConfEntry, ConfState, Entry,
    EntryKind, HardState, Ready, Storage, GENESIS_CHAIN_HASH,
};
use continuum_storage::{Identity, MemDisk, Store};

fn identity() -> Identity {
    Identity {
        cluster_id: 16,
        node_id: 1,
    }
}

/// Entries `from..from + n` of term 1 after `prev`; the ones at `conf`
/// indexes add learner 4 (index `conf[0]`), then promote it, ...
fn entries(from: u64, prev: ChainHash, n: u64, confs: &[(u64, ConfEntry)]) -> Vec<Entry> {
    let mut prev = prev;
    (from..from + n)
        .map(|index| {
            let (kind, data) = match confs.iter().find(|(at, _)| *at == index) {
                Some((_, conf)) => (EntryKind::ConfChange, conf.encode()),
                None => (EntryKind::Normal, vec![index as u8; 40]),
            };
            let chain_hash = compute_chain_hash(&prev, index, 1, kind, &data);
            prev = chain_hash;
            Entry {
                index,
                term: 1,
                kind,
                data,
                chain_hash,
            }
        })
        .collect()
}

fn ready(commit: u64, entries: Vec<Entry>) -> Ready {
    Ready {
        hard_state: Some(HardState {
            term: 1,
            vote: 1,
            commit,
        }),
        entries,
        ..Ready::default()
    }
}

fn add_learner_4() -> ConfEntry {
    ConfEntry {
        change: ConfChange {
            kind: ConfChangeKind::AddLearner,
            node: 4,
            context: vec![1, 2, 3],
        },
        conf_state: ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
        },
    }
}

fn promote_4() -> ConfEntry {
    ConfEntry {
        change: ConfChange {
            kind: ConfChangeKind::PromoteLearner,
            node: 4,
            context: Vec::new(),
        },
        conf_state: ConfState::with_voters(vec![1, 2, 3, 4]),
    }
}

/// `compact` records the configuration in effect at the snapshot index
/// (not the boot voters, not a later change), and a reopened log hands it
/// to Raft with its index.
#[test]
fn a_snapshot_records_the_configuration_at_its_index_and_survives_reopen() {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    let confs = [(5, add_learner_4()), (9, promote_4())];
    log.persist(&ready(10, entries(1, GENESIS_CHAIN_HASH, 10, &confs)))
        .expect("persist");
    assert_eq!(log.conf_at(4), (ConfState::with_voters(vec![1, 2, 3]), 0));
    assert_eq!(log.conf_at(8), (add_learner_4().conf_state, 5));
    log.compact(8, 2, b"state at 8".to_vec(), vec![7; 32])
        .expect("compact");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (add_learner_4().conf_state, 5)
    );
    // The change after the snapshot is still tracked for the next one.
    assert_eq!(log.conf_at(10), (promote_4().conf_state, 9));
    let mut disk = log.into_store().into_device();
    let (store, _) = Store::open(&mut disk, identity()).expect("reopen");
    let log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (add_learner_4().conf_state, 5)
    );
    assert_eq!(log.initial_state().1, add_learner_4().conf_state);
    assert_eq!(log.conf_at(10), (promote_4().conf_state, 9));
    // A second snapshot past the promotion records it, though the entry
    // that set the first one is released by now.
    let mut log = log;
    log.compact(10, 0, b"state at 10".to_vec(), vec![7; 32])
        .expect("compact");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (promote_4().conf_state, 9)
    );
}

/// A configuration entry truncated away (a deposed leader's uncommitted
/// change) no longer counts: the snapshot falls back to the boot one.
#[test]
fn a_truncated_change_is_not_recorded_in_a_snapshot() {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    log.persist(&ready(
        4,
        entries(1, GENESIS_CHAIN_HASH, 6, &[(5, add_learner_4())]),
    ))
    .expect("persist");
    let prev = log.chain_hash(4).expect("4");
    let mut replace = ready(6, entries(5, prev, 2, &[]));
    replace.truncate_from = Some(5);
    log.persist(&replace).expect("truncate and append");
    assert_eq!(log.conf_at(6), (ConfState::with_voters(vec![1, 2, 3]), 0));
    log.compact(6, 0, b"state".to_vec(), vec![])
        .expect("compact");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (ConfState::with_voters(vec![1, 2, 3]), 0)
    );
}

/// A joining node's log (no boot voters) starts with an empty
/// configuration, and takes the configuration of the snapshot it installs.
#[test]
fn a_joining_log_starts_empty_and_takes_an_installed_snapshots_configuration() {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, Vec::new()).expect("log");
    assert_eq!(log.initial_state().1, ConfState::default());
    let metadata = continuum_raft::SnapshotMetadata {
        index: 20,
        term: 1,
        chain_hash: [3; 32],
        conf_state: add_learner_4().conf_state,
        conf_index: 12,
    };
    let snapshot = continuum_raft::Snapshot::new(metadata, b"leader state".to_vec());
    let install = Ready {
        snapshot: Some(snapshot),
        ..Ready::default()
    };
    log.persist(&install).expect("install");
    assert_eq!(log.conf_at(20), (add_learner_4().conf_state, 12));
    let mut disk = log.into_store().into_device();
    let (store, _) = Store::open(&mut disk, identity()).expect("reopen");
    let log = DiskLog::new(store, Vec::new()).expect("log");
    assert_eq!(log.initial_state().1, add_learner_4().conf_state);
    assert_eq!(log.snapshot().expect("snapshot").metadata.conf_index, 12);
}
