//! Read bookkeeping (thesis §6.4).
//!
//! Every heartbeat broadcast is a numbered *round* (`read_seq`); followers
//! echo the number. An ack for round `s` proves the sender still accepted
//! this leader after round `s` was sent, so it confirms every read
//! registered at or before `s` (ReadIndex), and it starts a *lease promise*
//! at the round's send time: the follower will not vote for anyone else for
//! an election timeout after receiving it (check-quorum rule). A quorum of
//! such promises lets a leader answer reads locally (lease reads, thesis
//! §6.4.1) for somewhat less than an election timeout, shortened by the
//! configured clock-drift bound.

use crate::NodeId;
use alloc::collections::{BTreeSet, VecDeque};

/// Heartbeat rounds remembered for lease accounting; acks of older rounds
/// are still good for ReadIndex but no longer extend the lease.
pub const MAX_TRACKED_HEARTBEAT_ROUNDS: usize = 64;

/// A read that may be served once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// Commit index at the time leadership was confirmed.
    pub index: u64,
    /// Caller's request id from [`crate::Raft::read_index`].
    pub ctx: u64,
}

/// A read waiting for its heartbeat round.
#[derive(Clone, Debug)]
pub(crate) struct PendingRead {
    /// Heartbeat round sent when the read was registered.
    pub(crate) seq: u64,
    pub(crate) ctx: u64,
    pub(crate) index: u64,
    /// Node that asked (the leader itself or a forwarding follower).
    pub(crate) requester: NodeId,
    pub(crate) acks: BTreeSet<NodeId>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ReadOnly {
    pub(crate) pending: VecDeque<PendingRead>,
    /// (round, leader tick when sent), oldest first.
    pub(crate) rounds: VecDeque<(u64, u64)>,
}

impl ReadOnly {
    pub(crate) fn record_round(&mut self, seq: u64, sent_at_tick: u64) {
        if self.rounds.len() >= MAX_TRACKED_HEARTBEAT_ROUNDS {
            self.rounds.pop_front();
        }
        self.rounds.push_back((seq, sent_at_tick));
    }

    /// Leader tick at which round `seq` was sent, if still tracked.
    pub(crate) fn round_sent_at(&self, seq: u64) -> Option<u64> {
        self.rounds
            .iter()
            .find(|(s, _)| *s == seq)
            .map(|(_, at)| *at)
    }

    /// Records an ack for round `seq` from `from`; returns the reads now
    /// confirmed by a quorum, oldest first.
    pub(crate) fn ack(&mut self, seq: u64, from: NodeId, quorum: usize) -> VecDeque<PendingRead> {
        for read in self.pending.iter_mut().filter(|read| read.seq <= seq) {
            read.acks.insert(from);
        }
        // Earlier reads hold a superset of the acks of later ones.
        let confirmed = self
            .pending
            .iter()
            .take_while(|read| read.acks.len() >= quorum)
            .count();
        let rest = self.pending.split_off(confirmed);
        core::mem::replace(&mut self.pending, rest)
    }
}
