//! Synchronous test network shared by the scenario tests: every message is
//! delivered at once unless its link is cut, in the style of raft-rs's
//! `Network` harness.
#![allow(dead_code)]

use continuum_raft::{
    Config, Entry, EntryKind, HardState, MemStorage, Message, NodeId, Raft, ReadState, Role,
    Snapshot, GENESIS_CHAIN_HASH, NO_NODE,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Decides per message whether it is delivered (false: lost).
pub type DeliverFilter = Box<dyn FnMut(&Message) -> bool>;

pub struct Net {
    pub nodes: BTreeMap<NodeId, Raft<MemStorage>>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub reads: BTreeMap<NodeId, Vec<ReadState>>,
    /// Every message delivered, for assertions.
    pub delivered: Vec<Message>,
    /// Rewrites messages in flight (e.g. strips entries), when set.
    pub rewrite: Option<fn(&mut Message)>,
    /// Decides per message whether it is delivered (false: lost), when set.
    pub deliver: Option<DeliverFilter>,
    /// Snapshots each node installed from a Ready, in order.
    pub installed: BTreeMap<NodeId, Vec<Snapshot>>,
}

impl Net {
    pub fn new(n: u64, configure: impl Fn(&mut Config)) -> Net {
        let ids: Vec<NodeId> = (1..=n).collect();
        Net::with_storages(
            ids.iter().map(|_| MemStorage::new(ids.clone())).collect(),
            configure,
        )
    }

    pub fn with_storages(storages: Vec<MemStorage>, configure: impl Fn(&mut Config)) -> Net {
        let mut nodes = BTreeMap::new();
        for (i, storage) in storages.into_iter().enumerate() {
            let id = i as u64 + 1;
            let mut config = Config::new(id);
            configure(&mut config);
            nodes.insert(id, Raft::new(config, storage, 100 + id).expect("config"));
        }
        Net {
            nodes,
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
            delivered: Vec::new(),
            rewrite: None,
            deliver: None,
            installed: BTreeMap::new(),
        }
    }

    pub fn node(&mut self, id: NodeId) -> &mut Raft<MemStorage> {
        self.nodes.get_mut(&id).expect("node")
    }

    pub fn isolate(&mut self, id: NodeId) {
        for &other in self.nodes.keys() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Runs Ready processing and delivery until nothing moves.
    pub fn settle(&mut self) {
        let mut queue: VecDeque<Message> = VecDeque::new();
        for _ in 0..10_000 {
            let mut moved = false;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                let raft = self.nodes.get_mut(&id).expect("node");
                while raft.has_ready() {
                    moved = true;
                    let ready = raft.ready();
                    if let Some(snapshot) = ready.snapshot {
                        raft.storage_mut().apply_snapshot(snapshot.clone());
                        self.installed.entry(id).or_default().push(snapshot);
                    }
                    raft.storage_mut().append(&ready.entries);
                    if let Some(hs) = ready.hard_state {
                        raft.storage_mut().set_hard_state(hs);
                    }
                    queue.extend(ready.messages);
                    self.applied
                        .entry(id)
                        .or_default()
                        .extend(ready.committed_entries);
                    self.reads.entry(id).or_default().extend(ready.read_states);
                    raft.advance();
                }
            }
            while let Some(mut message) = queue.pop_front() {
                moved = true;
                if let Some(rewrite) = self.rewrite {
                    rewrite(&mut message);
                }
                if self.cut.contains(&(message.from, message.to)) {
                    continue;
                }
                if let Some(deliver) = self.deliver.as_mut() {
                    if !deliver(&message) {
                        continue;
                    }
                }
                self.delivered.push(message.clone());
                self.node(message.to).step(message).expect("step");
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Ticks only `id` until it has started an election, then settles.
    pub fn campaign(&mut self, id: NodeId) {
        for _ in 0..100 {
            self.node(id).tick();
            if self.node(id).role() != Role::Follower {
                break;
            }
        }
        self.settle();
    }

    pub fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for raft in self.nodes.values_mut() {
                raft.tick();
            }
            self.settle();
        }
    }

    pub fn payloads(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied
            .get(&id)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Normal)
                    .map(|e| e.data.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub fn log_with_terms(voters: &[NodeId], terms: &[u64], hard_term: u64) -> MemStorage {
    let mut storage = MemStorage::new(voters.to_vec());
    let mut prev = GENESIS_CHAIN_HASH;
    let mut entries = Vec::new();
    for (i, &term) in terms.iter().enumerate() {
        let entry = Entry::new(
            &prev,
            i as u64 + 1,
            term,
            EntryKind::Normal,
            vec![i as u8, term as u8],
        );
        prev = entry.chain_hash;
        entries.push(entry);
    }
    storage.append(&entries);
    storage.set_hard_state(HardState {
        term: hard_term,
        vote: NO_NODE,
        commit: 0,
    });
    storage
}
