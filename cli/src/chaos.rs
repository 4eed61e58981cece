//! `chaos --duration S --seed N`: the seeded chaos schedule
//! (`continuum_harness::chaos`, the same code the Jepsen test runs) against
//! the running cluster, with a client load, through the fabric's and the
//! supervisor's control sockets.
//!
//! Per fault it prints the kind, how long it held, the recovery time (from
//! the undo until a leader named by a majority commits something new) and
//! whether the status invariants held (one leader per term, one chain head
//! per index, no chain check mismatch). At the end: the summary, and the
//! load's own check — the money on the load's accounts is conserved
//! (linearizable balance reads once the cluster is calm).

use crate::error::CliError;
use crate::layout::{Layout, RunState};
use crate::ledger;
use crate::supervisor::{control, ControlRequest};
use continuum_bank::Outcome;
use continuum_fabric::control::edit_links;
use continuum_fabric::{ControlClient, LinkFaults, Request};
use continuum_harness::chaos::{self, Fault, FaultResult, Kinds, Nemesis, Schedule};
use continuum_harness::client::{Client, RetryPolicy};
use continuum_harness::cluster::{shape_bridge, shape_halves, shape_ring};
use continuum_harness::load::{self, Account};
use continuum_harness::NodeId;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for the cluster to commit again after a fault is undone.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Accounts the load moves money between.
const LOAD_ACCOUNTS: u64 = 4;
/// Units each load account is funded with (transfers move 1 unit).
const LOAD_FUNDING: u64 = 1_000_000;
/// One load transfer's retry budget: a client that waits out a fault
/// records it as unknown and moves on.
const LOAD_DEADLINE: Duration = Duration::from_secs(8);

/// What `chaos` was asked for.
pub struct ChaosOptions {
    pub duration: Duration,
    pub seed: u64,
    pub clients: u64,
    pub kinds: Kinds,
}

/// The running cluster, reached through its control sockets.
struct Sockets {
    state: RunState,
}

impl Sockets {
    fn fabric(&self, request: &Request) -> Result<Value, String> {
        let mut client = ControlClient::connect(&self.state.fabric_control)
            .map_err(|e| format!("the fabric does not answer: {e}"))?;
        client.request(request).map_err(|e| e.to_string())
    }

    fn edit_links(
        &self,
        from: Option<NodeId>,
        edit: impl Fn(&mut LinkFaults),
    ) -> Result<(), String> {
        edit_links(|r| self.fabric(r), |a, _| from.is_none_or(|f| f == a), edit).map(|_| ())
    }

    fn partition(&self, groups: Vec<Vec<NodeId>>) -> Result<(), String> {
        self.fabric(&Request::Partition { groups }).map(|_| ())
    }

    fn supervisor(&self, request: ControlRequest) -> Result<(), String> {
        control(&self.state, &request).map_err(|e| e.to_string())
    }

    fn ids(&self) -> Vec<NodeId> {
        self.state.nodes.iter().map(|n| n.id).collect()
    }
}

impl Nemesis for Sockets {
    fn apply(&mut self, fault: &Fault) -> Result<(), String> {
        let pct = |p: u32| f64::from(p) / 100.0;
        match *fault {
            Fault::PartitionHalves => self.partition(shape_halves(&self.ids())),
            Fault::PartitionRing => self.partition(shape_ring(&self.ids())),
            Fault::PartitionBridge => self.partition(shape_bridge(&self.ids())),
            Fault::Kill { node } => self.supervisor(ControlRequest::Kill { node }),
            Fault::Pause { node } => self.supervisor(ControlRequest::Pause { node }),
            Fault::Loss { percent } => self.edit_links(None, |f| f.drop = pct(percent)),
            Fault::Delay { ms, jitter_ms } => self.edit_links(None, |f| {
                f.delay_ms = ms;
                f.jitter_ms = jitter_ms;
            }),
            Fault::Duplicate { percent } => self.edit_links(None, |f| f.dup = pct(percent)),
            Fault::Corrupt { node, percent } => {
                self.edit_links(Some(node), |f| f.corrupt = pct(percent))
            }
            Fault::Replay { percent } => self.edit_links(None, |f| f.replay = pct(percent)),
            Fault::ClockSkew { node, offset_s } => self.supervisor(ControlRequest::Reboot {
                node,
                rtc_offset_s: offset_s,
                disk_fault: None,
            }),
            Fault::Disk { node, fault } => self.supervisor(ControlRequest::Reboot {
                node,
                rtc_offset_s: 0,
                disk_fault: Some(fault.name().into()),
            }),
        }
    }

    fn undo(&mut self, fault: &Fault) -> Result<(), String> {
        match *fault {
            Fault::Kill { node } => self.supervisor(ControlRequest::Restart { node }),
            Fault::Pause { node } => self.supervisor(ControlRequest::Resume { node }),
            Fault::ClockSkew { node, .. } | Fault::Disk { node, .. } => {
                self.supervisor(ControlRequest::Reboot {
                    node,
                    rtc_offset_s: 0,
                    disk_fault: None,
                })
            }
            _ => self.fabric(&Request::Reset).map(|_| ()),
        }
    }

    fn statuses(&mut self) -> Vec<(NodeId, Option<Value>)> {
        self.state
            .nodes
            .iter()
            .map(|n| {
                let status = continuum_harness::http_get(n.status_port, "/status")
                    .ok()
                    .and_then(|body| serde_json::from_str(&body).ok());
                (n.id, status)
            })
            .collect()
    }
}

/// Counts of the load's transfers.
#[derive(Default)]
struct LoadCounts {
    applied: AtomicU64,
    refused: AtomicU64,
    unknown: AtomicU64,
}

fn load_thread(
    mut client: Client,
    accounts: Arc<Vec<Account>>,
    ids: u128,
    thread: u64,
    counts: Arc<LoadCounts>,
    stop: Arc<AtomicBool>,
) {
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = accounts.len() as u64;
        let from = &accounts[((k + thread) % n) as usize];
        let to = &accounts[((k + thread + 1) % n) as usize];
        let id = ids + (u128::from(thread) << 48) + u128::from(k);
        k += 1;
        let counter = match client.transfer(&from.owner, id, from.id, to.id, 1) {
            Ok(done) if matches!(done.outcome, Outcome::Ok | Outcome::Exists) => &counts.applied,
            Ok(_) => &counts.refused,
            Err(_) => &counts.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn line(r: &FaultResult) -> String {
    format!(
        "[{:>7.1}s] {} — held {} ms, {}, invariants {}{}",
        r.at_s,
        r.fault,
        r.held_ms,
        r.recovery_ms.map_or(
            format!("NOT recovered within {} s", RECOVERY_TIMEOUT.as_secs()),
            |ms| format!("recovered in {ms} ms")
        ),
        if r.violations.is_empty() {
            "held".to_string()
        } else {
            format!("VIOLATED: {}", r.violations.join("; "))
        },
        if r.errors.is_empty() {
            String::new()
        } else {
            format!(" (nemesis errors: {})", r.errors.join("; "))
        }
    )
}

/// Runs the chaos schedule; fails (exit 1) if an invariant was violated
/// or money was not conserved.
pub fn run(
    layout: &Layout,
    options: &ChaosOptions,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let (mut client, facts) = ledger::connect(layout, timeout)?;
    let operator = layout.operator_key(&facts)?;
    let state = layout.running_state()?;
    let members = state.nodes.len();
    let random = continuum_harness::plan::random_bytes::<16>()
        .map_err(|e| CliError::Other(format!("random ids: {e}")))?;
    let base = (u128::from_le_bytes(random) >> 2) | 1 << 125;
    eprintln!(
        "chaos: seed {} (replay the schedule with --seed {}), {} s, {} load client(s)",
        options.seed,
        options.seed,
        options.duration.as_secs(),
        options.clients
    );
    let accounts = load::open_accounts(
        &mut client,
        &operator,
        facts.reserve_account,
        base,
        LOAD_ACCOUNTS,
        LOAD_FUNDING,
        base + (1 << 64),
    )
    .map_err(CliError::Other)?;
    let accounts = Arc::new(accounts);
    let counts = Arc::new(LoadCounts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let endpoints = client.endpoints().to_vec();
    let threads: Vec<_> = (0..options.clients)
        .map(|t| {
            let mut mine = endpoints.clone();
            mine.rotate_left(t as usize % endpoints.len().max(1));
            let c = Client::new(facts.cluster_id, mine).map(|c| {
                c.with_policy(RetryPolicy {
                    deadline: LOAD_DEADLINE,
                    ..RetryPolicy::default()
                })
            })?;
            let (accounts, counts, stop) = (accounts.clone(), counts.clone(), stop.clone());
            let ids = base + (2 << 64);
            Ok(std::thread::spawn(move || {
                load_thread(c, accounts, ids, t, counts, stop)
            }))
        })
        .collect::<Result<_, CliError>>()?;

    let mut schedule = Schedule::new(
        options.seed,
        &state.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
        options.kinds,
    )
    .map_err(CliError::Other)?;
    let mut nemesis = Sockets { state };
    let started = Instant::now();
    let results = chaos::run(
        &mut nemesis,
        &mut schedule,
        members,
        options.duration,
        RECOVERY_TIMEOUT,
        &mut |r| {
            if json {
                println!("{}", json!({"fault": r}));
            } else {
                println!("{}", line(r));
            }
        },
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    // Calm cluster: every unit of the load's money is still there.
    let mut reader = client.with_policy(RetryPolicy {
        deadline: Duration::from_secs(120),
        ..RetryPolicy::default()
    });
    let mut total = 0u64;
    for account in accounts.iter() {
        let read = reader
            .balance(account.id)
            .map_err(|e| CliError::Other(format!("balance of {}: {e}", account.id)))?;
        total += read.value.unwrap_or(0);
    }
    let expected = LOAD_ACCOUNTS * LOAD_FUNDING;
    let conserved = total == expected;
    let summary = chaos::summarize(options.seed, &results);
    let (applied, refused, unknown) = (
        counts.applied.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.unknown.load(Ordering::Relaxed),
    );
    let elapsed = started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            json!({"summary": summary, "load": {"applied": applied, "refused": refused, "unknown": unknown,
                "money": total, "expected_money": expected, "conserved": conserved}, "elapsed_s": elapsed})
        );
    } else {
        let per_kind: Vec<String> = summary
            .per_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "chaos: {} faults in {elapsed:.0} s ({}); survived {} ({:.0} %); recovery p50 {} p99 {}",
            summary.faults,
            per_kind.join(", "),
            summary.survived,
            summary.survival_rate * 100.0,
            summary.recovery_p50_ms.map_or("-".into(), |ms| format!("{ms} ms")),
            summary.recovery_p99_ms.map_or("-".into(), |ms| format!("{ms} ms")),
        );
        println!(
            "load: {applied} transfers applied, {refused} refused, {unknown} unknown (timed out during a fault); money on the load's accounts {total} of {expected}: {}",
            if conserved { "conserved" } else { "NOT CONSERVED" }
        );
    }
    let violated = results.iter().any(|r| !r.violations.is_empty());
    if violated || !conserved {
        return Err(CliError::Other(format!(
            "chaos run with seed {} broke an invariant (see above)",
            options.seed
        )));
    }
    Ok(())
}
