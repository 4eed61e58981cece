//! Cost of the clock operations, uncontended (one thread) and contended
//! (two threads on the same clock). Prints ns/op (median and best of
//! `ROUNDS` rounds; for the contended runs, wall time per operation of one
//! thread while the other thread runs the same loop).
//!
//! Run: `cargo bench -p continuum-clock` (set `CLOCK_BENCH_OPS` to change
//! the operations per thread per round, default 2 000 000).
//!
//! The physical clock is a fake that advances one millisecond every 1 000
//! reads (a plain per-thread counter), so the figures are the cost of the
//! clock logic and the atomics, not of reading a hardware clock.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use continuum_clock::{Hlc, HlcConfig, HlcTimestamp, LamportClock, PhysicalClock};

const ROUNDS: usize = 5;
const BASE_MILLIS: u64 = 1_700_000_000_000;

/// Per-thread fake wall clock: 1 ms per 1 000 reads.
struct FakeWallClock(Cell<u64>);

impl FakeWallClock {
    fn new() -> Self {
        Self(Cell::new(0))
    }
}

impl PhysicalClock for FakeWallClock {
    fn now_millis(&self) -> u64 {
        let reads = self.0.get();
        self.0.set(reads + 1);
        BASE_MILLIS + reads / 1_000
    }
}

struct Clocks {
    lamport: LamportClock,
    hlc: Hlc,
}

type Op = fn(&Clocks, &FakeWallClock, u64);

fn tick(clocks: &Clocks, _: &FakeWallClock, _: u64) {
    black_box(clocks.lamport.tick());
}

fn recv(clocks: &Clocks, _: &FakeWallClock, i: u64) {
    // Alternate remotes behind and ahead of the local clock.
    let remote = clocks.lamport.current() + (i & 1) * 3;
    black_box(clocks.lamport.recv(black_box(remote)).ok());
}

fn hlc_now(clocks: &Clocks, physical: &FakeWallClock, _: u64) {
    black_box(clocks.hlc.now(physical).ok());
}

fn hlc_update(clocks: &Clocks, physical: &FakeWallClock, i: u64) {
    // A remote a little behind or a little ahead of the local clock.
    let last = clocks.hlc.last().packed();
    let remote = HlcTimestamp::from_packed(if i & 1 == 0 {
        last.saturating_sub(5)
    } else {
        last + 5
    });
    black_box(clocks.hlc.update(black_box(remote), physical).ok());
}

/// Runs `op` `ops` times on each of `threads` threads sharing one set of
/// clocks; returns the wall time divided by `ops` (per-thread ns/op).
fn round(op: Op, threads: usize, ops: u64) -> f64 {
    let clocks = Clocks {
        lamport: LamportClock::new(),
        hlc: Hlc::new(HlcConfig::default()),
    };
    let barrier = Barrier::new(threads);
    let elapsed: Vec<Duration> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (clocks, barrier) = (&clocks, &barrier);
                scope.spawn(move || {
                    let physical = FakeWallClock::new();
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..ops {
                        op(clocks, &physical, i);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let slowest = elapsed.into_iter().max().expect("threads");
    slowest.as_nanos() as f64 / ops as f64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not. Under
    // test, run each loop once with a tiny count so the bench stays compiled
    // and exercised without taking time.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let ops: u64 = if benchmarking {
        std::env::var("CLOCK_BENCH_OPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000_000)
    } else {
        1_000
    };
    let rounds = if benchmarking { ROUNDS } else { 1 };
    let cases: [(&str, Op); 4] = [
        ("lamport.tick", tick),
        ("lamport.recv", recv),
        ("hlc.now", hlc_now),
        ("hlc.update", hlc_update),
    ];
    println!("{ops} ops per thread per round, {rounds} rounds; ns/op (median / best)");
    for threads in [1usize, 2] {
        let label = if threads == 1 {
            "uncontended"
        } else {
            "contended, 2 threads"
        };
        for (name, op) in cases {
            let mut samples: Vec<f64> = (0..rounds).map(|_| round(op, threads, ops)).collect();
            samples.sort_by(f64::total_cmp);
            println!(
                "{name:<13} {label:<21} {:>7.2} / {:>7.2}",
                samples[samples.len() / 2],
                samples[0]
            );
        }
    }
}
