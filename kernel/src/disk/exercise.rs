//! `mode = wal-exercise`: drive the log the way Raft will, forever, so the
//! host tests can kill the VM at any instant and check what survived.
//!
//! Each round appends one batch (1..=[`MAX_BATCH`] entries) and syncs it,
//! and only then prints `wal: acked through index N term T`: the console
//! line is the acknowledgement, exactly like a Raft reply released after
//! the flush. Every [`HARD_STATE_EVERY`] rounds the term goes up and the
//! node "votes" ([`vote_for`]), printed as `wal: hard state term T vote V`
//! after the sync. Every [`TRUNCATE_EVERY`] rounds the last
//! [`TRUNCATE_DEPTH`] entries are truncated (Raft §5.3: a new leader
//! overwrites an uncommitted suffix), announced *before* the truncation as
//! `wal: truncating from index K`; from then on only K-1 plus later acks
//! are promised.
//!
//! Payloads and chain values are a pure function of (index, term)
//! ([`payload`]), so after recovery the task re-reads the newest
//! [`VERIFY_TAIL`] entries and refuses to go on if any differs from what
//! was written: `wal: verified N entries up to index L`.

use super::DiskStore;
use crate::executor;
use alloc::vec::Vec;
use continuum_storage::{HardState, Record, StoreError};
use core::time::Duration;

/// Largest batch; batch sizes cycle through 1..=MAX_BATCH.
pub const MAX_BATCH: u64 = 24;
/// Rounds between hard-state changes (new term, new vote).
pub const HARD_STATE_EVERY: u64 = 5;
/// Rounds between suffix truncations.
pub const TRUNCATE_EVERY: u64 = 37;
/// Entries each truncation removes.
pub const TRUNCATE_DEPTH: u64 = 3;
/// Entries re-read and checked after recovery.
pub const VERIFY_TAIL: u64 = 512;
/// Pause between rounds, so other tasks (heartbeat, console) get the CPU.
const PAUSE: Duration = Duration::from_millis(1);

/// The vote cast in `term` (any deterministic choice; the test recomputes it).
pub fn vote_for(term: u64) -> u64 {
    term % 5 + 1
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Deterministic payload of entry (index, term): 16..=112 bytes.
pub fn payload(index: u64, term: u64) -> Vec<u8> {
    let len = 16 + (mix(index) % 97) as usize;
    (0..len as u64)
        .map(|i| mix(index ^ (term << 40) ^ (i << 20)) as u8)
        .collect()
}

fn chain_hash(index: u64, term: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (i, chunk) in h.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(index.rotate_left(17) ^ term ^ i as u64).to_le_bytes());
    }
    h
}

fn record(index: u64, term: u64) -> Record {
    Record {
        index,
        term,
        kind: 0,
        chain_hash: chain_hash(index, term),
        payload: payload(index, term),
    }
}

fn fail(what: &str, error: StoreError) -> ! {
    crate::halt_with(format_args!("wal: {what} failed: {error}"))
}

/// Re-reads the newest entries and checks them against [`payload`].
fn verify(store: &mut DiskStore) {
    let last = store.last_index();
    let lo = last
        .saturating_sub(VERIFY_TAIL - 1)
        .max(store.first_index());
    if last < lo {
        log::info!("wal: verified 0 entries (empty log)");
        return;
    }
    let mut next = lo;
    while next <= last {
        let batch = store
            .entries(next, last + 1, 64 * 1024)
            .unwrap_or_else(|e| fail("reading back the log", e));
        for r in &batch {
            if r.index != next || *r != record(r.index, r.term) {
                super::refuse(format_args!(
                    "wal-exercise: entry {next} read back differs from what was written"
                ));
            }
            next += 1;
        }
    }
    log::info!("wal: verified {} entries up to index {last}", last + 1 - lo);
}

/// Runs the exercise until the WAL is full.
pub async fn run(mut store: DiskStore) {
    verify(&mut store);
    let last = store.last_index();
    let last_term = if last >= store.first_index() {
        store.term(last).unwrap_or_else(|e| fail("term lookup", e))
    } else {
        0
    };
    let mut hs = store.hard_state();
    let mut term = hs.term.max(last_term).max(1);
    let mut round = 0u64;
    loop {
        round += 1;
        let mut hs_changed = false;
        if round.is_multiple_of(TRUNCATE_EVERY) && store.last_index() > TRUNCATE_DEPTH {
            let from = store.last_index() - TRUNCATE_DEPTH + 1;
            log::info!("wal: truncating from index {from}");
            store
                .truncate_from(from)
                .unwrap_or_else(|e| fail("truncate", e));
        }
        if round == 1 || round.is_multiple_of(HARD_STATE_EVERY) {
            term += 1;
            hs = HardState {
                term,
                vote: vote_for(term),
                // Never ahead of what a later truncation could remove.
                commit: store
                    .last_index()
                    .saturating_sub(TRUNCATE_DEPTH)
                    .max(hs.commit),
            };
            store
                .set_hard_state(hs)
                .unwrap_or_else(|e| fail("hard state write", e));
            hs_changed = true;
        }
        let first = store.last_index() + 1;
        let n = 1 + round % MAX_BATCH;
        let records: Vec<Record> = (first..first + n).map(|i| record(i, term)).collect();
        match store.append(&records) {
            Ok(()) => {}
            Err(StoreError::WalFull { .. }) => {
                log::info!("wal: log full at index {}; exercise stops", first - 1);
                return;
            }
            Err(e) => fail("append", e),
        }
        store.sync().unwrap_or_else(|e| fail("sync", e));
        log::info!("wal: acked through index {} term {term}", first + n - 1);
        if hs_changed {
            log::info!("wal: hard state term {} vote {}", hs.term, hs.vote);
        }
        executor::sleep(PAUSE).await;
    }
}
