//! `mode = wal-bench`: group-commit throughput and flush latency.
//!
//! For each batch size in [`BATCH_SIZES`], rounds of one `append` of that
//! many [`PAYLOAD_BYTES`]-byte entries plus one `sync` run for
//! [`BUDGET_NS`] (at least [`MIN_ROUNDS`], at most [`MAX_ROUNDS`] and
//! [`MAX_ENTRIES`]).
//! Reported per size: rounds, entries, appends/s (entries over the summed
//! append+sync time), and p50/p99 of the `sync` alone (the device flush,
//! plus the hard-state-free bookkeeping) and of the whole round (the
//! latency a Raft acknowledgement would see). One line per size, prefixed
//! `wal-bench: batch` so the host tool can parse it; then QEMU exits.

use super::DiskStore;
use crate::arch::x86_64::debug_exit::{self, ExitCode};
use crate::time;
use alloc::vec::Vec;
use continuum_storage::Record;

/// Batch sizes measured, in entries per append+sync.
pub const BATCH_SIZES: [u64; 3] = [1, 16, 256];
/// Payload of each entry (about a bank transfer with its signature).
pub const PAYLOAD_BYTES: usize = 128;
/// Time spent per batch size.
const BUDGET_NS: u64 = 3_000_000_000;
/// Rounds per batch size, whatever the budget says.
const MIN_ROUNDS: usize = 20;
/// Bound on the latency samples kept per batch size.
const MAX_ROUNDS: usize = 4000;
/// Bound on entries written per batch size, so the WAL and the store's
/// in-memory index (24 bytes per entry) stay small: 200k entries is
/// ~44 MiB of WAL and ~4.6 MiB of heap.
const MAX_ENTRIES: u64 = 200_000;

fn percentile(sorted: &[u64], p: usize) -> u64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Runs every batch size, prints the table, exits QEMU (success).
pub fn run_and_exit(mut store: DiskStore) -> ! {
    log::info!(
        "wal-bench: {PAYLOAD_BYTES}-byte entries, {} s per batch size",
        BUDGET_NS / 1_000_000_000
    );
    let term = store.hard_state().term.max(1);
    for batch in BATCH_SIZES {
        let mut flush_ns = Vec::with_capacity(MAX_ROUNDS);
        let mut round_ns = Vec::with_capacity(MAX_ROUNDS);
        let started = time::monotonic_ns();
        let max_rounds = MAX_ROUNDS.min((MAX_ENTRIES / batch) as usize);
        while flush_ns.len() < max_rounds
            && (flush_ns.len() < MIN_ROUNDS || time::monotonic_ns() - started < BUDGET_NS)
        {
            let first = store.last_index() + 1;
            let records: Vec<Record> = (first..first + batch)
                .map(|index| Record {
                    index,
                    term,
                    kind: 0,
                    chain_hash: [index as u8; 32],
                    payload: alloc::vec![index as u8; PAYLOAD_BYTES],
                })
                .collect();
            let t0 = time::monotonic_ns();
            if let Err(e) = store.append(&records) {
                crate::halt_with(format_args!("wal-bench: append failed: {e}"));
            }
            let t1 = time::monotonic_ns();
            if let Err(e) = store.sync() {
                crate::halt_with(format_args!("wal-bench: sync failed: {e}"));
            }
            let t2 = time::monotonic_ns();
            flush_ns.push(t2 - t1);
            round_ns.push(t2 - t0);
        }
        let rounds = flush_ns.len();
        let entries = rounds as u64 * batch;
        let busy: u64 = round_ns.iter().sum();
        flush_ns.sort_unstable();
        round_ns.sort_unstable();
        log::info!(
            "wal-bench: batch {batch} rounds {rounds} entries {entries} appends_per_s {} \
             flush_p50_us {} flush_p99_us {} round_p50_us {} round_p99_us {}",
            entries * 1_000_000_000 / busy.max(1),
            percentile(&flush_ns, 50) / 1000,
            percentile(&flush_ns, 99) / 1000,
            percentile(&round_ns, 50) / 1000,
            percentile(&round_ns, 99) / 1000,
        );
    }
    log::info!("wal-bench: done");
    debug_exit::exit(ExitCode::Success)
}
