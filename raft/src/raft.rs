//! The Raft node: state, roles, ticks and the term rules every message
//! passes through. Elections live in `election.rs`, log replication in
//! `replication.rs`, reads and leadership transfer in `client.rs`, and the
//! Ready/advance hand-off in `ready.rs`; all are `impl` blocks of [`Raft`].

use crate::config::{Config, ConfigError, ReadOnlyOption};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::read_only::{ReadOnly, ReadState};
use crate::ready::ReadyMark;
use crate::storage::{ConfState, HardState, Storage};
use crate::{NodeId, NO_NODE};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use continuum_base::SplitMix64;
use core::fmt;

/// Role of a node (Raft §5.1, plus the pre-vote phase of thesis §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Passive: answers leaders and candidates.
    Follower,
    /// Asking whether an election could be won, without raising the term.
    PreCandidate,
    /// Campaigning in a new term.
    Candidate,
    /// Accepts proposals and replicates them.
    Leader,
}

/// Volatile state the application may want to observe (leader, role).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftState {
    /// Known leader of the current term, or [`NO_NODE`].
    pub leader: NodeId,
    /// This node's role.
    pub role: Role,
}

/// Counters of unusual events, for status pages and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// AppendEntries refused because an entry's chain hash did not match.
    pub chain_hash_mismatches: u64,
    /// Elections (real, not pre-vote) this node started.
    pub elections_started: u64,
    /// Times this node became leader.
    pub times_leader: u64,
    /// Messages ignored: stale term, or unexpected for the role.
    pub ignored_messages: u64,
}

/// Why [`Raft::step`] refused a message outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    /// `to` is not this node.
    WrongRecipient,
    /// `from` is this node itself, or 0.
    UnknownSender,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepError::WrongRecipient => "message addressed to another node",
            StepError::UnknownSender => "message from this node itself or from node 0",
        })
    }
}

/// One Raft node over storage `S`. See the crate doc for the driving loop.
pub struct Raft<S: Storage> {
    pub(crate) id: NodeId,
    pub(crate) config: Config,
    pub(crate) term: u64,
    pub(crate) vote: NodeId,
    pub(crate) role: Role,
    pub(crate) leader: NodeId,
    pub(crate) log: RaftLog<S>,
    /// Configuration in effect: the newest configuration entry in the log
    /// (`membership.rs`).
    pub(crate) conf: ConfState,
    /// Index of the entry that set `conf`.
    pub(crate) conf_index: u64,
    /// The configuration storage reported at start with its index: what
    /// holds before the log when there is no snapshot.
    pub(crate) boot_conf: (ConfState, u64),
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) msgs: Vec<Message>,
    pub(crate) election_elapsed: u64,
    pub(crate) heartbeat_elapsed: u64,
    pub(crate) randomized_election_timeout: u64,
    pub(crate) rng: SplitMix64,
    pub(crate) lead_transferee: Option<NodeId>,
    pub(crate) read_only: ReadOnly,
    /// Last heartbeat round number used (every broadcast gets a new one).
    pub(crate) read_seq: u64,
    /// Reads wait for a heartbeat round to be sent with the next Ready.
    pub(crate) read_round_due: bool,
    /// Ticks since this instance started (the leader's lease clock).
    pub(crate) ticks: u64,
    /// Set once this leader sent TimeoutNow: the transferee may win without
    /// waiting for leases, so no more lease reads in this term.
    pub(crate) lease_void: bool,
    /// Reads that arrived before this leader committed an entry of its term
    /// (thesis §6.4 step 1): (ctx, requester).
    pub(crate) waiting_reads: Vec<(u64, NodeId)>,
    pub(crate) read_states: Vec<ReadState>,
    /// Proposals were appended since the last broadcast (batched in `ready`).
    pub(crate) pending_broadcast: bool,
    pub(crate) stats: Stats,
    pub(crate) persisted_hard_state: HardState,
    pub(crate) last_soft_state: SoftState,
    pub(crate) ready_in_flight: Option<ReadyMark>,
    /// InstallSnapshot state (`snapshot.rs`): the follower's partial
    /// install, the leader's manifest of its snapshot, chunk counters.
    pub(crate) snapshot_transfer: crate::snapshot::SnapshotTransfer,
    /// Follower: a received snapshot for the next Ready to hand over.
    pub(crate) pending_snapshot: Option<crate::storage::Snapshot>,
}

impl<S: Storage> Raft<S> {
    /// Starts (or restarts) a node from what `storage` has persisted.
    /// `seed` drives the election-timeout randomisation.
    pub fn new(config: Config, storage: S, seed: u64) -> Result<Raft<S>, ConfigError> {
        config.validate()?;
        let (hard_state, conf_state) = storage.initial_state();
        if !conf_state.is_valid() {
            return Err(ConfigError::InvalidConf);
        }
        let boot_conf_index = storage.snapshot().map_or(0, |s| s.metadata.conf_index);
        // With a snapshot, the application restores it: everything up to it
        // is committed (only applied entries are snapshotted) and applied,
        // whatever commit index the hard state last recorded. The snapshot
        // may cover entries the storage still keeps.
        let snapshot_index = storage
            .snapshot()
            .map_or(0, |s| s.metadata.index)
            .max(storage.first_index() - 1);
        if config.applied > hard_state.commit.max(snapshot_index) {
            return Err(ConfigError::AppliedBeyondCommit);
        }
        let log = RaftLog::new(
            storage,
            hard_state.commit.max(snapshot_index),
            config.applied.max(snapshot_index),
        );
        let mut raft = Raft {
            id: config.id,
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: NO_NODE,
            log,
            conf: conf_state.clone(),
            conf_index: boot_conf_index,
            boot_conf: (conf_state, boot_conf_index),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            msgs: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_ticks,
            rng: SplitMix64::new(seed),
            lead_transferee: None,
            read_only: ReadOnly::default(),
            read_seq: 0,
            ticks: 0,
            read_round_due: false,
            lease_void: false,
            waiting_reads: Vec::new(),
            read_states: Vec::new(),
            pending_broadcast: false,
            stats: Stats::default(),
            persisted_hard_state: hard_state,
            last_soft_state: SoftState {
                leader: NO_NODE,
                role: Role::Follower,
            },
            ready_in_flight: None,
            snapshot_transfer: Default::default(),
            pending_snapshot: None,
            config,
        };
        // The configuration entries of the stored log are in effect.
        let (conf, conf_index) = raft.conf_from_log();
        if !conf.is_valid() {
            return Err(ConfigError::InvalidConf);
        }
        // A bootstrap configuration (no snapshot, no change in the log)
        // without this node is a misconfigured node; an empty one is a
        // node joining (it learns the membership from the leader), and one
        // from a snapshot or a change may simply not have added it yet or
        // have removed it.
        let bootstrap = conf_index == 0 && raft.log.base_conf().is_none();
        if bootstrap && !conf.voters.is_empty() && !conf.is_member(raft.id) {
            return Err(ConfigError::NotAVoter);
        }
        raft.conf = conf;
        raft.conf_index = conf_index;
        raft.become_follower(hard_state.term, NO_NODE);
        Ok(raft)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Known leader of the current term, or [`NO_NODE`].
    pub fn leader(&self) -> NodeId {
        self.leader
    }
    /// Commit index.
    pub fn commit_index(&self) -> u64 {
        self.log.committed
    }
    /// Highest index handed to the application.
    pub fn applied_index(&self) -> u64 {
        self.log.applied
    }
    /// Last index of the log, including entries not yet persisted.
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
    /// Term of entry `index` in the (possibly unpersisted) log.
    pub fn log_term(&self, index: u64) -> Option<u64> {
        self.log.term(index)
    }
    /// Chain hash of entry `index`, if `index` is in the log.
    pub fn log_chain_hash(&self, index: u64) -> Option<crate::LogChainHash> {
        (index <= self.log.last_index() && index + 1 >= self.log.first_index())
            .then(|| self.log.chain_hash(index))
    }
    /// Current hard state (possibly not yet persisted).
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }
    /// Current soft state.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role,
        }
    }
    /// Leader's view of `peer`, if this node leads.
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        if self.role == Role::Leader {
            self.progress.get(&peer)
        } else {
            None
        }
    }
    /// Event counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }
    /// Voting members of the configuration in effect.
    pub fn voters(&self) -> &[NodeId] {
        &self.conf.voters
    }
    /// Learners of the configuration in effect.
    pub fn learners(&self) -> &[NodeId] {
        &self.conf.learners
    }

    /// Every voter but this node, in id order (owned, so the caller may
    /// send to each while mutating `self`).
    pub(crate) fn other_voters(&self) -> Vec<NodeId> {
        self.conf
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.id)
            .collect()
    }
    /// The storage (persisted state only).
    pub fn storage(&self) -> &S {
        &self.log.storage
    }
    /// The storage, for persisting a Ready's entries and hard state.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.log.storage
    }
    /// Consumes the node, returning its storage (what survives a crash).
    pub fn into_storage(self) -> S {
        self.log.storage
    }

    pub(crate) fn quorum(&self) -> usize {
        self.conf.voters.len() / 2 + 1
    }

    pub(crate) fn send(&mut self, to: NodeId, term: u64, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    fn assert_not_in_ready(&self, what: &str) {
        assert!(
            self.ready_in_flight.is_none(),
            "raft: {what} called between ready() and advance(); persist the Ready and call advance() first"
        );
    }

    /// Advances logical time by one tick (see [`Config`] for the tick length).
    pub fn tick(&mut self) {
        self.assert_not_in_ready("tick");
        self.ticks += 1;
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.randomized_election_timeout {
                    self.election_elapsed = 0;
                    if self.promotable() {
                        self.hup(false);
                    } else {
                        // A learner (or removed node) does not campaign, but
                        // an election timeout without its leader ends the
                        // lease it promised, as campaigning would for a
                        // voter: otherwise it would ignore the next leader's
                        // higher term for ever (see `lease_protects`).
                        self.leader = NO_NODE;
                    }
                }
            }
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_ticks {
            self.election_elapsed = 0;
            // Thesis §6.2: a leader that cannot reach a quorum steps down so
            // clients find the real leader.
            if self.config.check_quorum && !self.quorum_recently_active() {
                self.become_follower(self.term, NO_NODE);
                return;
            }
            // Thesis §3.10: a transfer that has not finished within an
            // election timeout is abandoned so proposals resume.
            self.lead_transferee = None;
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.heartbeat_round();
        }
    }

    fn quorum_recently_active(&mut self) -> bool {
        let id = self.id;
        let mut active = 0;
        for (peer, pr) in self.progress.iter_mut() {
            // Learners never count toward a quorum.
            if self.conf.is_voter(*peer) && (*peer == id || pr.recent_active) {
                active += 1;
            }
            pr.active_last_round = pr.recent_active;
            pr.recent_active = false;
        }
        active >= self.quorum()
    }

    /// Resets volatile state when entering a role in `term`.
    pub(crate) fn reset(&mut self, term: u64) {
        assert!(
            term >= self.term,
            "raft: term would go backwards from {} to {term}",
            self.term
        );
        if term != self.term {
            self.term = term;
            self.vote = NO_NODE;
        }
        self.leader = NO_NODE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.randomized_election_timeout = self
            .rng
            .gen_range(self.config.election_ticks, 2 * self.config.election_ticks);
        self.lead_transferee = None;
        self.votes.clear();
        self.read_only.pending.clear();
        self.read_only.rounds.clear();
        self.read_round_due = false;
        self.lease_void = false;
        self.waiting_reads.clear();
        self.pending_broadcast = false;
        let last = self.log.last_index();
        self.progress.clear();
        let members = self.conf.voters.iter().chain(self.conf.learners.iter());
        for &member in members {
            let mut pr = Progress::new(last + 1, self.config.max_inflight_msgs);
            if member == self.id {
                pr.matched = last;
            }
            self.progress.insert(member, pr);
        }
    }

    pub(crate) fn become_follower(&mut self, term: u64, leader: NodeId) {
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
    }

    /// Feeds one message from a peer. Term supremacy (Raft §5.1) first: a
    /// higher term turns this node into a follower of that term; a lower one
    /// is rejected (with a hint so a stale leader learns it, thesis §9.6).
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        self.assert_not_in_ready("step");
        if m.to != self.id {
            return Err(StepError::WrongRecipient);
        }
        // Senders outside this node's configuration are accepted: it may be
        // behind the leader's (`membership.rs`); only voters are counted.
        if m.from == self.id || m.from == NO_NODE {
            return Err(StepError::UnknownSender);
        }
        if m.term > self.term && self.lease_protects(&m.body) {
            self.stats.ignored_messages += 1;
            return Ok(());
        }
        if m.term > self.term {
            match &m.body {
                // A pre-vote does not change anyone's term (thesis §9.6).
                MessageBody::PreVote { .. } => {}
                MessageBody::PreVoteResponse { reject: false } => {}
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => self.become_follower(m.term, m.from),
                _ => self.become_follower(m.term, NO_NODE),
            }
        } else if m.term < self.term {
            match &m.body {
                MessageBody::Append { .. } | MessageBody::Heartbeat { .. }
                    if self.config.check_quorum || self.config.pre_vote =>
                {
                    // A stale leader cut off by pre-vote would otherwise never
                    // learn the new term; tell it.
                    let body = MessageBody::AppendResponse {
                        reject: true,
                        index: 0,
                        reject_hint: 0,
                        hint_term: 0,
                    };
                    self.send(m.from, self.term, body);
                }
                MessageBody::PreVote { .. } => {
                    self.send(
                        m.from,
                        self.term,
                        MessageBody::PreVoteResponse { reject: true },
                    );
                }
                _ => self.stats.ignored_messages += 1,
            }
            return Ok(());
        }

        match m.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => self.handle_vote_request(m.from, m.term, last_log_index, last_log_term, true),
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                ..
            } => self.handle_vote_request(m.from, m.term, last_log_index, last_log_term, false),
            _ => match self.role {
                Role::Leader => self.step_leader(m),
                Role::Candidate | Role::PreCandidate => self.step_candidate(m),
                Role::Follower => self.step_follower(m),
            },
        }
        Ok(())
    }

    /// Whether a message of a higher term must be ignored because this
    /// node promised the current leader not to help elect another one.
    ///
    /// Thesis §4.2.3 / §6.4.1: while a leader is known to be alive
    /// (heard within the election timeout), ignore disruptive candidates.
    /// With lease reads (thesis §6.4) that is the leader's lease, and it
    /// only holds if *no* higher-term message moves this node to the new
    /// term while it lasts: stepping down resets the known leader, after
    /// which the next vote request would be granted at once (a stale
    /// PreVoteResponse rejecting an old pre-vote, an append of a leader
    /// elected without us, ...). So with lease reads every higher-term
    /// message is ignored during the lease, except the vote of a
    /// leadership transfer, which only the leader itself starts (it
    /// stopped lease reads when it sent TimeoutNow). A freshly (re)started
    /// node also waits an election timeout: it may have promised a lease
    /// before it crashed.
    fn lease_protects(&self, body: &MessageBody) -> bool {
        let lease_reads = self.config.read_only == ReadOnlyOption::LeaseBased;
        let guarded = match body {
            MessageBody::Vote {
                leader_transfer: true,
                ..
            } => false,
            MessageBody::PreVote { .. } | MessageBody::Vote { .. } => true,
            // The leader's own lease is its followers' promise, not its own.
            _ => lease_reads && self.role != Role::Leader,
        };
        let booting = lease_reads && self.ticks < self.config.election_ticks;
        guarded
            && self.config.check_quorum
            && (self.leader != NO_NODE || booting)
            && self.election_elapsed < self.config.election_ticks
    }

    fn step_follower(&mut self, m: Message) {
        match m.body {
            MessageBody::Append {
                prev_log_index,
                prev_log_term,
                leader_commit,
                entries,
            } => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_append(
                    m.from,
                    prev_log_index,
                    prev_log_term,
                    leader_commit,
                    &entries,
                );
            }
            MessageBody::Heartbeat { commit, read_seq } => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_heartbeat(m.from, commit, read_seq);
            }
            MessageBody::InstallSnapshot {
                index,
                snapshot_term,
                chain_hash,
                conf_state,
                conf_index,
                total_len,
                total_hash,
                part,
            } => {
                self.election_elapsed = 0;
                self.leader = m.from;
                let part = crate::snapshot::Incoming {
                    index,
                    snapshot_term,
                    chain_hash,
                    conf_state,
                    conf_index,
                    total_len,
                    total_hash,
                    part,
                };
                self.handle_install_snapshot(m.from, part);
            }
            MessageBody::TimeoutNow => self.hup(true),
            MessageBody::ReadIndexResponse { ctx, index } => {
                self.read_states.push(ReadState { index, ctx })
            }
            _ => self.stats.ignored_messages += 1,
        }
    }

    fn step_candidate(&mut self, m: Message) {
        match m.body {
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                // Raft §5.2: a leader of our term exists; return to follower.
                self.become_follower(m.term, m.from);
                self.step_follower(m);
            }
            MessageBody::PreVoteResponse { reject } if self.role == Role::PreCandidate => {
                // Count only answers for the round in progress (term + 1).
                if reject || m.term == self.term + 1 {
                    self.record_vote(m.from, !reject);
                }
            }
            MessageBody::VoteResponse { reject } if self.role == Role::Candidate => {
                self.record_vote(m.from, !reject)
            }
            _ => self.stats.ignored_messages += 1,
        }
    }

    fn step_leader(&mut self, m: Message) {
        match m.body {
            MessageBody::AppendResponse {
                reject,
                index,
                reject_hint,
                hint_term,
            } => self.handle_append_response(m.from, reject, index, reject_hint, hint_term),
            MessageBody::HeartbeatResponse { read_seq } => {
                self.handle_heartbeat_response(m.from, read_seq)
            }
            MessageBody::InstallSnapshotResponse {
                index,
                manifest_next,
                chunk_next,
                done,
            } => {
                let want = crate::snapshot::SnapshotWant {
                    manifest_next,
                    chunk_next,
                };
                self.handle_install_snapshot_response(m.from, index, want, done)
            }
            MessageBody::ReadIndexRequest { ctx } => {
                // Dropped if over the limit; the follower's client retries.
                let _ = self.read_index_for(ctx, m.from);
            }
            // Election Safety: no other leader can exist in our term, so an
            // Append here means a forged or corrupt message. Ignore it.
            _ => self.stats.ignored_messages += 1,
        }
    }
}
