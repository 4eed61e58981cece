//! Lamport logical clock (Lamport 1978, "Time, Clocks, and the Ordering of
//! Events in a Distributed System", rules IR1 and IR2).
//!
//! * IR1: every local event advances the clock: [`LamportClock::tick`]
//!   (`send` is a tick whose value is stamped on the outgoing message).
//! * IR2: on receipt of a message stamped `remote`, the clock becomes
//!   `max(local, remote) + 1`: [`LamportClock::recv`].
//!
//! The clock is one [`AtomicWord`] used through `&self`, so any number of
//! cores and interrupt handlers may share it. `tick` is a single `lock
//! xadd`; `recv` is a `lock cmpxchg` retry loop. Every call returns a value
//! no other call on the same clock returns, and values returned by calls
//! that are ordered in time increase.
//!
//! # Overflow
//!
//! The counter is a `u64` and never wraps silently. Two bounds keep it far
//! from the top:
//! * [`LAMPORT_REMOTE_MAX`] (2^62): `recv` refuses a larger remote value
//!   with [`LamportError::RemoteOutOfRange`] and leaves the clock untouched.
//!   A correct peer cannot reach 2^62 (that is 146 years of events at one
//!   per nanosecond), so such a value is corruption or a bug; the caller
//!   drops the message and counts the error.
//! * [`LAMPORT_LIMIT`] (2^63): the largest value the clock ever returns.
//!   Getting there from at most 2^62 takes another 2^62 local events, so it
//!   cannot happen in practice; if it does, `tick`/`send`/`recv` panic (the
//!   node halts loudly) instead of returning a value that breaks ordering.
//!   `lock xadd` cannot wrap the stored word before that check fires,
//!   because that would need 2^63 further concurrent increments.

use core::fmt;

use crate::atomic::AtomicWord;

/// Largest remote timestamp [`LamportClock::recv`] accepts.
pub const LAMPORT_REMOTE_MAX: u64 = 1 << 62;

/// Largest value a [`LamportClock`] ever returns; reaching beyond it panics.
pub const LAMPORT_LIMIT: u64 = 1 << 63;

/// Why a Lamport operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LamportError {
    /// A received timestamp is above [`LAMPORT_REMOTE_MAX`]; it was not
    /// adopted.
    RemoteOutOfRange {
        /// The refused timestamp.
        remote: u64,
    },
    /// A starting value above [`LAMPORT_LIMIT`] was requested.
    StartOutOfRange {
        /// The refused starting value.
        start: u64,
    },
}

impl fmt::Display for LamportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemoteOutOfRange { remote } => write!(
                f,
                "remote Lamport timestamp {remote} exceeds the accepted maximum {LAMPORT_REMOTE_MAX}"
            ),
            Self::StartOutOfRange { start } => write!(
                f,
                "Lamport starting value {start} exceeds the limit {LAMPORT_LIMIT}"
            ),
        }
    }
}

/// A Lamport clock shared through `&self`.
#[derive(Debug)]
pub struct LamportClock {
    /// The last value handed out (0 before the first event).
    counter: AtomicWord,
}

impl Default for LamportClock {
    fn default() -> Self {
        Self::new()
    }
}

impl LamportClock {
    /// A clock whose first event is stamped 1.
    pub const fn new() -> Self {
        Self {
            counter: AtomicWord::new(0),
        }
    }

    /// A clock resuming after `start` (e.g. the highest value persisted
    /// before a restart): the next event is stamped `start + 1`.
    pub fn starting_after(start: u64) -> Result<Self, LamportError> {
        if start > LAMPORT_LIMIT {
            return Err(LamportError::StartOutOfRange { start });
        }
        Ok(Self {
            counter: AtomicWord::new(start),
        })
    }

    /// The last value handed out, without advancing (for status pages and
    /// persistence; a concurrent call may already have moved past it).
    pub fn current(&self) -> u64 {
        self.counter.load()
    }

    /// IR1: stamps a local event. One `lock xadd`.
    ///
    /// # Panics
    /// If the clock would pass [`LAMPORT_LIMIT`] (see the module docs: not
    /// reachable in practice, and never silently wrapped).
    #[inline]
    pub fn tick(&self) -> u64 {
        let previous = self.counter.fetch_add(1);
        assert!(
            previous < LAMPORT_LIMIT,
            "Lamport clock exhausted: {previous} reached the limit {LAMPORT_LIMIT}"
        );
        previous + 1
    }

    /// IR1 for a send: the returned value goes on the outgoing message.
    #[inline]
    pub fn send(&self) -> u64 {
        self.tick()
    }

    /// IR2: merges the timestamp of a received message and stamps the
    /// receive event with `max(local, remote) + 1`. One `lock cmpxchg`
    /// retry loop.
    ///
    /// # Errors
    /// [`LamportError::RemoteOutOfRange`] if `remote > LAMPORT_REMOTE_MAX`;
    /// the clock is then unchanged and the message must be dropped.
    ///
    /// # Panics
    /// If the clock would pass [`LAMPORT_LIMIT`] (not reachable in practice).
    #[inline]
    pub fn recv(&self, remote: u64) -> Result<u64, LamportError> {
        if remote > LAMPORT_REMOTE_MAX {
            return Err(LamportError::RemoteOutOfRange { remote });
        }
        let installed = self.counter.update(|local| {
            let merged = local.max(remote);
            assert!(
                merged < LAMPORT_LIMIT,
                "Lamport clock exhausted: {merged} reached the limit {LAMPORT_LIMIT}"
            );
            Ok::<u64, core::convert::Infallible>(merged + 1)
        });
        match installed {
            Ok(value) => Ok(value),
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_counts_from_one() {
        let clock = LamportClock::new();
        assert_eq!(clock.tick(), 1);
        assert_eq!(clock.send(), 2);
        assert_eq!(clock.tick(), 3);
        assert_eq!(clock.current(), 3);
    }

    #[test]
    fn recv_takes_max_plus_one() {
        let clock = LamportClock::new();
        assert_eq!(clock.recv(10), Ok(11));
        // Older remote: local wins.
        assert_eq!(clock.recv(3), Ok(12));
        // Equal remote still advances.
        assert_eq!(clock.recv(12), Ok(13));
        assert_eq!(clock.tick(), 14);
    }

    #[test]
    fn recv_refuses_out_of_range_remote_without_adopting_it() {
        let clock = LamportClock::starting_after(5).unwrap();
        assert_eq!(
            clock.recv(LAMPORT_REMOTE_MAX + 1),
            Err(LamportError::RemoteOutOfRange {
                remote: LAMPORT_REMOTE_MAX + 1
            })
        );
        assert_eq!(
            clock.recv(u64::MAX),
            Err(LamportError::RemoteOutOfRange { remote: u64::MAX })
        );
        assert_eq!(clock.current(), 5);
        assert_eq!(clock.recv(LAMPORT_REMOTE_MAX), Ok(LAMPORT_REMOTE_MAX + 1));
    }

    #[test]
    fn starting_after_resumes_and_bounds_start() {
        let clock = LamportClock::starting_after(99).unwrap();
        assert_eq!(clock.tick(), 100);
        assert_eq!(
            LamportClock::starting_after(LAMPORT_LIMIT + 1).unwrap_err(),
            LamportError::StartOutOfRange {
                start: LAMPORT_LIMIT + 1
            }
        );
    }

    #[test]
    fn tick_reaches_the_limit_exactly() {
        let clock = LamportClock::starting_after(LAMPORT_LIMIT - 1).unwrap();
        assert_eq!(clock.tick(), LAMPORT_LIMIT);
    }

    #[test]
    #[should_panic(expected = "Lamport clock exhausted")]
    fn tick_past_the_limit_halts_instead_of_wrapping() {
        let clock = LamportClock::starting_after(LAMPORT_LIMIT).unwrap();
        clock.tick();
    }

    #[test]
    #[should_panic(expected = "Lamport clock exhausted")]
    fn recv_past_the_limit_halts_instead_of_wrapping() {
        let clock = LamportClock::starting_after(LAMPORT_LIMIT).unwrap();
        let _ = clock.recv(1);
    }

    #[test]
    fn errors_display() {
        let text = std::format!("{}", LamportError::RemoteOutOfRange { remote: 7 });
        assert!(text.contains("7"), "{text}");
    }
}
