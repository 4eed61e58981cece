//! In-process throughput benchmark: 3 nodes, in-memory storage, an instant
//! in-memory network, and N closed-loop proposers (each keeps one proposal
//! outstanding and proposes again once it commits). Prints committed
//! proposals/s and Raft steps/s (messages stepped + ticks) per N.
//!
//! `cargo bench -p continuum-raft` (RAFT_BENCH_SECS=<s> per N, default 2;
//! RAFT_BENCH_PROPOSERS=1,16,256 to choose N).

use continuum_raft::{Config, EntryKind, MemStorage, Message, Raft, Role};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const PAYLOAD_BYTES: usize = 64;

struct Bench {
    nodes: Vec<Raft<MemStorage>>,
    wire: VecDeque<Message>,
    steps: u64,
    committed: u64,
    /// Per proposer: waiting for a commit?
    outstanding: Vec<bool>,
}

impl Bench {
    fn new(proposers: usize) -> Bench {
        let ids = vec![1, 2, 3];
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id);
                config.max_entries_per_msg = 1024;
                config.max_inflight_msgs = 256;
                config.max_uncommitted_entries = 1 << 20;
                config.max_committed_bytes_per_ready = 4 << 20;
                Raft::new(config, MemStorage::new(ids.clone()), id).expect("config")
            })
            .collect();
        Bench {
            nodes,
            wire: VecDeque::new(),
            steps: 0,
            committed: 0,
            outstanding: vec![false; proposers],
        }
    }

    fn pump(&mut self) {
        loop {
            for i in 0..self.nodes.len() {
                let node = &mut self.nodes[i];
                while node.has_ready() {
                    let ready = node.ready();
                    node.storage_mut().append(&ready.entries);
                    if let Some(hs) = ready.hard_state {
                        node.storage_mut().set_hard_state(hs);
                    }
                    self.wire.extend(ready.messages);
                    if node.role() == Role::Leader {
                        for entry in &ready.committed_entries {
                            if entry.kind == EntryKind::Normal {
                                let client = u64::from_be_bytes(
                                    entry.data[..8].try_into().expect("payload"),
                                ) as usize;
                                self.outstanding[client] = false;
                                self.committed += 1;
                            }
                        }
                    }
                    node.advance();
                }
            }
            if self.wire.is_empty() {
                return;
            }
            while let Some(message) = self.wire.pop_front() {
                let to = (message.to - 1) as usize;
                self.nodes[to].step(message).expect("step");
                self.steps += 1;
            }
        }
    }

    fn tick(&mut self) {
        for node in &mut self.nodes {
            node.tick();
            self.steps += 1;
        }
    }

    fn leader(&self) -> usize {
        self.nodes
            .iter()
            .position(|n| n.role() == Role::Leader)
            .expect("a leader")
    }
}

fn run(proposers: usize, duration: Duration) {
    let mut bench = Bench::new(proposers);
    while !bench.nodes.iter().any(|n| n.role() == Role::Leader) {
        bench.tick();
        bench.pump();
    }
    let (steps0, committed0) = (bench.steps, bench.committed);
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < duration {
        let leader = bench.leader();
        for client in 0..proposers {
            if !bench.outstanding[client] {
                let mut payload = vec![0u8; PAYLOAD_BYTES];
                payload[..8].copy_from_slice(&(client as u64).to_be_bytes());
                if bench.nodes[leader].propose(payload).is_ok() {
                    bench.outstanding[client] = true;
                }
            }
        }
        bench.pump();
        rounds += 1;
        // One tick per 16 rounds keeps heartbeats and check-quorum alive.
        if rounds.is_multiple_of(16) {
            bench.tick();
            bench.pump();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let committed = bench.committed - committed0;
    let steps = bench.steps - steps0;
    println!(
        "3 nodes, {proposers:>4} proposers, {PAYLOAD_BYTES} B payloads: {:>10.0} committed proposals/s, {:>10.0} steps/s ({committed} proposals, {secs:.2} s)",
        committed as f64 / secs,
        steps as f64 / secs,
    );
}

fn main() {
    let secs: u64 = std::env::var("RAFT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let proposers: Vec<usize> = std::env::var("RAFT_BENCH_PROPOSERS")
        .ok()
        .map(|s| s.split(',').filter_map(|p| p.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 256]);
    for n in proposers {
        run(n, Duration::from_secs(secs));
    }
}
