//! x86_64 inline-assembly atomics (Intel SDM Vol. 2: XADD, CMPXCHG; Vol. 3A
//! §9.1.1 guaranteed-atomic aligned quadword access, §9.2.2 locked
//! instructions are fully ordered).
//!
//! The word lives inside a `core::sync::atomic::AtomicU64` only to borrow
//! its guarantees — 8-byte alignment, interior mutability, `Sync` — without
//! writing an `unsafe impl`. Every access goes through the assembly below,
//! and none of it is mixed with non-atomic accesses.
//!
//! None of the blocks uses `nomem`, so each is also a compiler barrier: the
//! compiler cannot move other memory accesses across it.

use core::sync::atomic::AtomicU64;

/// A 64-bit word read and updated only by the `lock`-prefixed instructions
/// and aligned loads below.
#[derive(Debug)]
pub(crate) struct AtomicWord(AtomicU64);

impl AtomicWord {
    pub(crate) const fn new(value: u64) -> Self {
        Self(AtomicU64::new(value))
    }

    /// Aligned 64-bit load. On x86 a load is never reordered with older
    /// loads or with younger stores, so it has acquire semantics.
    #[inline]
    pub(crate) fn load(&self) -> u64 {
        let ptr = self.0.as_ptr();
        let value: u64;
        // SAFETY: `ptr` comes from a live `&AtomicU64`, so it is non-null,
        // 8-byte aligned and valid for reads for the duration of the block;
        // an aligned quadword load is single-copy atomic (SDM 3A §9.1.1), and
        // all writers use locked instructions, so the load cannot tear or
        // race in the data-race sense.
        unsafe {
            core::arch::asm!(
                "mov {value}, qword ptr [{ptr}]",
                ptr = in(reg) ptr,
                value = lateout(reg) value,
                options(nostack, preserves_flags),
            );
        }
        value
    }

    /// `lock xadd`: adds `delta` (wrapping, as the hardware does) and
    /// returns the previous value.
    #[inline]
    pub(crate) fn fetch_add(&self, delta: u64) -> u64 {
        let ptr = self.0.as_ptr();
        let mut value = delta;
        // SAFETY: `ptr` is valid, aligned and writable through the shared
        // reference because the pointee is an `AtomicU64` (interior
        // mutability). `lock xadd` performs the read-add-write as one atomic,
        // fully ordered operation, so concurrent callers on any core (or an
        // interrupt handler on this one) never lose an increment. The asm
        // only clobbers the flags (not declared `preserves_flags`) and
        // `value`.
        unsafe {
            core::arch::asm!(
                "lock xadd qword ptr [{ptr}], {value}",
                ptr = in(reg) ptr,
                value = inout(reg) value,
                options(nostack),
            );
        }
        value
    }

    /// `lock cmpxchg`: if the word equals `expected`, replaces it with `new`
    /// and returns `Ok(expected)`; otherwise leaves it and returns
    /// `Err(observed)`.
    #[inline]
    pub(crate) fn compare_exchange(&self, expected: u64, new: u64) -> Result<u64, u64> {
        let ptr = self.0.as_ptr();
        let observed: u64;
        // SAFETY: as for `fetch_add`, `ptr` is valid, aligned and writable
        // through interior mutability. CMPXCHG compares RAX with the memory
        // operand and either stores `new` or loads the current value into
        // RAX, atomically under the lock prefix; RAX is declared inout and
        // the flags are clobbered (no `preserves_flags`).
        unsafe {
            core::arch::asm!(
                "lock cmpxchg qword ptr [{ptr}], {new}",
                ptr = in(reg) ptr,
                new = in(reg) new,
                inout("rax") expected => observed,
                options(nostack),
            );
        }
        // CMPXCHG leaves RAX unchanged exactly when it stored (ZF=1), so
        // comparing is equivalent to reading ZF.
        if observed == expected {
            Ok(observed)
        } else {
            Err(observed)
        }
    }
}
