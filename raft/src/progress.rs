//! What a leader knows about each follower's log (Raft Figure 2 `nextIndex`,
//! `matchIndex`), plus flow control in the style of etcd's `tracker`:
//! a follower is *probed* with one AppendEntries at a time until its match
//! point is found, then *replicated* to optimistically with up to
//! `max_inflight_msgs` messages in flight (thesis §10.2.2 pipelining).

use alloc::collections::VecDeque;

/// Flow-control state of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Match point unknown: one AppendEntries per heartbeat/response.
    Probe,
    /// Match point known: stream entries, bounded by the inflight window.
    Replicate,
    /// The follower needs a compacted entry: send the snapshot, one part
    /// (manifest piece or missing chunk) at a time (Raft §7), then probe
    /// from after it.
    Snapshot,
}

/// Bounded window of in-flight AppendEntries, each remembered by the last
/// index it carried.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    last_indexes: VecDeque<u64>,
    capacity: usize,
}

impl Inflights {
    pub(crate) fn new(capacity: usize) -> Inflights {
        Inflights {
            last_indexes: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.last_indexes.len() >= self.capacity
    }

    pub(crate) fn add(&mut self, last_index: u64) {
        assert!(
            !self.full(),
            "raft: inflight window overflow (capacity {})",
            self.capacity
        );
        self.last_indexes.push_back(last_index);
    }

    /// Frees every message whose entries are all acknowledged (`<= index`).
    pub(crate) fn free_to(&mut self, index: u64) {
        while self.last_indexes.front().is_some_and(|&last| last <= index) {
            self.last_indexes.pop_front();
        }
    }

    pub(crate) fn free_first(&mut self) {
        self.last_indexes.pop_front();
    }

    pub(crate) fn reset(&mut self) {
        self.last_indexes.clear();
    }
}

/// Leader's view of one peer.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known replicated on the peer.
    pub matched: u64,
    /// Next index to send.
    pub next: u64,
    /// Probe or replicate.
    pub state: ProgressState,
    /// In probe state: an AppendEntries is outstanding, wait before the next.
    pub(crate) probe_sent: bool,
    pub(crate) inflights: Inflights,
    /// Heard from since the last check-quorum round (thesis §6.2).
    pub recent_active: bool,
    /// `recent_active` as it was when the last check-quorum round ended.
    pub(crate) active_last_round: bool,
    /// Leader tick at which the newest heartbeat this peer acked was sent
    /// (start of its lease promise), if any in this term.
    pub(crate) lease_acked_at: Option<u64>,
    /// In snapshot state: index of the snapshot being sent.
    pub snapshot_index: u64,
    /// In snapshot state: what the follower last asked for.
    pub(crate) snapshot_want: crate::snapshot::SnapshotWant,
}

impl Progress {
    pub(crate) fn new(next: u64, max_inflight: usize) -> Progress {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(max_inflight),
            recent_active: false,
            active_last_round: false,
            lease_acked_at: None,
            snapshot_index: 0,
            snapshot_want: Default::default(),
        }
    }

    /// Starts sending the snapshot at `index` from its manifest's start.
    pub(crate) fn become_snapshot(&mut self, index: u64) {
        self.state = ProgressState::Snapshot;
        self.snapshot_index = index;
        self.snapshot_want = Default::default();
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflights.reset();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflights.reset();
    }

    /// Whether sending must wait (probe outstanding or window full).
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
        }
    }

    /// Records an AppendEntries carrying entries up to `last` (or none).
    pub(crate) fn sent_append(&mut self, last: Option<u64>) {
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last {
                    self.next = last + 1;
                    self.inflights.add(last);
                }
            }
            ProgressState::Probe | ProgressState::Snapshot => self.probe_sent = true,
        }
    }

    /// A successful AppendResponse for `index`; returns whether it was news.
    pub(crate) fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index + 1);
        updated
    }

    /// A rejected AppendResponse for `rejected` with backtracking hint
    /// `match_hint`; returns false if the rejection is stale.
    pub(crate) fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched + 1;
            return true;
        }
        if self.next.saturating_sub(1) != rejected {
            return false;
        }
        self.next = rejected
            .min(match_hint.saturating_add(1))
            .max(self.matched + 1);
        self.probe_sent = false;
        true
    }
}
