//! Per-peer clock-offset estimates from message round trips, for the status
//! page and for spotting a node whose clock is drifting towards the HLC's
//! `max_offset` before it starts having messages refused.
//!
//! One exchange gives four times (NTP, RFC 5905 §8): `t0` request sent
//! (local clock), `t1` request received (peer clock), `t2` reply sent (peer
//! clock), `t3` reply received (local clock). Then
//!
//! ```text
//! offset = ((t1 - t0) + (t2 - t3)) / 2      peer clock minus local clock
//! rtt    = (t3 - t0) - (t2 - t1)            network round trip
//! ```
//!
//! and the true offset lies within `offset ± rtt / 2`. As in NTP's clock
//! filter (RFC 5905 §10), the estimate reported for a peer is the sample
//! with the smallest round trip among the last [`OFFSET_WINDOW`] samples:
//! it has the tightest error bound.
//!
//! All times are microseconds (wall time since the Unix epoch): round trips
//! on a LAN are well below the HLC's millisecond resolution. The table is
//! fixed-size — [`MAX_PEERS`] slots of [`OFFSET_WINDOW`] samples — and
//! indexed by a small node id, so a peer cannot make it grow. It is owned
//! by one task (`&mut self`), not shared.

use core::fmt;

/// Number of peers the table can track; node ids are `0..MAX_PEERS`.
/// 16 covers the 3- and 5-node clusters with room for membership changes.
pub const MAX_PEERS: usize = 16;

/// Number of most recent samples kept per peer for the minimum-RTT filter
/// (RFC 5905 §10 uses 8).
pub const OFFSET_WINDOW: usize = 8;

/// A node id small enough to index the table (`< MAX_PEERS`).
pub type PeerId = u8;

/// The four times of one request/reply exchange, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundTrip {
    /// `t0`: local time the request was sent.
    pub request_sent: u64,
    /// `t1`: peer time the request was received.
    pub request_received: u64,
    /// `t2`: peer time the reply was sent.
    pub reply_sent: u64,
    /// `t3`: local time the reply was received.
    pub reply_received: u64,
}

/// Offset and round trip of one exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffsetSample {
    /// Peer clock minus local clock, microseconds (positive: peer ahead).
    pub offset_micros: i64,
    /// Network round-trip time, microseconds.
    pub rtt_micros: u64,
}

impl OffsetSample {
    /// Half the round trip: the true offset is within
    /// `offset_micros ± error_bound_micros()`.
    pub fn error_bound_micros(&self) -> u64 {
        self.rtt_micros.div_ceil(2)
    }
}

/// Why a round trip could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetError {
    /// The node id is not below [`MAX_PEERS`].
    PeerIdOutOfRange {
        /// The refused id.
        peer: PeerId,
    },
    /// `t3 < t0`: the local clock went backwards during the exchange.
    LocalTimeWentBackwards,
    /// `t2 < t1`: the peer's clock went backwards during the exchange.
    PeerTimeWentBackwards,
    /// The peer claims to have held the request longer than the whole
    /// round trip took locally (`t2 - t1 > t3 - t0`): the clocks' rates
    /// disagree or a time is corrupt.
    NegativeRoundTrip,
    /// The offset does not fit in an `i64` of microseconds.
    OffsetOutOfRange,
}

impl fmt::Display for OffsetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerIdOutOfRange { peer } => {
                write!(f, "peer id {peer} is not below the table size {MAX_PEERS}")
            }
            Self::LocalTimeWentBackwards => {
                write!(f, "local clock went backwards during the round trip")
            }
            Self::PeerTimeWentBackwards => {
                write!(f, "peer clock went backwards during the round trip")
            }
            Self::NegativeRoundTrip => {
                write!(f, "peer processing time exceeds the local round trip")
            }
            Self::OffsetOutOfRange => write!(f, "clock offset does not fit in 64 bits"),
        }
    }
}

impl RoundTrip {
    /// Computes offset and round trip (RFC 5905 §8), or says why the
    /// exchange is unusable. Total: any four values give `Ok` or `Err`.
    pub fn sample(&self) -> Result<OffsetSample, OffsetError> {
        let t0 = i128::from(self.request_sent);
        let t1 = i128::from(self.request_received);
        let t2 = i128::from(self.reply_sent);
        let t3 = i128::from(self.reply_received);
        if t3 < t0 {
            return Err(OffsetError::LocalTimeWentBackwards);
        }
        if t2 < t1 {
            return Err(OffsetError::PeerTimeWentBackwards);
        }
        let rtt = (t3 - t0) - (t2 - t1);
        if rtt < 0 {
            return Err(OffsetError::NegativeRoundTrip);
        }
        // i128 cannot overflow here: each term is within ±2^64.
        let offset = ((t1 - t0) + (t2 - t3)) / 2;
        let offset_micros = i64::try_from(offset).map_err(|_| OffsetError::OffsetOutOfRange)?;
        // rtt <= t3 - t0 <= u64::MAX, so it fits.
        let rtt_micros = u64::try_from(rtt).map_err(|_| OffsetError::OffsetOutOfRange)?;
        Ok(OffsetSample {
            offset_micros,
            rtt_micros,
        })
    }
}

/// What the status page shows for one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerOffset {
    /// Minimum-RTT sample among the last [`OFFSET_WINDOW`]: the estimate.
    pub best: OffsetSample,
    /// The most recent sample.
    pub latest: OffsetSample,
    /// Samples accepted since the table was created.
    pub accepted: u64,
    /// Exchanges refused as unusable (see [`OffsetError`]).
    pub rejected: u64,
}

/// Sample ring and counters of one peer.
#[derive(Clone, Copy, Debug, Default)]
struct PeerSlot {
    window: [OffsetSample; OFFSET_WINDOW],
    /// Valid entries in `window` (saturates at `OFFSET_WINDOW`).
    filled: usize,
    /// Index the next sample is written to.
    next: usize,
    accepted: u64,
    rejected: u64,
}

impl PeerSlot {
    /// Adds a sample and returns the updated estimate.
    fn push(&mut self, sample: OffsetSample) -> PeerOffset {
        self.window[self.next] = sample;
        self.next = (self.next + 1) % OFFSET_WINDOW;
        self.filled = (self.filled + 1).min(OFFSET_WINDOW);
        self.accepted = self.accepted.saturating_add(1);
        self.summary(sample)
    }

    fn estimate(&self) -> Option<PeerOffset> {
        let first = *self.window[..self.filled].first()?;
        Some(self.summary(first))
    }

    /// The estimate, given one sample known to be in the window.
    fn summary(&self, member: OffsetSample) -> PeerOffset {
        // The slots written so far are 0..filled (the ring only wraps once
        // it is full), so this never reads a default entry.
        let best = self.window[..self.filled].iter().fold(member, |best, s| {
            if s.rtt_micros < best.rtt_micros {
                *s
            } else {
                best
            }
        });
        PeerOffset {
            best,
            latest: self.window[(self.next + OFFSET_WINDOW - 1) % OFFSET_WINDOW],
            accepted: self.accepted,
            rejected: self.rejected,
        }
    }
}

/// Bounded table of per-peer offset estimates, indexed by [`PeerId`].
#[derive(Clone, Debug, Default)]
pub struct PeerOffsets {
    slots: [PeerSlot; MAX_PEERS],
}

impl PeerOffsets {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one exchange with `peer` and returns the updated estimate.
    ///
    /// # Errors
    /// [`OffsetError::PeerIdOutOfRange`] (nothing recorded), or why the
    /// exchange is unusable (counted in [`PeerOffset::rejected`]).
    pub fn record(&mut self, peer: PeerId, exchange: RoundTrip) -> Result<PeerOffset, OffsetError> {
        let slot = self
            .slots
            .get_mut(usize::from(peer))
            .ok_or(OffsetError::PeerIdOutOfRange { peer })?;
        match exchange.sample() {
            Ok(sample) => Ok(slot.push(sample)),
            Err(error) => {
                slot.rejected = slot.rejected.saturating_add(1);
                Err(error)
            }
        }
    }

    /// The estimate for `peer`, if it has at least one accepted sample.
    pub fn get(&self, peer: PeerId) -> Option<PeerOffset> {
        self.slots.get(usize::from(peer))?.estimate()
    }

    /// Every peer with at least one accepted sample, by id.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, PeerOffset)> + '_ {
        (0..MAX_PEERS).filter_map(move |index| {
            let peer = PeerId::try_from(index).ok()?;
            Some((peer, self.slots[index].estimate()?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(t0: u64, t1: u64, t2: u64, t3: u64) -> RoundTrip {
        RoundTrip {
            request_sent: t0,
            request_received: t1,
            reply_sent: t2,
            reply_received: t3,
        }
    }

    #[test]
    fn symmetric_path_gives_exact_offset() {
        // Peer 250 µs ahead, 100 µs each way, 30 µs processing.
        let sample = exchange(1_000, 1_350, 1_380, 1_230).sample().unwrap();
        assert_eq!(sample.offset_micros, 250);
        assert_eq!(sample.rtt_micros, 200);
        assert_eq!(sample.error_bound_micros(), 100);
        // Peer behind.
        let sample = exchange(10_000, 9_100, 9_100, 10_200).sample().unwrap();
        assert_eq!(sample.offset_micros, -1_000);
        assert_eq!(sample.rtt_micros, 200);
    }

    #[test]
    fn unusable_exchanges_are_refused() {
        assert_eq!(
            exchange(10, 0, 0, 9).sample(),
            Err(OffsetError::LocalTimeWentBackwards)
        );
        assert_eq!(
            exchange(0, 10, 9, 20).sample(),
            Err(OffsetError::PeerTimeWentBackwards)
        );
        assert_eq!(
            exchange(0, 0, 30, 20).sample(),
            Err(OffsetError::NegativeRoundTrip)
        );
        assert_eq!(
            exchange(0, u64::MAX, u64::MAX, 0).sample(),
            Err(OffsetError::OffsetOutOfRange)
        );
        assert_eq!(
            exchange(u64::MAX - 4, 0, 0, u64::MAX).sample(),
            Err(OffsetError::OffsetOutOfRange)
        );
        // Extreme but representable values do not overflow.
        let top = i64::MAX.unsigned_abs();
        assert_eq!(
            exchange(0, top, top, 0).sample(),
            Ok(OffsetSample {
                offset_micros: i64::MAX,
                rtt_micros: 0
            })
        );
    }

    #[test]
    fn estimate_is_minimum_rtt_sample_of_window() {
        let mut table = PeerOffsets::new();
        assert_eq!(table.get(2), None);
        table.record(2, exchange(0, 600, 600, 1_000)).unwrap(); // rtt 1000, offset 100
        let estimate = table.record(2, exchange(0, 160, 160, 200)).unwrap(); // rtt 200, offset 60
        assert_eq!(estimate.best.rtt_micros, 200);
        assert_eq!(estimate.best.offset_micros, 60);
        let estimate = table.record(2, exchange(0, 400, 400, 600)).unwrap(); // rtt 600
        assert_eq!(estimate.best.offset_micros, 60);
        assert_eq!(estimate.latest.rtt_micros, 600);
        assert_eq!(estimate.accepted, 3);
        // Push the good sample out of the window with worse ones.
        for _ in 0..OFFSET_WINDOW {
            table.record(2, exchange(0, 800, 800, 1_500)).unwrap(); // rtt 1500, offset 50
        }
        let estimate = table.get(2).unwrap();
        assert_eq!(estimate.best.rtt_micros, 1_500);
        assert_eq!(estimate.best.offset_micros, 50);
    }

    #[test]
    fn table_is_bounded_and_counts_rejections() {
        let mut table = PeerOffsets::new();
        let peer = u8::try_from(MAX_PEERS).unwrap();
        assert_eq!(
            table.record(peer, exchange(0, 1, 1, 2)),
            Err(OffsetError::PeerIdOutOfRange { peer })
        );
        assert_eq!(table.get(peer), None);
        assert_eq!(
            table.record(1, exchange(5, 0, 0, 4)),
            Err(OffsetError::LocalTimeWentBackwards)
        );
        assert_eq!(table.get(1), None);
        table.record(1, exchange(0, 1, 1, 2)).unwrap();
        table.record(3, exchange(0, 1, 1, 2)).unwrap();
        assert_eq!(table.get(1).unwrap().rejected, 1);
        let peers: std::vec::Vec<PeerId> = table.iter().map(|(peer, _)| peer).collect();
        assert_eq!(peers, [1, 3]);
    }
}
