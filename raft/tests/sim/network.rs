//! Simulated network: per directed link blocking and loss, global
//! duplication and delay (delays are random, so messages reorder).
//! Verbs follow raft-rs's test harness: `cut`, `isolate`, `heal`, `drop`.

use continuum_raft::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Fault plan of the network, applied when a message is sent.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Directed links that deliver nothing.
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Extra loss per directed link, percent.
    link_drop_pct: BTreeMap<(NodeId, NodeId), u64>,
    /// Loss on every link, percent (the nemesis draws at most 30).
    pub drop_pct: u64,
    /// Chance a delivered message is delivered twice, percent.
    pub duplicate_pct: u64,
    /// One-way delay bounds in microseconds.
    pub delay_min_us: u64,
    /// Upper bound (exclusive) of the one-way delay.
    pub delay_max_us: u64,
}

impl Network {
    /// A clean network with 0.1–2 ms delays.
    pub fn new() -> Network {
        Network {
            delay_min_us: 100,
            delay_max_us: 2_000,
            ..Network::default()
        }
    }

    /// Blocks both directions between `a` and `b`.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    /// Cuts `node` off from every node in `all`.
    pub fn isolate(&mut self, node: NodeId, all: &[NodeId]) {
        for &other in all {
            if other != node {
                self.cut(node, other);
            }
        }
    }

    /// Splits `all` into `groups` that cannot talk to each other.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        self.cut(x, y);
                    }
                }
            }
        }
    }

    /// Ring: node i only talks to its two neighbours, so with 5 nodes each
    /// node sees a different majority.
    pub fn ring(&mut self, all: &[NodeId]) {
        let n = all.len();
        for i in 0..n {
            for j in 0..n {
                let dist = (i + n - j) % n;
                if i != j && dist != 1 && dist != n - 1 {
                    self.blocked.insert((all[i], all[j]));
                }
            }
        }
    }

    /// Bridge: two halves that only connect through `all[n/2]`.
    pub fn bridge(&mut self, all: &[NodeId]) {
        let mid = all.len() / 2;
        let left: Vec<NodeId> = all[..mid].to_vec();
        let right: Vec<NodeId> = all[mid + 1..].to_vec();
        self.partition(&[left, right]);
    }

    /// Sets the loss on one directed link.
    pub fn drop(&mut self, from: NodeId, to: NodeId, pct: u64) {
        self.link_drop_pct.insert((from, to), pct);
    }

    /// Removes every partition, loss, duplication and delay spike.
    pub fn heal(&mut self) {
        *self = Network::new();
    }

    /// Whether the link is blocked.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Total loss on a link, percent.
    pub fn loss_pct(&self, from: NodeId, to: NodeId) -> u64 {
        (self.drop_pct + self.link_drop_pct.get(&(from, to)).copied().unwrap_or(0)).min(100)
    }
}
