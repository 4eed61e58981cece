//! Membership changes in the node (issue 16): the configuration in the
//! durable log and its snapshots, operator-signed membership commands from
//! admission to apply, the membership table (ids, addresses, keys), learner
//! promotion, removal, and power cuts with a change in flight.

use continuum_node::DiskLog;
use continuum_raft::{
    compute_chain_hash, ConfChange, ConfChangeKind, ConfEntry, ConfState, Entry, EntryKind,
    HardState, LogChainHash, Ready, Storage, GENESIS_CHAIN_HASH,
};
use continuum_storage::{BlockDevice, Identity, MemDisk, Store};

fn identity() -> Identity {
    Identity {
        cluster_id: 16,
        node_id: 1,
    }
}

/// Entries `from..from + n` of term 1 after `prev`; the ones at `conf`
/// indexes add learner 4 (index `conf[0]`), then promote it, ...
fn entries(from: u64, prev: LogChainHash, n: u64, confs: &[(u64, ConfEntry)]) -> Vec<Entry> {
    let mut prev = prev;
    (from..from + n)
        .map(|index| {
            let (kind, data) = match confs.iter().find(|(at, _)| *at == index) {
                Some((_, conf)) => (EntryKind::ConfChange, conf.encode()),
                None => (EntryKind::Normal, vec![index as u8; 40]),
            };
            let chain_hash = compute_chain_hash(&prev, index, 1, kind, &data);
            prev = chain_hash;
            Entry {
                index,
                term: 1,
                kind,
                data,
                chain_hash,
            }
        })
        .collect()
}

fn ready(commit: u64, entries: Vec<Entry>) -> Ready {
    Ready {
        hard_state: Some(HardState {
            term: 1,
            vote: 1,
            commit,
        }),
        entries,
        ..Ready::default()
    }
}

fn add_learner_4() -> ConfEntry {
    ConfEntry {
        change: ConfChange {
            kind: ConfChangeKind::AddLearner,
            node: 4,
            context: vec![1, 2, 3],
        },
        conf_state: ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
        },
    }
}

fn promote_4() -> ConfEntry {
    ConfEntry {
        change: ConfChange {
            kind: ConfChangeKind::PromoteLearner,
            node: 4,
            context: Vec::new(),
        },
        conf_state: ConfState::with_voters(vec![1, 2, 3, 4]),
    }
}

/// `compact` records the configuration in effect at the snapshot index
/// (not the boot voters, not a later change), and a reopened log hands it
/// to Raft with its index.
#[test]
fn a_snapshot_records_the_configuration_at_its_index_and_survives_reopen() {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    let confs = [(5, add_learner_4()), (9, promote_4())];
    log.persist(&ready(10, entries(1, GENESIS_CHAIN_HASH, 10, &confs)))
        .expect("persist");
    assert_eq!(log.conf_at(4), (ConfState::with_voters(vec![1, 2, 3]), 0));
    assert_eq!(log.conf_at(8), (add_learner_4().conf_state, 5));
    log.compact(8, 2, b"state at 8".to_vec(), vec![7; 32])
        .expect("compact");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (add_learner_4().conf_state, 5)
    );
    // The change after the snapshot is still tracked for the next one.
    assert_eq!(log.conf_at(10), (promote_4().conf_state, 9));
    let mut disk = log.into_store().into_device();
    let (store, _) = Store::open(&mut disk, identity()).expect("reopen");
    let log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (add_learner_4().conf_state, 5)
    );
    assert_eq!(log.initial_state().1, add_learner_4().conf_state);
    assert_eq!(log.conf_at(10), (promote_4().conf_state, 9));
    // A second snapshot past the promotion records it, though the entry
    // that set the first one is released by now.
    let mut log = log;
    log.compact(10, 0, b"state at 10".to_vec(), vec![7; 32])
        .expect("compact");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (promote_4().conf_state, 9)
    );
}

/// A configuration entry truncated away (a deposed leader's uncommitted
/// change) no longer counts: the snapshot falls back to the boot one.
#[test]
fn a_truncated_change_is_not_recorded_in_a_snapshot() {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    log.persist(&ready(
        4,
        entries(1, GENESIS_CHAIN_HASH, 6, &[(5, add_learner_4())]),
    ))
    .expect("persist");
    let prev = log.chain_hash(4).expect("4");
    let mut replace = ready(6, entries(5, prev, 2, &[]));
    replace.truncate_from = Some(5);
    log.persist(&replace).expect("truncate and append");
    assert_eq!(log.conf_at(6), (ConfState::with_voters(vec![1, 2, 3]), 0));
    log.compact(6, 0, b"state".to_vec(), vec![])
        .expect("compact");
    let meta = &log.snapshot().expect("snapshot").metadata;
    assert_eq!(
        (meta.conf_state.clone(), meta.conf_index),
        (ConfState::with_voters(vec![1, 2, 3]), 0)
    );
}

/// A joining node's log (no boot voters) starts with an empty
/// configuration, and takes the configuration of the snapshot it installs.
#[test]
fn a_joining_log_starts_empty_and_takes_an_installed_snapshots_configuration() {
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, Vec::new()).expect("log");
    assert_eq!(log.initial_state().1, ConfState::default());
    let metadata = continuum_raft::SnapshotMetadata {
        index: 20,
        term: 1,
        chain_hash: [3; 32],
        conf_state: add_learner_4().conf_state,
        conf_index: 12,
    };
    let snapshot = continuum_raft::Snapshot::new(metadata, b"leader state".to_vec());
    let install = Ready {
        snapshot: Some(snapshot),
        ..Ready::default()
    };
    log.persist(&install).expect("install");
    assert_eq!(log.conf_at(20), (add_learner_4().conf_state, 12));
    let mut disk = log.into_store().into_device();
    let (store, _) = Store::open(&mut disk, identity()).expect("reopen");
    let log = DiskLog::new(store, Vec::new()).expect("log");
    assert_eq!(log.initial_state().1, add_learner_4().conf_state);
    assert_eq!(log.snapshot().expect("snapshot").metadata.conf_index, 12);
}

// ---------------------------------------------------------------------
// Whole clusters: a small deterministic network of real `Node`s. A node
// accepts a peer message only from a member of its own directory
// (`Node::peer_directory`), as the kernel's peer authentication does.
// ---------------------------------------------------------------------

mod cluster {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use continuum_bank::{AccountFlags, CreateAccount, Entry, GenesisConfig, Limits};
    use continuum_clock::HlcTimestamp;
    use continuum_net::client::{
        ClientReply, ClientRequest, MembershipRefusal, ReplyBody, RequestOp,
    };
    use continuum_node::membership::{MembershipChange, MembershipCommand, SignedMembership};
    use continuum_node::{Body, Node, NodeConfig, NodeError};
    use continuum_raft::{Role, SplitMix64};
    use continuum_storage::{CrashMode, Identity, MemDisk, Store};
    use ed25519_dalek::{Signer, SigningKey};

    pub const CLUSTER: u64 = 16;
    /// Validity of the helpers' commands: one step is one HLC ms.
    pub const EXPIRES_AT: u64 = 500_000;

    pub fn operator() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    pub fn node_key(id: u64) -> SigningKey {
        SigningKey::from_bytes(&[id as u8 + 50; 32])
    }

    pub fn lan_ip(id: u64) -> [u8; 4] {
        [10, 7, 0, id as u8]
    }

    fn genesis() -> GenesisConfig {
        GenesisConfig {
            cluster_id: CLUSTER as u128,
            operator_key: operator().verifying_key().to_bytes(),
            reserve_account: 1,
            supply: 1_000_000,
            limits: Limits {
                max_accounts: 4096,
                max_transfers: 10_000,
                max_sessions: 16,
            },
            max_expiry_window_ms: 600_000,
        }
    }

    fn facts(ids: &[u64]) -> Vec<(u64, [u8; 4], [u8; 32])> {
        ids.iter()
            .map(|&id| (id, lan_ip(id), node_key(id).verifying_key().to_bytes()))
            .collect()
    }

    /// `voters` empty: a joining node that knows `contacts`.
    pub fn config(id: u64, voters: &[u64], contacts: &[u64], snapshot_entries: u64) -> NodeConfig {
        NodeConfig {
            id,
            voters: voters.to_vec(),
            members: facts(contacts),
            cluster_id: CLUSTER,
            genesis: genesis(),
            election_ticks: 10,
            heartbeat_ticks: 2,
            request_timeout_ticks: 400,
            chain_check_ticks: 20,
            seed: 0x5eed ^ id,
            snapshot_entries,
        }
    }

    pub fn hlc_at(step: u64) -> u64 {
        HlcTimestamp::new(step, 0).expect("in range").packed()
    }

    pub fn create_account(id: u128) -> Vec<u8> {
        Entry::single(
            CreateAccount {
                id,
                owner: SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes(),
                flags: AccountFlags::empty(),
                expires_at: EXPIRES_AT,
            }
            .sign(&operator(), CLUSTER as u128),
        )
        .encode()
    }

    pub fn sign_with(key: &SigningKey, command: MembershipCommand) -> Vec<u8> {
        let signature = key
            .sign(&command.signing_message(CLUSTER as u128))
            .to_bytes();
        SignedMembership { command, signature }.encode()
    }

    pub fn signed(change: MembershipChange, node: u64, conf_index: u64) -> Vec<u8> {
        sign_with(
            &operator(),
            MembershipCommand {
                change,
                node,
                conf_index,
                expires_at: EXPIRES_AT,
            },
        )
    }

    pub fn add(node: u64) -> MembershipChange {
        MembershipChange::AddLearner {
            lan_ip: lan_ip(node),
            node_key: node_key(node).verifying_key().to_bytes(),
            promote: true,
        }
    }

    pub struct Sim {
        pub nodes: BTreeMap<u64, Node<MemDisk, u64>>,
        pub configs: BTreeMap<u64, NodeConfig>,
        pub down: BTreeMap<u64, MemDisk>,
        wire: VecDeque<(u64, u64, u64, Body)>,
        rng: SplitMix64,
        pub step: u64,
        pub replies: Vec<(u64, ClientReply)>,
        next_request: u64,
        /// Messages dropped because the receiver did not know the sender.
        pub refused: BTreeMap<(u64, u64), u64>,
        pub loss_pct: u64,
    }

    impl Sim {
        pub fn new(n: u64, snapshot_entries: u64) -> Sim {
            let ids: Vec<u64> = (1..=n).collect();
            let mut sim = Sim {
                nodes: BTreeMap::new(),
                configs: BTreeMap::new(),
                down: BTreeMap::new(),
                wire: VecDeque::new(),
                rng: SplitMix64::new(16),
                step: 0,
                replies: Vec::new(),
                next_request: 1,
                refused: BTreeMap::new(),
                loss_pct: 0,
            };
            for &id in &ids {
                sim.boot(config(id, &ids, &ids, snapshot_entries), None);
            }
            sim
        }

        /// Starts a node (a blank disk unless `disk`).
        pub fn boot(&mut self, config: NodeConfig, disk: Option<MemDisk>) {
            let id = config.id;
            let identity = Identity {
                cluster_id: CLUSTER as u128,
                node_id: id,
            };
            let store = match disk {
                Some(disk) => Store::open(disk, identity).expect("reopen").0,
                None => {
                    Store::format(MemDisk::new(8192), identity)
                        .expect("format")
                        .0
                }
            };
            let node = Node::new(config.clone(), store).expect("node starts");
            self.configs.insert(id, config);
            self.nodes.insert(id, node);
        }

        /// Power cut: unflushed writes are lost (a random subset kept).
        pub fn crash(&mut self, id: u64, seed: u64) {
            let node = self.nodes.remove(&id).expect("running");
            let mut disk = node.into_device();
            disk.crash(CrashMode::KeepRandomSubset { seed });
            self.down.insert(id, disk);
        }

        pub fn restart(&mut self, id: u64) {
            let disk = self.down.remove(&id).expect("down");
            let config = self.configs[&id].clone();
            self.boot(config, Some(disk));
        }

        fn collect(&mut self, id: u64) -> Result<(), NodeError> {
            let node = self.nodes.get_mut(&id).expect("running");
            node.drive()?;
            for (to, body) in node.take_outbox() {
                let delay = 1 + self.rng.gen_range(0, 2);
                self.wire.push_back((self.step + delay, id, to, body));
            }
            self.replies.extend(node.take_replies());
            Ok(())
        }

        pub fn run(&mut self, steps: u64) {
            self.try_run(steps)
                .unwrap_or_else(|(id, e)| panic!("node {id} halted: {e}"));
        }

        pub fn try_run(&mut self, steps: u64) -> Result<(), (u64, NodeError)> {
            for _ in 0..steps {
                self.step += 1;
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                for &id in &ids {
                    self.nodes.get_mut(&id).unwrap().tick();
                    self.collect(id).map_err(|e| (id, e))?;
                }
                let mut later = VecDeque::new();
                while let Some((at, from, to, body)) = self.wire.pop_front() {
                    if at > self.step {
                        later.push_back((at, from, to, body));
                        continue;
                    }
                    if self.rng.gen_range(0, 100) < self.loss_pct {
                        continue;
                    }
                    let Some(node) = self.nodes.get_mut(&to) else {
                        continue;
                    };
                    if !node.peer_directory().iter().any(|(id, _)| *id == from) {
                        *self.refused.entry((from, to)).or_default() += 1;
                        continue;
                    }
                    node.on_peer(from, body, hlc_at(self.step))
                        .map_err(|e| (to, e))?;
                    self.collect(to).map_err(|e| (to, e))?;
                }
                self.wire = later;
            }
            Ok(())
        }

        pub fn leader(&self) -> Option<u64> {
            self.nodes
                .values()
                .filter(|n| n.role() == Role::Leader)
                .max_by_key(|n| n.raft().term())
                .map(|n| n.id())
        }

        pub fn wait_leader(&mut self) -> u64 {
            for _ in 0..400 {
                if let Some(l) = self.leader() {
                    return l;
                }
                self.run(1);
            }
            panic!("no leader");
        }

        /// Sends a request to `via`; returns its request id.
        pub fn request(&mut self, via: u64, op: RequestOp) -> u64 {
            let request_id = self.next_request;
            self.next_request += 1;
            let request = ClientRequest {
                cluster_id: CLUSTER,
                client_id: 77,
                request_id,
                op,
            };
            let hlc = hlc_at(self.step);
            self.nodes
                .get_mut(&via)
                .expect("running")
                .on_client(request_id, request, hlc);
            self.collect(via).expect("drive");
            request_id
        }

        /// Runs until request `id` is answered (at most `steps`).
        pub fn answer(&mut self, id: u64, steps: u64) -> Option<ReplyBody> {
            for _ in 0..=steps {
                if let Some(pos) = self.replies.iter().position(|(r, _)| *r == id) {
                    return Some(self.replies.remove(pos).1.body);
                }
                self.run(1);
            }
            None
        }

        /// Sends a membership command to the leader, following redirects
        /// and retrying transient refusals; returns the final answer.
        pub fn change(&mut self, command: Vec<u8>) -> ReplyBody {
            for _ in 0..60 {
                let leader = self.wait_leader();
                let id = self.request(
                    leader,
                    RequestOp::ChangeMembership {
                        command: command.clone(),
                    },
                );
                match self.answer(id, 600) {
                    Some(ReplyBody::MembershipRefused { reason, .. }) if reason.is_transient() => {
                        self.run(10)
                    }
                    Some(ReplyBody::Redirect { .. }) | None => self.run(10),
                    Some(body) => return body,
                }
            }
            panic!("membership command never answered");
        }

        /// [`Sim::change`] of `change` to `node`, signed against the
        /// configuration in effect now.
        pub fn change_now(&mut self, change: MembershipChange, node: u64) -> ReplyBody {
            let conf_index = self.conf_index();
            self.change(signed(change, node, conf_index))
        }

        /// The configuration index in effect at the leader.
        pub fn conf_index(&mut self) -> u64 {
            let leader = self.wait_leader();
            self.nodes[&leader].membership_status().conf_index
        }

        /// Runs until every running node has `voters`/`learners` applied.
        pub fn wait_conf(&mut self, voters: &[u64], learners: &[u64], steps: u64) {
            for _ in 0..steps {
                let done = self.nodes.values().all(|n| {
                    let s = n.membership_status();
                    s.removed_at.is_some()
                        || (s.voters == voters
                            && s.learners == learners
                            && s.applied_conf_index == s.conf_index)
                });
                if done {
                    return;
                }
                self.run(1);
            }
            let seen: Vec<_> = self
                .nodes
                .values()
                .map(|n| (n.id(), n.membership_status()))
                .collect();
            panic!("configuration {voters:?}/{learners:?} not reached: {seen:#?}");
        }

        /// Every running member agrees: same configuration, same directory,
        /// same chain head at the same applied index (after letting the
        /// last commits reach everyone).
        pub fn check_agreement(&mut self, members: &[u64]) {
            for _ in 0..500 {
                let applied: BTreeSet<u64> =
                    members.iter().map(|id| self.nodes[id].applied()).collect();
                if applied.len() == 1 {
                    break;
                }
                self.run(1);
            }
            let first = &self.nodes[&members[0]];
            for id in members {
                let node = &self.nodes[id];
                assert_eq!(
                    node.membership_status().voters,
                    first.membership_status().voters,
                    "node {id}"
                );
                assert_eq!(node.peer_directory(), first.peer_directory(), "node {id}");
                assert_eq!(node.applied(), first.applied(), "node {id}");
                assert_eq!(
                    node.ledger().chain_head(),
                    first.ledger().chain_head(),
                    "node {id}"
                );
            }
        }
    }

    /// A client that creates accounts through random running nodes and
    /// remembers which ones were acknowledged.
    pub struct Writer {
        next: u128,
        waiting: BTreeMap<u64, u128>,
        pub acked: BTreeSet<u128>,
    }

    impl Writer {
        pub fn new() -> Writer {
            Writer {
                next: 1000,
                waiting: BTreeMap::new(),
                acked: BTreeSet::new(),
            }
        }

        /// One write, then `steps` steps, collecting acknowledgements.
        pub fn write_and_run(&mut self, sim: &mut Sim, steps: u64) {
            let ids: Vec<u64> = sim.nodes.keys().copied().collect();
            let via = ids[(self.next as usize) % ids.len()];
            let account = self.next;
            self.next += 1;
            let id = sim.request(
                via,
                RequestOp::Submit {
                    entry: create_account(account),
                },
            );
            self.waiting.insert(id, account);
            sim.run(steps);
            self.collect(sim);
        }

        pub fn collect(&mut self, sim: &mut Sim) {
            let waiting = &mut self.waiting;
            let acked = &mut self.acked;
            sim.replies.retain(|(id, reply)| {
                let Some(&account) = waiting.get(id) else {
                    return true;
                };
                if let ReplyBody::Ok { .. } = reply.body {
                    acked.insert(account);
                }
                waiting.remove(id);
                false
            });
        }

        /// Runs `steps` more, then checks: every acknowledged account on
        /// every node in `members`, and those nodes agree.
        pub fn settle(&mut self, sim: &mut Sim, steps: u64, members: &[u64]) {
            sim.run(steps);
            self.collect(sim);
            self.check(sim, members);
            sim.check_agreement(members);
        }

        /// Every acknowledged account exists on every node in `members`.
        pub fn check(&self, sim: &Sim, members: &[u64]) {
            assert!(!self.acked.is_empty(), "no write was acknowledged");
            for id in members {
                let ledger = sim.nodes[id].ledger();
                for account in &self.acked {
                    assert_eq!(
                        ledger.balance(*account),
                        Some(0),
                        "node {id} lost acknowledged account {account}"
                    );
                }
            }
        }
    }

    pub fn refused(body: ReplyBody) -> MembershipRefusal {
        match body {
            ReplyBody::MembershipRefused { reason, .. } => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

use cluster::*;
use continuum_net::client::{MembershipRefusal, ReplyBody, RequestOp};
use continuum_node::membership::{MembershipChange, MembershipCommand};

fn is_ok(body: &ReplyBody) -> bool {
    matches!(body, ReplyBody::Ok { .. })
}

/// Grow 3 → 5 and shrink back to 3 while a client writes through every
/// node: the new nodes join as learners, are promoted once caught up, the
/// removed ones learn their removal and are refused afterwards, and no
/// acknowledged write is lost.
#[test]
fn grow_to_five_and_shrink_back_while_writing() {
    let mut sim = Sim::new(3, 0);
    let mut writer = Writer::new();
    sim.wait_leader();
    for _ in 0..20 {
        writer.write_and_run(&mut sim, 3);
    }
    for new in [4, 5] {
        let contacts: Vec<u64> = sim.nodes.keys().copied().collect();
        sim.boot(config(new, &[], &contacts, 0), None);
        assert!(!sim.nodes[&new].membership_status().voting);
        let reply = sim.change_now(add(new), new);
        assert!(is_ok(&reply), "add {new}: {reply:?}");
        for _ in 0..40 {
            writer.write_and_run(&mut sim, 3);
        }
        let voters: Vec<u64> = (1..=new).collect();
        sim.wait_conf(&voters, &[], 2000);
        assert!(sim.nodes[&new].membership_status().voting);
    }
    sim.check_agreement(&[1, 2, 3, 4, 5]);
    for gone in [5, 4] {
        if sim.leader() == Some(gone) {
            let to = 1;
            let reply = sim.change_now(MembershipChange::TransferLeader, to);
            assert!(is_ok(&reply), "transfer: {reply:?}");
            sim.run(100);
        }
        let reply = sim.change_now(MembershipChange::RemoveVoter, gone);
        assert!(is_ok(&reply), "remove {gone}: {reply:?}");
        for _ in 0..20 {
            writer.write_and_run(&mut sim, 3);
        }
        let voters: Vec<u64> = (1..gone).collect();
        sim.wait_conf(&voters, &[], 2000);
        sim.run(50);
        let removed = sim.nodes[&gone].membership_status();
        assert!(removed.removed_at.is_some(), "node {gone}: {removed:?}");
        for id in &voters {
            assert!(
                !sim.nodes[id]
                    .peer_directory()
                    .iter()
                    .any(|(m, _)| *m == gone),
                "node {id} still accepts removed node {gone}"
            );
        }
        sim.nodes.remove(&gone);
    }
    for _ in 0..10 {
        writer.write_and_run(&mut sim, 3);
    }
    writer.settle(&mut sim, 300, &[1, 2, 3]);
}

/// The leader cannot remove itself; after a signed leadership transfer the
/// new leader removes it.
#[test]
fn removing_the_leader_takes_a_transfer_first() {
    let mut sim = Sim::new(3, 0);
    let mut writer = Writer::new();
    let leader = sim.wait_leader();
    writer.write_and_run(&mut sim, 20);
    let conf_index = sim.conf_index();
    let reply = sim.change(signed(MembershipChange::RemoveVoter, leader, conf_index));
    assert_eq!(refused(reply), MembershipRefusal::RemoveLeader);
    let to = if leader == 1 { 2 } else { 1 };
    let reply = sim.change(signed(MembershipChange::TransferLeader, to, conf_index));
    assert!(is_ok(&reply), "{reply:?}");
    sim.run(200);
    assert_eq!(sim.wait_leader(), to);
    let reply = sim.change_now(MembershipChange::RemoveVoter, leader);
    assert!(is_ok(&reply), "{reply:?}");
    let rest: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    sim.wait_conf(&rest, &[], 2000);
    sim.run(50);
    assert!(sim.nodes[&leader].membership_status().removed_at.is_some());
    sim.nodes.remove(&leader);
    for _ in 0..10 {
        writer.write_and_run(&mut sim, 5);
    }
    writer.settle(&mut sim, 200, &rest);
}

/// Every refusal reaches the client typed: a forged signature, a replayed
/// (stale) command, an expired one, one too far ahead, a duplicate key, an
/// existing member, an unknown node; a follower redirects.
#[test]
fn refusals_are_typed() {
    let mut sim = Sim::new(3, 0);
    let leader = sim.wait_leader();
    sim.run(30);
    let conf_index = sim.conf_index();
    let forged = sign_with(
        &node_key(9),
        MembershipCommand {
            change: add(4),
            node: 4,
            conf_index,
            expires_at: EXPIRES_AT,
        },
    );
    assert_eq!(refused(sim.change(forged)), MembershipRefusal::BadSignature);
    let expired = signed_at(add(4), 4, conf_index, 1);
    assert_eq!(refused(sim.change(expired)), MembershipRefusal::Expired);
    let far = signed_at(add(4), 4, conf_index, sim.step + 10_000_000);
    assert_eq!(refused(sim.change(far)), MembershipRefusal::ExpiryTooFar);
    let reused_key = MembershipChange::AddLearner {
        lan_ip: lan_ip(4),
        node_key: node_key(2).verifying_key().to_bytes(),
        promote: true,
    };
    assert_eq!(
        refused(sim.change(signed(reused_key, 4, conf_index))),
        MembershipRefusal::BadMember
    );
    assert_eq!(
        refused(sim.change(signed(add(2), 2, conf_index))),
        MembershipRefusal::AlreadyMember
    );
    assert_eq!(
        refused(sim.change(signed(MembershipChange::RemoveVoter, 9, conf_index))),
        MembershipRefusal::UnknownNode
    );
    assert_eq!(
        refused(sim.change(signed(MembershipChange::PromoteLearner, 9, conf_index))),
        MembershipRefusal::UnknownNode
    );
    assert_eq!(
        refused(sim.change(signed(MembershipChange::PromoteLearner, 2, conf_index))),
        MembershipRefusal::AlreadyMember
    );
    // Garbage is malformed, not a crash.
    let id = sim.request(
        leader,
        RequestOp::ChangeMembership {
            command: vec![1, 2, 3],
        },
    );
    assert_eq!(
        refused(sim.answer(id, 5).expect("answered")),
        MembershipRefusal::Malformed
    );
    // A follower redirects to the leader.
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    let id = sim.request(
        follower,
        RequestOp::ChangeMembership {
            command: signed(add(4), 4, conf_index),
        },
    );
    assert_eq!(
        sim.answer(id, 5),
        Some(ReplyBody::Redirect {
            leader_hint: Some(leader)
        })
    );
    // Applied once; the same signed command again is stale.
    let contacts = [1, 2, 3];
    sim.boot(config(4, &[], &contacts, 0), None);
    let command = signed(add(4), 4, conf_index);
    assert!(is_ok(&sim.change(command.clone())));
    assert_eq!(
        refused(sim.change(command)),
        MembershipRefusal::StaleConfiguration
    );
    sim.wait_conf(&[1, 2, 3, 4], &[], 2000);
    sim.check_agreement(&[1, 2, 3, 4]);
}

fn signed_at(change: MembershipChange, node: u64, conf_index: u64, expires_at: u64) -> Vec<u8> {
    sign_with(
        &operator(),
        MembershipCommand {
            change,
            node,
            conf_index,
            expires_at,
        },
    )
}

/// The dead-disk case: node 3's disk is gone. Remove voter 3 (down), then
/// add a new id on a blank disk; it catches up and votes. The cluster
/// keeps every acknowledged write.
#[test]
fn replace_a_node_whose_disk_was_wiped() {
    let mut sim = Sim::new(3, 0);
    let mut writer = Writer::new();
    sim.wait_leader();
    for _ in 0..20 {
        writer.write_and_run(&mut sim, 3);
    }
    if sim.leader() == Some(3) {
        let reply = sim.change_now(MembershipChange::TransferLeader, 1);
        assert!(is_ok(&reply), "{reply:?}");
        sim.run(200);
    }
    sim.crash(3, 1);
    sim.down.remove(&3); // wiped
    let reply = sim.change_now(MembershipChange::RemoveVoter, 3);
    assert!(is_ok(&reply), "{reply:?}");
    sim.wait_conf(&[1, 2], &[], 2000);
    sim.boot(config(6, &[], &[1, 2], 0), None);
    let reply = sim.change_now(add(6), 6);
    assert!(is_ok(&reply), "{reply:?}");
    for _ in 0..20 {
        writer.write_and_run(&mut sim, 3);
    }
    sim.wait_conf(&[1, 2, 6], &[], 3000);
    writer.settle(&mut sim, 200, &[1, 2, 6]);
}

/// With snapshots every 20 entries, a joining node is caught up by
/// InstallSnapshot and learns the directory from it (including a member
/// its contacts did not list); a restarted node gets its directory back
/// from its own snapshot.
#[test]
fn the_directory_travels_in_snapshots() {
    let mut sim = Sim::new(3, 20);
    let mut writer = Writer::new();
    sim.wait_leader();
    sim.boot(config(4, &[], &[1, 2, 3], 20), None);
    let reply = sim.change_now(add(4), 4);
    assert!(is_ok(&reply), "{reply:?}");
    sim.wait_conf(&[1, 2, 3, 4], &[], 2000);
    for _ in 0..80 {
        writer.write_and_run(&mut sim, 2);
    }
    sim.run(100);
    // Node 5 knows only 1..3; the snapshot it installs names 4 too.
    sim.boot(config(5, &[], &[1, 2, 3], 20), None);
    let reply = sim.change_now(add(5), 5);
    assert!(is_ok(&reply), "{reply:?}");
    sim.wait_conf(&[1, 2, 3, 4, 5], &[], 3000);
    assert!(sim.nodes[&5].snapshot_status().snapshots_installed >= 1);
    assert!(sim.nodes[&5]
        .peer_directory()
        .iter()
        .any(|(id, _)| *id == 4));
    // Restart node 1 from its disk: its snapshot carries the directory.
    for _ in 0..40 {
        writer.write_and_run(&mut sim, 2);
    }
    sim.crash(1, 3);
    sim.restart(1);
    assert!(sim.nodes[&1].snapshot_status().snapshot_index > 0);
    let directory: Vec<u64> = sim.nodes[&1].peer_directory().iter().map(|m| m.0).collect();
    assert_eq!(directory, vec![1, 2, 3, 4, 5]);
    writer.settle(&mut sim, 400, &[1, 2, 3, 4, 5]);
}

/// Power cuts with a change in flight: the leader (or the joining node) is
/// cut at every step of an addition's way from proposal to commit, loses
/// what it had not flushed, and restarts. The cluster ends in one
/// configuration everywhere, with one directory, and never halts.
#[test]
fn power_cuts_with_a_change_in_flight() {
    for cut_after in 0..12u64 {
        for victim_is_leader in [true, false] {
            let mut sim = Sim::new(3, 0);
            let mut writer = Writer::new();
            let leader = sim.wait_leader();
            for _ in 0..5 {
                writer.write_and_run(&mut sim, 3);
            }
            sim.boot(config(4, &[], &[1, 2, 3], 0), None);
            let conf_index = sim.conf_index();
            sim.request(
                leader,
                RequestOp::ChangeMembership {
                    command: signed(add(4), 4, conf_index),
                },
            );
            sim.run(cut_after);
            let victim = if victim_is_leader { leader } else { 4 };
            sim.crash(victim, cut_after);
            sim.run(30);
            sim.restart(victim);
            sim.run(300);
            // Whether the addition survived or not, finish it.
            let now = sim.wait_leader();
            if !sim.nodes[&now].membership_status().voters.contains(&4) {
                let reply = sim.change_now(add(4), 4);
                assert!(
                    is_ok(&reply) || refused(reply.clone()) == MembershipRefusal::AlreadyMember,
                    "cut after {cut_after}: {reply:?}"
                );
            }
            sim.wait_conf(&[1, 2, 3, 4], &[], 3000);
            for _ in 0..5 {
                writer.write_and_run(&mut sim, 3);
            }
            writer.settle(&mut sim, 200, &[1, 2, 3, 4]);
        }
    }
}

// ---------------------------------------------------------------------
// The command, the directory section and the apply-time check, alone.
// ---------------------------------------------------------------------

mod codec {
    use super::cluster::{add, lan_ip, node_key, operator, sign_with, CLUSTER, EXPIRES_AT};
    use continuum_bank::OwnerKey;
    use continuum_node::membership::{
        check_committed, join_snapshot, split_snapshot, CheckContext, ConfContext, Directory,
        MembershipChange, MembershipCommand, MembershipDecodeError, MembershipFault, Refusal,
        SignedMembership, SIGNED_MEMBERSHIP_LEN,
    };
    use continuum_node::EntryHeader;
    use continuum_raft::{ConfChangeKind, ConfState};

    fn command(change: MembershipChange, node: u64) -> MembershipCommand {
        MembershipCommand {
            change,
            node,
            conf_index: 0,
            expires_at: EXPIRES_AT,
        }
    }

    #[test]
    fn commands_round_trip_and_every_stray_byte_is_refused() {
        for change in [
            add(4),
            MembershipChange::PromoteLearner,
            MembershipChange::RemoveVoter,
            MembershipChange::RemoveLearner,
            MembershipChange::TransferLeader,
        ] {
            let bytes = sign_with(&operator(), command(change, 4));
            let decoded = SignedMembership::decode(&bytes).expect("decodes");
            assert_eq!(decoded.command, command(change, 4));
            assert_eq!(decoded.encode(), bytes);
        }
        // A removal with an address, a key or a flag is not canonical.
        let removal = sign_with(&operator(), command(MembershipChange::RemoveVoter, 4));
        for at in 9..46 {
            let mut bad = removal.clone();
            bad[at] = 1;
            assert_eq!(
                SignedMembership::decode(&bad),
                Err(MembershipDecodeError::NonCanonical),
                "byte {at}"
            );
        }
        let mut unknown_flag = sign_with(&operator(), command(add(4), 4));
        unknown_flag[45] = 2;
        assert!(SignedMembership::decode(&unknown_flag).is_err());
        let mut node_zero = sign_with(&operator(), command(add(4), 4));
        node_zero[1..9].fill(0);
        assert!(SignedMembership::decode(&node_zero).is_err());
        let mut kind = sign_with(&operator(), command(add(4), 4));
        kind[0] = 9;
        assert_eq!(
            SignedMembership::decode(&kind),
            Err(MembershipDecodeError::UnknownKind(9))
        );
        assert_eq!(
            SignedMembership::decode(&removal[1..]),
            Err(MembershipDecodeError::Length(SIGNED_MEMBERSHIP_LEN - 1))
        );
    }

    fn directory() -> Directory {
        let facts: Vec<_> = (1..=3)
            .map(|id| (id, lan_ip(id), node_key(id).verifying_key().to_bytes()))
            .collect();
        Directory::from_boot(&facts, ConfState::with_voters(vec![1, 2, 3]))
    }

    /// The boot directory after node 4 was added as a learner at index 7.
    fn directory_with_learner_4() -> Directory {
        let mut dir = directory();
        dir.apply(
            7,
            4,
            &add(4),
            &ConfState {
                voters: vec![1, 2, 3],
                learners: vec![4],
            },
        );
        dir
    }

    #[test]
    fn the_directory_section_round_trips_and_old_data_is_the_ledger_alone() {
        let dir = directory_with_learner_4();
        let data = join_snapshot(&dir, b"ledger bytes");
        let (back, ledger) = split_snapshot(&data).expect("splits");
        let back = back.expect("a directory");
        assert_eq!(ledger, b"ledger bytes");
        assert_eq!(back.members, dir.members);
        assert_eq!(back.conf_index, 7);
        assert!(back.members[&4].promote);
        assert_eq!(
            split_snapshot(b"CBSNAP02...").unwrap(),
            (None, &b"CBSNAP02..."[..])
        );
        // Truncated or unordered sections are refused.
        assert!(split_snapshot(&data[..20]).is_err());
    }

    /// A committed change the operator did not sign is a fault (the node
    /// halts on it), and so is a promotion of a learner not added for it.
    #[test]
    fn a_committed_change_is_checked_again() {
        let operator_key = OwnerKey::parse(&operator().verifying_key().to_bytes()).unwrap();
        let dir = directory();
        let ctx = |ms| CheckContext {
            cluster_id: CLUSTER as u128,
            operator: &operator_key,
            max_expiry_window_ms: 600_000,
            log_time_ms: ms,
            directory: &dir,
        };
        let header = EntryHeader {
            origin: 1,
            request_tag: 5,
            hlc: super::cluster::hlc_at(10),
        };
        let context = |bytes: Vec<u8>| {
            let signed = SignedMembership::decode(&bytes).unwrap();
            header.wrap(&ConfContext::Signed(signed).encode())
        };
        let good = context(sign_with(&operator(), command(add(4), 4)));
        let (h, change) =
            check_committed(ConfChangeKind::AddLearner, 4, &good, ctx).expect("signed");
        assert_eq!((h, change), (header, add(4)));
        let forged = context(sign_with(&node_key(1), command(add(4), 4)));
        assert_eq!(
            check_committed(ConfChangeKind::AddLearner, 4, &forged, ctx),
            Err(MembershipFault::Refused(Refusal::BadSignature))
        );
        // The entry adds node 5 but the operator signed node 4.
        assert_eq!(
            check_committed(ConfChangeKind::AddLearner, 5, &good, ctx),
            Err(MembershipFault::Mismatch)
        );
        let stale = context(sign_with(
            &operator(),
            MembershipCommand {
                conf_index: 3,
                ..command(add(4), 4)
            },
        ));
        assert_eq!(
            check_committed(ConfChangeKind::AddLearner, 4, &stale, ctx),
            Err(MembershipFault::Refused(Refusal::StaleConfiguration {
                current: 0
            }))
        );
        let promotion = header.wrap(&ConfContext::Promotion.encode());
        assert_eq!(
            check_committed(ConfChangeKind::PromoteLearner, 2, &promotion, ctx),
            Err(MembershipFault::UnauthorizedPromotion)
        );
        let with_learner = directory_with_learner_4();
        let ctx4 = |ms| CheckContext {
            directory: &with_learner,
            ..ctx(ms)
        };
        assert!(check_committed(ConfChangeKind::PromoteLearner, 4, &promotion, ctx4).is_ok());
    }
}

/// The newest configuration entry below each bound: what a backward scan
/// of the log finds (Raft's default), here answered from the tracked
/// entries, before and after a reopen and after a truncation.
#[test]
fn the_newest_configuration_entry_is_found_without_scanning() {
    fn scan<D: BlockDevice>(log: &DiskLog<D>, hi: u64) -> Option<Entry> {
        (log.first_index()..hi.min(log.last_index() + 1))
            .rev()
            .map(|i| log.entries(i, i + 1, 0).unwrap().pop().unwrap())
            .find(|e| e.kind == EntryKind::ConfChange)
    }
    fn agree<D: BlockDevice>(log: &DiskLog<D>) {
        for hi in 0..=log.last_index() + 2 {
            assert_eq!(
                log.newest_conf_entry(hi).unwrap(),
                scan(log, hi),
                "below {hi}"
            );
        }
    }
    let (store, _) = Store::format(MemDisk::new(4096), identity()).expect("format");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    let confs = [(3, add_learner_4()), (7, promote_4())];
    log.persist(&ready(5, entries(1, GENESIS_CHAIN_HASH, 9, &confs)))
        .expect("persist");
    assert_eq!(
        log.newest_conf_entry(100).unwrap().map(|e| e.index),
        Some(7)
    );
    agree(&log);
    let disk = log.into_store().into_device();
    let (store, _) = Store::open(disk, identity()).expect("reopen");
    let mut log = DiskLog::new(store, vec![1, 2, 3]).expect("log");
    agree(&log);
    let prev = log.chain_hash(5).expect("5");
    let mut replace = ready(5, entries(6, prev, 2, &[]));
    replace.truncate_from = Some(6);
    log.persist(&replace).expect("truncate and append");
    assert_eq!(
        log.newest_conf_entry(100).unwrap().map(|e| e.index),
        Some(3)
    );
    agree(&log);
}
