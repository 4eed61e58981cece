//! One 64-bit word updated atomically from several cores and from interrupt
//! handlers: the only shared state of [`crate::LamportClock`] and
//! [`crate::Hlc`].
//!
//! On x86_64 the primitives are inline assembly (`lock xadd`, `lock
//! cmpxchg`, aligned `mov`) in [`x86_64`]; this is the path the kernel runs
//! and the host tests exercise. Every other architecture gets [`portable`],
//! built on `core::sync::atomic` with the same semantics, so the crate stays
//! buildable and testable elsewhere. Exactly one of the two is compiled.
//!
//! Ordering: every read-modify-write is sequentially consistent (a
//! `lock`-prefixed instruction is a full barrier on x86, Intel SDM Vol. 3A
//! §9.2.2; `SeqCst` in the fallback) and every load is at least acquire.
//! The clocks never store without a read-modify-write, so a value returned
//! by one call happens-before any call that observes a larger value.
//!
//! Interrupt handlers: none of the operations takes a lock, so a handler
//! that interrupts a CAS loop on the same core simply makes that loop retry
//! once; it cannot deadlock.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use self::x86_64::AtomicWord;

#[cfg(not(target_arch = "x86_64"))]
mod portable;
#[cfg(not(target_arch = "x86_64"))]
pub(crate) use self::portable::AtomicWord;

impl AtomicWord {
    /// Read-modify-write as one CAS loop: `next` maps the current value to
    /// the new one (or refuses with an error, leaving the word untouched);
    /// the loop retries with the freshly observed value until its
    /// compare-and-swap wins. Returns the value that was installed.
    ///
    /// `next` may run several times under contention, so it must be a pure
    /// function of its argument (and of values captured before the loop).
    #[inline]
    pub(crate) fn update<E>(&self, mut next: impl FnMut(u64) -> Result<u64, E>) -> Result<u64, E> {
        let mut current = self.load();
        loop {
            let proposed = next(current)?;
            match self.compare_exchange(current, proposed) {
                Ok(_) => return Ok(proposed),
                Err(observed) => {
                    current = observed;
                    core::hint::spin_loop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AtomicWord;

    #[test]
    fn fetch_add_returns_previous_value() {
        let word = AtomicWord::new(41);
        assert_eq!(word.fetch_add(1), 41);
        assert_eq!(word.fetch_add(10), 42);
        assert_eq!(word.load(), 52);
    }

    #[test]
    fn fetch_add_wraps_like_the_hardware() {
        // The clocks check for this themselves; the primitive must not hide it.
        let word = AtomicWord::new(u64::MAX);
        assert_eq!(word.fetch_add(2), u64::MAX);
        assert_eq!(word.load(), 1);
    }

    #[test]
    fn compare_exchange_succeeds_only_on_expected_value() {
        let word = AtomicWord::new(7);
        assert_eq!(word.compare_exchange(8, 100), Err(7));
        assert_eq!(word.load(), 7);
        assert_eq!(word.compare_exchange(7, 100), Ok(7));
        assert_eq!(word.load(), 100);
        assert_eq!(word.compare_exchange(u64::MAX, 0), Err(100));
    }

    #[test]
    fn update_installs_result_or_leaves_word_untouched() {
        let word = AtomicWord::new(5);
        assert_eq!(word.update(|v| Ok::<_, ()>(v * 3)), Ok(15));
        assert_eq!(word.update(|_| Err::<u64, _>("refused")), Err("refused"));
        assert_eq!(word.load(), 15);
    }
}
