//! Time: a monotonic nanosecond clock from the TSC, wall-clock time as the
//! RTC reading at boot plus monotonic time since, and the node's hybrid
//! logical clock on top of that wall clock (`continuum-clock`).
//!
//! The TSC rate comes from CPUID leaf 0x15 when the CPU states it (crystal
//! frequency × ratio; Intel SDM Vol. 3B §18.7.3), else from counting TSC
//! cycles across 50 ms of the PIT. Before calibration `monotonic_ns` reads 0,
//! which only the first console lines see.
//!
//! An operator (or a chaos run) can step the wall clock of a running node
//! off the RTC: [`step_wall_clock`] (the shell's `clock step <ms>`) adds an
//! offset the RTC discipline keeps, as a node whose clock is wrong would
//! have. The HLC keeps its largest time, so a backward step never moves it
//! back; a forward step beyond the max offset makes peers refuse its
//! stamps (counted as skew rejections on their `/status`).

use crate::arch::x86_64::{cmos, pit};
use continuum_clock::{Hlc, HlcConfig, HlcTimestamp, PhysicalClock};
use core::arch::asm;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// TSC value at kernel entry: monotonic time zero.
static TSC_ORIGIN: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC cycle as a 32.32 fixed-point number; 0 until `init`.
static NS_PER_CYCLE_FP32: AtomicU64 = AtomicU64::new(0);
/// Unix milliseconds at the TSC origin, from the RTC read at calibration
/// time (0 if invalid).
static WALL_MS_AT_ORIGIN: AtomicU64 = AtomicU64::new(0);
/// The RTC counts whole seconds, so a reading lies anywhere in its second:
/// take the middle, which bounds the error by half a second either way
/// (taking the reading as the second's start put every node up to a
/// second behind its host, which a short expiry window could not absorb).
const RTC_READING_MIDPOINT_MS: u64 = 500;

/// How often the RTC's seconds register is polled for the start of a new
/// second.
const RTC_POLL_MS: u64 = 5;
/// A poll further than this after the previous one cannot date the start
/// of the second it sees (the second may have begun long before).
const RTC_EDGE_MAX_GAP_MS: u64 = 4 * RTC_POLL_MS;
/// The wall clock is stepped to the RTC when they differ by this much.
/// Below it the error is mostly our polling granularity.
const RTC_STEP_THRESHOLD_MS: i64 = 40;
static RTC_LAST_SECOND: AtomicU64 = AtomicU64::new(u64::MAX);
static RTC_LAST_POLL_MS: AtomicU64 = AtomicU64::new(0);
static RTC_STEPS: AtomicU64 = AtomicU64::new(0);
static RTC_LAST_ERROR_MS: AtomicI64 = AtomicI64::new(0);
/// Milliseconds the wall clock was stepped off the RTC ([`step_wall_clock`]).
static WALL_STEP_MS: AtomicI64 = AtomicI64::new(0);
/// The largest step accepted at once (a day): a typo must not throw the
/// clock years off.
pub const MAX_WALL_STEP_MS: i64 = 86_400_000;

/// PIT ticks in one calibration window: 11932 ticks ≈ 10 ms.
const CALIBRATION_PIT_TICKS: u16 = 11_932;
/// Calibration windows measured; the shortest TSC count wins. Anything
/// that delays us inside a window (the host descheduling the vCPU between
/// the PIT's terminal count and our reading of the TSC, common under TCG
/// on a loaded host) only makes the count longer, so the minimum is the
/// least disturbed. One 50 ms window measured guests 5–13 % fast on a
/// loaded 2-core host, and their wall clocks fell behind by as much.
const CALIBRATION_WINDOWS: usize = 7;

pub fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: RDTSC reads a counter and has no other effect; it is
    // unprivileged and present on every x86_64 CPU.
    unsafe { asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack)) };
    ((high as u64) << 32) | low as u64
}

/// Calibrates the TSC and reads the RTC. Runs once at boot; monotonic time
/// counts from `entry_tsc`, the TSC at kernel entry.
pub fn init(entry_tsc: u64) {
    let (hz, source) = match cpuid_tsc_hz() {
        Some(hz) => (hz, "CPUID 0x15"),
        None => {
            let cycles = (0..CALIBRATION_WINDOWS)
                .map(|_| {
                    let (before, after) = pit::measure(CALIBRATION_PIT_TICKS, rdtsc);
                    after.wrapping_sub(before)
                })
                .min()
                .unwrap_or(0);
            (cycles * pit::PIT_HZ / CALIBRATION_PIT_TICKS as u64, "PIT")
        }
    };
    assert!(hz > 0, "TSC calibration measured 0 Hz");
    let fp = ((1_000_000_000u128 << 32) / hz as u128) as u64;
    let wall = cmos::unix_seconds();
    NS_PER_CYCLE_FP32.store(fp, Ordering::Relaxed);
    TSC_ORIGIN.store(entry_tsc, Ordering::Relaxed);
    // The RTC was read just now, not at entry: back-date it to the origin.
    let since_entry_ms = tsc_to_ns_with(rdtsc().wrapping_sub(entry_tsc), fp) / 1_000_000;
    WALL_MS_AT_ORIGIN.store(
        wall.map_or(0, |w| {
            (w * 1_000 + RTC_READING_MIDPOINT_MS).saturating_sub(since_entry_ms)
        }),
        Ordering::Relaxed,
    );
    log::info!(
        "time: TSC {}.{:03} MHz ({source})",
        hz / 1_000_000,
        (hz / 1_000) % 1_000
    );
    if wall.is_none() {
        log::warn!("time: the RTC holds an impossible date; wall clock starts at 0");
    }
}

fn cpuid_tsc_hz() -> Option<u64> {
    // CPUID is unprivileged and side-effect free; leaf 0 is always valid.
    let max_leaf = core::arch::x86_64::__cpuid(0).eax;
    if max_leaf < 0x15 {
        return None;
    }
    let leaf = core::arch::x86_64::__cpuid(0x15);
    let (denominator, numerator, crystal_hz) = (leaf.eax as u64, leaf.ebx as u64, leaf.ecx as u64);
    if denominator == 0 || numerator == 0 || crystal_hz == 0 {
        return None;
    }
    Some(crystal_hz * numerator / denominator)
}

/// Converts a TSC cycle count to nanoseconds (0 before calibration).
pub fn tsc_to_ns(cycles: u64) -> u64 {
    tsc_to_ns_with(cycles, NS_PER_CYCLE_FP32.load(Ordering::Relaxed))
}

fn tsc_to_ns_with(cycles: u64, ns_per_cycle_fp32: u64) -> u64 {
    ((cycles as u128 * ns_per_cycle_fp32 as u128) >> 32) as u64
}

/// Nanoseconds since kernel entry (0 until calibrated); never decreases.
pub fn monotonic_ns() -> u64 {
    let origin = TSC_ORIGIN.load(Ordering::Relaxed);
    if origin == 0 {
        return 0;
    }
    tsc_to_ns(rdtsc().saturating_sub(origin))
}

/// Holds the wall clock to the RTC. The TSC rate measured at boot can be
/// off by a percent or more under emulation, so a wall clock that only
/// counts TSC cycles drifts by seconds per minute, and every HLC with it.
/// Call this often (every loop pass); it polls the RTC's seconds register
/// every [`RTC_POLL_MS`] and, when it sees a new second begin (the poll
/// before was at most [`RTC_EDGE_MAX_GAP_MS`] earlier), compares the wall
/// clock with that second's start and steps it by the difference when it
/// exceeds [`RTC_STEP_THRESHOLD_MS`]. A step may go backwards: the HLC
/// never does (it keeps its largest time), and nothing else orders by
/// wall time.
pub fn discipline_from_rtc() {
    let now = monotonic_ns() / 1_000_000;
    let last_poll = RTC_LAST_POLL_MS.load(Ordering::Relaxed);
    if now < last_poll + RTC_POLL_MS && last_poll != 0 {
        return;
    }
    RTC_LAST_POLL_MS.store(now, Ordering::Relaxed);
    let Some(second) = cmos::seconds_register() else {
        return;
    };
    let previous = RTC_LAST_SECOND.swap(u64::from(second), Ordering::Relaxed);
    if previous == u64::MAX
        || previous == u64::from(second)
        || now > last_poll + RTC_EDGE_MAX_GAP_MS
    {
        return;
    }
    let Some(rtc) = cmos::unix_seconds() else {
        return;
    };
    let error = (rtc * 1_000) as i64 - rtc_clock_millis() as i64;
    RTC_LAST_ERROR_MS.store(error, Ordering::Relaxed);
    if error.abs() >= RTC_STEP_THRESHOLD_MS {
        WALL_MS_AT_ORIGIN.fetch_add(error as u64, Ordering::Relaxed);
        RTC_STEPS.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often the wall clock was stepped to the RTC, and the last
/// difference seen (ms, positive: the wall clock was behind).
pub fn rtc_discipline() -> (u64, i64) {
    (
        RTC_STEPS.load(Ordering::Relaxed),
        RTC_LAST_ERROR_MS.load(Ordering::Relaxed),
    )
}

/// Wall-clock seconds since the Unix epoch (RTC at boot + time since).
pub fn wall_clock_secs() -> u64 {
    wall_clock_millis() / 1_000
}

/// Steps the wall clock by `delta_ms` (either way) off the RTC; returns
/// the total step now, or `None` (nothing changed) if `delta_ms` exceeds
/// [`MAX_WALL_STEP_MS`] or the clock would go below the epoch.
pub fn step_wall_clock(delta_ms: i64) -> Option<i64> {
    if delta_ms.abs() > MAX_WALL_STEP_MS {
        return None;
    }
    let total = WALL_STEP_MS.load(Ordering::Relaxed).checked_add(delta_ms)?;
    if (rtc_clock_millis() as i64).checked_add(total)? < 0 {
        return None;
    }
    WALL_STEP_MS.store(total, Ordering::Relaxed);
    Some(total)
}

/// How far the wall clock was stepped off the RTC, ms.
pub fn wall_step_ms() -> i64 {
    WALL_STEP_MS.load(Ordering::Relaxed)
}

/// The RTC-disciplined clock, before any operator step.
fn rtc_clock_millis() -> u64 {
    WALL_MS_AT_ORIGIN.load(Ordering::Relaxed) + monotonic_ns() / 1_000_000
}

/// Wall-clock milliseconds since the Unix epoch (RTC at boot + TSC since,
/// plus any operator step).
pub fn wall_clock_millis() -> u64 {
    (rtc_clock_millis() as i64)
        .saturating_add(WALL_STEP_MS.load(Ordering::Relaxed))
        .max(0) as u64
}

/// The kernel's physical clock, as the HLC sees it.
pub struct KernelClock;

impl PhysicalClock for KernelClock {
    fn now_millis(&self) -> u64 {
        wall_clock_millis()
    }
}

/// The node's hybrid logical clock: stamps console lines now, and messages
/// and log entries once the node's tasks exist.
pub static HLC: Hlc = Hlc::new(HlcConfig::DEFAULT);

/// An HLC timestamp for a local event. `None` only if the clock is
/// exhausted (year ~10889) or physical time is out of range.
pub fn hlc_now() -> Option<HlcTimestamp> {
    HLC.now(&KernelClock).ok()
}
