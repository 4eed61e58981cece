//! The client-facing operations: proposals (batched), ReadIndex reads
//! (thesis §6.4) and leadership transfer (thesis §3.10).

use crate::config::{ReadOnlyOption, MAX_ENTRY_DATA_BYTES};
use crate::entry::EntryKind;
use crate::message::MessageBody;
use crate::raft::{Raft, Role};
use crate::storage::Storage;
use crate::{NodeId, NO_NODE};
use alloc::vec::Vec;
use core::fmt;
use core::ops::RangeInclusive;

/// Why a proposal was refused. Nothing was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Only the leader accepts proposals; `leader` is the known leader or
    /// [`NO_NODE`]. The caller forwards or retries.
    NotLeader {
        /// Known leader, or [`NO_NODE`].
        leader: NodeId,
    },
    /// A leadership transfer is in progress (thesis §3.10 step 1).
    TransferInProgress,
    /// Accepting would exceed `max_uncommitted_entries`.
    TooManyUncommitted,
    /// One proposal is larger than [`MAX_ENTRY_DATA_BYTES`].
    EntryTooLarge,
    /// The batch was empty.
    EmptyBatch,
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposeError::NotLeader { leader } if *leader == NO_NODE => {
                f.write_str("not leader; leader unknown")
            }
            ProposeError::NotLeader { leader } => write!(f, "not leader; leader is {leader}"),
            ProposeError::TransferInProgress => f.write_str("leadership transfer in progress"),
            ProposeError::TooManyUncommitted => f.write_str("too many uncommitted entries"),
            ProposeError::EntryTooLarge => {
                write!(f, "proposal larger than {MAX_ENTRY_DATA_BYTES} bytes")
            }
            ProposeError::EmptyBatch => f.write_str("empty proposal batch"),
        }
    }
}

/// Why a read could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadIndexError {
    /// No leader is known to forward the read to.
    NoLeader,
    /// More than `max_pending_reads` reads are waiting.
    TooManyPendingReads,
}

impl fmt::Display for ReadIndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadIndexError::NoLeader => "no known leader",
            ReadIndexError::TooManyPendingReads => "too many pending reads",
        })
    }
}

/// Why a leadership transfer could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Only the leader can transfer leadership.
    NotLeader,
    /// The target is this node (already leader).
    ToSelf,
    /// The target is not a voter.
    UnknownPeer,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransferError::NotLeader => "not leader",
            TransferError::ToSelf => "already leader",
            TransferError::UnknownPeer => "target is not a voter",
        })
    }
}

impl<S: Storage> Raft<S> {
    /// Proposes one entry; returns its log index. Committing is not
    /// guaranteed: watch committed entries for this index *and* term.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, ProposeError> {
        self.propose_batch([data]).map(|range| *range.end())
    }

    /// Proposes several entries at once; they are appended together and
    /// shipped in as few AppendEntries as the limits allow (proposals made
    /// before the next [`Raft::ready`] are broadcast together, too).
    pub fn propose_batch<I>(&mut self, batch: I) -> Result<RangeInclusive<u64>, ProposeError>
    where
        I: IntoIterator<Item = Vec<u8>>,
        I::IntoIter: ExactSizeIterator,
    {
        assert!(
            self.ready_in_flight.is_none(),
            "raft: propose called between ready() and advance()"
        );
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.lead_transferee.is_some() {
            return Err(ProposeError::TransferInProgress);
        }
        let batch: Vec<Vec<u8>> = batch.into_iter().collect();
        if batch.is_empty() {
            return Err(ProposeError::EmptyBatch);
        }
        if batch.iter().any(|data| data.len() > MAX_ENTRY_DATA_BYTES) {
            return Err(ProposeError::EntryTooLarge);
        }
        let uncommitted = self.log.last_index() - self.log.committed;
        if uncommitted + batch.len() as u64 > self.config.max_uncommitted_entries {
            return Err(ProposeError::TooManyUncommitted);
        }
        let first = self.log.last_index() + 1;
        let last = self.append_local(batch.into_iter().map(|data| (EntryKind::Normal, data)));
        self.pending_broadcast = true;
        Ok(first..=last)
    }

    /// Starts a linearizable read (thesis §6.4). When confirmed, a
    /// [`crate::ReadState`] with `ctx` appears in a Ready; serve the read once
    /// the state machine has applied its `index`. A follower forwards the
    /// request to its leader. A read may be silently dropped (leader change,
    /// lost message): callers retry after a timeout.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadIndexError> {
        assert!(
            self.ready_in_flight.is_none(),
            "raft: read_index called between ready() and advance()"
        );
        match self.role {
            Role::Leader => self.read_index_for(ctx, self.id),
            _ if self.leader != NO_NODE => {
                self.send(
                    self.leader,
                    self.term,
                    MessageBody::ReadIndexRequest { ctx },
                );
                Ok(())
            }
            _ => Err(ReadIndexError::NoLeader),
        }
    }

    pub(crate) fn read_index_for(
        &mut self,
        ctx: u64,
        requester: NodeId,
    ) -> Result<(), ReadIndexError> {
        // Thesis §6.4 step 1: the leader must have committed an entry of its
        // own term before its commit index is known to be up to date.
        if self.log.term(self.log.committed) != Some(self.term) {
            if self.waiting_reads.len() >= self.config.max_pending_reads {
                return Err(ReadIndexError::TooManyPendingReads);
            }
            self.waiting_reads.push((ctx, requester));
            return Ok(());
        }
        let index = self.log.committed;
        let lease_ok = self.config.read_only == ReadOnlyOption::LeaseBased && self.lease_valid();
        if self.conf.voters.len() == 1 || lease_ok {
            self.respond_read(ctx, index, requester);
            return Ok(());
        }
        if self.read_only.pending.len() >= self.config.max_pending_reads {
            return Err(ReadIndexError::TooManyPendingReads);
        }
        // Thesis §6.4 step 3: confirm leadership with a heartbeat round. All
        // reads registered before the next Ready share that round.
        let seq = self.read_seq + 1;
        let mut acks = alloc::collections::BTreeSet::new();
        acks.insert(self.id);
        self.read_only
            .pending
            .push_back(crate::read_only::PendingRead {
                seq,
                ctx,
                index,
                requester,
                acks,
            });
        self.read_round_due = true;
        Ok(())
    }

    /// Thesis §6.4.1: a quorum (counting this leader now) acked heartbeats
    /// sent within the last `lease_ticks`, so no other leader can have been
    /// elected yet. Never after this leader sent TimeoutNow.
    fn lease_valid(&self) -> bool {
        if self.role != Role::Leader || self.lease_void {
            return false;
        }
        let mut starts: Vec<u64> = self
            .conf
            .voters
            .iter()
            .filter_map(|voter| {
                if *voter == self.id {
                    Some(self.ticks)
                } else {
                    self.progress.get(voter).and_then(|pr| pr.lease_acked_at)
                }
            })
            .collect();
        if starts.len() < self.quorum() {
            return false;
        }
        starts.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_start = starts[self.quorum() - 1];
        // Sent during tick `quorum_start`: at most `ticks - quorum_start + 1`
        // tick periods ago.
        self.ticks - quorum_start < self.config.lease_ticks()
    }

    /// Serves reads that waited for the first commit of this term.
    pub(crate) fn release_waiting_reads(&mut self) {
        if self.waiting_reads.is_empty() || self.log.term(self.log.committed) != Some(self.term) {
            return;
        }
        for (ctx, requester) in core::mem::take(&mut self.waiting_reads) {
            let _ = self.read_index_for(ctx, requester);
        }
    }

    /// Hands leadership to `to` (thesis §3.10): stop accepting proposals,
    /// bring `to` up to date, then send it TimeoutNow. Abandoned after an
    /// election timeout.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), TransferError> {
        assert!(
            self.ready_in_flight.is_none(),
            "raft: transfer_leader called between ready() and advance()"
        );
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader);
        }
        if to == self.id {
            return Err(TransferError::ToSelf);
        }
        if !self.conf.is_voter(to) {
            return Err(TransferError::UnknownPeer);
        }
        if self.lead_transferee == Some(to) {
            return Ok(());
        }
        self.lead_transferee = Some(to);
        self.election_elapsed = 0;
        let caught_up = self
            .progress
            .get(&to)
            .is_some_and(|pr| pr.matched == self.log.last_index());
        if caught_up {
            self.lease_void = true;
            self.send(to, self.term, MessageBody::TimeoutNow);
        } else {
            self.send_append(to, true);
        }
        Ok(())
    }
}
