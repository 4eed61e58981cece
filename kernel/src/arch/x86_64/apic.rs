//! The local APIC (xAPIC, MMIO) and its timer, used one-shot: the executor
//! arms it for the next deadline before halting, so an idle node takes no
//! interrupts at all (Intel SDM Vol. 3A §11.5.4).

use crate::{memory, time};
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;

// Register offsets, Intel SDM Vol. 3A Table 11-1.
const TPR: usize = 0x80;
const EOI: usize = 0xb0;
const SVR: usize = 0xf0;
const LVT_TIMER: usize = 0x320;
const TIMER_INITIAL: usize = 0x380;
const TIMER_CURRENT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3e0;

const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
/// Divide configuration 0b0011: the timer counts at bus clock / 16.
const DIVIDE_BY_16: u32 = 0b0011;

/// Virtual address of the APIC's register page.
static BASE: AtomicU64 = AtomicU64::new(0);
/// Timer counts per millisecond, measured against the TSC at boot.
static COUNTS_PER_MS: AtomicU64 = AtomicU64::new(0);
static TIMER_VECTOR: AtomicU64 = AtomicU64::new(0);

fn write(register: usize, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    assert!(base != 0, "local APIC used before init");
    // SAFETY: `base` maps the APIC register page (set in `init`), every
    // register is a naturally aligned 32-bit cell, and MMIO needs volatile.
    unsafe { core::ptr::write_volatile((base as usize + register) as *mut u32, value) }
}

fn read(register: usize) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    assert!(base != 0, "local APIC used before init");
    // SAFETY: as in `write`.
    unsafe { core::ptr::read_volatile((base as usize + register) as *const u32) }
}

/// Enables the local APIC and calibrates its timer against the TSC. Needs
/// `memory::init` (for the register mapping) and `time::init` (for the TSC).
pub fn init(spurious_vector: u8, timer_vector: u8) {
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every x86_64 CPU; setting the global
    // enable bit keeps the base address the firmware chose.
    let base_phys = unsafe {
        let value = msr.read();
        msr.write(value | APIC_BASE_ENABLE);
        value & 0x000f_ffff_ffff_f000
    };
    BASE.store(memory::phys_to_virt(base_phys), Ordering::Relaxed);
    TIMER_VECTOR.store(timer_vector as u64, Ordering::Relaxed);

    write(TPR, 0);
    write(SVR, SVR_ENABLE | spurious_vector as u32);
    write(TIMER_DIVIDE, DIVIDE_BY_16);

    // Let the timer count down from the top for 10 ms of TSC time.
    write(LVT_TIMER, LVT_MASKED | timer_vector as u32);
    write(TIMER_INITIAL, u32::MAX);
    let start = time::monotonic_ns();
    while time::monotonic_ns() - start < 10_000_000 {
        core::hint::spin_loop();
    }
    let counted = u32::MAX - read(TIMER_CURRENT);
    write(TIMER_INITIAL, 0);
    let per_ms = (counted as u64 / 10).max(1);
    COUNTS_PER_MS.store(per_ms, Ordering::Relaxed);
    log::info!("apic: timer {} kHz (bus/16)", per_ms);
}

/// Arms the timer to fire once, `ns` from now (at least one count, at most
/// what the 32-bit counter holds). Re-arming replaces the previous deadline.
pub fn arm_oneshot(ns: u64) {
    let per_ms = COUNTS_PER_MS.load(Ordering::Relaxed);
    let counts = (ns as u128 * per_ms as u128 / 1_000_000).clamp(1, u32::MAX as u128) as u32;
    write(LVT_TIMER, TIMER_VECTOR.load(Ordering::Relaxed) as u32);
    write(TIMER_INITIAL, counts);
}

pub fn end_of_interrupt() {
    write(EOI, 0);
}
