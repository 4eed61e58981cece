//! The fault plan of one directed link (port `from` → port `to`).
//!
//! Every field defaults to "no fault", so a fresh fabric is a perfect switch.
//! Each frame crossing a link draws its random decisions from that link's own
//! seeded generators in a fixed order (drop, duplicate, reorder, jitter; then,
//! from a second generator, corrupt, byte position, byte mask, replay, replayed
//! frame), so the k-th frame on a link meets the same fate in every run with
//! the same seed, whatever the other links carry. The second generator keeps
//! the first one's stream (and so every older seed's schedule) unchanged.

use serde::{Deserialize, Serialize};

/// Largest fixed delay or jitter accepted (milliseconds): a minute is far
/// beyond any Raft timeout, larger values are a typo.
pub const MAX_DELAY_MS: u64 = 60_000;

/// Faults applied to frames crossing one directed link.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkFaults {
    /// Probability in [0, 1] that a frame is silently dropped.
    /// Default 0. Raise it (0.01–0.3) to test retransmission and elections
    /// under loss; 1.0 is a one-way cut (prefer a partition for that).
    pub drop: f64,
    /// Fixed delay added to every frame, in milliseconds. Default 0. Use it to
    /// model a WAN link or a slow replica (e.g. 20–200 ms) and check that
    /// timeouts scale.
    pub delay_ms: u64,
    /// Extra random delay, uniform in [0, jitter_ms] per frame. Default 0.
    /// Jitter larger than the gap between frames reorders them naturally.
    pub jitter_ms: u64,
    /// Probability in [0, 1] that a frame is delivered twice (the copy right
    /// after the original). Default 0. Use it to check idempotent handling of
    /// Raft messages and replay rejection.
    pub dup: f64,
    /// Probability in [0, 1] that a frame is held back and released right
    /// after the next frame on the same link (so the two swap places), or
    /// after `hold_ms` if no other frame comes. At most one frame per link is
    /// held at a time. Default 0.
    pub reorder: f64,
    /// How long a held-back frame waits for a successor, in milliseconds.
    /// Default 0 means [`DEFAULT_HOLD_MS`]; raise it for slow TCG guests whose
    /// messages are far apart, lower it to bound the added latency.
    pub hold_ms: u64,
    /// Probability in [0, 1] that one byte of an IPv4/UDP frame's payload is
    /// rewritten (XOR with a random non-zero mask) and the UDP checksum fixed
    /// up, so the frame passes the guest's IP and UDP checks and reaches its
    /// message authentication, which must reject it: a peer whose messages
    /// are corrupted after their MAC was computed. Other frames (ARP, non-UDP)
    /// pass untouched. Default 0.
    pub corrupt: f64,
    /// Probability in [0, 1] that, besides the frame itself, an earlier frame
    /// of the same link (one of the last [`REPLAY_HISTORY_FRAMES`], picked at
    /// random) is sent again right after it: a replay attack or a confused
    /// retransmitting switch. Default 0.
    pub replay: f64,
}

/// Frames remembered per link for `replay` (only while its `replay` is
/// non-zero): enough to replay messages from a few heartbeats back.
pub const REPLAY_HISTORY_FRAMES: usize = 16;

/// Hold time used when `hold_ms` is 0: long enough for a follow-up message
/// under TCG, short compared with election timeouts.
pub const DEFAULT_HOLD_MS: u64 = 50;

impl LinkFaults {
    /// Checks ranges; the message names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("drop", self.drop),
            ("dup", self.dup),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
            ("replay", self.replay),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability in [0, 1], got {p}"));
            }
        }
        for (name, ms) in [
            ("delay_ms", self.delay_ms),
            ("jitter_ms", self.jitter_ms),
            ("hold_ms", self.hold_ms),
        ] {
            if ms > MAX_DELAY_MS {
                return Err(format!("{name} must be at most {MAX_DELAY_MS}, got {ms}"));
            }
        }
        Ok(())
    }

    /// Whether this plan changes anything.
    pub fn is_clean(&self) -> bool {
        *self == LinkFaults::default()
    }

    /// Effective hold time in microseconds.
    pub fn hold_us(&self) -> u64 {
        let ms = if self.hold_ms == 0 {
            DEFAULT_HOLD_MS
        } else {
            self.hold_ms
        };
        ms * 1000
    }
}
