//! The simulated cluster: nodes, event queue, simulated time, crash model.

use super::checker::{Checker, Violation};
use super::nemesis::FaultMix;
use super::network::Network;
use continuum_raft::{
    ConfChange, ConfChangeKind, ConfEntry, ConfState, Config, EntryKind, LogChainHash, MemStorage,
    Message, NodeId, Raft, Role, SplitMix64, Storage,
};
use std::collections::{BTreeMap, BTreeSet};

/// Nominal tick period of the simulated nodes: 10 ms, the crate default.
pub const TICK_US: u64 = 10_000;

/// Something that happens at a simulated instant.
#[derive(Clone, Debug)]
enum Event {
    Tick {
        node: NodeId,
        epoch: u64,
    },
    Deliver(Box<Message>),
    Ready {
        node: NodeId,
        epoch: u64,
    },
    Client,
    Nemesis,
    /// Targeted fault: crash a node that just became leader (epoch-checked).
    CrashLeader {
        node: NodeId,
        epoch: u64,
    },
    /// Restart a node crashed by `CrashLeader`.
    Restart {
        node: NodeId,
    },
    /// The operator's next membership step (grow, shrink, promote).
    Membership,
}

/// One simulated node.
pub struct SimNode {
    pub id: NodeId,
    /// Running node, `None` while crashed.
    pub raft: Option<Raft<MemStorage>>,
    /// What survives a crash, while crashed.
    pub disk: Option<MemStorage>,
    /// This node's tick period (clock rate differences).
    pub tick_us: u64,
    /// Bumped on crash so that stale events are ignored.
    epoch: u64,
    ready_scheduled: bool,
    /// Client payload ids applied since the last restart.
    pub applied_ids: BTreeSet<u64>,
    last_leader_term: Option<u64>,
    /// Commit index this node last had as leader (quorum-in-effect check).
    last_leader_commit: u64,
    /// Shut down for good by the operator after its removal committed.
    pub retired: bool,
}

impl SimNode {
    /// Persisted storage, whether running or crashed.
    pub fn storage(&self) -> &MemStorage {
        match (&self.raft, &self.disk) {
            (Some(raft), _) => raft.storage(),
            (None, Some(disk)) => disk,
            (None, None) => unreachable!("node has neither a running instance nor a disk"),
        }
    }
}

/// A whole cluster driven by one seed.
pub struct Cluster {
    pub seed: u64,
    pub rng: SplitMix64,
    /// Simulated time in microseconds.
    pub now: u64,
    pub ids: Vec<NodeId>,
    pub nodes: Vec<SimNode>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    pub net: Network,
    pub checker: Checker,
    /// Events processed so far.
    pub steps: u64,
    pub mix: FaultMix,
    /// Nemesis and client keep acting while true.
    pub faults_active: bool,
    pub client_active: bool,
    next_payload: u64,
    next_read: u64,
    config: Config,
    /// Crashes injected so far.
    pub crashes: u64,
    /// Print every event (RAFT_SIM_TRACE=1).
    pub trace: bool,
    /// Each node compacts its log into a snapshot of its state machine once
    /// this many applied entries are past its last snapshot (0: never).
    pub compact_every: u64,
    /// Snapshots taken and installed so far.
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    /// Snapshots installed by nodes that joined after the start.
    pub joiner_snapshots: u64,
    /// Voters at the start (ids 1..=initial_voters).
    initial_voters: u64,
    /// Membership driver (`Cluster::with_membership`), if enabled.
    pub membership: Option<MembershipPlan>,
    /// Configuration in effect at the committed tip, per the committed
    /// configuration entries and installed snapshots (the checker's view).
    pub committed_conf: ConfState,
    /// Index of the configuration entry behind `committed_conf`.
    committed_conf_index: u64,
}

/// What the simulated operator does: grow the voters to `max_voters`, then
/// shrink them to `min_voters`, and again, each node added as a learner
/// first (a blank node that catches up by entries or InstallSnapshot),
/// promoted once caught up; the leader is removed by handing leadership
/// over first. Every step is one single-server change.
#[derive(Clone, Debug)]
pub struct MembershipPlan {
    pub min_voters: usize,
    pub max_voters: usize,
    /// Growing (else shrinking).
    pub growing: bool,
    /// Blank nodes not yet added, lowest first.
    pub spares: Vec<NodeId>,
    /// Changes proposed and accepted, committed, and refused.
    pub proposed: u64,
    pub committed: u64,
    pub refused: u64,
    /// Voters removed after they handed leadership over.
    pub leader_removals: u64,
    /// Times the voter count reached max (grown) and min (shrunk).
    pub grown: u64,
    pub shrunk: u64,
    /// A leader asked to remove itself first hands over to someone: the
    /// node to remove once the transfer is done.
    pending_leader_removal: Option<NodeId>,
}

/// The simulated state machine (the set of applied payload ids) as
/// snapshot bytes, and back.
fn encode_state(ids: &BTreeSet<u64>) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_be_bytes()).collect()
}

fn decode_state(bytes: &[u8]) -> BTreeSet<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Chain hash of `index` in `raft`'s log, or, if compacted, the committed
/// hash the checker knows provided the snapshot point itself matches (the
/// chain makes the snapshot point vouch for every entry before it).
fn covering_hash(raft: &Raft<MemStorage>, index: u64, checker: &Checker) -> Option<LogChainHash> {
    if let Some(hash) = raft.log_chain_hash(index) {
        return Some(hash);
    }
    let snapshot_index = raft.storage().first_index() - 1;
    let point = raft.log_chain_hash(snapshot_index);
    if index < snapshot_index && point.is_some() && point == checker.committed_hash(snapshot_index)
    {
        return checker.committed_hash(index);
    }
    None
}

/// Whether `storage` durably holds committed entry `index` with `hash`
/// (compacted: its snapshot point is a committed entry past it).
fn stored(storage: &MemStorage, index: u64, hash: &LogChainHash, checker: &Checker) -> bool {
    match storage.chain_hash(index) {
        Ok(h) => h == *hash,
        Err(_) => {
            let at = storage.first_index() - 1;
            index < at && storage.chain_hash(at).ok() == checker.committed_hash(at)
        }
    }
}

impl Cluster {
    /// `n` nodes with ids 1..=n, each configured from `config` (its `id`
    /// is replaced per node).
    pub fn new(seed: u64, n: u64, mix: FaultMix, config: Config) -> Cluster {
        Cluster::with_spares(seed, n, 0, mix, config)
    }

    /// `n` voters plus `spares` blank nodes (empty configuration: they
    /// join only when the membership driver adds them), with membership
    /// changes between `min_voters` and `max_voters` voters.
    pub fn with_membership(
        seed: u64,
        n: u64,
        spares: u64,
        (min_voters, max_voters): (usize, usize),
        mix: FaultMix,
        config: Config,
    ) -> Cluster {
        let mut cluster = Cluster::with_spares(seed, n, spares, mix, config);
        cluster.membership = Some(MembershipPlan {
            min_voters,
            max_voters,
            growing: (n as usize) < max_voters,
            spares: (n + 1..=n + spares).collect(),
            proposed: 0,
            committed: 0,
            refused: 0,
            leader_removals: 0,
            grown: 0,
            shrunk: 0,
            pending_leader_removal: None,
        });
        cluster
    }

    fn with_spares(seed: u64, n: u64, spares: u64, mix: FaultMix, config: Config) -> Cluster {
        let voters: Vec<NodeId> = (1..=n).collect();
        let ids: Vec<NodeId> = (1..=n + spares).collect();
        let mut rng = SplitMix64::new(seed);
        let mut nodes = Vec::new();
        for &id in &ids {
            let mut cfg = config.clone();
            cfg.id = id;
            let bootstrap = if id <= n { voters.clone() } else { Vec::new() };
            let raft =
                Raft::new(cfg, MemStorage::new(bootstrap), rng.next_u64()).expect("valid config");
            // Clock rate differences: each node ticks 15 % slower to faster.
            let tick_us = TICK_US * rng.gen_range(85, 116) / 100;
            nodes.push(SimNode {
                id,
                raft: Some(raft),
                disk: None,
                tick_us,
                epoch: 0,
                ready_scheduled: false,
                applied_ids: BTreeSet::new(),
                last_leader_term: None,
                last_leader_commit: 0,
                retired: false,
            });
        }
        let mut cluster = Cluster {
            seed,
            rng,
            now: 0,
            ids,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            net: Network::new(),
            checker: Checker::new(),
            steps: 0,
            mix,
            faults_active: false,
            client_active: false,
            next_payload: 1,
            next_read: 1,
            config,
            crashes: 0,
            compact_every: 0,
            snapshots_taken: 0,
            snapshots_installed: 0,
            joiner_snapshots: 0,
            initial_voters: n,
            membership: None,
            committed_conf: ConfState::with_voters(voters),
            committed_conf_index: 0,
            trace: std::env::var("RAFT_SIM_TRACE").is_ok(),
        };
        for id in cluster.ids.clone() {
            let first = cluster.rng.gen_range(0, TICK_US);
            cluster.schedule(first, Event::Tick { node: id, epoch: 0 });
        }
        cluster
    }

    /// Starts the random client load and (per the mix) the nemesis.
    pub fn start_load(&mut self) {
        self.client_active = true;
        self.faults_active = true;
        self.schedule(1_000, Event::Client);
        self.schedule(200_000, Event::Nemesis);
        if self.membership.is_some() {
            self.schedule(100_000, Event::Membership);
        }
    }

    fn schedule(&mut self, after_us: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + after_us, self.seq), event);
    }

    pub fn node(&self, id: NodeId) -> &SimNode {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// The up node that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter_map(|n| n.raft.as_ref())
            .filter(|r| r.role() == Role::Leader)
            .max_by_key(|r| r.term())
            .map(|r| r.id())
    }

    /// Processes the next event and runs the checks. `Ok(false)` if idle.
    pub fn step(&mut self) -> Result<bool, Violation> {
        let Some(((at, _), event)) = self.queue.pop_first() else {
            return Ok(false);
        };
        self.now = at;
        self.steps += 1;
        if self.trace {
            println!("t={} {:?}", self.now, event);
        }
        match event {
            Event::Tick { node, epoch } => {
                if self.node(node).epoch == epoch && self.node(node).raft.is_some() {
                    self.node_mut(node).raft.as_mut().expect("up").tick();
                    let period = self.node(node).tick_us;
                    self.schedule(period, Event::Tick { node, epoch });
                    self.after_input(node)?;
                }
            }
            Event::Deliver(message) => {
                let to = message.to;
                if let Some(raft) = self.node_mut(to).raft.as_mut() {
                    raft.step(*message)
                        .expect("simulated messages are well addressed");
                    self.after_input(to)?;
                }
            }
            Event::Ready { node, epoch } => {
                if self.node(node).epoch == epoch {
                    self.node_mut(node).ready_scheduled = false;
                    self.process_ready(node)?;
                }
            }
            Event::Client => {
                if self.client_active {
                    self.client_action()?;
                    let next = self.rng.gen_range(500, 6_000);
                    self.schedule(next, Event::Client);
                }
            }
            Event::CrashLeader { node, epoch } => {
                if self.faults_active && self.node(node).epoch == epoch {
                    self.crash(node);
                    let downtime = self.rng.gen_range(10_000, 500_000);
                    self.schedule(downtime, Event::Restart { node });
                }
            }
            Event::Restart { node } => {
                if self.faults_active {
                    self.restart(node);
                }
            }
            Event::Nemesis => {
                if self.faults_active {
                    super::nemesis::act(self);
                    let next = self.rng.gen_range(50_000, 400_000);
                    self.schedule(next, Event::Nemesis);
                }
            }
            Event::Membership => {
                if self.faults_active {
                    self.membership_action()?;
                    let next = self.rng.gen_range(5_000, 40_000);
                    self.schedule(next, Event::Membership);
                }
            }
        }
        // Durability against the configurations that could elect the next
        // leader: the committed one, and any newer one used by a node that
        // could win an election, i.e. holds the committed tip (a node on a
        // deposed leader's branch may use a configuration nobody else
        // does; Leader Completeness is checked for it separately).
        let mut configs = vec![self.committed_conf.clone()];
        let tip = self.checker.last_committed();
        for raft in self.nodes.iter().filter_map(|n| n.raft.as_ref()) {
            let holds_tip =
                tip.is_some_and(|(index, _, hash)| raft.log_chain_hash(index) == Some(hash));
            if holds_tip
                && raft.conf_index() > self.committed_conf_index
                && !configs.contains(raft.conf_state())
            {
                configs.push(raft.conf_state().clone());
            }
        }
        let nodes = &self.nodes;
        let checker = &self.checker;
        self.checker.check_durable(&configs, |id, index, hash| {
            nodes
                .get((id - 1) as usize)
                .is_some_and(|n| stored(n.storage(), index, hash, checker))
        })?;
        Ok(true)
    }

    /// Role bookkeeping and Ready scheduling after any input to `id`.
    fn after_input(&mut self, id: NodeId) -> Result<(), Violation> {
        let node = &self.nodes[(id - 1) as usize];
        let Some(raft) = node.raft.as_ref() else {
            return Ok(());
        };
        if raft.role() != Role::Follower && !raft.voters().contains(&id) {
            return Err(Violation::NonVoterCampaigned {
                node: id,
                term: raft.term(),
            });
        }
        if raft.role() == Role::Leader {
            let term = raft.term();
            let commit = raft.commit_index();
            self.checker.on_leader(id, term)?;
            if node.last_leader_term != Some(term) {
                let checker = &self.checker;
                checker.check_leader_complete(id, term, |i| covering_hash(raft, i, checker))?;
                let node = self.node_mut(id);
                node.last_leader_term = Some(term);
                node.last_leader_commit = commit;
            } else if commit > node.last_leader_commit {
                // Quorum in effect: a majority of this leader's voters hold
                // what it just committed.
                if let Some(hash) = raft.log_chain_hash(commit) {
                    let holders = raft
                        .voters()
                        .iter()
                        .filter(|&&v| {
                            v == id || stored(self.node(v).storage(), commit, &hash, &self.checker)
                        })
                        .count();
                    self.checker
                        .check_commit_quorum(id, term, commit, raft.voters(), holders)?;
                }
                self.node_mut(id).last_leader_commit = commit;
            }
        }
        let node = &self.nodes[(id - 1) as usize];
        let wants = node.raft.as_ref().is_some_and(|r| r.has_ready());
        if wants && !node.ready_scheduled {
            let epoch = node.epoch;
            self.node_mut(id).ready_scheduled = true;
            // Simulated fsync latency: input keeps arriving meanwhile, and a
            // crash before this event loses the unpersisted state.
            let delay = self.rng.gen_range(0, 400);
            self.schedule(delay, Event::Ready { node: id, epoch });
        }
        Ok(())
    }

    fn process_ready(&mut self, id: NodeId) -> Result<(), Violation> {
        let idx = (id - 1) as usize;
        let Some(raft) = self.nodes[idx].raft.as_mut() else {
            return Ok(());
        };
        if !raft.has_ready() {
            return Ok(());
        }
        let ready = raft.ready();
        // 0. a snapshot received by InstallSnapshot replaces the log and the
        //    state machine first.
        if let Some(snapshot) = &ready.snapshot {
            self.checker
                .on_snapshot(id, snapshot.metadata.index, &snapshot.metadata.chain_hash)?;
            raft.storage_mut().apply_snapshot(snapshot.clone());
            self.snapshots_installed += 1;
            if id > self.initial_voters {
                self.joiner_snapshots += 1;
            }
            // The snapshot may cover a configuration entry no node applied.
            let meta = &snapshot.metadata;
            if meta.conf_index > self.committed_conf_index {
                self.committed_conf = meta.conf_state.clone();
                self.committed_conf_index = meta.conf_index;
            }
        }
        let leader_term = (raft.role() == Role::Leader).then(|| raft.term());
        {
            let storage = raft.storage();
            self.checker
                .on_persist(id, leader_term, ready.truncate_from, &ready.entries, |i| {
                    storage.chain_hash(i).ok()
                })?;
        }
        // 1. persist.
        if let Some(from) = ready.truncate_from {
            assert_eq!(
                Some(from),
                ready.entries.first().map(|e| e.index),
                "truncate_from is the first new entry"
            );
        }
        raft.storage_mut().append(&ready.entries);
        if let Some(hs) = ready.hard_state {
            raft.storage_mut().set_hard_state(hs);
        }
        let term = raft.term();
        if let Some(snapshot) = &ready.snapshot {
            self.nodes[idx].applied_ids = decode_state(&snapshot.data);
        }
        // 3. apply (checked), 4. reads; messages are sent below, after persisting.
        let mut new_commit = false;
        let mut committed_changes = Vec::new();
        for entry in &ready.committed_entries {
            self.checker.on_apply(id, term, entry)?;
            new_commit = true;
            if entry.kind == EntryKind::ConfChange && entry.index > self.committed_conf_index {
                let conf = ConfEntry::decode(&entry.data).expect("a logged change decodes");
                self.committed_conf = conf.conf_state.clone();
                self.committed_conf_index = entry.index;
                committed_changes.push(conf);
            }
            if entry.kind == EntryKind::Normal {
                if let Ok(bytes) = <[u8; 8]>::try_from(entry.data.as_slice()) {
                    self.nodes[idx]
                        .applied_ids
                        .insert(u64::from_be_bytes(bytes));
                }
            }
        }
        for read in &ready.read_states {
            self.checker.on_read_done(id, read.ctx, read.index)?;
        }
        let node = &mut self.nodes[idx];
        let raft = node.raft.as_mut().expect("up");
        raft.advance();
        // Compaction: snapshot the state machine at the applied index.
        let applied = raft.applied_index();
        let snapshot_index = raft.storage().first_index() - 1;
        if self.compact_every > 0 && applied >= snapshot_index + self.compact_every {
            let state = encode_state(&node.applied_ids);
            raft.storage_mut()
                .compact(applied, state)
                .expect("compact an applied, stored index");
            self.snapshots_taken += 1;
        }
        let more = raft.has_ready();
        for message in ready.messages {
            self.send(message);
        }
        if new_commit {
            self.check_leaders_hold_newest_commit()?;
        }
        for change in committed_changes {
            self.on_change_committed(change);
        }
        if more {
            self.after_input(id)?;
        }
        Ok(())
    }

    /// Leader Completeness for commits learned while leaders already exist.
    fn check_leaders_hold_newest_commit(&self) -> Result<(), Violation> {
        let Some((index, known_at, hash)) = self.checker.last_committed() else {
            return Ok(());
        };
        for raft in self.nodes.iter().filter_map(|n| n.raft.as_ref()) {
            if raft.role() == Role::Leader
                && raft.term() > known_at
                && covering_hash(raft, index, &self.checker) != Some(hash)
            {
                return Err(Violation::LeaderIncomplete {
                    node: raft.id(),
                    term: raft.term(),
                    index,
                });
            }
        }
        Ok(())
    }

    /// Puts a message on the wire: encoded and decoded (exercising the
    /// codec on real traffic), then lost, delayed or duplicated per the plan.
    fn send(&mut self, message: Message) {
        let mut wire = Vec::new();
        message.encode(&mut wire);
        let decoded = Message::decode(&wire).expect("codec round-trips every real message");
        assert_eq!(decoded, message, "codec changed a message");
        let (from, to) = (message.from, message.to);
        if self.net.is_blocked(from, to) || self.rng.chance(self.net.loss_pct(from, to)) {
            return;
        }
        let copies = if self.rng.chance(self.net.duplicate_pct) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self
                .rng
                .gen_range(self.net.delay_min_us, self.net.delay_max_us);
            self.schedule(delay, Event::Deliver(Box::new(decoded.clone())));
        }
    }

    /// Crash: everything not persisted by a processed Ready is lost.
    pub fn crash(&mut self, id: NodeId) {
        let node = &mut self.nodes[(id - 1) as usize];
        if let Some(raft) = node.raft.take() {
            self.crashes += 1;
            node.disk = Some(raft.into_storage());
            node.epoch += 1;
            node.ready_scheduled = false;
            node.applied_ids.clear();
            node.last_leader_term = None;
        }
    }

    /// Restart from persisted state; the state machine restarts from the
    /// snapshot (if any) and replays the rest of the log.
    pub fn restart(&mut self, id: NodeId) {
        let mut cfg = self.config.clone();
        cfg.id = id;
        let seed = self.rng.next_u64();
        let node = self.node_mut(id);
        if node.retired {
            return;
        }
        let Some(disk) = node.disk.take() else { return };
        // The state machine restarts from the snapshot, if any.
        let (snapshot_index, state) = disk.snapshot().map_or((0, BTreeSet::new()), |s| {
            (s.metadata.index, decode_state(&s.data))
        });
        node.applied_ids = state;
        node.raft = Some(Raft::new(cfg, disk, seed).expect("restart from persisted state"));
        let epoch = node.epoch;
        self.checker.on_restart(id, snapshot_index);
        let first = self.rng.gen_range(0, TICK_US);
        self.schedule(first, Event::Tick { node: id, epoch });
    }

    /// Proposes `payload_id` at `id`, returning whether it was accepted.
    pub fn propose_at(&mut self, id: NodeId, payload_ids: &[u64]) -> Result<bool, Violation> {
        let Some(raft) = self.node_mut(id).raft.as_mut() else {
            return Ok(false);
        };
        let batch: Vec<Vec<u8>> = payload_ids
            .iter()
            .map(|p| p.to_be_bytes().to_vec())
            .collect();
        let accepted = raft.propose_batch(batch).is_ok();
        self.after_input(id)?;
        Ok(accepted)
    }

    fn client_action(&mut self) -> Result<(), Violation> {
        let target = match self.leader() {
            Some(leader) if self.rng.chance(85) => leader,
            _ => self.ids[self.rng.gen_range(0, self.ids.len() as u64) as usize],
        };
        let roll = self.rng.gen_range(0, 100);
        if roll < 80 {
            let count = self.rng.gen_range(1, 4);
            let payloads: Vec<u64> = (0..count).map(|k| self.next_payload + k).collect();
            self.next_payload += count;
            self.propose_at(target, &payloads)?;
        } else if roll < 97 {
            let ctx = self.next_read;
            self.next_read += 1;
            if let Some(raft) = self.node_mut(target).raft.as_mut() {
                if raft.read_index(ctx).is_ok() {
                    self.checker.on_read_issued(target, ctx);
                }
                self.after_input(target)?;
            }
        } else if self.faults_active && self.mix.transfers() {
            let to = self.ids[self.rng.gen_range(0, self.ids.len() as u64) as usize];
            if let Some(raft) = self.node_mut(target).raft.as_mut() {
                let _ = raft.transfer_leader(to);
                self.after_input(target)?;
            }
        }
        Ok(())
    }

    /// One operator step: act on the leader's configuration per the plan.
    /// Refusals (change in progress, learner behind, leader not ready, a
    /// transfer under way, ...) are expected under faults and retried at
    /// the next step.
    fn membership_action(&mut self) -> Result<(), Violation> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let Some(mut plan) = self.membership.take() else {
            return Ok(());
        };
        let raft = self.node(leader).raft.as_ref().expect("leader is up");
        let conf = raft.conf_state().clone();
        let voters = conf.voters.len();
        if plan.growing && voters >= plan.max_voters {
            plan.growing = false;
            plan.grown += 1;
        } else if !plan.growing && voters <= plan.min_voters {
            plan.growing = true;
            plan.shrunk += 1;
        }
        // Set when removing a former leader that handed leadership over.
        let mut was_leader = false;
        let action = if let Some(&learner) = conf.learners.first() {
            // Now and then an operator gives up on a new node.
            let kind = if self.rng.chance(10) {
                ConfChangeKind::RemoveLearner
            } else {
                ConfChangeKind::PromoteLearner
            };
            Some((kind, learner))
        } else if plan.growing {
            plan.spares
                .first()
                .map(|&spare| (ConfChangeKind::AddLearner, spare))
        } else {
            let victim = match plan.pending_leader_removal.take() {
                Some(v) if conf.voters.contains(&v) => {
                    was_leader = v != leader;
                    v
                }
                _ => conf.voters[self.rng.gen_range(0, voters as u64) as usize],
            };
            Some((ConfChangeKind::RemoveVoter, victim))
        };
        let Some((kind, node)) = action else {
            self.membership = Some(plan);
            return Ok(());
        };
        if kind == ConfChangeKind::RemoveVoter && node == leader {
            // Remove the leader: hand leadership over first (thesis
            // §3.10), remove it at the new leader.
            let others: Vec<NodeId> = conf
                .voters
                .iter()
                .copied()
                .filter(|&v| v != leader)
                .collect();
            let to = others[self.rng.gen_range(0, others.len() as u64) as usize];
            let raft = self.node_mut(leader).raft.as_mut().expect("leader is up");
            let _ = raft.transfer_leader(to);
            plan.pending_leader_removal = Some(leader);
        } else {
            let change = ConfChange {
                kind,
                node,
                context: format!("operator: {kind:?} {node}").into_bytes(),
            };
            let raft = self.node_mut(leader).raft.as_mut().expect("leader is up");
            match raft.propose_conf_change(change) {
                Ok(_) => {
                    plan.proposed += 1;
                    plan.leader_removals += u64::from(was_leader);
                    if kind == ConfChangeKind::AddLearner {
                        plan.spares.retain(|&s| s != node);
                    }
                }
                Err(_) => {
                    plan.refused += 1;
                    if was_leader {
                        plan.pending_leader_removal = Some(node);
                    }
                }
            }
        }
        self.membership = Some(plan);
        self.after_input(leader)
    }

    /// A configuration change committed (first seen applied): count it,
    /// and shut down half of the removed nodes for good, as an operator
    /// would; the other half keep running, removed, and must not disturb.
    fn on_change_committed(&mut self, entry: ConfEntry) {
        let Some(plan) = self.membership.as_mut() else {
            return;
        };
        plan.committed += 1;
        let removed = matches!(
            entry.change.kind,
            ConfChangeKind::RemoveVoter | ConfChangeKind::RemoveLearner
        );
        if removed && self.rng.chance(50) {
            let node = entry.change.node;
            self.crash(node);
            self.node_mut(node).retired = true;
        }
    }

    /// Voters and learners of the configuration the newest leader uses
    /// (before any leader exists: the committed configuration).
    fn final_members(&self) -> Vec<NodeId> {
        let conf = match self.leader() {
            Some(leader) => self
                .node(leader)
                .raft
                .as_ref()
                .expect("up")
                .conf_state()
                .clone(),
            None => self.committed_conf.clone(),
        };
        conf.voters
            .iter()
            .chain(conf.learners.iter())
            .copied()
            .collect()
    }

    /// Runs `steps` events (or until idle).
    pub fn run_steps(&mut self, steps: u64) -> Result<(), Violation> {
        for _ in 0..steps {
            if !self.step()? {
                break;
            }
        }
        Ok(())
    }

    /// Runs until simulated time `until_us`.
    pub fn run_until(&mut self, until_us: u64) -> Result<(), Violation> {
        while self
            .queue
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= until_us)
        {
            self.step()?;
        }
        self.now = self.now.max(until_us);
        Ok(())
    }

    /// Stops all faults, restarts crashed nodes, and requires that within
    /// `budget_us` of simulated time a leader exists and fresh proposals
    /// commit and are applied on every node.
    pub fn check_liveness(&mut self, markers: u64, budget_us: u64) -> Result<(), Violation> {
        // Offered load could exceed what the smallest flow-control settings
        // carry; liveness is about the protocol, so stop the clients too.
        self.faults_active = false;
        self.client_active = false;
        self.net.heal();
        for id in self.ids.clone() {
            self.restart(id);
        }
        // Every member of the final configuration must apply the markers
        // (nodes never added, or removed since, are not asked to).
        let deadline = self.now + budget_us;
        let marker_ids: Vec<u64> = (0..markers).map(|k| u64::MAX - k).collect();
        let mut last_proposed = 0u64;
        let mut proposed_once = false;
        while self.now < deadline {
            let members = self.final_members();
            let done = self
                .nodes
                .iter()
                .filter(|n| members.contains(&n.id))
                .all(|n| marker_ids.iter().all(|m| n.applied_ids.contains(m)));
            if done {
                return Ok(());
            }
            if !proposed_once || self.now >= last_proposed + 1_000_000 {
                if let Some(leader) = self.leader() {
                    if self.propose_at(leader, &marker_ids)? {
                        proposed_once = true;
                        last_proposed = self.now;
                    }
                }
            }
            let until = self.now + 20_000;
            self.run_until(until)?;
        }
        let progress: Vec<String> = match self.leader() {
            Some(leader) => {
                let raft = self.node(leader).raft.as_ref().expect("leader is up");
                self.ids
                    .iter()
                    .map(|&id| format!("{id}: {:?}", raft.progress(id)))
                    .collect()
            }
            None => Vec::new(),
        };
        let detail = format!(
            "after {budget_us} us: progress {progress:?}, leader {:?}, applied {:?}",
            self.leader(),
            self.nodes
                .iter()
                .map(|n| n.raft.as_ref().map(|r| (
                    r.term(),
                    r.role(),
                    r.applied_index(),
                    r.last_index(),
                    r.commit_index(),
                    r.stats()
                )))
                .collect::<Vec<_>>()
        );
        Err(Violation::NoLiveness { detail })
    }
}
