//! Property test: random sequences of append / sync / truncate /
//! hard-state updates / snapshots with compaction (the WAL wraps) /
//! crashes / clean reopens against a model of what must survive.
//!
//! Model: `log` is the log as the store last reported it; `required` is
//! how long a prefix of it is durable (everything up to the last `sync`,
//! cut by any later durable truncation); `hard_states` are the values a
//! crash may leave (the last synced one and every one set since). After a
//! crash, recovery must give `log[c..m]` for some `required <= m`, where
//! `c` is the snapshot index (the durable one, or one being written when
//! the power failed), and a hard state from `hard_states`.
//!
//! `CONTINUUM_STORAGE_CASES` sets the number of cases (default 48).

mod common;

use common::*;
use continuum_storage::{CrashMode, HardState, MemDisk, Record, SnapshotMeta, StoreError};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Append `sizes.len()` records; `new_term` starts a new term.
    Append {
        sizes: Vec<usize>,
        new_term: bool,
    },
    Sync,
    /// Truncate the last `back` entries (clamped).
    Truncate {
        back: u64,
    },
    SetHardState {
        vote: Option<u64>,
        commit: u64,
    },
    Crash {
        seed: Option<u64>,
    },
    /// A truncation during which power fails (as in `TornReady`).
    TornTruncate {
        back: u64,
        skip: u64,
        keep: usize,
        seed: Option<u64>,
    },
    /// A Ready (append, hard state, sync) during which power fails: the
    /// `skip`-th write from now persists only `keep` bytes, then crash.
    TornReady {
        sizes: Vec<usize>,
        skip: u64,
        keep: usize,
        seed: Option<u64>,
    },
    Reopen,
    /// Snapshot at `ahead` entries past the current snapshot (clamped to
    /// the log) and compact to it; with `torn`, the `skip`-th write from
    /// now persists `keep` bytes, then crash.
    Compact {
        ahead: u64,
        torn: Option<(u64, usize, Option<u64>)>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::collection::vec(0usize..700, 1..12), any::<bool>())
            .prop_map(|(sizes, new_term)| Op::Append { sizes, new_term }),
        3 => Just(Op::Sync),
        1 => (0u64..8).prop_map(|back| Op::Truncate { back }),
        2 => (prop::option::of(1u64..5), 0u64..50)
            .prop_map(|(vote, commit)| Op::SetHardState { vote, commit }),
        1 => prop::option::of(any::<u64>()).prop_map(|seed| Op::Crash { seed }),
        1 => Just(Op::Reopen),
        1 => (prop::collection::vec(0usize..700, 1..12), 0u64..4, 0usize..1600, prop::option::of(any::<u64>()))
            .prop_map(|(sizes, skip, keep, seed)| Op::TornReady { sizes, skip, keep, seed }),
        1 => (0u64..8, 0u64..2, 0usize..600, prop::option::of(any::<u64>()))
            .prop_map(|(back, skip, keep, seed)| Op::TornTruncate { back, skip, keep, seed }),
        2 => (1u64..40, prop::option::of((0u64..4, 0usize..1600, prop::option::of(any::<u64>()))))
            .prop_map(|(ahead, torn)| Op::Compact { ahead, torn }),
    ]
}

struct Model {
    log: Vec<Record>,
    required: usize,
    synced_hs: HardState,
    hard_states: Vec<HardState>,
    term: u64,
    salt: u8,
    /// Durable snapshot index (the store's log starts after it).
    compacted: usize,
    /// A snapshot index a crash may also leave (a write was cut).
    compacting: Option<usize>,
}

fn snapshot_meta(m: &Model, at: usize) -> (SnapshotMeta, Vec<u8>) {
    let r = &m.log[at - 1];
    let data: Vec<u8> = (0..at * 7 % 900).map(|i| i as u8 ^ r.term as u8).collect();
    let meta = SnapshotMeta::for_data(
        r.index,
        r.term,
        r.chain_hash,
        vec![1, 2, 3],
        vec![m.salt],
        &data,
    );
    (meta, data)
}

fn cases() -> u32 {
    std::env::var("CONTINUUM_STORAGE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48)
}

fn run(ops: Vec<Op>) {
    let mut disk = formatted(600);
    let mut m = Model {
        log: Vec::new(),
        required: 0,
        synced_hs: HardState::default(),
        hard_states: vec![HardState::default()],
        term: 1,
        salt: 0,
        compacted: 0,
        compacting: None,
    };
    let (store, _) = open(&mut disk).unwrap();
    let mut store = Some(store);
    for op in ops {
        let s = store.as_mut().unwrap();
        match op {
            Op::Append { sizes, new_term } => {
                if new_term {
                    m.term += 1;
                }
                m.salt = m.salt.wrapping_add(1);
                let first = m.log.len() as u64 + 1;
                let batch: Vec<Record> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| rec(first + i as u64, m.term, len, m.salt))
                    .collect();
                match s.append(&batch) {
                    Ok(()) => m.log.extend(batch),
                    Err(StoreError::WalFull { .. }) => {}
                    Err(e) => panic!("append: {e}"),
                }
            }
            Op::Sync => {
                s.sync().unwrap();
                m.required = m.log.len();
                m.synced_hs = s.hard_state();
                m.hard_states = vec![m.synced_hs];
            }
            Op::Truncate { back } => {
                let from = (m.log.len() as u64 + 1)
                    .saturating_sub(back)
                    .max(m.compacted as u64 + 1);
                s.truncate_from(from).unwrap();
                m.log.truncate(from as usize - 1);
                // truncate_from flushes everything first.
                m.required = m.log.len();
                m.synced_hs = s.hard_state();
                m.hard_states = vec![m.synced_hs];
            }
            Op::SetHardState { vote, commit } => {
                let hs = HardState {
                    term: m.term,
                    vote: vote.unwrap_or(continuum_raft::NO_NODE),
                    commit,
                };
                s.set_hard_state(hs).unwrap();
                m.hard_states.push(hs);
            }
            Op::Crash { seed } => {
                drop(store.take());
                disk.crash(match seed {
                    None => CrashMode::LoseUnflushed,
                    Some(seed) => CrashMode::KeepRandomSubset { seed },
                });
                store = Some(recover(&mut disk, &mut m));
            }
            Op::TornReady {
                sizes,
                skip,
                keep,
                seed,
            } => {
                m.salt = m.salt.wrapping_add(1);
                let first = m.log.len() as u64 + 1;
                let batch: Vec<Record> = sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| rec(first + i as u64, m.term, len, m.salt))
                    .collect();
                let hs = HardState {
                    term: m.term,
                    vote: 9,
                    commit: first,
                };
                s.device_mut().tear_write(skip, keep);
                // Whatever fails, the attempted records and hard state may
                // or may not be on disk: the model allows both.
                let appended = !matches!(s.append(&batch), Err(StoreError::WalFull { .. }));
                if appended {
                    m.log.extend(batch);
                }
                let _ = s.set_hard_state(hs);
                m.hard_states.push(hs);
                if s.sync().is_ok() {
                    m.required = m.log.len();
                    m.hard_states = vec![hs];
                }
                drop(store.take());
                disk.crash(match seed {
                    None => CrashMode::LoseUnflushed,
                    Some(seed) => CrashMode::KeepRandomSubset { seed },
                });
                store = Some(recover(&mut disk, &mut m));
            }
            Op::TornTruncate {
                back,
                skip,
                keep,
                seed,
            } => {
                let from = (m.log.len() as u64 + 1)
                    .saturating_sub(back)
                    .max(m.compacted as u64 + 1);
                s.device_mut().tear_write(skip, keep);
                if s.truncate_from(from).is_ok() {
                    m.log.truncate(from as usize - 1);
                    m.required = m.log.len();
                    m.hard_states = vec![s.hard_state()];
                } else {
                    // Taken or not: a prefix of the old log, at least up
                    // to the cut (truncate flushed what came before).
                    m.required = from as usize - 1;
                }
                drop(store.take());
                disk.crash(match seed {
                    None => CrashMode::LoseUnflushed,
                    Some(seed) => CrashMode::KeepRandomSubset { seed },
                });
                store = Some(recover(&mut disk, &mut m));
            }
            Op::Reopen => {
                drop(store.take());
                store = Some(recover(&mut disk, &mut m));
            }
            Op::Compact { ahead, torn } => {
                let at = (m.compacted + ahead as usize).min(m.log.len());
                if at <= m.compacted {
                    continue;
                }
                let (meta, data) = snapshot_meta(&m, at);
                if let Some((skip, keep, _)) = torn {
                    s.device_mut().tear_write(skip, keep);
                }
                let done = s
                    .write_snapshot(&meta, &data)
                    .and_then(|()| s.compact_to(at as u64));
                match (done, torn) {
                    (Ok(()), _) => {
                        // Both flush everything written before them.
                        m.compacted = at;
                        m.required = m.log.len();
                        m.hard_states = vec![s.hard_state()];
                    }
                    (Err(_), Some(_)) => m.compacting = Some(at),
                    (Err(e), None) => panic!("snapshot at {at}: {e}"),
                }
                if let Some((_, _, seed)) = torn {
                    drop(store.take());
                    disk.crash(match seed {
                        None => CrashMode::LoseUnflushed,
                        Some(seed) => CrashMode::KeepRandomSubset { seed },
                    });
                    store = Some(recover(&mut disk, &mut m));
                }
            }
        }
    }
    // Whatever happened, a final crash still recovers the durable prefix.
    drop(store.take());
    disk.crash(CrashMode::LoseUnflushed);
    drop(recover(&mut disk, &mut m));
}

/// Reopen and check the recovered state against the model; the recovered
/// state becomes the model's (it is now durable).
fn recover<'a>(disk: &'a mut MemDisk, m: &mut Model) -> MemStore<'a> {
    let (mut s, report) = open(disk).unwrap_or_else(|e| panic!("recovery refused: {e}"));
    let got = all(&mut s);
    let base = s.snapshot_index() as usize;
    assert!(
        base == m.compacted || Some(base) == m.compacting,
        "snapshot at {base}, expected {} or {:?}",
        m.compacted,
        m.compacting
    );
    // The log starts right after the snapshot, or earlier when the
    // compaction after it was interrupted: it then still holds the
    // snapshot's entry, a consistent pair that the next compaction trims.
    let start = s.first_index() as usize - 1;
    assert!(
        start == base || (start < base && base - start <= got.len()),
        "log starts at {} with {} entries, snapshot at {base}",
        start + 1,
        got.len()
    );
    let end = start + got.len();
    assert!(
        end >= m.required && end <= m.log.len(),
        "recovered up to {end}, required {}, had {}: {report}",
        m.required,
        m.log.len()
    );
    assert_eq!(got[..], m.log[start..end], "recovered log is a prefix");
    if base > 0 {
        let (meta, data) = s.read_snapshot().unwrap().expect("a snapshot");
        assert_eq!((meta.index, meta.term), (base as u64, m.log[base - 1].term));
        assert_eq!(meta.data_len, data.len() as u64);
    }
    m.compacted = base;
    m.compacting = None;
    assert!(
        m.hard_states.contains(&report.hard_state),
        "hard state {} not among {:?}",
        report.hard_state,
        m.hard_states
    );
    m.log.truncate(end);
    m.required = m.log.len();
    m.synced_hs = report.hard_state;
    m.hard_states = vec![m.synced_hs];
    m.term = m.term.max(m.log.last().map_or(1, |r| r.term));
    s
}

/// Byte offset of the WAL region in the fuzzed image.
fn wal_start() -> usize {
    let geometry =
        continuum_storage::layout::Geometry::for_capacity(continuum_storage::testing::IMAGE_BLOCKS)
            .expect("the fuzz image is large enough");
    geometry.wal_lba as usize * 512
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_histories_recover_a_durable_prefix(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }

    /// Decoders are total: any bytes anywhere in the WAL, slots or
    /// superblocks give `Ok` or `Err`, never a panic, and an `Ok` store
    /// serves every entry it reports. Same body as the fuzz target.
    #[test]
    fn arbitrary_damage_never_panics(damage in prop::collection::vec(any::<u8>(), 0..300)) {
        continuum_storage::testing::open_damaged_image(&damage);
    }

    /// Damage aimed at the WAL region specifically (random pokes rarely
    /// land in a record otherwise).
    #[test]
    fn damage_inside_the_log_never_panics(
        at in wal_start()..wal_start() + 8 * 512,
        bytes in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut damage = vec![at as u8, (at >> 8) as u8, (at >> 16) as u8, bytes.len() as u8];
        damage.extend(bytes);
        continuum_storage::testing::open_damaged_image(&damage);
    }
}
