//! Where a leader's entry spends its time: per-entry stage timestamps
//! (issue #15, "measure first").
//!
//! For each entry this node proposes as leader, the time of each stage on
//! its way to the client: **proposed** (appended to the leader's log),
//! **sent** (its first AppendEntries handed to the network), **persisted**
//! (the leader's own write and flush returned), **first ack** (the first
//! follower's successful AppendResponse covering it stepped), **committed**
//! (it appeared in a Ready's committed entries), **applied** (the bank
//! applied it), **replied** (the client reply was handed over; only when
//! this node is the one the client asked). A finished entry becomes a
//! [`StageSample`] of offsets from `proposed`, which the kernel folds into
//! `/metrics` histograms.
//!
//! Time comes from a clock function the caller installs
//! ([`crate::Node::set_stage_clock`]; the kernel's monotonic µs): the node
//! stays deterministic and host-testable, and without a clock nothing is
//! tracked. Bounds: at most [`TRACKED_ENTRIES`] entries in flight (older
//! ones are dropped and counted) and [`MAX_STAGE_SAMPLES`] finished samples
//! waiting to be taken.

use alloc::collections::{BTreeMap, VecDeque};

/// Entries tracked at once; a proposal beyond it evicts the oldest.
pub const TRACKED_ENTRIES: usize = 512;
/// Finished samples kept for the caller; beyond it the oldest is dropped.
pub const MAX_STAGE_SAMPLES: usize = 1024;

/// The stage times of one entry, as offsets in µs after it was proposed
/// (`None`: the stage did not happen on this node, e.g. a forwarded
/// write's reply, which its origin sends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageSample {
    /// The entry's log index.
    pub index: u64,
    /// Its first AppendEntries left.
    pub sent: Option<u64>,
    /// The leader's own write and flush returned.
    pub persisted: Option<u64>,
    /// The first follower acknowledged it.
    pub first_ack: Option<u64>,
    /// It was committed (seen in a Ready).
    pub committed: Option<u64>,
    /// The bank applied it.
    pub applied: Option<u64>,
    /// Its client reply was handed over.
    pub replied: Option<u64>,
}

/// Stage tracking (see the module doc).
pub(crate) struct Stages {
    clock: Option<fn() -> u64>,
    /// index -> (proposed at µs, sample so far).
    open: BTreeMap<u64, (u64, StageSample)>,
    done: VecDeque<StageSample>,
    /// Entries dropped before they finished (bound reached, truncated).
    pub(crate) dropped: u64,
}

impl Stages {
    pub(crate) fn new() -> Stages {
        Stages {
            clock: None,
            open: BTreeMap::new(),
            done: VecDeque::new(),
            dropped: 0,
        }
    }

    pub(crate) fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = Some(clock);
    }

    fn now(&self) -> Option<u64> {
        self.clock.map(|c| c())
    }

    pub(crate) fn proposed(&mut self, first: u64, last: u64) {
        let Some(now) = self.now() else { return };
        for index in first..=last {
            // A re-proposal at an index (after a truncation) starts over.
            let sample = StageSample {
                index,
                ..StageSample::default()
            };
            self.open.insert(index, (now, sample));
        }
        while self.open.len() > TRACKED_ENTRIES {
            self.open.pop_first();
            self.dropped += 1;
        }
    }

    /// Records `stage` at now for every tracked entry in `first..=last`
    /// that has not reached it yet.
    pub(crate) fn mark(
        &mut self,
        first: u64,
        last: u64,
        stage: fn(&mut StageSample) -> &mut Option<u64>,
    ) {
        if first > last || self.open.is_empty() {
            return;
        }
        let Some(now) = self.now() else { return };
        for (_, (at, sample)) in self.open.range_mut(first..=last) {
            let slot = stage(sample);
            if slot.is_none() {
                *slot = Some(now.saturating_sub(*at));
            }
        }
    }

    /// The entry's life on this node ended (applied, and replied if this
    /// node answers it): it becomes a sample.
    pub(crate) fn finish(&mut self, index: u64) {
        if let Some((_, sample)) = self.open.remove(&index) {
            if self.done.len() == MAX_STAGE_SAMPLES {
                self.done.pop_front();
                self.dropped += 1;
            }
            self.done.push_back(sample);
        }
    }

    /// Entries at or after `from` were truncated: forget them.
    pub(crate) fn truncated(&mut self, from: u64) {
        let gone = self.open.split_off(&from);
        self.dropped += gone.len() as u64;
    }

    pub(crate) fn take(&mut self) -> VecDeque<StageSample> {
        core::mem::take(&mut self.done)
    }
}
