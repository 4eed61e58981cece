//! Multithreaded stress of the inline-asm atomics through the public
//! clocks: several threads hammer one clock and the results must show no
//! lost update, no duplicate value and strictly increasing values per
//! thread.
//!
//! Default size: 4 threads, about 4 million operations in total across the
//! three tests (a few seconds in a debug build). Set `CLOCK_STRESS_SCALE=N`
//! to multiply every count by N.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;

use common::{stress_scale, SharedTickingClock};
use continuum_clock::{Hlc, HlcConfig, HlcTimestamp, LamportClock};

const THREADS: u64 = 4;

/// Runs `body(thread_index)` on `THREADS` threads released together and
/// returns what each produced.
fn on_threads<T: Send>(body: impl Fn(u64) -> Vec<T> + Sync) -> Vec<Vec<T>> {
    let barrier = Barrier::new(THREADS as usize);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|index| {
                let (barrier, body) = (&barrier, &body);
                scope.spawn(move || {
                    barrier.wait();
                    body(index)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("stress thread panicked"))
            .collect()
    })
}

fn assert_strictly_increasing<T: Ord + std::fmt::Debug>(values: &[T]) {
    for pair in values.windows(2) {
        assert!(pair[0] < pair[1], "not increasing: {:?}", pair);
    }
}

/// Concurrent ticks hand out exactly 1..=total: none lost, none repeated.
#[test]
fn concurrent_ticks_lose_and_repeat_nothing() {
    let per_thread = 500_000 * stress_scale();
    let clock = LamportClock::new();
    let per_thread_values = on_threads(|_| (0..per_thread).map(|_| clock.tick()).collect());
    let mut all: Vec<u64> = Vec::new();
    for values in &per_thread_values {
        assert_strictly_increasing(values);
        all.extend_from_slice(values);
    }
    let total = per_thread * THREADS;
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(1..=total),
        "values are not exactly 1..={total}"
    );
    assert_eq!(clock.current(), total);
}

/// Ticks mixed with receives of values the clock has already passed: every
/// operation must advance the clock by exactly one (a lost CAS would leave
/// a gap or a duplicate), so the values are again exactly 1..=total.
#[test]
fn concurrent_ticks_and_receives_lose_and_repeat_nothing() {
    let per_thread = 250_000 * stress_scale();
    let clock = LamportClock::new();
    let per_thread_values = on_threads(|index| {
        let mut values = Vec::with_capacity(per_thread as usize);
        for i in 0..per_thread {
            let value = if (i + index) % 2 == 0 {
                clock.tick()
            } else {
                // A remote that is not ahead: the receive rule gives local + 1.
                let remote = clock.current().saturating_sub(i % 7);
                clock.recv(remote).expect("small remote")
            };
            values.push(value);
        }
        values
    });
    let mut all: Vec<u64> = Vec::new();
    for values in &per_thread_values {
        assert_strictly_increasing(values);
        all.extend_from_slice(values);
    }
    let total = per_thread * THREADS;
    all.sort_unstable();
    assert!(
        all.iter().copied().eq(1..=total),
        "values are not exactly 1..={total}"
    );
    assert_eq!(clock.current(), total);
}

/// Receives that jump ahead race with ticks: values stay unique and the
/// clock ends at the largest value handed out.
#[test]
fn concurrent_receives_from_ahead_stay_unique() {
    let per_thread = 100_000 * stress_scale();
    let clock = LamportClock::new();
    let per_thread_values = on_threads(|index| {
        (0..per_thread)
            .map(|i| {
                if index % 2 == 0 {
                    clock.tick()
                } else {
                    let remote = clock.current() + 1 + i % 5;
                    let value = clock.recv(remote).expect("small remote");
                    assert!(value > remote);
                    value
                }
            })
            .collect()
    });
    let mut all: Vec<u64> = per_thread_values.concat();
    for values in &per_thread_values {
        assert_strictly_increasing(values);
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "a Lamport value was handed out twice");
    assert_eq!(clock.current(), *all.last().expect("values"));
}

/// HLC `now` and `update` from several threads, with physical time that
/// moves slowly enough for logical counters (and carries) to happen: each
/// thread sees strictly increasing timestamps, no timestamp is handed out
/// twice, and every update exceeds the timestamp it merged.
#[test]
fn concurrent_hlc_is_strictly_increasing_and_unique() {
    let per_thread = 250_000 * stress_scale();
    // One millisecond per 100 000 reads (each call reads once): more events
    // per millisecond than the 16-bit counter holds, forcing carries.
    let base = 1_700_000_000_000;
    let period = 100_000;
    let physical = SharedTickingClock::new(base, period);
    let hlc = Hlc::new(HlcConfig::default());
    // The latest stamp any thread published, used as the "remote" stamp.
    let mailbox = AtomicU64::new(0);
    let per_thread_values = on_threads(|index| {
        let mut values = Vec::with_capacity(per_thread as usize);
        for i in 0..per_thread {
            let stamp = if (i + index) % 3 == 0 {
                let remote = HlcTimestamp::from_packed(mailbox.load(Ordering::Relaxed));
                let stamp = hlc.update(remote, &physical).expect("remote within offset");
                assert!(stamp > remote);
                stamp
            } else {
                hlc.now(&physical).expect("in range")
            };
            if i % 16 == 0 {
                mailbox.fetch_max(stamp.packed(), Ordering::Relaxed);
            }
            values.push(stamp);
        }
        values
    });
    let mut all: Vec<HlcTimestamp> = per_thread_values.concat();
    for values in &per_thread_values {
        assert_strictly_increasing(values);
    }
    let count = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), count, "an HLC timestamp was handed out twice");
    assert_eq!(hlc.last(), *all.last().expect("values"));
    assert_eq!(hlc.skew_rejections(), 0);
    // Carries happened: the clock ran ahead of the last physical reading.
    let last_physical = base + (count as u64 - 1) / period;
    assert!(
        hlc.last().millis() > last_physical,
        "{} vs {last_physical}",
        hlc.last()
    );
}
