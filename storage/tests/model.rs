//! Property test: random sequences of append / sync / truncate /
//! hard-state updates / crashes / clean reopens against a model of what
//! must survive.
//!
//! Model: `log` is the log as the store last reported it; `required` is
//! how long a prefix of it is durable (everything up to the last `sync`,
//! cut by any later durable truncation); `hard_states` are the values a
//! crash may leave (the last synced one and every one set since). After a
//! crash, recovery must give `log[..m]` for some `required <= m`, and a
//! hard state from `hard_states`.
//!
//! `CONTINUUM_STORAGE_CASES` sets the number of cases (default 48).

mod common;

use common::*;
use continuum_storage::{CrashMode, HardState, MemDisk, Record, StoreError};
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
    ]
}

struct Model {
    log: Vec<Record>,
    required: usize,
    synced_hs: HardState,
    hard_states: Vec<HardState>,
    term: u64,
    salt: u8,
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
                let from = (m.log.len() as u64 + 1).saturating_sub(back).max(1);
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
                    vote,
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
                    vote: Some(9),
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
                let from = (m.log.len() as u64 + 1).saturating_sub(back).max(1);
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
    assert!(
        got.len() >= m.required && got.len() <= m.log.len(),
        "recovered {} entries, required {}, had {}: {report}",
        got.len(),
        m.required,
        m.log.len()
    );
    assert_eq!(got[..], m.log[..got.len()], "recovered log is a prefix");
    assert!(
        m.hard_states.contains(&report.hard_state),
        "hard state {} not among {:?}",
        report.hard_state,
        m.hard_states
    );
    m.log = got;
    m.required = m.log.len();
    m.synced_hs = report.hard_state;
    m.hard_states = vec![m.synced_hs];
    m.term = m.term.max(m.log.last().map_or(1, |r| r.term));
    s
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
        at in 72usize * 512..80 * 512,
        bytes in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let mut damage = vec![at as u8, (at >> 8) as u8, (at >> 16) as u8, bytes.len() as u8];
        damage.extend(bytes);
        continuum_storage::testing::open_damaged_image(&damage);
    }
}
