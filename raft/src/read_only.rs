//! ReadIndex bookkeeping (thesis §6.4): a leader records its commit index
//! for a read, confirms it is still leader with a heartbeat round to a
//! quorum, and only then releases the read. Requests are confirmed in order;
//! a quorum ack for a later round confirms every earlier one.

use crate::NodeId;
use alloc::collections::{BTreeSet, VecDeque};

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
    /// Heartbeat round (`read_seq`) that confirms it.
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
}

impl ReadOnly {
    /// Records an ack for round `seq` from `from`; returns the reads now
    /// confirmed given `quorum`, oldest first.
    pub(crate) fn ack(&mut self, seq: u64, from: NodeId, quorum: usize) -> VecDeque<PendingRead> {
        let Some(pos) = self.pending.iter().position(|read| read.seq == seq) else {
            return VecDeque::new();
        };
        let read = &mut self.pending[pos];
        read.acks.insert(from);
        if read.acks.len() < quorum {
            return VecDeque::new();
        }
        let rest = self.pending.split_off(pos + 1);
        core::mem::replace(&mut self.pending, rest)
    }
}
