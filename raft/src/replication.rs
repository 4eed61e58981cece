//! Log replication (Raft §5.3, §5.4.2): the leader's AppendEntries stream
//! with probe/replicate flow control and conflict-term backtracking, the
//! follower's consistency check, and heartbeats.

use crate::entry::{Entry, EntryKind};
use crate::log::AppendError;
use crate::message::MessageBody;
use crate::progress::ProgressState;
use crate::raft::{Raft, Role};
use crate::read_only::ReadState;
use crate::storage::Storage;
use crate::NodeId;
use alloc::vec::Vec;

impl<S: Storage> Raft<S> {
    /// Leader: appends new entries of the current term to its own log,
    /// computing their chain hashes. Returns the index of the last one.
    pub(crate) fn append_local(
        &mut self,
        items: impl IntoIterator<Item = (EntryKind, Vec<u8>)>,
    ) -> u64 {
        assert!(
            self.role == Role::Leader,
            "raft: only the leader appends local entries"
        );
        let mut index = self.log.last_index();
        let mut prev_hash = self.log.chain_hash(index);
        let mut entries = Vec::new();
        for (kind, data) in items {
            index += 1;
            let entry = Entry::new(&prev_hash, index, self.term, kind, data);
            prev_hash = entry.chain_hash;
            entries.push(entry);
        }
        self.log.append(&entries);
        self.conf_from_appended(&entries);
        let id = self.id;
        if let Some(pr) = self.progress.get_mut(&id) {
            pr.maybe_update(index);
        }
        // A single-node cluster commits immediately.
        self.maybe_commit_leader();
        index
    }

    /// Leader commit rule: the highest index stored on a quorum, if it is of
    /// the current term (Raft §5.4.2). Returns whether the commit advanced.
    pub(crate) fn maybe_commit_leader(&mut self) -> bool {
        let mut matched: Vec<u64> = self
            .conf
            .voters
            .iter()
            .map(|voter| self.progress.get(voter).map_or(0, |pr| pr.matched))
            .collect();
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let quorum_index = matched[self.quorum() - 1];
        let advanced = self.log.maybe_commit(quorum_index, self.term);
        if advanced {
            self.prune_departed();
            self.release_waiting_reads();
        }
        advanced
    }

    pub(crate) fn broadcast_append(&mut self) {
        let peers = self.replication_targets();
        for peer in peers {
            self.send_append(peer, true);
        }
    }

    /// Sends `to` the next AppendEntries its progress allows. With
    /// `send_if_empty` false, an append without entries is skipped. Returns
    /// whether a message was sent.
    pub(crate) fn send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        if pr.state == ProgressState::Snapshot {
            return self.send_snapshot_chunk(to);
        }
        let next = pr.next;
        let prev_log_index = next - 1;
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            // Raft §7: the entry is compacted; send the snapshot instead.
            return self.start_snapshot(to);
        };
        let hi = last.min(next.saturating_add(self.config.max_entries_per_msg as u64 - 1)) + 1;
        let entries = self.log.entries(next, hi, self.config.max_bytes_per_msg);
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let sent_last = entries.last().map(|e| e.index);
        let leader_commit = self.log.committed;
        self.send(
            to,
            self.term,
            MessageBody::Append {
                prev_log_index,
                prev_log_term,
                leader_commit,
                entries,
            },
        );
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.sent_append(sent_last);
        }
        true
    }

    pub(crate) fn handle_append_response(
        &mut self,
        from: NodeId,
        reject: bool,
        index: u64,
        hint: u64,
        hint_term: u64,
    ) {
        let last = self.log.last_index();
        let next_probe = if reject && hint_term > 0 {
            self.log.find_conflict_by_term(hint, hint_term)
        } else {
            hint
        };
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if pr.state == ProgressState::Snapshot && (reject || index < pr.snapshot_index) {
            // Answers to appends sent before the switch; the snapshot decides.
            return;
        }
        if reject {
            // Thesis §5.3 (end): jump back past the whole conflicting term.
            if pr.maybe_decr_to(index, next_probe) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(from, true);
            }
            return;
        }
        if index > last {
            // Cannot be ours: a follower acks only what this leader sent.
            self.stats.ignored_messages += 1;
            return;
        }
        if !pr.maybe_update(index) {
            return;
        }
        match pr.state {
            // A follower that caught up past the snapshot some other way.
            ProgressState::Probe | ProgressState::Snapshot => pr.become_replicate(),
            ProgressState::Replicate => pr.inflights.free_to(index),
        }
        let matched = pr.matched;
        if self.maybe_commit_leader() {
            // Tell everyone the new commit index.
            self.broadcast_append();
        }
        while self.send_append(from, false) {}
        if self.lead_transferee == Some(from) && matched == self.log.last_index() {
            self.lease_void = true;
            self.send(from, self.term, MessageBody::TimeoutNow);
        }
    }

    pub(crate) fn broadcast_heartbeat(&mut self, read_seq: u64) {
        let peers = self.replication_targets();
        for peer in peers {
            let matched = self.progress.get(&peer).map_or(0, |pr| pr.matched);
            // Never tell a follower to commit beyond what it is known to hold.
            let commit = matched.min(self.log.committed);
            self.send(peer, self.term, MessageBody::Heartbeat { commit, read_seq });
        }
    }

    /// Starts a numbered heartbeat round (ReadIndex confirmation and lease
    /// renewal) and returns its number.
    pub(crate) fn heartbeat_round(&mut self) -> u64 {
        self.read_seq += 1;
        self.read_round_due = false;
        let seq = self.read_seq;
        self.read_only.record_round(seq, self.ticks);
        self.broadcast_heartbeat(seq);
        seq
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: u64, read_seq: u64) {
        self.log.commit_to(commit);
        self.send(from, self.term, MessageBody::HeartbeatResponse { read_seq });
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_seq: u64) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            // Lost appends would otherwise stall the window forever.
            pr.inflights.free_first();
        }
        if pr.matched < last {
            self.send_append(from, true);
        }
        // Learners' acks confirm nothing (no lease, no ReadIndex quorum).
        if read_seq == 0 || !self.conf.is_voter(from) {
            return;
        }
        if let Some(sent_at) = self.read_only.round_sent_at(read_seq) {
            if let Some(pr) = self.progress.get_mut(&from) {
                pr.lease_acked_at = Some(pr.lease_acked_at.map_or(sent_at, |at| at.max(sent_at)));
            }
        }
        let quorum = self.quorum();
        let confirmed = self.read_only.ack(read_seq, from, quorum);
        for read in confirmed {
            self.respond_read(read.ctx, read.index, read.requester);
        }
    }

    pub(crate) fn respond_read(&mut self, ctx: u64, index: u64, requester: NodeId) {
        if requester == self.id {
            self.read_states.push(ReadState { index, ctx });
        } else {
            self.send(
                requester,
                self.term,
                MessageBody::ReadIndexResponse { ctx, index },
            );
        }
    }

    /// Follower side of AppendEntries (Raft §5.3).
    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_log_index: u64,
        prev_log_term: u64,
        leader_commit: u64,
        entries: &[Entry],
    ) {
        let consecutive = entries
            .iter()
            .zip(1u64..)
            .all(|(e, k)| Some(e.index) == prev_log_index.checked_add(k));
        if !consecutive {
            // The codec refuses such messages; never let one reach the log.
            self.stats.ignored_messages += 1;
            return;
        }
        let committed = self.log.committed;
        if prev_log_index < committed {
            // Everything up to our commit index already matches.
            let body = MessageBody::AppendResponse {
                reject: false,
                index: committed,
                reject_hint: 0,
                hint_term: 0,
            };
            self.send(from, self.term, body);
            return;
        }
        let conf_term = self.log.term(self.conf_index);
        let result = self
            .log
            .maybe_append(prev_log_index, prev_log_term, leader_commit, entries);
        if matches!(result, Ok(Some(_))) {
            if self.conf_index > 0 && self.log.term(self.conf_index) != conf_term {
                // The entry in effect was truncated (Raft §5.3): fall back
                // to the newest configuration left in the log.
                let (conf, index) = self.conf_from_log();
                self.set_conf(conf, index);
            } else {
                self.conf_from_appended(entries);
            }
        }
        match result {
            Ok(Some(last_match)) => {
                let body = MessageBody::AppendResponse {
                    reject: false,
                    index: last_match,
                    reject_hint: 0,
                    hint_term: 0,
                };
                self.send(from, self.term, body);
            }
            Ok(None) => {
                // Fast backtracking hint: the largest index whose term is
                // <= prev_log_term, with its term (etcd's findConflictByTerm).
                let hint = self.log.find_conflict_by_term(
                    prev_log_index.min(self.log.last_index()),
                    prev_log_term,
                );
                let hint_term = self.log.term(hint).unwrap_or(0);
                let body = MessageBody::AppendResponse {
                    reject: true,
                    index: prev_log_index,
                    reject_hint: hint,
                    hint_term,
                };
                self.send(from, self.term, body);
            }
            Err(AppendError::ChainMismatch { .. }) => {
                // Never accept a broken chain; do not ack either.
                self.stats.chain_hash_mismatches += 1;
            }
        }
    }
}
