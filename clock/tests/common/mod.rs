//! Fake physical clocks shared by the integration tests.
#![allow(dead_code)] // each test binary uses a subset

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use continuum_clock::PhysicalClock;

/// A physical clock the test sets by hand: frozen until told otherwise,
/// free to jump backwards.
#[derive(Debug, Default)]
pub struct ManualClock(Cell<u64>);

impl ManualClock {
    pub fn at(millis: u64) -> Self {
        Self(Cell::new(millis))
    }

    pub fn set(&self, millis: u64) {
        self.0.set(millis);
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl PhysicalClock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.get()
    }
}

/// A physical clock shared between threads that advances one millisecond
/// every `period` reads: time moves, but many events share a millisecond.
#[derive(Debug)]
pub struct SharedTickingClock {
    reads: AtomicU64,
    base_millis: u64,
    period: u64,
}

impl SharedTickingClock {
    pub fn new(base_millis: u64, period: u64) -> Self {
        Self {
            reads: AtomicU64::new(0),
            base_millis,
            period,
        }
    }
}

impl PhysicalClock for SharedTickingClock {
    fn now_millis(&self) -> u64 {
        self.base_millis + self.reads.fetch_add(1, Ordering::Relaxed) / self.period
    }
}

/// Scale factor for the heavier tests: `CLOCK_STRESS_SCALE` (default 1).
pub fn stress_scale() -> u64 {
    std::env::var("CLOCK_STRESS_SCALE")
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|&scale| scale > 0)
        .unwrap_or(1)
}
