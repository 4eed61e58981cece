//! `cargo run --release -p continuum-harness --bin soak -- [--transfers N]
//! [--ledger-heap-mib M] [--window-ms W] [--snapshot-entries S] [--every K]`
//!
//! Bounded state, measured: a 3-node cluster in QEMU whose ledger tables
//! are sized for a tiny heap (`ledger_heap_mib`, default 2 MiB: 1,638 ids in
//! the dedup window) and whose dedup window is short (default 10 s, the
//! shortest a config accepts), driven
//! with many times `max_transfers` transfers by one closed-loop client.
//! Every transfer must be `Ok`: a `TransfersFull` (or any other outcome)
//! aborts the run, since that is the state growth this run is there to
//! rule out. Every `--every` transfers it prints, per node, heap bytes in
//! use, WAL bytes in use, first log index, snapshot index and snapshots
//! taken/installed, so growth over time is visible; the run ends with the
//! largest figure each node reached. Then node 1 is killed and restarted
//! on its disk, and the run prints what its console says about the start
//! (the snapshot it restored, the time to open the log) and the wall time
//! from boot to applying the cluster's commit index again.

use continuum_bank::{AccountFlags, Limits, Outcome};
use continuum_config::NodeId;
use continuum_harness::cluster::{merge_config, Cluster, LaunchSpec};
use continuum_harness::plan::{derived_key, ClusterPlan};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: soak [--transfers N (default 8000)] [--ledger-heap-mib M (1..=1024, default 2)] \
[--window-ms W (10000..=86400000, default 10000)] [--snapshot-entries S (10.., default 500)] [--every K (default 1000)]";
const WAIT: Duration = Duration::from_secs(180);
const ACCOUNT: u128 = 10;

struct Args {
    transfers: u64,
    ledger_heap_mib: u32,
    window_ms: u64,
    snapshot_entries: u64,
    every: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        transfers: 8_000,
        ledger_heap_mib: 2,
        window_ms: 10_000,
        snapshot_entries: 500,
        every: 1_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<u64, String> {
            it.next()
                .ok_or(format!("{flag} needs a value"))?
                .parse()
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--transfers" => args.transfers = value()?,
            "--ledger-heap-mib" => {
                args.ledger_heap_mib = u32::try_from(value()?).map_err(|e| e.to_string())?
            }
            "--window-ms" => args.window_ms = value()?,
            "--snapshot-entries" => args.snapshot_entries = value()?,
            "--every" => args.every = value()?.max(1),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// One node's figures at a point of the run.
#[derive(Default, Clone, Copy)]
struct Sample {
    heap_used: u64,
    wal_used: u64,
    first_index: u64,
    snapshot_index: u64,
    snapshots_taken: u64,
    snapshots_installed: u64,
}

fn sample(cluster: &Cluster, id: NodeId) -> Result<Sample, String> {
    let s = cluster.status(id)?;
    let field = |path: &[&str]| -> Result<u64, String> {
        let mut v = &s;
        for p in path {
            v = &v[*p];
        }
        v.as_u64()
            .ok_or_else(|| format!("node {id}: /status {} missing", path.join(".")))
    };
    Ok(Sample {
        heap_used: field(&["memory", "heap_used"])?,
        wal_used: field(&["raft", "wal_used_bytes"])?,
        first_index: field(&["raft", "first_index"])?,
        snapshot_index: field(&["raft", "snapshot_index"])?,
        snapshots_taken: field(&["raft", "counters", "snapshots_taken"])?,
        snapshots_installed: field(&["raft", "counters", "snapshots_installed"])?,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let limits = Limits::for_heap(u64::from(args.ledger_heap_mib));
    let mut plan = ClusterPlan::for_test("soak", 11, &[1, 2, 3]).map_err(|e| e.to_string())?;
    plan.dedup_window_ms = args.window_ms;
    plan.snapshot_entries = args.snapshot_entries;
    let dir = std::env::temp_dir().join(format!("ctm-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = LaunchSpec::from_plan("soak", &plan, &dir, 64).map_err(|e| e.to_string())?;
    let ledger_line = format!("ledger_heap_mib = {}", args.ledger_heap_mib);
    for node in &mut spec.nodes {
        node.config = merge_config(&node.config, &[&ledger_line]);
    }
    spec.remove_dir_on_drop = true;
    spec.console_logs = true;
    let mut cluster = Cluster::launch(spec)?;
    cluster.wait_leader(WAIT)?;
    let mut client = cluster.client().map_err(|e| e.to_string())?;
    let owner = derived_key("soak", "owner", 10);
    let (created, _) = client
        .create_account(
            &plan.operator,
            ACCOUNT,
            &owner.verifying_key(),
            AccountFlags::empty(),
        )
        .map_err(|e| e.to_string())?;
    if created != Outcome::Ok {
        return Err(format!("creating account {ACCOUNT}: {created:?}"));
    }
    println!(
        "soak: {} transfers, ledger tables for {} MiB (max_transfers {}, max_sessions {}), window {} ms, snapshot every {} entries",
        args.transfers,
        args.ledger_heap_mib,
        limits.max_transfers,
        limits.max_sessions,
        args.window_ms,
        args.snapshot_entries
    );
    println!("| transfers | elapsed s | transfers/s | node | heap used KiB | WAL used KiB | first index | snapshot index | taken | installed |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut peak = [Sample::default(); 3];
    let started = Instant::now();
    for id in 1..=args.transfers {
        let result = client
            .transfer(&plan.operator, u128::from(id), 1, ACCOUNT, 1)
            .map_err(|e| format!("transfer {id}: {e}"))?;
        if result.outcome != Outcome::Ok {
            return Err(format!(
                "transfer {id}: {:?} (state growth?)",
                result.outcome
            ));
        }
        if id % args.every == 0 || id == args.transfers {
            let elapsed = started.elapsed().as_secs_f64();
            for node in 1..=3 {
                let s = sample(&cluster, node)?;
                let p = &mut peak[(node - 1) as usize];
                p.heap_used = p.heap_used.max(s.heap_used);
                p.wal_used = p.wal_used.max(s.wal_used);
                println!(
                    "| {id} | {elapsed:.1} | {:.1} | {node} | {} | {} | {} | {} | {} | {} |",
                    id as f64 / elapsed,
                    s.heap_used / 1024,
                    s.wal_used / 1024,
                    s.first_index,
                    s.snapshot_index,
                    s.snapshots_taken,
                    s.snapshots_installed
                );
            }
        }
    }
    let balance = client.balance(ACCOUNT).map_err(|e| e.to_string())?;
    if balance.value != Some(args.transfers) {
        return Err(format!(
            "balance {:?}, expected {}",
            balance.value, args.transfers
        ));
    }
    println!(
        "\n{} transfers = {:.1} × max_transfers, all Ok; balance {}",
        args.transfers,
        args.transfers as f64 / limits.max_transfers as f64,
        args.transfers
    );
    for (i, p) in peak.iter().enumerate() {
        println!(
            "node {}: peak heap used {} KiB, peak WAL used {} KiB",
            i + 1,
            p.heap_used / 1024,
            p.wal_used / 1024
        );
    }
    restart_figures(&mut cluster)
}

/// Kills node 1, boots it on its disk, and prints how it started and how
/// long it took to apply the cluster's commit index again.
fn restart_figures(cluster: &mut Cluster) -> Result<(), String> {
    let leader = cluster.wait_leader(WAIT)?;
    let target = cluster.status(leader)?["raft"]["commit"]
        .as_u64()
        .ok_or("leader status without commit")?;
    let started = Instant::now();
    cluster.restart(1)?;
    let caught_up = cluster.wait_status(1, WAIT, "catching up after restart", |s| {
        s["raft"]["applied"].as_u64().is_some_and(|a| a >= target)
    });
    let elapsed = started.elapsed();
    let console =
        std::fs::read_to_string(cluster.console_path(1).ok_or("node 1 has no console log")?)
            .map_err(|e| e.to_string())?;
    let boot = console
        .rfind("QEMU pid")
        .map_or(&console[..], |at| &console[at..]);
    println!("\nrestart of node 1 (kill -9, boot on its disk):");
    for line in boot.lines().filter(|l| {
        l.contains("consensus: node")
            || l.contains("restored snapshot")
            || l.contains("installed snapshot")
    }) {
        println!("  console: {}", line.trim());
    }
    println!(
        "  applied {} (cluster commit {target}) {:.1} s after the kill, QEMU boot included",
        caught_up["raft"]["applied"],
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("soak: {e}");
        std::process::exit(1);
    }
}
