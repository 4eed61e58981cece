//! Physical time is an input, never read directly: the kernel implements
//! [`PhysicalClock`] from the CMOS RTC read at boot plus the calibrated TSC,
//! and tests implement it with fakes that freeze, drift or jump backwards.

/// A source of wall-clock time.
///
/// Nothing here assumes the source is monotonic or accurate: the HLC stays
/// monotonic even if `now_millis` goes backwards, and offsets between nodes
/// are measured, not assumed.
pub trait PhysicalClock {
    /// Wall-clock milliseconds since the Unix epoch (1970-01-01T00:00:00Z).
    ///
    /// Values at or above [`crate::HLC_MAX_MILLIS`] + 1 (2^48 ms, around the
    /// year 10889) are refused by the HLC with
    /// [`crate::HlcError::PhysicalTimeOutOfRange`].
    fn now_millis(&self) -> u64;
}

impl<C: PhysicalClock + ?Sized> PhysicalClock for &C {
    fn now_millis(&self) -> u64 {
        (**self).now_millis()
    }
}
