//! Fallback for architectures without the inline-assembly path: the same
//! three operations on `core::sync::atomic::AtomicU64`, with the orderings
//! the x86 instructions give (`SeqCst` read-modify-writes, acquire loads).

use core::sync::atomic::{AtomicU64, Ordering};

/// A 64-bit word with the same contract as the x86_64 `AtomicWord`.
#[derive(Debug)]
pub(crate) struct AtomicWord(AtomicU64);

impl AtomicWord {
    pub(crate) const fn new(value: u64) -> Self {
        Self(AtomicU64::new(value))
    }

    #[inline]
    pub(crate) fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Wrapping add returning the previous value (like `lock xadd`).
    #[inline]
    pub(crate) fn fetch_add(&self, delta: u64) -> u64 {
        self.0.fetch_add(delta, Ordering::SeqCst)
    }

    /// Strong compare-and-swap (like `lock cmpxchg`: never fails spuriously).
    #[inline]
    pub(crate) fn compare_exchange(&self, expected: u64, new: u64) -> Result<u64, u64> {
        self.0
            .compare_exchange(expected, new, Ordering::SeqCst, Ordering::SeqCst)
    }
}
