//! The hand-off between the pure core and the caller's I/O: [`Ready`]
//! batches and [`Raft::advance`].

use crate::entry::Entry;
use crate::message::Message;
use crate::raft::{Raft, SoftState};
use crate::read_only::ReadState;
use crate::storage::{HardState, Snapshot, Storage};
use alloc::vec::Vec;

/// Everything the caller must do after feeding input, in this order:
///
/// 0. if `snapshot` is set (a follower received one by InstallSnapshot):
///    replace the stored log by it and restore the application from its
///    data (`MemStorage::apply_snapshot`);
/// 1. persist `entries` (first truncating the stored log at
///    `truncate_from`, if set) and `hard_state`, and make them durable;
/// 2. only then send `messages` (Raft §5, etcd's contract: a vote or an
///    append ack must never precede the state it promises). Exception: a
///    leader's own `Append`, `Heartbeat`, `InstallSnapshot` and
///    `TimeoutNow` promise nothing about its disk and may leave before
///    step 1 (thesis §10.2.1), provided no input is stepped before step 1
///    completes — the leader counts its own entries toward commit from
///    the moment it appends them, so that count must be durable before
///    any answer can make a quorum (`continuum-node` does this);
/// 3. apply `committed_entries` in order (skip [`crate::EntryKind::LeaderNoOp`];
///    a [`crate::EntryKind::ConfChange`] is a [`crate::ConfEntry`]: Raft already
///    acts on it, the application updates what it keeps per member);
/// 4. serve `read_states` once the applied index reaches their `index`;
/// 5. call [`Raft::advance`].
#[derive(Clone, Debug, Default)]
pub struct Ready {
    /// New leader/role, if changed since the last Ready.
    pub soft_state: Option<SoftState>,
    /// A snapshot to install before anything else of this Ready.
    pub snapshot: Option<Snapshot>,
    /// Hard state to persist, if changed.
    pub hard_state: Option<HardState>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// If set, stored entries at and after this index must be discarded
    /// before appending `entries` (it equals `entries[0].index`): a leader
    /// overwrote a conflicting, uncommitted suffix (Raft §5.3).
    pub truncate_from: Option<u64>,
    /// Messages to send, after persisting.
    pub messages: Vec<Message>,
    /// Committed entries to apply, contiguous and in index order.
    pub committed_entries: Vec<Entry>,
    /// Confirmed linearizable reads.
    pub read_states: Vec<ReadState>,
}

/// What `advance` must acknowledge for the Ready in flight.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyMark {
    hard_state: HardState,
    applied: Option<u64>,
    snapshot: bool,
}

impl<S: Storage> Raft<S> {
    /// Whether [`Raft::ready`] would return any work.
    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || self.pending_snapshot.is_some()
            || self.pending_broadcast
            || self.read_round_due
            || self.log.has_unstable()
            || self.hard_state() != self.persisted_hard_state
            || !self.read_states.is_empty()
            || self.log.committed > self.log.applied
            || self.soft_state() != self.last_soft_state
    }

    /// Takes the pending work. Until [`Raft::advance`] is called, the node
    /// accepts no input (`tick`, `step`, `propose`, ... panic): persist,
    /// send and apply first.
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.ready_in_flight.is_none(),
            "raft: ready() called twice without advance()"
        );
        if self.pending_broadcast {
            self.pending_broadcast = false;
            self.broadcast_append_entries_only();
        }
        if self.read_round_due {
            self.heartbeat_round();
        }
        let soft = self.soft_state();
        let soft_state = (soft != self.last_soft_state).then_some(soft);
        self.last_soft_state = soft;
        let hard = self.hard_state();
        let hard_state = (hard != self.persisted_hard_state).then_some(hard);
        let (unstable, truncate_from) = self.log.unstable_entries();
        let entries = unstable.to_vec();
        let committed_entries = self
            .log
            .next_committed_entries(self.config.max_committed_bytes_per_ready);
        let applied = committed_entries.last().map(|e| e.index);
        let snapshot = self.pending_snapshot.take();
        self.ready_in_flight = Some(ReadyMark {
            hard_state: hard,
            applied,
            snapshot: snapshot.is_some(),
        });
        Ready {
            soft_state,
            snapshot,
            hard_state,
            entries,
            truncate_from,
            messages: core::mem::take(&mut self.msgs),
            committed_entries,
            read_states: core::mem::take(&mut self.read_states),
        }
    }

    /// Acknowledges the last [`Ready`]: its entries and hard state are
    /// durable in storage, its messages sent, its committed entries applied.
    ///
    /// # Panics
    /// If no Ready is outstanding, or storage does not end with the Ready's
    /// last entry (the caller skipped persisting).
    pub fn advance(&mut self) {
        let Some(mark) = self.ready_in_flight.take() else {
            panic!("raft: advance() without an outstanding ready()")
        };
        if mark.snapshot {
            self.log.snapshot_persisted();
        }
        self.log.stable_to_last();
        self.persisted_hard_state = mark.hard_state;
        if let Some(applied) = mark.applied {
            self.log.applied_to(applied);
        }
    }

    fn broadcast_append_entries_only(&mut self) {
        let peers = self.replication_targets();
        for peer in peers {
            while self.send_append(peer, false) {}
        }
    }
}
