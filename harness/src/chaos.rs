//! A continuous, seeded chaos schedule and the loop that runs it: one fault
//! at a time, held for a while, undone, then the time until the cluster
//! commits again is measured and the status invariants are checked.
//!
//! The schedule ([`Schedule`]) is pure: the same seed and nodes give the
//! same faults, victims, parameters and hold/calm times (wall-clock timing
//! of the cluster still varies). [`run`] drives any [`Nemesis`] — the
//! in-process [`crate::cluster::Cluster`] (the Jepsen test) or the CLI's
//! sockets (`continuum chaos`) — so both run the same code.
//!
//! Invariants checked from the nodes' `/status` while a fault is active and
//! during recovery ([`Observer`]): at most one leader per term; every two
//! reports of the receipt-chain head at the same index name the same hash;
//! no node counts a chain check mismatch. The client history (conservation,
//! exactly-once, linearizability) is the caller's to check.

use continuum_config::NodeId;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use continuum_raft::SplitMix64;
use serde::Serialize;
use serde_json::Value;

use crate::faults::DiskFault;

/// How often statuses are polled while a fault holds and during recovery.
pub const POLL: Duration = Duration::from_millis(500);
/// Chain heads remembered per run for the agreement check (older indexes
/// are forgotten first).
pub const MAX_CHAIN_HEADS: usize = 4096;
/// Terms remembered for the one-leader-per-term check.
pub const MAX_TERMS: usize = 4096;

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    PartitionHalves,
    PartitionRing,
    PartitionBridge,
    Kill {
        node: NodeId,
    },
    Pause {
        node: NodeId,
    },
    /// Percent of frames dropped on every link.
    Loss {
        percent: u32,
    },
    /// Delay and jitter on every link.
    Delay {
        ms: u64,
        jitter_ms: u64,
    },
    /// Percent of frames delivered twice on every link.
    Duplicate {
        percent: u32,
    },
    /// Percent of UDP frames corrupted behind a valid checksum on every
    /// link out of `node` (a misbehaving peer).
    Corrupt {
        node: NodeId,
        percent: u32,
    },
    /// Percent of frames followed by a replayed earlier one, every link.
    Replay {
        percent: u32,
    },
    /// `node` rebooted with its wall clock `offset_s` seconds off.
    ClockSkew {
        node: NodeId,
        offset_s: i64,
    },
    /// `node` rebooted on a disk that fails as `fault`.
    Disk {
        node: NodeId,
        #[serde(serialize_with = "disk_fault_name")]
        fault: DiskFault,
    },
}

fn disk_fault_name<S: serde::Serializer>(fault: &DiskFault, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(fault.name())
}

impl Fault {
    /// Short name of the kind (for summaries).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionRing => "partition-ring",
            Fault::PartitionBridge => "partition-bridge",
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Loss { .. } => "loss",
            Fault::Delay { .. } => "delay",
            Fault::Duplicate { .. } => "duplicate",
            Fault::Corrupt { .. } => "corrupt",
            Fault::Replay { .. } => "replay",
            Fault::ClockSkew { .. } => "clock-skew",
            Fault::Disk { .. } => "disk",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::PartitionHalves => write!(f, "partition halves"),
            Fault::PartitionRing => write!(f, "partition ring"),
            Fault::PartitionBridge => write!(f, "partition bridge"),
            Fault::Kill { node } => write!(f, "kill -9 node {node}"),
            Fault::Pause { node } => write!(f, "pause node {node}"),
            Fault::Loss { percent } => write!(f, "{percent} % loss on every link"),
            Fault::Delay { ms, jitter_ms } => {
                write!(f, "{ms} ms + 0..={jitter_ms} ms delay on every link")
            }
            Fault::Duplicate { percent } => write!(f, "{percent} % duplication on every link"),
            Fault::Corrupt { node, percent } => {
                write!(f, "{percent} % corrupted frames out of node {node}")
            }
            Fault::Replay { percent } => write!(f, "{percent} % replays on every link"),
            Fault::ClockSkew { node, offset_s } => {
                write!(f, "node {node} rebooted with its clock {offset_s:+} s off")
            }
            Fault::Disk { node, fault } => {
                write!(f, "node {node} rebooted on a disk with {}", fault.name())
            }
        }
    }
}

/// Which fault kinds a schedule draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds {
    /// Partitions, kill, pause, loss (the Jepsen test's original set).
    pub classic: bool,
    /// Delay, duplication, corruption, replay.
    pub link: bool,
    /// Clock skew reboots.
    pub clock: bool,
    /// Disk fault reboots.
    pub disk: bool,
}

impl Kinds {
    pub const ALL: Kinds = Kinds {
        classic: true,
        link: true,
        clock: true,
        disk: true,
    };
}

/// One step: apply `fault`, hold it `hold`, undo, then leave `calm`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub fault: Fault,
    pub hold: Duration,
    pub calm: Duration,
}

/// The seeded, endless sequence of steps.
pub struct Schedule {
    rng: SplitMix64,
    nodes: Vec<NodeId>,
    kinds: Kinds,
}

impl Schedule {
    /// A schedule over `nodes` (at least one; three or more for partitions
    /// to mean anything) drawing from `kinds` (at least one set).
    pub fn new(seed: u64, nodes: &[NodeId], kinds: Kinds) -> Result<Schedule, String> {
        if nodes.is_empty() {
            return Err("a chaos schedule needs at least one node".into());
        }
        if !(kinds.classic || kinds.link || kinds.clock || kinds.disk) {
            return Err("a chaos schedule needs at least one kind of fault".into());
        }
        Ok(Schedule {
            rng: SplitMix64::new(seed),
            nodes: nodes.to_vec(),
            kinds,
        })
    }

    fn pick(&mut self, below: u64) -> u64 {
        self.rng.gen_range(0, below)
    }

    fn victim(&mut self) -> NodeId {
        let index = self.pick(self.nodes.len() as u64) as usize;
        self.nodes[index]
    }
}

impl Iterator for Schedule {
    type Item = Step;

    /// Every step draws the same number of values whatever fault it picks,
    /// so a schedule depends only on the seed, the nodes and the kinds.
    fn next(&mut self) -> Option<Step> {
        let mut menu: Vec<NodeId> = Vec::new();
        if self.kinds.classic {
            menu.extend(0..6);
        }
        if self.kinds.link {
            menu.extend(6..10);
        }
        if self.kinds.clock {
            menu.push(10);
        }
        if self.kinds.disk {
            menu.push(11);
        }
        let choice = menu[self.pick(menu.len() as u64) as usize];
        let node = self.victim();
        let a = self.pick(1_000);
        let b = self.pick(1_000);
        let fault = match choice {
            0 => Fault::PartitionHalves,
            1 => Fault::PartitionRing,
            2 => Fault::PartitionBridge,
            3 => Fault::Kill { node },
            4 => Fault::Pause { node },
            5 => Fault::Loss {
                percent: 10 + (a % 21) as u32,
            },
            6 => Fault::Delay {
                ms: 20 + a % 181,
                jitter_ms: b % 101,
            },
            7 => Fault::Duplicate {
                percent: 5 + (a % 26) as u32,
            },
            8 => Fault::Corrupt {
                node,
                percent: 10 + (a % 41) as u32,
            },
            9 => Fault::Replay {
                percent: 5 + (a % 26) as u32,
            },
            10 => Fault::ClockSkew {
                node,
                // 2-30 s ahead or behind: far beyond the HLC's 500 ms.
                offset_s: (2 + (a % 29) as i64) * if b.is_multiple_of(2) { 1 } else { -1 },
            },
            _ => Fault::Disk {
                node,
                fault: DiskFault::ALL[(a % 3) as usize],
            },
        };
        let hold = Duration::from_millis(3_000 + self.pick(3_000));
        let calm = Duration::from_millis(2_000 + self.pick(2_000));
        Some(Step { fault, hold, calm })
    }
}

/// What the chaos loop needs from a cluster.
pub trait Nemesis {
    /// Starts `fault`.
    fn apply(&mut self, fault: &Fault) -> Result<(), String>;
    /// Ends `fault` (heal, restart, resume, reboot on a sane clock or disk).
    fn undo(&mut self, fault: &Fault) -> Result<(), String>;
    /// Every node's `/status`, `None` where it does not answer.
    fn statuses(&mut self) -> Vec<(NodeId, Option<Value>)>;
}

/// The status invariants of one run (see the module docs).
#[derive(Default)]
pub struct Observer {
    leaders: BTreeMap<u64, NodeId>,
    heads: BTreeMap<u64, String>,
}

impl Observer {
    /// Checks one round of statuses; returns the violations it found.
    pub fn observe(&mut self, statuses: &[(NodeId, Option<Value>)]) -> Vec<String> {
        let mut violations = Vec::new();
        for (id, status) in statuses {
            let Some(raft) = status.as_ref().map(|s| &s["raft"]) else {
                continue;
            };
            if raft["role"] == "leader" {
                if let Some(term) = raft["term"].as_u64() {
                    match self.leaders.get(&term) {
                        Some(other) if other != id => violations.push(format!(
                            "two leaders in term {term}: node {other} and node {id}"
                        )),
                        Some(_) => {}
                        None => {
                            self.leaders.insert(term, *id);
                            if self.leaders.len() > MAX_TERMS {
                                self.leaders.pop_first();
                            }
                        }
                    }
                }
            }
            if let (Some(index), Some(hash)) = (
                raft["chain_head"]["index"].as_u64(),
                raft["chain_head"]["hash"].as_str(),
            ) {
                match self.heads.get(&index) {
                    Some(known) if known != hash => violations.push(format!(
                        "node {id} has chain head {hash} at index {index}, another node had {known}"
                    )),
                    Some(_) => {}
                    None => {
                        self.heads.insert(index, hash.to_string());
                        if self.heads.len() > MAX_CHAIN_HEADS {
                            self.heads.pop_first();
                        }
                    }
                }
            }
            let mismatched = raft["counters"]["chain_checks_mismatched"]
                .as_u64()
                .unwrap_or(0);
            if mismatched > 0 {
                violations.push(format!(
                    "node {id} counts {mismatched} chain check mismatches"
                ));
            }
        }
        violations
    }
}

/// The highest commit index any node reports.
pub fn max_commit(statuses: &[(NodeId, Option<Value>)]) -> u64 {
    statuses
        .iter()
        .filter_map(|(_, s)| s.as_ref()?["raft"]["commit"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Whether a leader is named by a majority of `members` nodes and reports a
/// commit index beyond `commit_before`.
pub fn recovered(statuses: &[(NodeId, Option<Value>)], members: usize, commit_before: u64) -> bool {
    let majority = members / 2 + 1;
    statuses.iter().any(|(id, s)| {
        let Some(raft) = s.as_ref().map(|s| &s["raft"]) else {
            return false;
        };
        let followers = statuses
            .iter()
            .filter(|(_, o)| o.as_ref().is_some_and(|o| o["raft"]["leader"] == *id))
            .count();
        raft["role"] == "leader"
            && followers >= majority
            && raft["commit"].as_u64().is_some_and(|c| c > commit_before)
    })
}

/// What became of one fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultResult {
    /// Seconds since the run started when the fault was applied.
    pub at_s: f64,
    pub fault: Fault,
    pub held_ms: u64,
    /// From the undo until a majority leader committed something new;
    /// `None`: not within the recovery timeout.
    pub recovery_ms: Option<u64>,
    /// Invariant violations seen while it held and during recovery.
    pub violations: Vec<String>,
    /// Errors applying or undoing it (a nemesis failure, not a cluster one).
    pub errors: Vec<String>,
}

impl FaultResult {
    /// Recovered in time with every invariant held.
    pub fn survived(&self) -> bool {
        self.recovery_ms.is_some() && self.violations.is_empty() && self.errors.is_empty()
    }
}

/// The summary of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub faults: usize,
    pub survived: usize,
    pub survival_rate: f64,
    pub recovery_p50_ms: Option<u64>,
    pub recovery_p99_ms: Option<u64>,
    pub per_kind: BTreeMap<&'static str, usize>,
}

/// The nearest-rank percentile `p` (0-100) of `sorted`.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted.get(rank - 1).copied()
}

/// Sums up `results`.
pub fn summarize(seed: u64, results: &[FaultResult]) -> Summary {
    let mut recoveries: Vec<u64> = results.iter().filter_map(|r| r.recovery_ms).collect();
    recoveries.sort_unstable();
    let survived = results.iter().filter(|r| r.survived()).count();
    let mut per_kind = BTreeMap::new();
    for r in results {
        *per_kind.entry(r.fault.kind()).or_insert(0) += 1;
    }
    Summary {
        seed,
        faults: results.len(),
        survived,
        survival_rate: if results.is_empty() {
            1.0
        } else {
            survived as f64 / results.len() as f64
        },
        recovery_p50_ms: percentile(&recoveries, 50),
        recovery_p99_ms: percentile(&recoveries, 99),
        per_kind,
    }
}

/// Runs `schedule` on `nemesis` for `duration` (the step under way when it
/// ends is finished). `members`: voting nodes. Each result is handed to
/// `report` as it completes. `recovery_timeout` bounds each recovery wait.
pub fn run(
    nemesis: &mut dyn Nemesis,
    schedule: &mut Schedule,
    members: usize,
    duration: Duration,
    recovery_timeout: Duration,
    report: &mut dyn FnMut(&FaultResult),
) -> Vec<FaultResult> {
    let started = Instant::now();
    let mut observer = Observer::default();
    let mut results = Vec::new();
    while started.elapsed() < duration {
        let Some(step) = schedule.next() else { break };
        let at_s = started.elapsed().as_secs_f64();
        let mut violations = Vec::new();
        let mut errors = Vec::new();
        if let Err(e) = nemesis.apply(&step.fault) {
            errors.push(format!("apply: {e}"));
        }
        let applied = Instant::now();
        while applied.elapsed() < step.hold {
            violations.extend(observer.observe(&nemesis.statuses()));
            std::thread::sleep(POLL.min(step.hold.saturating_sub(applied.elapsed())));
        }
        let held_ms = applied.elapsed().as_millis() as u64;
        let commit_before = max_commit(&nemesis.statuses());
        if let Err(e) = nemesis.undo(&step.fault) {
            errors.push(format!("undo: {e}"));
        }
        let undone = Instant::now();
        let mut recovery_ms = None;
        while undone.elapsed() < recovery_timeout {
            let statuses = nemesis.statuses();
            violations.extend(observer.observe(&statuses));
            if recovered(&statuses, members, commit_before) {
                recovery_ms = Some(undone.elapsed().as_millis() as u64);
                break;
            }
            std::thread::sleep(POLL);
        }
        violations.dedup();
        let result = FaultResult {
            at_s,
            fault: step.fault,
            held_ms,
            recovery_ms,
            violations,
            errors,
        };
        report(&result);
        results.push(result);
        std::thread::sleep(step.calm);
    }
    results
}

/// Changes every link out of `from` (all links if `None`) with `edit`,
/// keeping the rest of each link's plan.
fn edit_links(
    fabric: &continuum_fabric::FabricHandle,
    from: Option<NodeId>,
    edit: impl Fn(&mut continuum_fabric::LinkFaults),
) -> Result<(), String> {
    continuum_fabric::control::edit_links(
        |r| fabric.request(r.clone()).map_err(|e| e.to_string()),
        |a, _| from.is_none_or(|f| f == a),
        edit,
    )
    .map(|_| ())
}

/// Reboots `node` with the given clock offset and disk fault.
fn reboot(
    cluster: &mut crate::cluster::Cluster,
    node: NodeId,
    offset_s: i64,
    disk: Option<DiskFault>,
) -> Result<(), String> {
    cluster.set_node_faults(node, offset_s, disk)?;
    if cluster.node_state(node) != crate::cluster::NodeState::Down {
        cluster.kill(node)?;
    }
    cluster.start_node(node)
}

impl Nemesis for crate::cluster::Cluster {
    fn apply(&mut self, fault: &Fault) -> Result<(), String> {
        match *fault {
            Fault::PartitionHalves => self.partition_halves(),
            Fault::PartitionRing => self.partition_ring(),
            Fault::PartitionBridge => self.partition_bridge(),
            Fault::Kill { node } => self.kill(node),
            Fault::Pause { node } => self.pause(node),
            Fault::Loss { percent } => {
                edit_links(&self.fabric, None, |f| f.drop = f64::from(percent) / 100.0)
            }
            Fault::Delay { ms, jitter_ms } => edit_links(&self.fabric, None, |f| {
                f.delay_ms = ms;
                f.jitter_ms = jitter_ms;
            }),
            Fault::Duplicate { percent } => {
                edit_links(&self.fabric, None, |f| f.dup = f64::from(percent) / 100.0)
            }
            Fault::Corrupt { node, percent } => edit_links(&self.fabric, Some(node), |f| {
                f.corrupt = f64::from(percent) / 100.0
            }),
            Fault::Replay { percent } => edit_links(&self.fabric, None, |f| {
                f.replay = f64::from(percent) / 100.0
            }),
            Fault::ClockSkew { node, offset_s } => reboot(self, node, offset_s, None),
            Fault::Disk { node, fault } => reboot(self, node, 0, Some(fault)),
        }
    }

    fn undo(&mut self, fault: &Fault) -> Result<(), String> {
        match *fault {
            Fault::Kill { node } => self.start_node(node),
            Fault::Pause { node } => self.resume(node),
            Fault::ClockSkew { node, .. } | Fault::Disk { node, .. } => reboot(self, node, 0, None),
            _ => self.reset_network(),
        }
    }

    fn statuses(&mut self) -> Vec<(NodeId, Option<Value>)> {
        self.node_ids()
            .into_iter()
            .map(|id| (id, self.status(id).ok()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(
        role: &str,
        term: u64,
        leader: NodeId,
        commit: u64,
        head: (u64, &str),
    ) -> Option<Value> {
        Some(
            json!({"raft": {"role": role, "term": term, "leader": leader, "commit": commit,
            "chain_head": {"index": head.0, "hash": head.1},
            "counters": {"chain_checks_mismatched": 0}}}),
        )
    }

    #[test]
    fn same_seed_same_schedule_and_every_kind_appears() {
        let take = |seed| -> Vec<Step> {
            Schedule::new(seed, &[1, 2, 3], Kinds::ALL)
                .unwrap()
                .take(200)
                .collect()
        };
        assert_eq!(take(5), take(5));
        assert_ne!(take(5), take(6));
        let kinds: std::collections::BTreeSet<&str> =
            take(5).iter().map(|s| s.fault.kind()).collect();
        assert_eq!(kinds.len(), 12, "{kinds:?}");
        for step in take(9) {
            assert!((3_000..6_000).contains(&(step.hold.as_millis() as u64)));
            match step.fault {
                Fault::ClockSkew { offset_s, node } => {
                    assert!((2..=30).contains(&offset_s.abs()) && (1..=3).contains(&node))
                }
                Fault::Loss { percent } => assert!((10..=30).contains(&percent)),
                _ => {}
            }
        }
    }

    #[test]
    fn kinds_restrict_the_menu_and_empty_inputs_are_refused() {
        let classic = Kinds {
            classic: true,
            link: false,
            clock: false,
            disk: false,
        };
        let steps: Vec<Step> = Schedule::new(1, &[1, 2, 3], classic)
            .unwrap()
            .take(100)
            .collect();
        assert!(steps.iter().all(|s| matches!(
            s.fault,
            Fault::PartitionHalves
                | Fault::PartitionRing
                | Fault::PartitionBridge
                | Fault::Kill { .. }
                | Fault::Pause { .. }
                | Fault::Loss { .. }
        )));
        assert!(Schedule::new(1, &[], Kinds::ALL).is_err());
        let none = Kinds {
            classic: false,
            ..classic
        };
        assert!(Schedule::new(1, &[1], none).is_err());
    }

    #[test]
    fn observer_flags_two_leaders_in_a_term_and_diverging_chains() {
        let mut o = Observer::default();
        let fine = vec![
            (1, status("leader", 3, 1, 10, (10, "aa"))),
            (2, status("follower", 3, 1, 10, (10, "aa"))),
            (3, None),
        ];
        assert!(o.observe(&fine).is_empty());
        let two = vec![(2, status("leader", 3, 2, 11, (11, "bb")))];
        let v = o.observe(&two);
        assert!(v[0].contains("two leaders in term 3"), "{v:?}");
        let fork = vec![(3, status("follower", 4, 2, 11, (10, "cc")))];
        let v = o.observe(&fork);
        assert!(v[0].contains("chain head cc at index 10"), "{v:?}");
        let mut bad = status("follower", 4, 2, 11, (12, "dd"));
        bad.as_mut().unwrap()["raft"]["counters"]["chain_checks_mismatched"] = json!(1);
        assert!(o.observe(&[(1, bad)])[0].contains("mismatches"));
    }

    #[test]
    fn recovery_needs_a_majority_leader_that_committed_more() {
        let up = vec![
            (1, status("leader", 3, 1, 12, (12, "aa"))),
            (2, status("follower", 3, 1, 12, (12, "aa"))),
            (3, None),
        ];
        assert!(recovered(&up, 3, 11));
        assert!(!recovered(&up, 3, 12), "nothing new committed");
        let alone = vec![
            (1, status("leader", 3, 1, 12, (12, "aa"))),
            (2, None),
            (3, None),
        ];
        assert!(!recovered(&alone, 3, 0), "no majority names it");
        assert_eq!(max_commit(&up), 12);
    }

    #[test]
    fn summary_counts_survivors_and_percentiles() {
        let result = |recovery_ms, violations: Vec<String>| FaultResult {
            at_s: 0.0,
            fault: Fault::PartitionRing,
            held_ms: 3000,
            recovery_ms,
            violations,
            errors: vec![],
        };
        let results = vec![
            result(Some(100), vec![]),
            result(Some(300), vec![]),
            result(Some(200), vec!["x".into()]),
            result(None, vec![]),
        ];
        let s = summarize(7, &results);
        assert_eq!((s.faults, s.survived), (4, 2));
        assert_eq!(s.survival_rate, 0.5);
        assert_eq!(s.recovery_p50_ms, Some(200));
        assert_eq!(s.recovery_p99_ms, Some(300));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(s.per_kind["partition-ring"], 4);
    }
}
