//! `cargo run --release -p continuum-harness --bin cluster-bench -- [--clients N]
//! [--transfers N] [--warmup N] [--kills N] [--out PATH]`
//!
//! The product's numbers, on a 3-node bank cluster in QEMU with its defaults:
//! every WAL flush is an `fdatasync` of the node's disk image on the host
//! (`cache=writeback`), and every transfer's Ed25519 signature is verified.
//!
//! 1. **Floor**, measured in the same run: a UDP round trip between two
//!    nodes through the fabric (two VMs in `mode = net-bench`: authenticated
//!    peer messages through smoltcp, the path Raft's messages take; 1,000
//!    closed-loop round trips timed by the first node's TSC), and one flush of
//!    a node's disk (`mode = wal-bench`, batch size 1, flush p50; once before
//!    the cluster runs and once after, because the host's fsync latency
//!    drifts over minutes). The floor is RTT p50 + the mean of the two flush
//!    p50s.
//! 2. **Throughput and commit latency** at 1 client and at `--clients`
//!    clients (closed loop: each client has one transfer in flight), run by
//!    `continuum_harness::load::closed_loop` over the harness `Client`, the
//!    loop `continuum bench` runs: transfer *k* moves 1 unit between two of
//!    the phase's funded accounts (2 per client, so none is refused for
//!    funds), and client *c* tries node *c* mod 3 first (writes reach
//!    followers and are forwarded, as users' writes would). Latency is
//!    client-observed: from the call (signing included, tens of µs) to its
//!    committed answer, including the client's retries. A retried transfer
//!    answered `Exists` was applied by an earlier attempt and counts as
//!    committed. Percentiles are nearest-rank.
//!    Each phase runs `--warmup` unrecorded transfers, then `--transfers`
//!    recorded ones, handed out to the clients one at a time from a shared
//!    counter so all clients stay busy until the end. Transfers/s is
//!    recorded transfers over the time from the start of the recorded run
//!    to the last reply. The leader's WAL counters (`/status`) give entries
//!    committed per leader flush: how much group commit happened. While
//!    clients run, every node's `/status` is fetched every [`WATCH_EVERY`];
//!    a node silent for [`HUNG_AFTER`] aborts the run (a stopped node would
//!    otherwise leave a 2-node cluster measured under a 3-node label).
//! 3. **Failover**: `--kills` times, SIGKILL the leader's QEMU, then submit
//!    one transfer to the survivors, a new attempt every [`PROBE_RESEND`]
//!    alternating between them, until one attempt is answered `Ok`
//!    (`Exists`: an earlier attempt committed). Failover time is from just
//!    before the kill to that reply. Then the killed node restarts on its
//!    disk, and the next kill waits until all three nodes have applied the
//!    same index with the same receipt-chain head and agree on a leader
//!    (restart → converged is reported too).
//!
//! The report (machine facts first, then the tables) is printed as markdown
//! on stdout and written to `--out` (default `target/cluster-bench.md`);
//! progress goes to stderr.

use continuum_bank::Outcome;
use continuum_harness::bank::{self, create_account, submit, transfer, Client, Nodes};
use continuum_harness::client::{Client as HarnessClient, Endpoint, RetryPolicy};
use continuum_harness::cluster::{Cluster, ClusterSpec, CLUSTER_ID};
use continuum_harness::load::{self, load_average, percentile, Account, Sample};
use continuum_harness::{blank_disk, workspace_root, Accel, DiskCache, Exit, VmConfig};
use continuum_net::client::{ClientReply, ClientRequest, ReplyBody, RequestOp};
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

const USAGE: &str = "usage: cluster-bench [--clients N (1..=64, default 8)] \
[--transfers N (1..=50000, default 2000)] [--warmup N (0..=10000, default 100)] \
[--kills N (1..=1000, default 20)] [--out PATH (default target/cluster-bench.md)]";

/// Upper bound on `--transfers` (and `--warmup`): the kernel's ledger holds
/// 131,072 transfers (`consensus::LIMITS`), and both phases plus their
/// warm-ups and the funding must fit with room to spare.
const MAX_TRANSFERS: u64 = 50_000;
const MAX_WARMUP: u64 = 10_000;
const MAX_CLIENTS: u64 = 64;
const MAX_KILLS: u64 = 1_000;

/// How often the failover probe sends a new attempt: the resolution of the
/// failover figure.
const PROBE_RESEND: Duration = Duration::from_millis(100);
/// Give up on a failover after this long.
const PROBE_PATIENCE: Duration = Duration::from_secs(120);
/// While clients run, every node's `/status` is fetched this often...
const WATCH_EVERY: Duration = Duration::from_secs(5);
/// ...and a node that has not answered for this long has stopped.
const HUNG_AFTER: Duration = Duration::from_secs(20);
/// Disk image of the `wal-bench` VM, MiB (sparse; batch 1 writes little).
const WAL_BENCH_DISK_MIB: u64 = 256;

/// Transfer id ranges, one per use, so no two transfers share an id.
const FUNDING_IDS: u128 = 1_000;
const WARMUP_IDS: [u128; 2] = [1_000_000, 2_000_000];
const RECORDED_IDS: [u128; 2] = [3_000_000, 4_000_000];
const PROBE_IDS: u128 = 5_000_000;
/// Client `c` moves money from account `FIRST_ACCOUNT + 2c` to the next one.
const FIRST_ACCOUNT: u128 = 100;

struct Options {
    clients: u64,
    transfers: u64,
    warmup: u64,
    kills: u64,
    out: PathBuf,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        clients: 8,
        transfers: 2_000,
        warmup: 100,
        kills: 20,
        out: workspace_root().join("target/cluster-bench.md"),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |range: std::ops::RangeInclusive<u64>| -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    format!(
                        "{flag} {value}: expected an integer from {} to {}",
                        range.start(),
                        range.end()
                    )
                })
        };
        match flag.as_str() {
            "--clients" => options.clients = number(1..=MAX_CLIENTS)?,
            "--transfers" => options.transfers = number(1..=MAX_TRANSFERS)?,
            "--warmup" => options.warmup = number(0..=MAX_WARMUP)?,
            "--kills" => options.kills = number(1..=MAX_KILLS)?,
            "--out" => options.out = PathBuf::from(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("cluster-bench: {why}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(why) = run(&options, &args) {
        eprintln!("cluster-bench: {why}");
        std::process::exit(1);
    }
}

fn run(options: &Options, args: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let machine = Machine::detect();
    eprintln!(
        "cluster-bench: {} x{} cores, {:?}, {}; load {}",
        machine.cpu, machine.cores, machine.accel, machine.qemu, machine.load_start
    );
    eprintln!("floor: net-bench (2 VMs)");
    let rtt = net_bench()?;
    eprintln!("floor: {rtt}");
    eprintln!("floor: wal-bench before the cluster");
    let flush_before = wal_bench("cluster-bench-wal-before")?;
    eprintln!("floor: {flush_before}");

    eprintln!("cluster: starting 3 nodes");
    let mut nodes = bank::start("cbench", 3);
    let cluster_dir = nodes.dir().to_owned();
    let leader = nodes.wait_for_leader();
    eprintln!("cluster: node {leader} leads; creating and funding accounts");
    let funding = 2 * (options.transfers + options.warmup) + options.kills + 1_000;
    let mut client = Client::new();
    for c in 0..options.clients as u128 {
        let (from, to) = accounts_of(c);
        for account in [from, to] {
            expect_ok(
                submit(
                    &mut client,
                    &nodes,
                    account as usize % 3,
                    create_account(account),
                ),
                &format!("create account {account}"),
            )?;
        }
        for (i, account) in [from, to].into_iter().enumerate() {
            expect_ok(
                submit(
                    &mut client,
                    &nodes,
                    c as usize % 3,
                    transfer(FUNDING_IDS + 2 * c + i as u128, 1, account, funding),
                ),
                &format!("fund account {account}"),
            )?;
        }
    }
    let mut phases = Vec::new();
    for (i, clients) in [1, options.clients].into_iter().enumerate() {
        phases.push(phase(&mut nodes, clients, options, i)?);
    }
    let failover = failover(&mut nodes, options.kills)?;
    drop(nodes);
    let _ = std::fs::remove_dir_all(&cluster_dir);

    eprintln!("floor: wal-bench after the cluster");
    let flush_after = wal_bench("cluster-bench-wal-after")?;
    eprintln!("floor: {flush_after}");

    let report = Report {
        command: std::iter::once(
            "cargo run --release -p continuum-harness --bin cluster-bench --".to_owned(),
        )
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" "),
        machine,
        load_end: load_average(),
        elapsed: started.elapsed(),
        options,
        rtt,
        flush_before,
        flush_after,
        phases,
        failover,
    }
    .render();
    print!("{report}");
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&options.out, &report)
        .map_err(|e| format!("cannot write {}: {e}", options.out.display()))?;
    eprintln!("report written to {}", options.out.display());
    Ok(())
}

fn accounts_of(client: u128) -> (u128, u128) {
    (FIRST_ACCOUNT + 2 * client, FIRST_ACCOUNT + 2 * client + 1)
}

fn expect_ok((outcome, _index): (Outcome, u64), what: &str) -> Result<(), String> {
    match outcome {
        Outcome::Ok => Ok(()),
        other => Err(format!("{what}: {other:?}")),
    }
}

// ---------------------------------------------------------------- machine

struct Machine {
    cpu: String,
    cores: usize,
    accel: Accel,
    qemu: String,
    load_start: String,
    date: String,
}

impl Machine {
    fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or("unknown CPU".to_owned(), |(_, name)| name.trim().to_owned());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let qemu = std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "qemu-system-x86_64 not found".to_owned());
        Machine {
            cpu,
            cores,
            accel: Accel::detect(),
            qemu,
            load_start: load_average(),
            date: utc_now(),
        }
    }
}

/// Now as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    utc_text(secs)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the harness's one calendar
/// conversion, `faults::utc_datetime`).
fn utc_text(secs: i64) -> String {
    format!(
        "{} UTC",
        continuum_harness::faults::utc_datetime(secs).replacen('T', " ", 1)
    )
}

// ------------------------------------------------------------------ floor

/// The number after `key=` or after the word `key` in a kernel result line.
fn figure(line: &str, key: &str) -> Option<u64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().enumerate().find_map(|(i, word)| {
        if let Some(value) = word.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
            return value.parse().ok();
        }
        if *word == key {
            return words.get(i + 1)?.parse().ok();
        }
        None
    })
}

struct Rtt {
    p50_us: u64,
    p99_us: u64,
    messages_per_s: u64,
    line: String,
}

impl std::fmt::Display for Rtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.line)
    }
}

/// Two nodes in `mode = net-bench` (as `net-bench.rs` boots them); node 1
/// measures and exits.
fn net_bench() -> Result<Rtt, String> {
    let mut cluster = Cluster::start(ClusterSpec {
        name: "cluster-bench-rtt".to_owned(),
        nodes: 2,
        phantom_members: vec![],
        seed: 1,
        extra_config: vec![
            (1, "mode = net-bench".into()),
            (2, "mode = net-bench".into()),
        ],
    });
    let run = cluster.vms.remove(0).wait_exit();
    let line = result_line(&run, "net-bench", "rtt_p50_us=")?;
    let get = |key| figure(&line, key).ok_or_else(|| format!("no {key} in {line:?}"));
    Ok(Rtt {
        p50_us: get("rtt_p50_us")?,
        p99_us: get("rtt_p99_us")?,
        messages_per_s: get("messages_per_s")?,
        line,
    })
}

/// The console line of a benchmark VM (`mode`, which prints its lines
/// as `<mode>...`) that contains `needle`, from `<mode>` on; why not if the
/// VM failed or printed no such line.
fn result_line(run: &continuum_harness::Run, mode: &str, needle: &str) -> Result<String, String> {
    if run.exit != Exit::Success {
        return Err(format!("{mode} exited {:?}:\n{}", run.exit, run.console()));
    }
    let line = run
        .lines
        .iter()
        .map(|(_, l)| l)
        .find(|l| l.contains(needle))
        .ok_or_else(|| format!("{mode} printed no {needle:?} line:\n{}", run.console()))?;
    Ok(line[line.find(mode).unwrap_or(0)..].to_owned())
}

struct WalFlush {
    p50_us: u64,
    p99_us: u64,
    rounds: u64,
    line: String,
}

impl std::fmt::Display for WalFlush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.line)
    }
}

/// One VM in `mode = wal-bench` on a fresh image in the temporary
/// directory (the file system the cluster's disks live on), cache=writeback
/// like the cluster's disks. Returns the batch-1 row.
fn wal_bench(name: &str) -> Result<WalFlush, String> {
    let dir = std::env::temp_dir().join(format!("ctm-{name}-{}", std::process::id()));
    let disk = dir.join("disk.img");
    blank_disk(&disk, WAL_BENCH_DISK_MIB);
    let run = VmConfig::new(name)
        .disk(&disk, DiskCache::Writeback)
        .node_config("mode = wal-bench\nheap_mib = 64\n")
        .timeout(Duration::from_secs(180))
        .run();
    let _ = std::fs::remove_dir_all(&dir);
    let line = result_line(&run, "wal-bench", "wal-bench: batch 1 ")?;
    let get = |key| figure(&line, key).ok_or_else(|| format!("no {key} in {line:?}"));
    Ok(WalFlush {
        p50_us: get("flush_p50_us")?,
        p99_us: get("flush_p99_us")?,
        rounds: get("rounds")?,
        line,
    })
}

// ----------------------------------------------------------------- phases

struct Phase {
    clients: u64,
    samples: Vec<Sample>,
    elapsed: Duration,
    leader: usize,
    leader_after: usize,
    /// Entries committed and WAL flushes on the leader during the recorded run.
    leader_committed: u64,
    leader_flushes: u64,
}

fn counter(nodes: &Nodes, id: usize, name: &str) -> Result<u64, String> {
    let status = bank::status(nodes, id).ok_or_else(|| format!("node {id}: no /status"))?;
    status["raft"]["counters"][name]
        .as_u64()
        .ok_or_else(|| format!("node {id}: /status has no counter {name}"))
}

fn phase(nodes: &mut Nodes, clients: u64, options: &Options, i: usize) -> Result<Phase, String> {
    if options.warmup > 0 {
        eprintln!(
            "phase {clients} client(s): {} warm-up transfers",
            options.warmup
        );
        drive(nodes, clients, options.warmup, WARMUP_IDS[i])?;
    }
    let leader = nodes.wait_for_leader();
    let (committed0, flushes0) = (
        counter(nodes, leader, "committed_entries")?,
        counter(nodes, leader, "flushes")?,
    );
    eprintln!(
        "phase {clients} client(s): {} transfers (node {leader} leads)",
        options.transfers
    );
    let (elapsed, samples) = drive(nodes, clients, options.transfers, RECORDED_IDS[i])?;
    let (committed1, flushes1) = (
        counter(nodes, leader, "committed_entries")?,
        counter(nodes, leader, "flushes")?,
    );
    let leader_after = nodes.wait_for_leader();
    eprintln!(
        "phase {clients} client(s): {:.1} transfers/s",
        samples.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(Phase {
        clients,
        samples,
        elapsed,
        leader,
        leader_after,
        leader_committed: committed1 - committed0,
        leader_flushes: flushes1 - flushes0,
    })
}

/// `clients` closed-loop clients commit `count` transfers between their
/// accounts (`continuum_harness::load::closed_loop`: client `c` tries node
/// `c mod 3` first); returns the time from the start to the last reply, and
/// the samples. While they run, every node must keep answering `/status`
/// (checked every [`WATCH_EVERY`]): a node silent for [`HUNG_AFTER`] has
/// stopped (its clients would crawl on through 3 s retries to the other
/// nodes and the figures would describe a 2-node cluster), an error with
/// the tail of its console.
fn drive(
    nodes: &Nodes,
    clients: u64,
    count: u64,
    id_base: u128,
) -> Result<(Duration, Vec<Sample>), String> {
    let accounts: Vec<Account> = (0..clients as u128)
        .flat_map(|c| {
            let (from, to) = accounts_of(c);
            [from, to]
        })
        .map(|id| Account {
            id,
            owner: bank::owner(id),
        })
        .collect();
    let endpoints: Vec<Endpoint> = nodes
        .client
        .iter()
        .enumerate()
        .map(|(i, &port)| Endpoint {
            node: i as u64 + 1,
            addr: ([127, 0, 0, 1], port).into(),
        })
        .collect();
    let harness_clients = (0..clients as usize)
        .map(|c| {
            let mut mine = endpoints.clone();
            mine.rotate_left(c % endpoints.len());
            HarnessClient::new(CLUSTER_ID, mine)
                .map(|client| {
                    client.with_policy(RetryPolicy {
                        deadline: Duration::from_secs(120),
                        ..RetryPolicy::default()
                    })
                })
                .map_err(|e| format!("client: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut silent_since: Vec<Option<Instant>> = vec![None; nodes.vms.len()];
    let run = load::closed_loop(
        harness_clients,
        &accounts,
        count,
        id_base,
        WATCH_EVERY,
        |_| {
            for id in 1..=nodes.vms.len() {
                if bank::status(nodes, id).is_some() {
                    silent_since[id - 1] = None;
                    continue;
                }
                let since = *silent_since[id - 1].get_or_insert_with(Instant::now);
                if since.elapsed() >= HUNG_AFTER {
                    let console = nodes.vms[id - 1].console_text();
                    let tail: Vec<&str> = console.lines().rev().take(15).collect();
                    return Err(format!(
                        "node {id} has not answered /status for {:?}: it stopped; benchmark aborted. Last console lines:\n{}",
                        since.elapsed(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
            }
            Ok(())
        },
    )?;
    Ok((run.elapsed, run.samples))
}

fn committed_outcome(reply: &ClientReply) -> Option<Outcome> {
    match &reply.body {
        ReplyBody::Ok { outcome, .. } => Outcome::from_unit_code(*outcome.first()?),
        _ => None,
    }
}

// --------------------------------------------------------------- failover

struct Failover {
    /// Kill → first committed write through a survivor.
    samples: Vec<Duration>,
    /// Restart of the killed node → all three converged.
    catch_up: Vec<Duration>,
}

fn failover(nodes: &mut Nodes, kills: u64) -> Result<Failover, String> {
    let mut out = Failover {
        samples: Vec::new(),
        catch_up: Vec::new(),
    };
    let (from, to) = accounts_of(0);
    for kill in 0..kills {
        let leader = nodes.wait_for_leader();
        let survivors: Vec<usize> = (1..=3).filter(|&id| id != leader).collect();
        let command = transfer(PROBE_IDS + u128::from(kill), from, to, 1);
        let killed_at = Instant::now();
        nodes.vms[leader - 1].kill();
        let (took, reply) = probe(nodes, &survivors, command, killed_at)?;
        let restarted_at = Instant::now();
        nodes.vms[leader - 1] = nodes.configs[leader - 1].start();
        nodes.vms[leader - 1].wait_for_line("consensus: node");
        nodes.wait_converged(&[1, 2, 3]);
        let caught_up = restarted_at.elapsed();
        eprintln!(
            "kill {}/{kills}: leader {leader} killed; write committed after {:.1} ms (answered by node {}, term {}); restart -> converged {:.1} s",
            kill + 1,
            took.as_secs_f64() * 1e3,
            reply.node,
            match reply.body {
                ReplyBody::Ok { term, .. } => term,
                _ => 0,
            },
            caught_up.as_secs_f64()
        );
        out.samples.push(took);
        out.catch_up.push(caught_up);
    }
    Ok(out)
}

/// Submits `command` to the survivors, a new attempt every
/// [`PROBE_RESEND`] (alternating), until any attempt is answered with a
/// committed outcome; returns the time since `since` and that reply.
fn probe(
    nodes: &Nodes,
    survivors: &[usize],
    command: Vec<u8>,
    since: Instant,
) -> Result<(Duration, ClientReply), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("probe socket: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .map_err(|e| format!("probe socket: {e}"))?;
    let mut next_send = Instant::now();
    let mut attempts: Vec<u64> = Vec::new();
    let mut buf = [0u8; 2048];
    while since.elapsed() < PROBE_PATIENCE {
        if Instant::now() >= next_send {
            let request_id = attempts.len() as u64 + 1;
            let port = nodes.client[survivors[attempts.len() % survivors.len()] - 1];
            let request = ClientRequest {
                cluster_id: CLUSTER_ID,
                client_id: 2,
                request_id,
                op: RequestOp::Submit {
                    entry: command.clone(),
                },
            };
            let bytes = request
                .encode()
                .map_err(|e| format!("probe encode: {e:?}"))?;
            socket
                .send_to(&bytes, ("127.0.0.1", port))
                .map_err(|e| format!("probe send: {e}"))?;
            attempts.push(request_id);
            next_send += PROBE_RESEND;
        }
        let Ok(len) = socket.recv(&mut buf) else {
            continue;
        };
        let Ok(reply) = ClientReply::decode(&buf[..len]) else {
            continue;
        };
        if !attempts.contains(&reply.request_id) {
            continue;
        }
        match committed_outcome(&reply) {
            Some(Outcome::Ok | Outcome::Exists) => return Ok((since.elapsed(), reply)),
            Some(other) => return Err(format!("failover probe refused: {other:?}")),
            None => {} // Unavailable, Busy, Timeout, Redirect: keep trying.
        }
    }
    Err(format!(
        "no write committed through nodes {survivors:?} within {PROBE_PATIENCE:?} of the kill"
    ))
}

// ----------------------------------------------------------------- report

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn sorted(durations: impl Iterator<Item = Duration>) -> Vec<Duration> {
    let mut v: Vec<Duration> = durations.collect();
    v.sort();
    v
}

struct Report<'a> {
    command: String,
    machine: Machine,
    load_end: String,
    elapsed: Duration,
    options: &'a Options,
    rtt: Rtt,
    flush_before: WalFlush,
    flush_after: WalFlush,
    phases: Vec<Phase>,
    failover: Failover,
}

impl Report<'_> {
    fn render(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(out, "# Continuum cluster benchmark\n");
        let _ = writeln!(out, "* date: {}", m.date);
        let _ = writeln!(out, "* command: `{}`", self.command);
        let _ = writeln!(
            out,
            "* machine: {}, {} cores, accelerator {:?}, {}",
            m.cpu, m.cores, m.accel, m.qemu
        );
        let _ = writeln!(
            out,
            "* load average (1/5/15 min): {} at the start, {} at the end (the machine is shared)",
            m.load_start, self.load_end
        );
        let _ = writeln!(
            out,
            "* cluster: 3 nodes, disks `cache=writeback` (a guest flush is an fdatasync of the image), Ed25519 verification of every transfer, default Raft timing; {} clients in the second phase, {} recorded + {} warm-up transfers per phase, {} leader kills; whole run {:.0} s",
            self.options.clients,
            self.options.transfers,
            self.options.warmup,
            self.options.kills,
            self.elapsed.as_secs_f64()
        );
        let floor_us = self.rtt.p50_us as f64
            + (self.flush_before.p50_us + self.flush_after.p50_us) as f64 / 2.0;
        let _ = writeln!(out, "\n## Floor\n");
        let _ = writeln!(
            out,
            "| what | p50 µs | p99 µs | notes |\n|---|---:|---:|---|"
        );
        let _ = writeln!(
            out,
            "| UDP round trip node to node through the fabric | {} | {} | net-bench: authenticated peer messages, 2 VMs, 1,000 closed-loop round trips; {} messages/s at 32 in flight |",
            self.rtt.p50_us, self.rtt.p99_us, self.rtt.messages_per_s
        );
        for (when, flush) in [("before", &self.flush_before), ("after", &self.flush_after)] {
            let _ = writeln!(
                out,
                "| disk flush, {when} the cluster | {} | {} | wal-bench batch 1, {} rounds |",
                flush.p50_us, flush.p99_us, flush.rounds
            );
        }
        let _ = writeln!(
            out,
            "| **floor** = RTT p50 + mean flush p50 | {floor_us:.0} | | |"
        );

        let _ = writeln!(out, "\n## Throughput and commit latency\n");
        let _ = writeln!(
            out,
            "| clients | transfers | transfers/s | p50 ms | p99 ms | max ms | p50 / floor | p50 answered by leader / follower ms | retried (`Exists`) | leader entries per flush |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for p in &self.phases {
            let all = sorted(p.samples.iter().map(|s| s.latency));
            let by_leader = sorted(
                p.samples
                    .iter()
                    .filter(|s| s.node == p.leader as u64)
                    .map(|s| s.latency),
            );
            let by_follower = sorted(
                p.samples
                    .iter()
                    .filter(|s| s.node != p.leader as u64)
                    .map(|s| s.latency),
            );
            let p50_of = |v: &[Duration]| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    ms(percentile(v, 50))
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {} | {} | {} | {:.1} | {} / {} | {} | {} |",
                p.clients,
                p.samples.len(),
                p.samples.len() as f64 / p.elapsed.as_secs_f64(),
                ms(percentile(&all, 50)),
                ms(percentile(&all, 99)),
                ms(*all.last().expect("a phase has samples")),
                percentile(&all, 50).as_secs_f64() * 1e6 / floor_us,
                p50_of(&by_leader),
                p50_of(&by_follower),
                p.samples.iter().filter(|s| s.retried).count(),
                if p.leader_flushes == 0 {
                    "-".to_owned()
                } else {
                    format!(
                        "{:.2} ({} / {})",
                        p.leader_committed as f64 / p.leader_flushes as f64,
                        p.leader_committed,
                        p.leader_flushes
                    )
                },
            );
        }
        for p in self.phases.iter().filter(|p| p.leader_after != p.leader) {
            let _ = writeln!(
                out,
                "\nThe leader changed during the {}-client phase (node {} -> node {}).",
                p.clients, p.leader, p.leader_after
            );
        }

        let f = &self.failover;
        let kills = sorted(f.samples.iter().copied());
        let catch_up = sorted(f.catch_up.iter().copied());
        let _ = writeln!(
            out,
            "\n## Failover (SIGKILL the leader → first committed write through a survivor)\n"
        );
        let _ = writeln!(
            out,
            "| kills | p50 ms | p99 ms | max ms | min ms | restart → converged p50 s | max s |\n|---:|---:|---:|---:|---:|---:|---:|"
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            kills.len(),
            ms(percentile(&kills, 50)),
            ms(percentile(&kills, 99)),
            ms(*kills.last().expect("at least one kill")),
            ms(kills[0]),
            percentile(&catch_up, 50).as_secs_f64(),
            catch_up.last().expect("at least one kill").as_secs_f64()
        );
        let _ = writeln!(
            out,
            "\nFailover samples in kill order, ms (a new attempt every {} ms): {}",
            PROBE_RESEND.as_millis(),
            f.samples
                .iter()
                .map(|&d| ms(d))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "\nKernel result lines:\n");
        for line in [
            &self.rtt.line,
            &self.flush_before.line,
            &self.flush_after.line,
        ] {
            let _ = writeln!(out, "    {line}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read_from_both_kernel_line_styles() {
        let net = "net-bench authenticated peer messages: rtt_p50_us=252 rtt_p99_us=3516 round_trips_per_s=5170 messages_per_s=10340 lost=0 window=32";
        assert_eq!(figure(net, "rtt_p50_us"), Some(252));
        assert_eq!(figure(net, "messages_per_s"), Some(10340));
        assert_eq!(figure(net, "rtt_p90_us"), None);
        let wal = "wal-bench: batch 1 rounds 4000 entries 4000 appends_per_s 1378 flush_p50_us 110 flush_p99_us 7927 round_p50_us 144 round_p99_us 8588";
        assert_eq!(figure(wal, "batch"), Some(1));
        assert_eq!(figure(wal, "flush_p50_us"), Some(110));
        assert_eq!(figure(wal, "flush_p99_us"), Some(7927));
        assert_eq!(figure(wal, "rounds"), Some(4000));
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(1_796_111_666), "2026-12-01 07:54:26 UTC");
    }

    #[test]
    fn options_are_checked() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let o = parse_options(&args(
            "--clients 4 --transfers 10 --kills 3 --warmup 0 --out x.md",
        ))
        .unwrap();
        assert_eq!((o.clients, o.transfers, o.kills, o.warmup), (4, 10, 3, 0));
        assert_eq!(o.out, PathBuf::from("x.md"));
        assert!(parse_options(&args("--clients 0")).is_err());
        assert!(parse_options(&args("--transfers 50001")).is_err());
        assert!(parse_options(&args("--kills")).is_err());
        assert!(parse_options(&args("--speed 3")).is_err());
        assert!(parse_options(&args("--clients many")).is_err());
    }
}
