//! Fault injection: which faults a run uses, and one random fault action.

use super::cluster::{Cluster, TICK_US};
use continuum_raft::NodeId;

/// Families of faults a run mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMix {
    /// Loss (up to 30 %), duplication, delay spikes; no partitions.
    Lossy,
    /// Partitions of every shape (halves, minority, ring, bridge), light loss.
    Partitions,
    /// Crashes and restarts, light loss.
    Crashes,
    /// All of the above plus clock-rate changes and leadership transfers.
    Chaos,
}

impl FaultMix {
    /// All mixes, for seed sweeps.
    pub const ALL: [FaultMix; 4] = [
        FaultMix::Lossy,
        FaultMix::Partitions,
        FaultMix::Crashes,
        FaultMix::Chaos,
    ];

    /// Whether nodes crash (and new leaders are sometimes killed at once).
    pub fn crashes(self) -> bool {
        matches!(self, FaultMix::Crashes | FaultMix::Chaos)
    }

    /// Whether the client also requests leadership transfers.
    pub fn transfers(self) -> bool {
        matches!(self, FaultMix::Chaos | FaultMix::Partitions)
    }
}

fn pick(cluster: &mut Cluster) -> NodeId {
    let n = cluster.ids.len() as u64;
    cluster.ids[cluster.rng.gen_range(0, n) as usize]
}

fn shuffled(cluster: &mut Cluster) -> Vec<NodeId> {
    let mut ids = cluster.ids.clone();
    for i in (1..ids.len()).rev() {
        let j = cluster.rng.gen_range(0, i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    ids
}

fn lossy(cluster: &mut Cluster) {
    match cluster.rng.gen_range(0, 5) {
        0 => cluster.net.drop_pct = cluster.rng.gen_range(0, 31),
        1 => {
            let (a, b) = (pick(cluster), pick(cluster));
            if a != b {
                let pct = cluster.rng.gen_range(0, 101);
                cluster.net.drop(a, b, pct);
            }
        }
        2 => cluster.net.duplicate_pct = cluster.rng.gen_range(0, 20),
        3 => cluster.net.delay_max_us = cluster.rng.gen_range(1_000, 3 * TICK_US),
        _ => cluster.net.heal(),
    }
}

fn partition(cluster: &mut Cluster) {
    cluster.net.heal();
    cluster.net.drop_pct = cluster.rng.gen_range(0, 6);
    let ids = shuffled(cluster);
    match cluster.rng.gen_range(0, 6) {
        0 => {
            let half = ids.len() / 2;
            cluster
                .net
                .partition(&[ids[..half].to_vec(), ids[half..].to_vec()]);
        }
        1 => {
            let minority = cluster.rng.gen_range(1, (ids.len() / 2) as u64 + 1) as usize;
            cluster
                .net
                .partition(&[ids[..minority].to_vec(), ids[minority..].to_vec()]);
        }
        2 => cluster.net.ring(&ids),
        3 => cluster.net.bridge(&ids),
        4 => {
            let all = cluster.ids.clone();
            cluster.net.isolate(ids[0], &all);
        }
        _ => {} // healed
    }
}

fn crash(cluster: &mut Cluster) {
    cluster.net.drop_pct = cluster.rng.gen_range(0, 6);
    let id = pick(cluster);
    if cluster.node(id).raft.is_some() {
        // Prefer crashing the leader now and then: the interesting case.
        let victim = match cluster.leader() {
            Some(leader) if cluster.rng.chance(40) => leader,
            _ => id,
        };
        cluster.crash(victim);
    } else {
        cluster.restart(id);
    }
}

/// One random fault action according to the cluster's mix.
pub fn act(cluster: &mut Cluster) {
    match cluster.mix {
        FaultMix::Lossy => lossy(cluster),
        FaultMix::Partitions => partition(cluster),
        FaultMix::Crashes => crash(cluster),
        FaultMix::Chaos => match cluster.rng.gen_range(0, 4) {
            0 => lossy(cluster),
            1 => partition(cluster),
            2 => crash(cluster),
            _ => {
                let id = pick(cluster);
                let idx = (id - 1) as usize;
                cluster.nodes[idx].tick_us = TICK_US * cluster.rng.gen_range(80, 121) / 100;
            }
        },
    }
}
