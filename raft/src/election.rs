//! Leader election (Raft §5.2, §5.4.1) with pre-vote (thesis §9.6) and the
//! forced elections of leadership transfer (thesis §3.10).

use crate::entry::EntryKind;
use crate::message::MessageBody;
use crate::raft::{Raft, Role};
use crate::storage::Storage;
use crate::{NodeId, NO_NODE};
use alloc::vec::Vec;

impl<S: Storage> Raft<S> {
    /// Election timeout fired (or TimeoutNow arrived, `transfer`).
    pub(crate) fn hup(&mut self, transfer: bool) {
        // Learners, removed and joining nodes never campaign.
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        if self.config.pre_vote && !transfer {
            self.campaign_pre_vote();
        } else {
            self.campaign(transfer);
        }
    }

    fn campaign_pre_vote(&mut self) {
        // Thesis §9.6: ask first, without bumping the term, so a node that
        // cannot win does not disrupt the cluster.
        let term = self.term;
        self.reset(term);
        self.role = Role::PreCandidate;
        self.request_votes(term + 1, true, false);
    }

    pub(crate) fn campaign(&mut self, transfer: bool) {
        let term = self.term + 1;
        self.reset(term);
        self.role = Role::Candidate;
        self.vote = self.id;
        self.stats.elections_started += 1;
        self.request_votes(term, false, transfer);
    }

    fn request_votes(&mut self, term: u64, pre_vote: bool, leader_transfer: bool) {
        // Our own vote first; a single-node cluster wins at once.
        self.record_vote(self.id, true);
        if !matches!(self.role, Role::PreCandidate | Role::Candidate) {
            return;
        }
        let last_log_index = self.log.last_index();
        let last_log_term = self.log.last_term();
        let peers = self.other_voters();
        for peer in peers {
            let body = if pre_vote {
                MessageBody::PreVote {
                    last_log_index,
                    last_log_term,
                }
            } else {
                MessageBody::Vote {
                    last_log_index,
                    last_log_term,
                    leader_transfer,
                }
            };
            self.send(peer, term, body);
        }
    }

    /// Tallies a (pre-)vote and acts on a decided election.
    pub(crate) fn record_vote(&mut self, from: NodeId, granted: bool) {
        // Only voters of this node's configuration are counted.
        if !self.conf.is_voter(from) {
            return;
        }
        self.votes.entry(from).or_insert(granted);
        let granted_count = self.votes.values().filter(|&&g| g).count();
        let rejected_count = self.votes.len() - granted_count;
        if granted_count >= self.quorum() {
            match self.role {
                Role::PreCandidate => self.campaign(false),
                Role::Candidate => {
                    self.become_leader();
                    self.broadcast_append();
                }
                _ => {}
            }
        } else if rejected_count >= self.quorum() {
            let term = self.term;
            self.become_follower(term, NO_NODE);
        }
    }

    /// Answers RequestVote / PreVote after the term rules in `step`.
    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        msg_term: u64,
        last_log_index: u64,
        last_log_term: u64,
        pre_vote: bool,
    ) {
        // Raft §5.2: one vote per term, first come first served; a pre-vote
        // for a future term commits to nothing.
        let can_vote = self.vote == from
            || (self.vote == NO_NODE && self.leader == NO_NODE)
            || (pre_vote && msg_term > self.term);
        // Raft §5.4.1: only for candidates whose log is at least as up to date.
        if can_vote && self.log.is_up_to_date(last_log_index, last_log_term) {
            if pre_vote {
                self.send(
                    from,
                    msg_term,
                    MessageBody::PreVoteResponse { reject: false },
                );
            } else {
                self.election_elapsed = 0;
                self.vote = from;
                self.send(from, msg_term, MessageBody::VoteResponse { reject: false });
            }
        } else {
            let body = if pre_vote {
                MessageBody::PreVoteResponse { reject: true }
            } else {
                MessageBody::VoteResponse { reject: true }
            };
            self.send(from, self.term, body);
        }
    }

    pub(crate) fn become_leader(&mut self) {
        assert!(
            self.role == Role::Candidate,
            "raft: only a candidate can become leader (was {:?})",
            self.role
        );
        let term = self.term;
        self.reset(term);
        self.role = Role::Leader;
        self.leader = self.id;
        self.stats.times_leader += 1;
        let id = self.id;
        if let Some(pr) = self.progress.get_mut(&id) {
            pr.become_replicate();
            pr.recent_active = true;
        }
        // Raft §8 / thesis §6.4: a no-op of the new term lets the leader
        // commit earlier-term entries (§5.4.2) and serve ReadIndex.
        self.append_local([(EntryKind::LeaderNoOp, Vec::new())]);
    }
}
