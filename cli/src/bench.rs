//! `continuum bench --clients N --transfers M [--accounts K] [--json]`:
//! a closed-loop load against the running cluster, and the floor measured
//! in the same run (`continuum_harness::load` does the work).
//!
//! Order: open and fund K fresh accounts; sample the client↔node round
//! trip (an empty submit each node refuses at once); read every node's
//! `/metrics` and every process's CPU time; run M transfers over N
//! clients (client `c` tries node `c mod nodes` first, so writes reach
//! followers too and are forwarded, as users' writes would), printing a
//! progress line every second and sampling the nodes' peer ping round
//! trips from `/status`; read `/metrics` and CPU time again.
//!
//! Reported: transfers/s, commit p50/p99/max, how many answers came from
//! the leader (the node leading before and after the run; a run with a
//! leader change says so) and from followers, CPU ms per transfer (QEMUs
//! plus the supervisor process, which hosts the fabric switch), and the
//! corrected floor = client↔node p50 + node↔node p50 + one WAL write + one
//! flush (the leader's means over the run from `/metrics`; every node's
//! pooled if the leader changed).

use crate::error::CliError;
use crate::layout::Layout;
use crate::ledger;
use continuum_harness::client::{Client, Endpoint};
use continuum_harness::load::{self, load_average, percentile, Account, LoadRun};
use continuum_harness::NodeId;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Client↔node round trips sampled per node.
const CLIENT_RTT_SAMPLES: u32 = 20;
/// How often progress is printed and peer round trips sampled.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What `bench` was asked for (ranges checked by the parser).
pub struct BenchOptions {
    pub clients: u64,
    pub transfers: u64,
    pub accounts: u64,
}

/// Every node's `/metrics` body, by node id (a node that does not answer
/// is left out).
fn metrics_of(state: &crate::layout::RunState) -> Vec<(NodeId, String)> {
    state
        .nodes
        .iter()
        .filter_map(|n| {
            continuum_harness::http_get(n.status_port, "/metrics")
                .ok()
                .map(|body| (n.id, body))
        })
        .collect()
}

fn status_of(port: u16) -> Option<Value> {
    let body = continuum_harness::http_get(port, "/status").ok()?;
    serde_json::from_str(&body).ok()
}

fn leader_of(state: &crate::layout::RunState) -> Option<NodeId> {
    state.nodes.iter().find_map(|n| {
        let status = status_of(n.status_port)?;
        (status["raft"]["role"] == "leader").then_some(n.id)
    })
}

/// CPU ticks of every QEMU and the supervisor (fabric) now.
fn cpu_now(state: &crate::layout::RunState) -> Result<u64, CliError> {
    let mut pids: Vec<u32> = state.nodes.iter().filter_map(|n| n.pid).collect();
    pids.push(state.supervisor_pid);
    let mut total = 0;
    for pid in pids {
        total += load::cpu_ticks(pid).map_err(CliError::Other)?;
    }
    Ok(total)
}

/// Mean (µs) of a histogram's observations between two sets of
/// `/metrics` readings, on node `only` or pooled over every node read both
/// times; `None` without observations.
fn pooled_mean_us(
    before: &[(NodeId, String)],
    after: &[(NodeId, String)],
    histogram: &str,
    only: Option<NodeId>,
) -> Option<f64> {
    let (sum, count) = (
        format!("continuum_{histogram}_sum"),
        format!("continuum_{histogram}_count"),
    );
    let (mut total, mut n) = (0.0, 0.0);
    for (id, late) in after.iter().filter(|(id, _)| only.is_none_or(|o| o == *id)) {
        let Some((_, early)) = before.iter().find(|(b, _)| b == id) else {
            continue;
        };
        let delta = |name: &str| Some(load::metric(late, name)? - load::metric(early, name)?);
        if let (Some(s), Some(c)) = (delta(&sum), delta(&count)) {
            total += s;
            n += c;
        }
    }
    (n > 0.0).then(|| total / n * 1e6)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(
    layout: &Layout,
    options: &BenchOptions,
    timeout: Duration,
    json: bool,
) -> Result<(), CliError> {
    let (mut client, facts) = ledger::connect(layout, timeout)?;
    let operator = layout.operator_key(&facts)?;
    let state = layout.running_state()?;
    let endpoints = client.endpoints().to_vec();
    let load_start = load_average();

    // Fresh account and transfer ids for this run: random bases far from
    // the small ids people type.
    let random = continuum_harness::plan::random_bytes::<16>()
        .map_err(|e| CliError::Other(format!("random ids: {e}")))?;
    let base = (u128::from_le_bytes(random) >> 2) | 1 << 125;
    let funding = options.transfers + 1;
    eprintln!(
        "bench: opening and funding {} accounts ({funding} units each)",
        options.accounts
    );
    let accounts: Vec<Account> = load::open_accounts(
        &mut client,
        &operator,
        facts.reserve_account,
        base,
        options.accounts,
        funding,
        base + (1 << 64),
    )
    .map_err(CliError::Other)?;

    let mut client_rtts = Vec::new();
    for first in 0..endpoints.len() {
        let mut probe = rotated_client(&facts, &endpoints, first, timeout)?;
        client_rtts.extend(
            load::client_round_trips(&mut probe, CLIENT_RTT_SAMPLES).map_err(CliError::Other)?,
        );
    }
    client_rtts.sort();

    let leader_before = leader_of(&state);
    let metrics_before = metrics_of(&state);
    let cpu_before = cpu_now(&state)?;
    let clients = (0..options.clients as usize)
        .map(|c| rotated_client(&facts, &endpoints, c % endpoints.len(), timeout))
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "bench: {} transfers over {} client(s), closed loop",
        options.transfers, options.clients
    );
    let mut peer_rtts_us: Vec<u64> = Vec::new();
    let started = Instant::now();
    let run: LoadRun = load::closed_loop(
        clients,
        &accounts,
        options.transfers,
        base + (2 << 64),
        PROGRESS_EVERY,
        |done| {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "bench: {done}/{} committed, {:.1} transfers/s",
                options.transfers,
                done as f64 / secs.max(1e-9)
            );
            for node in &state.nodes {
                if let Some(status) = status_of(node.status_port) {
                    for peer in status["peers"].as_array().into_iter().flatten() {
                        if let Some(rtt) = peer["last_rtt_us"].as_u64().filter(|&r| r > 0) {
                            peer_rtts_us.push(rtt);
                        }
                    }
                }
            }
            Ok(())
        },
    )
    .map_err(CliError::Other)?;
    let cpu_after = cpu_now(&state)?;
    let metrics_after = metrics_of(&state);
    let leader_after = leader_of(&state);
    if peer_rtts_us.is_empty() {
        // A run shorter than one progress period: sample once now.
        for node in &state.nodes {
            if let Some(status) = status_of(node.status_port) {
                for peer in status["peers"].as_array().into_iter().flatten() {
                    if let Some(rtt) = peer["last_rtt_us"].as_u64().filter(|&r| r > 0) {
                        peer_rtts_us.push(rtt);
                    }
                }
            }
        }
    }
    peer_rtts_us.sort();

    let latencies = run.latencies();
    let (p50, p99, max) = (
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies.last().copied().unwrap_or_default(),
    );
    let leader = leader_before.filter(|l| Some(*l) == leader_after);
    let by_leader = leader.map(|l| run.samples.iter().filter(|s| s.node == l).count());
    let cpu_ms_per_transfer = (cpu_after - cpu_before) as f64 * 1e3
        / load::USER_HZ as f64
        / run.samples.len().max(1) as f64;
    // The leader's disk when one led throughout; else every node's pooled.
    let (wal_write_us, flush_us, disk_source) = match leader {
        Some(l) => (
            pooled_mean_us(
                &metrics_before,
                &metrics_after,
                "disk_write_seconds",
                Some(l),
            ),
            pooled_mean_us(&metrics_before, &metrics_after, "flush_seconds", Some(l)),
            "leader means",
        ),
        None => (
            pooled_mean_us(&metrics_before, &metrics_after, "disk_write_seconds", None),
            pooled_mean_us(&metrics_before, &metrics_after, "flush_seconds", None),
            "all nodes' means: the leader changed",
        ),
    };
    let client_rtt_us = percentile(&client_rtts, 50).as_micros() as u64;
    let peer_rtt_us = peer_rtts_us
        .get(peer_rtts_us.len().saturating_sub(1) / 2)
        .copied();
    let floor_us = match (peer_rtt_us, wal_write_us, flush_us) {
        (Some(peer), Some(write), Some(flush)) => {
            Some(client_rtt_us + peer + write.round() as u64 + flush.round() as u64)
        }
        _ => None,
    };
    let load_end = load_average();

    if json {
        println!(
            "{}",
            json!({
                "clients": options.clients,
                "transfers": run.samples.len(),
                "accounts": options.accounts,
                "elapsed_s": run.elapsed.as_secs_f64(),
                "transfers_per_s": run.transfers_per_s(),
                "p50_ms": ms(p50),
                "p99_ms": ms(p99),
                "max_ms": ms(max),
                "leader": leader,
                "answered_by_leader": by_leader,
                "answered_by_followers": by_leader.map(|n| run.samples.len() - n),
                "cpu_ms_per_transfer": cpu_ms_per_transfer,
                "floor_us": floor_us,
                "floor": {
                    "client_rtt_p50_us": client_rtt_us,
                    "peer_rtt_p50_us": peer_rtt_us,
                    "wal_write_mean_us": wal_write_us,
                    "flush_mean_us": flush_us,
                    "disk_means_from": disk_source,
                },
                "load_average": {"start": load_start, "end": load_end},
            })
        );
        return Ok(());
    }
    println!(
        "{} transfers, {} client(s), {} accounts: {:.1} transfers/s over {:.1} s",
        run.samples.len(),
        options.clients,
        options.accounts,
        run.transfers_per_s(),
        run.elapsed.as_secs_f64()
    );
    println!(
        "commit latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(p50),
        ms(p99),
        ms(max)
    );
    match (leader, by_leader) {
        (Some(l), Some(n)) => println!(
            "answered by the leader (node {l}): {n}, by followers: {}",
            run.samples.len() - n
        ),
        _ => println!(
            "the leader changed during the run ({leader_before:?} -> {leader_after:?}): no leader/follower split"
        ),
    }
    println!("CPU: {cpu_ms_per_transfer:.2} ms per transfer (QEMUs + fabric)");
    let text = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0} us"));
    println!(
        "floor: {} = client<->node p50 {client_rtt_us} us + node<->node p50 {} + WAL write {} + flush {} ({disk_source})",
        floor_us.map_or("n/a".to_owned(), |f| format!("{f} us")),
        peer_rtt_us.map_or("n/a".to_owned(), |r| format!("{r} us")),
        text(wal_write_us),
        text(flush_us),
    );
    if let Some(floor) = floor_us.filter(|&f| f > 0) {
        println!(
            "commit p50 = {:.1} x the floor",
            p50.as_micros() as f64 / floor as f64
        );
    }
    println!("load average: {load_start} at the start, {load_end} at the end");
    Ok(())
}

/// A client of the same nodes whose first choice is `endpoints[first]`.
fn rotated_client(
    facts: &continuum_harness::plan::ClusterFacts,
    endpoints: &[Endpoint],
    first: usize,
    timeout: Duration,
) -> Result<Client, CliError> {
    let mut mine = endpoints.to_vec();
    mine.rotate_left(first);
    Ok(
        Client::new(facts.cluster_id, mine)?.with_policy(continuum_harness::client::RetryPolicy {
            deadline: timeout,
            ..Default::default()
        }),
    )
}
