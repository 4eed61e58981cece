//! Hybrid logical clock (Kulkarni, Demirbas, Madappa, Avva, Leone,
//! "Logical Physical Clocks", OPODIS 2014, Fig. 5), with CockroachDB's
//! max-offset check on receive.
//!
//! The state is one packed [`HlcTimestamp`] in an [`AtomicWord`]; `now` and
//! `update` are each one `lock cmpxchg` loop, so the clock is shared through
//! `&self` by every core and interrupt handler.
//!
//! # Rules
//!
//! With `(l, c)` the clock, `pt` the physical time and `(l_m, c_m)` a
//! received timestamp, the paper's rules are:
//!
//! * send / local event: `l' = max(l, pt)`; `c' = c + 1` if `l' == l`,
//!   else `0`.
//! * receive: `l' = max(l, l_m, pt)`; `c' = max(c, c_m) + 1` if
//!   `l' == l == l_m`, `c + 1` if only `l' == l`, `c_m + 1` if only
//!   `l' == l_m`, else `0`.
//!
//! On the packed word (where `+ 1` is "increment `c`, carrying into `l`")
//! both collapse to one expression each, which is what the code computes:
//!
//! * `now`:    `max(clock + 1, (pt, 0))`
//! * `update`: `max(max(clock, remote) + 1, (pt, 0))`
//!
//! They agree with the paper whenever `c` does not overflow (the proof is
//! case by case on which of `l`, `l_m`, `pt` is largest; the property tests
//! in `tests/hlc_props.rs` check the equivalence against a direct
//! transcription of the paper's rules).
//!
//! # Guarantees
//!
//! * Every call returns a timestamp strictly greater than every timestamp
//!   previously returned by the same clock, whatever the physical clock does
//!   (frozen, backwards, jumping). So timestamps are unique per node.
//! * If event `e` happens-before `f` then `hlc(e) < hlc(f)`: `update` returns
//!   more than the received timestamp, `now` more than the previous event.
//! * `l` never trails physical time: every returned `l >= pt` read by that
//!   call.
//! * `l` stays within `max_offset` of the physical time of the node, because
//!   `update` refuses remote timestamps further ahead (below) — apart from
//!   logical-counter carries, next.
//!
//! # Logical-counter overflow: carry into the milliseconds
//!
//! When `c` is already 65 535 and must grow, the clock moves to
//! `(l + 1, 0)`: the timestamp runs 1 ms ahead of physical time. We chose
//! this over returning an error because it keeps every guarantee above
//! except "within `max_offset`", it never stops a node from stamping events
//! (an error would halt the log or the network path), and the cost is
//! bounded and visible: it takes 65 536 events inside one physical
//! millisecond to gain 1 ms, so drifting by CockroachDB's default 500 ms
//! would take over 32 million events without the physical clock moving.
//! When physical time catches up the clock resumes `(pt, 0)`. The only true
//! error is running past [`HlcTimestamp::MAX`] (year 10889):
//! [`HlcError::Exhausted`].
//!
//! # Skew: CockroachDB's rule
//!
//! `update` refuses a remote timestamp whose `l_m` is more than
//! `max_offset_millis` ahead of the local physical time (CockroachDB,
//! `pkg/util/hlc`: "remote wall time is too far ahead"). The clock is left
//! unchanged, the error is returned and [`Hlc::skew_rejections`] is bumped,
//! so one peer with a broken clock cannot drag the cluster's timestamps into
//! the future.

use core::fmt;

use crate::atomic::AtomicWord;
use crate::physical::PhysicalClock;
use crate::timestamp::{HlcTimestamp, HLC_LOGICAL_BITS, HLC_MAX_MILLIS};

/// Default for [`HlcConfig::max_offset_millis`]: CockroachDB's default.
pub const DEFAULT_MAX_OFFSET_MILLIS: u64 = 500;

/// Tuning of a [`Hlc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlcConfig {
    /// How far (in milliseconds) a received timestamp may be ahead of local
    /// physical time before `update` refuses it. Default 500 ms
    /// ([`DEFAULT_MAX_OFFSET_MILLIS`]). Raise it only if the nodes' clocks
    /// are known to be worse synchronised (e.g. RTC-only, no NTP); lower it
    /// to bound how far one node's timestamps can run ahead of another's.
    pub max_offset_millis: u64,
}

impl HlcConfig {
    /// The defaults, usable in `const`/`static` initialisers.
    pub const DEFAULT: Self = Self {
        max_offset_millis: DEFAULT_MAX_OFFSET_MILLIS,
    };
}

impl Default for HlcConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why an HLC operation was refused. The clock is unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HlcError {
    /// The remote timestamp is more than `max_offset_millis` ahead of local
    /// physical time; it was not adopted. Count it and drop the message.
    RemoteTooFarAhead {
        /// The refused timestamp.
        remote: HlcTimestamp,
        /// Local physical time when it was refused.
        physical_millis: u64,
        /// The configured bound.
        max_offset_millis: u64,
    },
    /// The physical clock returned more than [`HLC_MAX_MILLIS`].
    PhysicalTimeOutOfRange {
        /// The value the physical clock returned.
        physical_millis: u64,
    },
    /// The clock would have to pass [`HlcTimestamp::MAX`].
    Exhausted,
}

impl fmt::Display for HlcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoteTooFarAhead {
                remote,
                physical_millis,
                max_offset_millis,
            } => write!(
                f,
                "remote HLC timestamp {remote} is more than {max_offset_millis} ms ahead of local physical time {physical_millis} ms"
            ),
            Self::PhysicalTimeOutOfRange { physical_millis } => write!(
                f,
                "physical time {physical_millis} ms exceeds the HLC range ({HLC_MAX_MILLIS} ms)"
            ),
            Self::Exhausted => write!(f, "HLC exhausted: cannot advance past the largest timestamp"),
        }
    }
}

/// A hybrid logical clock shared through `&self`.
#[derive(Debug)]
pub struct Hlc {
    /// Packed last timestamp handed out.
    last: AtomicWord,
    /// Number of remote timestamps refused by the max-offset check.
    skew_rejections: AtomicWord,
    config: HlcConfig,
}

impl Hlc {
    /// A clock at `(0, 0)`: the first call returns the physical time.
    pub const fn new(config: HlcConfig) -> Self {
        Self::starting_after(HlcTimestamp::ZERO, config)
    }

    /// A clock resuming after `last` (e.g. the largest timestamp persisted
    /// before a restart), so it never repeats one it handed out before.
    pub const fn starting_after(last: HlcTimestamp, config: HlcConfig) -> Self {
        Self {
            last: AtomicWord::new(last.packed()),
            skew_rejections: AtomicWord::new(0),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> HlcConfig {
        self.config
    }

    /// The last timestamp handed out, without advancing.
    pub fn last(&self) -> HlcTimestamp {
        HlcTimestamp::from_packed(self.last.load())
    }

    /// How many remote timestamps `update` has refused as too far ahead.
    pub fn skew_rejections(&self) -> u64 {
        self.skew_rejections.load()
    }

    /// Stamps a local or send event (the paper's "send or local event").
    ///
    /// # Errors
    /// [`HlcError::PhysicalTimeOutOfRange`], [`HlcError::Exhausted`].
    #[inline]
    pub fn now(&self, clock: &impl PhysicalClock) -> Result<HlcTimestamp, HlcError> {
        let physical = physical_floor(clock)?;
        self.last
            .update(|last| {
                let successor = last.checked_add(1).ok_or(HlcError::Exhausted)?;
                Ok(successor.max(physical))
            })
            .map(HlcTimestamp::from_packed)
    }

    /// Stamps the receipt of a message carrying `remote` (the paper's
    /// "receive event of message m").
    ///
    /// # Errors
    /// [`HlcError::RemoteTooFarAhead`] (also counted in
    /// [`Hlc::skew_rejections`]), [`HlcError::PhysicalTimeOutOfRange`],
    /// [`HlcError::Exhausted`]. On error the clock is unchanged.
    #[inline]
    pub fn update(
        &self,
        remote: HlcTimestamp,
        clock: &impl PhysicalClock,
    ) -> Result<HlcTimestamp, HlcError> {
        let physical = physical_floor(clock)?;
        let physical_millis = physical >> HLC_LOGICAL_BITS;
        if remote.millis().saturating_sub(physical_millis) > self.config.max_offset_millis {
            self.skew_rejections.fetch_add(1);
            return Err(HlcError::RemoteTooFarAhead {
                remote,
                physical_millis,
                max_offset_millis: self.config.max_offset_millis,
            });
        }
        self.last
            .update(|last| {
                let successor = last
                    .max(remote.packed())
                    .checked_add(1)
                    .ok_or(HlcError::Exhausted)?;
                Ok(successor.max(physical))
            })
            .map(HlcTimestamp::from_packed)
    }
}

/// Reads physical time once and returns it as the packed `(pt, 0)`.
#[inline]
fn physical_floor(clock: &impl PhysicalClock) -> Result<u64, HlcError> {
    let physical_millis = clock.now_millis();
    match HlcTimestamp::new(physical_millis, 0) {
        Some(floor) => Ok(floor.packed()),
        None => Err(HlcError::PhysicalTimeOutOfRange { physical_millis }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::HLC_MAX_LOGICAL;
    use core::cell::Cell;

    struct Fixed(Cell<u64>);
    impl PhysicalClock for Fixed {
        fn now_millis(&self) -> u64 {
            self.0.get()
        }
    }

    fn ts(millis: u64, logical: u16) -> HlcTimestamp {
        HlcTimestamp::new(millis, logical).unwrap()
    }

    #[test]
    fn now_follows_physical_time_and_counts_when_frozen() {
        let hlc = Hlc::new(HlcConfig::default());
        let pt = Fixed(Cell::new(1000));
        assert_eq!(hlc.now(&pt), Ok(ts(1000, 0)));
        assert_eq!(hlc.now(&pt), Ok(ts(1000, 1)));
        assert_eq!(hlc.now(&pt), Ok(ts(1000, 2)));
        pt.0.set(1001);
        assert_eq!(hlc.now(&pt), Ok(ts(1001, 0)));
    }

    #[test]
    fn now_ignores_backward_physical_jumps() {
        let hlc = Hlc::new(HlcConfig::default());
        let pt = Fixed(Cell::new(5000));
        assert_eq!(hlc.now(&pt), Ok(ts(5000, 0)));
        pt.0.set(10);
        assert_eq!(hlc.now(&pt), Ok(ts(5000, 1)));
        assert_eq!(hlc.last(), ts(5000, 1));
    }

    #[test]
    fn update_applies_each_receive_case() {
        let pt = Fixed(Cell::new(100));
        let config = HlcConfig::default();
        // l' == l == l_m: max(c, c_m) + 1.
        let hlc = Hlc::starting_after(ts(200, 3), config);
        assert_eq!(hlc.update(ts(200, 7), &pt), Ok(ts(200, 8)));
        // l' == l only: c + 1.
        assert_eq!(hlc.update(ts(150, 9), &pt), Ok(ts(200, 9)));
        // l' == l_m only: c_m + 1.
        assert_eq!(hlc.update(ts(300, 4), &pt), Ok(ts(300, 5)));
        // physical time wins: (pt, 0).
        pt.0.set(400);
        assert_eq!(hlc.update(ts(350, 9), &pt), Ok(ts(400, 0)));
    }

    #[test]
    fn logical_overflow_carries_into_millis() {
        let pt = Fixed(Cell::new(50));
        let hlc = Hlc::starting_after(ts(50, HLC_MAX_LOGICAL - 1), HlcConfig::default());
        assert_eq!(hlc.now(&pt), Ok(ts(50, HLC_MAX_LOGICAL)));
        assert_eq!(hlc.now(&pt), Ok(ts(51, 0)));
        // Same through update with a remote at the top of its counter.
        let hlc = Hlc::new(HlcConfig::default());
        assert_eq!(hlc.update(ts(50, HLC_MAX_LOGICAL), &pt), Ok(ts(51, 0)));
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let pt = Fixed(Cell::new(HLC_MAX_MILLIS));
        let hlc = Hlc::starting_after(HlcTimestamp::MAX, HlcConfig::default());
        assert_eq!(hlc.now(&pt), Err(HlcError::Exhausted));
        assert_eq!(hlc.update(ts(1, 0), &pt), Err(HlcError::Exhausted));
        assert_eq!(hlc.last(), HlcTimestamp::MAX);
        let hlc = Hlc::new(HlcConfig::default());
        assert_eq!(hlc.update(HlcTimestamp::MAX, &pt), Err(HlcError::Exhausted));
        assert_eq!(hlc.last(), HlcTimestamp::ZERO);
    }

    #[test]
    fn physical_time_beyond_range_is_refused() {
        let pt = Fixed(Cell::new(HLC_MAX_MILLIS + 1));
        let hlc = Hlc::new(HlcConfig::default());
        let expected = Err(HlcError::PhysicalTimeOutOfRange {
            physical_millis: HLC_MAX_MILLIS + 1,
        });
        assert_eq!(hlc.now(&pt), expected);
        assert_eq!(hlc.update(ts(1, 0), &pt), expected);
        assert_eq!(hlc.last(), HlcTimestamp::ZERO);
    }

    #[test]
    fn remote_beyond_max_offset_is_refused_counted_and_not_adopted() {
        let pt = Fixed(Cell::new(10_000));
        let hlc = Hlc::new(HlcConfig {
            max_offset_millis: 250,
        });
        assert_eq!(hlc.now(&pt), Ok(ts(10_000, 0)));
        // Exactly at the bound: accepted.
        assert_eq!(hlc.update(ts(10_250, 0), &pt), Ok(ts(10_250, 1)));
        // One millisecond beyond: refused.
        let far = ts(10_251, 0);
        assert_eq!(
            hlc.update(far, &pt),
            Err(HlcError::RemoteTooFarAhead {
                remote: far,
                physical_millis: 10_000,
                max_offset_millis: 250,
            })
        );
        assert_eq!(hlc.skew_rejections(), 1);
        assert_eq!(hlc.last(), ts(10_250, 1));
        assert_eq!(
            hlc.update(HlcTimestamp::MAX, &pt).unwrap_err(),
            HlcError::RemoteTooFarAhead {
                remote: HlcTimestamp::MAX,
                physical_millis: 10_000,
                max_offset_millis: 250,
            }
        );
        assert_eq!(hlc.skew_rejections(), 2);
    }

    #[test]
    fn errors_display() {
        let text = std::format!(
            "{}",
            HlcError::PhysicalTimeOutOfRange { physical_millis: 9 }
        );
        assert!(text.contains("9 ms"), "{text}");
    }
}
