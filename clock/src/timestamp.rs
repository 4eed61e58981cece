//! The hybrid-logical-clock timestamp: `(l, c)` from Kulkarni et al.,
//! "Logical Physical Clocks" (OPODIS 2014), §3, packed into one `u64`.
//!
//! ```text
//!  63                                          16 15             0
//! +----------------------------------------------+----------------+
//! |  wall milliseconds since the Unix epoch (l)  | logical (c)    |
//! |                 48 bits                      |    16 bits     |
//! +----------------------------------------------+----------------+
//! ```
//!
//! Because `l` sits above `c`, comparing packed words is the paper's
//! lexicographic order on `(l, c)`, and "`c + 1`, carrying into `l` when `c`
//! is full" is plain `+ 1` on the word. 48 bits of milliseconds last until
//! about the year 10889.

use core::fmt;

/// Number of bits of the logical counter.
pub const HLC_LOGICAL_BITS: u32 = 16;

/// Largest logical counter value (65 535).
pub const HLC_MAX_LOGICAL: u16 = u16::MAX;

/// Largest wall-millisecond value a timestamp can hold (2^48 - 1).
pub const HLC_MAX_MILLIS: u64 = (1 << (64 - HLC_LOGICAL_BITS)) - 1;

/// A hybrid logical clock timestamp. Ordered like `(millis, logical)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HlcTimestamp(u64);

impl HlcTimestamp {
    /// The smallest timestamp, `(0, 0)`.
    pub const ZERO: Self = Self(0);

    /// The largest timestamp; the clock refuses to go past it.
    pub const MAX: Self = Self(u64::MAX);

    /// Builds `(millis, logical)`, or `None` if `millis > HLC_MAX_MILLIS`.
    pub const fn new(millis: u64, logical: u16) -> Option<Self> {
        if millis > HLC_MAX_MILLIS {
            return None;
        }
        Some(Self((millis << HLC_LOGICAL_BITS) | logical as u64))
    }

    /// Reinterprets a packed word. Every `u64` is a valid timestamp.
    pub const fn from_packed(packed: u64) -> Self {
        Self(packed)
    }

    /// The packed word (the value stored in the clock and on the wire).
    pub const fn packed(self) -> u64 {
        self.0
    }

    /// The physical part `l`: wall milliseconds since the Unix epoch.
    pub const fn millis(self) -> u64 {
        self.0 >> HLC_LOGICAL_BITS
    }

    /// The logical part `c`.
    pub const fn logical(self) -> u16 {
        // Truncation keeps exactly the low 16 bits, which is the field.
        (self.0 & HLC_MAX_LOGICAL as u64) as u16
    }
}

impl fmt::Display for HlcTimestamp {
    /// `millis.logical` with the logical part always five digits, e.g.
    /// `1763785200123.00004`, so equal-width stamps sort as text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:05}", self.millis(), self.logical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_packing() {
        let ts = HlcTimestamp::new(1_763_785_200_123, 42).unwrap();
        assert_eq!(ts.millis(), 1_763_785_200_123);
        assert_eq!(ts.logical(), 42);
        assert_eq!(HlcTimestamp::from_packed(ts.packed()), ts);
        let top = HlcTimestamp::new(HLC_MAX_MILLIS, HLC_MAX_LOGICAL).unwrap();
        assert_eq!(top, HlcTimestamp::MAX);
        assert_eq!(HlcTimestamp::new(HLC_MAX_MILLIS + 1, 0), None);
    }

    #[test]
    fn order_is_lexicographic_on_millis_then_logical() {
        let a = HlcTimestamp::new(10, HLC_MAX_LOGICAL).unwrap();
        let b = HlcTimestamp::new(11, 0).unwrap();
        let c = HlcTimestamp::new(11, 1).unwrap();
        assert!(a < b && b < c);
        // Carry: the successor of (10, 65535) is (11, 0).
        assert_eq!(HlcTimestamp::from_packed(a.packed() + 1), b);
    }

    #[test]
    fn display_shows_both_parts() {
        let ts = HlcTimestamp::new(1234, 5).unwrap();
        assert_eq!(std::format!("{ts}"), "1234.00005");
    }
}
