//! `continuum`: the host CLI of a local Continuum cluster.
//!
//! * `cluster init | up | down | status | wait`: make a cluster (keys,
//!   genesis, node configs in a directory), boot it in QEMU on the fabric
//!   switch with one disk per node, stop it, look at it.
//! * `cluster add-node | remove-node | transfer-leader`: operator-signed
//!   membership changes of the running cluster ([`members`]).
//! * `account create`, `transfer`, `balance`, `outcome`: the bank, over the
//!   client protocol with retries (`continuum_harness::client`).
//! * `watch`: a live table of the nodes.
//! * `nemesis`: partitions, loss, delay, duplication, corruption, replay,
//!   kill -9, restart, pause, resume.
//! * `chaos`: the seeded schedule of every fault with a client load.
//! * `dashboard`: a live page on 127.0.0.1 (nodes, plots, timeline, traces).
//! * `trace`: one transfer's causal history from every node, checked, and
//!   optionally drawn as an SVG Lamport diagram.
//! * `bench`: closed-loop load with the floor measured in the same run.
//!
//! The cluster-launch code is the test harness's (`continuum_harness`), so
//! what the CLI runs is what the QEMU tests run. Module map: [`args`] (the
//! command line), [`layout`] (the cluster directory), [`supervisor`]
//! (`cluster up`/`down` and the control socket), [`ledger`] (bank
//! commands), [`members`] (membership changes), [`status`] (`cluster status`, `watch`), [`nemesis`],
//! [`chaos`], [`dashboard`], [`trace`], [`bench`].
//!
//! Exit codes: 0 success, 1 error or rejected command, 2 bad arguments,
//! 3 a write whose outcome is unknown (query it with `outcome`).

mod args;
mod bench;
mod chaos;
mod dashboard;
mod error;
mod layout;
mod ledger;
mod members;
mod nemesis;
mod status;
mod supervisor;
mod trace;

use args::{AccountCommand, Cli, ClusterCommand, Command, InitArgs};
use clap::Parser;
use continuum_harness::plan::ClusterPlan;
use error::CliError;
use layout::Layout;
use serde_json::json;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                println!(
                    "{}",
                    json!({"error": error.to_string(), "kind": error.kind()})
                );
            }
            eprintln!("continuum: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let dir = std::path::absolute(&cli.dir).map_err(CliError::io_path("resolve", &cli.dir))?;
    let layout = Layout::new(&dir);
    let timeout = Duration::from_secs(cli.timeout);
    let json = cli.json;
    match cli.command {
        Command::Cluster(ClusterCommand::Init(args)) => init(&layout, &args, json),
        Command::Cluster(ClusterCommand::Up {
            nodes,
            foreground,
            images,
            disk_mib,
            disk,
        }) => {
            let options = supervisor::UpOptions {
                disk,
                nodes,
                images: images
                    .unwrap_or_else(|| continuum_harness::workspace_root().join("target/images")),
                disk_mib,
            };
            if layout.facts()?.insecure_test_keys {
                eprintln!("{INSECURE_KEYS_WARNING}");
            }
            if foreground {
                supervisor::run_foreground(&layout, &options, json)
            } else {
                supervisor::start_background(&layout, &options, json)
            }
        }
        Command::Cluster(ClusterCommand::Down) => supervisor::down(&layout, json),
        Command::Cluster(ClusterCommand::Status) => status::status(&layout, json),
        Command::Cluster(ClusterCommand::Wait) => ledger::wait(&layout, timeout, json),
        Command::Cluster(ClusterCommand::TransferLeader { node }) => {
            members::transfer_leader(&layout, node, timeout, json)
        }
        Command::Cluster(ClusterCommand::AddNode) => members::add_node(&layout, timeout, json),
        Command::Cluster(ClusterCommand::RemoveNode { node, keep_running }) => {
            members::remove_node(&layout, node, keep_running, timeout, json)
        }
        Command::Account(AccountCommand::Create { id }) => {
            ledger::create_account(&layout, id, timeout, json)
        }
        Command::Transfer(t) => {
            let what = ledger::TransferRequest {
                from: t.from,
                to: t.to,
                amount: t.amount,
                id: t.id,
                expires_at: t.expires_at,
            };
            ledger::transfer(&layout, what, timeout, json)
        }
        Command::Balance { account } => ledger::balance(&layout, account, timeout, json),
        Command::Outcome {
            transfer_id,
            expires_at,
        } => ledger::outcome(&layout, transfer_id, expires_at, timeout, json),
        Command::Watch { count } => watch(&layout, count, json),
        Command::Nemesis(command) => nemesis::run(&layout, &command, json),
        Command::Chaos {
            duration,
            seed,
            clients,
            faults,
        } => {
            let seed = match seed {
                Some(seed) => seed,
                None => u64::from_le_bytes(
                    continuum_harness::plan::random_bytes::<8>()
                        .map_err(|e| CliError::Other(format!("random seed: {e}")))?,
                ),
            };
            let kinds = match faults {
                args::FaultSet::All => continuum_harness::chaos::Kinds::ALL,
                args::FaultSet::Classic => continuum_harness::chaos::Kinds {
                    classic: true,
                    link: false,
                    clock: false,
                    disk: false,
                },
            };
            let options = chaos::ChaosOptions {
                duration: Duration::from_secs(duration),
                seed,
                clients,
                kinds,
            };
            chaos::run(&layout, &options, timeout, json)
        }
        Command::Dashboard { port } => dashboard::run(&layout, port, json),
        Command::Trace { transfer_id, svg } => {
            trace::run(&layout, transfer_id, svg.as_deref(), json)
        }
        Command::Bench {
            clients,
            transfers,
            accounts,
        } => {
            let options = bench::BenchOptions {
                clients,
                transfers,
                accounts: accounts.unwrap_or((2 * clients).max(2)),
            };
            bench::run(&layout, &options, timeout, json)
        }
    }
}

/// Printed by `cluster up` (every start) and `cluster init` for a cluster
/// made with `--insecure-test-keys`.
pub const INSECURE_KEYS_WARNING: &str = "continuum: WARNING: this cluster's keys were derived from a seed (--insecure-test-keys): anyone who knows or guesses the seed (the public cluster id gives it away) holds the operator and node keys. Use it for tests only; `cluster init` without the flag makes random keys.";

fn init(layout: &Layout, args: &InitArgs, json: bool) -> Result<(), CliError> {
    let seed = args.insecure_test_keys;
    let all = args.nodes + args.spare;
    if all > continuum_harness::plan::MAX_NODES {
        return Err(CliError::Other(format!(
            "--nodes {} and --spare {} make {all} nodes; a cluster has at most {}",
            args.nodes,
            args.spare,
            continuum_harness::plan::MAX_NODES
        )));
    }
    let mut plan = match seed {
        Some(seed) => ClusterPlan::from_seed(seed, all),
        None => ClusterPlan::random(all),
    }
    .map_err(|e| CliError::Other(e.to_string()))?;
    plan.spares = (args.nodes + 1..=all).collect();
    plan.supply = args.supply;
    plan.election_ms = args.election_ms;
    plan.heartbeat_ms = args.heartbeat_ms;
    plan.heap_mib = args.heap_mib;
    plan.dedup_window_ms = args.dedup_window_ms;
    plan.snapshot_entries = args.snapshot_entries;
    // Check before writing anything (e.g. heartbeat above a third of the election timeout).
    plan.node_config(plan.nodes[0].id)
        .map_err(|e| CliError::Other(e.to_string()))?;
    layout.init(&plan)?;
    let facts = plan.facts();
    if facts.insecure_test_keys {
        eprintln!("{INSECURE_KEYS_WARNING}");
    }
    if json {
        println!("{}", json!({"dir": layout.dir, "cluster": facts}));
        return Ok(());
    }
    println!(
        "cluster {} initialised in {} ({} nodes{}{})",
        facts.cluster_id,
        layout.dir.display(),
        args.nodes,
        if args.spare > 0 {
            format!(
                " and {} spare{} for `cluster add-node`",
                args.spare,
                if args.spare == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        },
        seed.map_or(String::new(), |s| format!(", keys from seed {s}"))
    );
    println!("  cluster.json         public facts: ids, addresses, public keys, genesis");
    println!("  node-<id>.conf       node configs with each node's secret key (mode 0600)");
    println!(
        "  keys/operator.key    operator secret key (mode 0600): opens accounts, owns reserve account {}",
        facts.reserve_account
    );
    println!(
        "genesis: {} in reserve account {}; Raft election {} ms, heartbeat {} ms",
        facts.supply, facts.reserve_account, facts.election_ms, facts.heartbeat_ms
    );
    println!(
        "ledger: tables sized for a {} MiB heap, dedup window {} ms; a snapshot every {} applied entries",
        facts.heap_mib, facts.dedup_window_ms, facts.snapshot_entries
    );
    println!("next: continuum --dir {} cluster up", layout.dir.display());
    Ok(())
}

/// `watch`: the status table every second until Ctrl-C (or `--count`).
fn watch(layout: &Layout, count: Option<u64>, json: bool) -> Result<(), CliError> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))
        .map_err(CliError::io("cannot handle Ctrl-C"))?;
    let mut refreshes = 0u64;
    while !stop.load(Ordering::Relaxed) && count.is_none_or(|c| refreshes < c) {
        let started = Instant::now();
        let state = layout.running_state()?;
        let views = status::gather(&state);
        refreshes += 1;
        if json {
            let nodes: Vec<_> = views
                .iter()
                .map(|v| json!({"id": v.run.id, "process": v.run.state, "status": v.status.as_ref().ok()}))
                .collect();
            println!(
                "{}",
                json!({"leader": status::leader(&views), "nodes": nodes})
            );
        } else {
            // Clear the screen and home the cursor only on a terminal, so a
            // redirected watch is a plain log of tables.
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                print!("\x1b[2J\x1b[H");
            }
            println!(
                "cluster {} — leader: {} — {} (Ctrl-C stops)",
                state.cluster_id,
                status::leader(&views).map_or("none".into(), |l| format!("node {l}")),
                layout.dir.display()
            );
            print!("{}", status::table(&views));
            println!();
        }
        let rest = Duration::from_secs(1).saturating_sub(started.elapsed());
        let until = Instant::now() + rest;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}
