//! The per-sender anti-replay window (the IPsec scheme of RFC 4303 §3.4.3,
//! as WireGuard uses it), extended with the sender's boot epoch.
//!
//! A sender numbers its messages to one receiver 1, 2, 3, … within a boot
//! epoch. The receiver remembers the highest sequence number accepted and a
//! bitmap of which of the [`REPLAY_WINDOW_BITS`] numbers at and below it were
//! seen. A message is fresh if its number is above the top, or inside the
//! window and not yet seen; reordering within the window is tolerated, a
//! duplicate or anything older than the window is refused.
//!
//! Epochs order whole streams: a higher epoch means the peer restarted, so the
//! window resets to that epoch; a lower epoch is a stale or replayed stream
//! and always refused. `check` never mutates: the caller verifies the
//! authenticator first and only then `commit`s, so a forgery cannot move the
//! window.

use core::fmt;

/// Width of the window. 128 tolerates a burst of 128 reordered messages
/// from one peer; UDP through one switch reorders far less.
pub const REPLAY_WINDOW_BITS: u64 = 128;

/// The replay state kept for one sender.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Epoch of the stream being tracked (0 before the first message).
    epoch: u64,
    /// Highest sequence number accepted in `epoch` (0: none yet).
    top: u64,
    /// Bit i set: sequence number `top - i` was accepted.
    seen: u128,
}

/// Why a (epoch, sequence) pair is not fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Already accepted once.
    Replayed,
    /// Older than the window: cannot tell, so refused.
    TooOld,
    /// From an epoch below the one already seen for this sender.
    StaleEpoch {
        /// The epoch already seen.
        current: u64,
        /// The datagram's.
        got: u64,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Replayed => write!(f, "sequence number already seen"),
            ReplayError::TooOld => write!(f, "sequence number older than the replay window"),
            ReplayError::StaleEpoch { current, got } => {
                write!(f, "epoch {got} is older than current epoch {current}")
            }
        }
    }
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub fn new() -> ReplayWindow {
        ReplayWindow::default()
    }

    /// The epoch currently tracked.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The highest sequence number accepted in the current epoch.
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Whether (epoch, seq) would be accepted. Does not record it.
    pub fn check(&self, epoch: u64, seq: u64) -> Result<(), ReplayError> {
        if epoch < self.epoch {
            return Err(ReplayError::StaleEpoch {
                current: self.epoch,
                got: epoch,
            });
        }
        if epoch > self.epoch || seq > self.top {
            return Ok(());
        }
        let age = self.top - seq;
        if age >= REPLAY_WINDOW_BITS {
            return Err(ReplayError::TooOld);
        }
        if self.seen & (1u128 << age) != 0 {
            return Err(ReplayError::Replayed);
        }
        Ok(())
    }

    /// Records (epoch, seq) as accepted. The caller must have `check`ed it.
    pub fn commit(&mut self, epoch: u64, seq: u64) {
        assert!(
            self.check(epoch, seq).is_ok(),
            "replay window commit of a refused (epoch, seq)"
        );
        if epoch > self.epoch {
            self.epoch = epoch;
            self.top = seq;
            self.seen = 1;
        } else if seq > self.top {
            let shift = seq - self.top;
            self.seen = if shift >= REPLAY_WINDOW_BITS {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = seq;
        } else {
            self.seen |= 1u128 << (self.top - seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, epoch: u64, seq: u64) -> Result<(), ReplayError> {
        w.check(epoch, seq)?;
        w.commit(epoch, seq);
        Ok(())
    }

    #[test]
    fn in_order_then_duplicate() {
        let mut w = ReplayWindow::new();
        for seq in 1..=300 {
            accept(&mut w, 1, seq).unwrap();
        }
        assert_eq!(accept(&mut w, 1, 300), Err(ReplayError::Replayed));
        assert_eq!(accept(&mut w, 1, 173), Err(ReplayError::Replayed));
        assert_eq!(accept(&mut w, 1, 172), Err(ReplayError::TooOld));
    }

    #[test]
    fn reorder_within_window_is_accepted_once() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 1, 200).unwrap();
        for seq in (73..200).rev() {
            accept(&mut w, 1, seq).unwrap();
        }
        for seq in 73..=200 {
            assert_eq!(accept(&mut w, 1, seq), Err(ReplayError::Replayed));
        }
        assert_eq!(accept(&mut w, 1, 72), Err(ReplayError::TooOld));
    }

    #[test]
    fn big_jump_clears_the_window() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 1, 5).unwrap();
        accept(&mut w, 1, 5 + 1000).unwrap();
        assert_eq!(accept(&mut w, 1, 5), Err(ReplayError::TooOld));
        accept(&mut w, 1, 1000).unwrap();
    }

    #[test]
    fn epochs_reset_forward_and_refuse_backward() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 3, 500).unwrap();
        // Restarted peer: numbering starts again.
        accept(&mut w, 4, 1).unwrap();
        assert_eq!(w.epoch(), 4);
        assert_eq!(w.top(), 1);
        assert_eq!(
            accept(&mut w, 3, 501),
            Err(ReplayError::StaleEpoch { current: 4, got: 3 })
        );
        assert_eq!(accept(&mut w, 4, 1), Err(ReplayError::Replayed));
    }

    #[test]
    fn failed_check_leaves_state_untouched() {
        let mut w = ReplayWindow::new();
        accept(&mut w, 2, 10).unwrap();
        let before = w;
        assert!(w.check(1, 11).is_err());
        assert!(w.check(2, 10).is_err());
        assert_eq!(w, before);
    }
}
