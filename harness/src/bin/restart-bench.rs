//! `cargo run --release -p continuum-harness --bin restart-bench -- [--transfers N]
//! [--tail T] [--disk-mib M]`
//!
//! Restart time after a long history (issue 12: "restart time independent
//! of history length, <= 2 s under TCG with 1 M transfers applied over the
//! cluster's life"), measured. Running a million transfers through a TCG
//! cluster is not feasible here (~117 transfers/s: 2.4 hours), so the
//! history is built on the host, honestly, with the node's own code:
//!
//! 1. A one-node cluster plan (`ClusterPlan::for_test`), its node config
//!    parsed by `continuum_config` and turned into the `NodeConfig` the
//!    kernel builds from it (same fields, same mapping as
//!    `kernel/src/consensus.rs`, which this bin cannot call), so the genesis,
//!    the snapshot cadence (`snapshot_entries`, default 10,000) and the
//!    dedup window (`dedup_window_ms`, default 10 min) are the node's.
//! 2. `storage::Store::format` on the node's disk image file (a
//!    `BlockDevice` over the file; flush = `fsync`), then `continuum_node::Node`
//!    on it: the account creation and `N` single-transfer entries, each
//!    signed with ed25519 by the operator, submitted as client requests and
//!    driven through Raft, admission (signature check), the bank, the WAL,
//!    snapshots and compaction, exactly as in the guest. Log time (the HLC
//!    the node stamps on entries) advances by a fixed step per transfer,
//!    chosen so the ids inside the dedup window fill at most half the
//!    bank's transfer table.
//! 3. At `N` the disk is copied ("tail 0" image: whatever the cadence left
//!    after the last snapshot), then `T` more transfers are applied and the
//!    disk copied again ("tail T" image).
//! 4. Each image (and a blank disk, the floor) is booted under QEMU with the
//!    same config, one at a time; the bin prints the time from QEMU start
//!    to the console's `consensus: node` line (log opened, snapshot
//!    restored) and `restored snapshot at index` line, the guest's own
//!    timestamp of the first (kernel entry -> log open, which leaves out
//!    firmware and bootloader time, the part of a TCG boot that host load
//!    stretches most), and the time to `/status` reporting `applied` = the
//!    image's last applied index (the committed tail replayed), plus the
//!    load average.

use continuum_bank::{AccountFlags, Outcome};
use continuum_bank::{CreateAccount, Entry as BankEntry, Transfer};
use continuum_clock::HlcTimestamp;
use continuum_harness::client::validity_for_window;
use continuum_harness::cluster::{Cluster, LaunchSpec};
use continuum_harness::plan::ClusterPlan;
use continuum_net::client::{ClientRequest, ReplyBody, RequestOp};
use continuum_node::{Node, NodeConfig};
use continuum_raft::Role;
use continuum_storage::{check_request, BlockDevice, DeviceError, Identity, Store, BLOCK_SIZE};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: restart-bench [--transfers N (default 1000000)] \
[--tail T (default 5000)] [--disk-mib M (default 256)] [--no-boot] [--keep] \
| restart-bench --restart IMAGE [the --transfers and --tail it was built with]";
/// Receiving account of every transfer.
const ACCOUNT: u128 = 10;
/// Most transfers submitted before each drive (group commit, as under
/// load); the node's admission budget per pass caps it further.
const BATCH: u64 = 64;
/// Longest wait for a booted node's console line or status.
const WAIT: Duration = Duration::from_secs(300);

struct Args {
    transfers: u64,
    tail: u64,
    disk_mib: u64,
    /// Build the history and print its figures only.
    no_boot: bool,
    /// Keep the images (and print where they are).
    keep: bool,
    /// Only restart this image on the host (one the bin kept): the phase
    /// timings alone, e.g. under a profiler.
    restart: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        transfers: 1_000_000,
        tail: 5_000,
        disk_mib: 256,
        no_boot: false,
        keep: false,
        restart: None,
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
            "--tail" => args.tail = value()?,
            "--disk-mib" => args.disk_mib = value()?,
            "--no-boot" => args.no_boot = true,
            "--keep" => args.keep = true,
            "--restart" => {
                let path = it.next().ok_or("--restart needs an image path")?;
                args.restart = Some(PathBuf::from(path));
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.transfers == 0 || args.disk_mib < 16 {
        return Err(format!(
            "need --transfers >= 1 and --disk-mib >= 16\n{USAGE}"
        ));
    }
    Ok(args)
}

/// A disk image file as a block device.
struct FileDisk {
    file: File,
    blocks: u64,
}

impl FileDisk {
    fn create(path: &Path, mib: u64) -> Result<FileDisk, String> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.set_len(mib * 1024 * 1024)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(FileDisk {
            file,
            blocks: mib * 1024 * 1024 / BLOCK_SIZE as u64,
        })
    }
}

impl FileDisk {
    fn open(path: &Path) -> Result<FileDisk, String> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        Ok(FileDisk {
            file,
            blocks: len / BLOCK_SIZE as u64,
        })
    }
}

/// Copies a disk image and makes the copy durable before anything boots
/// on it: otherwise the node's flush at open would write back the copy's
/// dirty pages and count that as restart time.
fn copy_synced(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map_err(|e| format!("copy {}: {e}", to.display()))?;
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("sync {}: {e}", to.display()))
}

/// Restarts a copy of `image` on the host, timing each phase (the guest
/// runs the same code, several times slower under TCG): store open
/// (recovery scan), node start (snapshot read, verify and restore; the
/// log's chain-hash table), then the replay until `applied` is back.
/// `applied`: the index the image had applied (`None`: its last log
/// index, for an image whose history this run did not build).
fn host_restart(
    label: &str,
    image: &Path,
    applied: Option<u64>,
    node_config: &NodeConfig,
    identity: Identity,
) -> Result<String, String> {
    let copy = image.with_extension("host.img");
    copy_synced(image, &copy)?;
    let disk = FileDisk::open(&copy)?;
    let t0 = Instant::now();
    let (store, _) = Store::open(disk, identity).map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let applied = applied.unwrap_or(store.last_index());
    let mut node: HostNode = Node::new(node_config.clone(), store).map_err(|e| e.to_string())?;
    let t2 = Instant::now();
    elect(&mut node)?;
    while node.applied() < applied {
        node.tick();
        node.drive().map_err(|e| e.to_string())?;
    }
    let t3 = Instant::now();
    let (_, verified) = node.verdict_memo_counts();
    let _ = std::fs::remove_file(&copy);
    Ok(format!(
        "{}: host restart: store open {:.0} ms, node start {:.0} ms, replay to {} {:.0} ms ({} entries re-applied clean, {} signatures verified)",
        label,
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        applied,
        (t3 - t2).as_secs_f64() * 1e3,
        node.metrics().replayed_clean,
        verified
    ))
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn capacity_blocks(&self) -> u64 {
        self.blocks
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.blocks)?;
        self.file
            .read_exact_at(buf, lba * BLOCK_SIZE as u64)
            .map_err(|_| DeviceError::Io { code: 1 })
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.blocks)?;
        self.file
            .write_all_at(buf, lba * BLOCK_SIZE as u64)
            .map_err(|_| DeviceError::Io { code: 2 })
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        self.file
            .sync_data()
            .map_err(|_| DeviceError::Io { code: 3 })
    }

    fn supports_flush(&self) -> bool {
        true
    }
}

/// The `NodeConfig` the kernel builds from `config` (kernel/src/consensus.rs).
fn node_config(config: &continuum_config::Config) -> Result<NodeConfig, String> {
    NodeConfig::from_config(config, 1).map_err(|e| e.to_string())
}

type HostNode = Node<FileDisk, u64>;

/// Builds the history on the node's disk; returns the disk images with
/// their last applied index, log first index and snapshot index.
struct Image {
    label: String,
    path: PathBuf,
    applied: u64,
    snapshot_index: u64,
    transfers: u64,
}

struct Builder {
    node: HostNode,
    plan: ClusterPlan,
    cluster_id: u64,
    validity_ms: u64,
    step_ms: u64,
    log_ms: u64,
    request: u64,
    transfers: u64,
    chunks: ChunkSharing,
}

/// How many content-defined chunks (the InstallSnapshot cut, 1 KiB chunks,
/// the default `snapshot_chunk_bytes`) each snapshot shares with the one
/// before it: what a follower holding the previous snapshot would not
/// fetch.
#[derive(Default)]
struct ChunkSharing {
    index: u64,
    names: std::collections::BTreeSet<continuum_raft::SnapshotDigest>,
    pairs: u64,
    chunks: u64,
    shared: u64,
    worst_pct: f64,
    bytes: u64,
}

impl ChunkSharing {
    fn observe(&mut self, snapshot: &continuum_raft::Snapshot) {
        if snapshot.metadata.index == self.index {
            return;
        }
        let manifest = continuum_raft::manifest_of(&snapshot.data, 1024);
        let names: std::collections::BTreeSet<_> = manifest.iter().map(|e| e.name).collect();
        if self.index != 0 {
            let shared = manifest
                .iter()
                .filter(|e| self.names.contains(&e.name))
                .count() as u64;
            let pct = 100.0 * shared as f64 / manifest.len().max(1) as f64;
            self.worst_pct = if self.pairs == 0 {
                pct
            } else {
                self.worst_pct.min(pct)
            };
            self.pairs += 1;
            self.chunks += manifest.len() as u64;
            self.shared += shared;
        }
        self.index = snapshot.metadata.index;
        self.names = names;
        self.bytes = snapshot.data.len() as u64;
    }
}

impl Builder {
    fn submit(&mut self, command: Vec<u8>) {
        self.request += 1;
        let request = ClientRequest {
            cluster_id: self.cluster_id,
            client_id: 1,
            request_id: self.request,
            op: RequestOp::Submit { entry: command },
        };
        let hlc = HlcTimestamp::new(self.log_ms, 0)
            .expect("log time in range")
            .packed();
        self.node.on_client(self.request, request, hlc);
    }

    /// Drives until every submitted request is answered; each must be Ok.
    fn settle(&mut self, expected: usize) -> Result<(), String> {
        let mut answered = 0;
        for _ in 0..10_000 {
            self.node.tick();
            self.node.drive().map_err(|e| format!("node: {e}"))?;
            for (id, reply) in self.node.take_replies() {
                match reply.body {
                    ReplyBody::Ok { outcome, .. }
                        if Outcome::from_unit_code(outcome[0]) == Some(Outcome::Ok) => {}
                    other => return Err(format!("request {id}: {other:?}")),
                }
                answered += 1;
            }
            if answered == expected {
                return Ok(());
            }
        }
        Err(format!("{answered} of {expected} requests answered"))
    }

    fn create_account(&mut self) -> Result<(), String> {
        let signed = CreateAccount {
            id: ACCOUNT,
            owner: continuum_harness::plan::derived_key("restart-bench", "owner", 10)
                .verifying_key()
                .to_bytes(),
            flags: AccountFlags::empty(),
            expires_at: self.log_ms + self.validity_ms,
        }
        .sign(&self.plan.operator, u128::from(self.cluster_id));
        self.submit(BankEntry::single(signed).encode());
        self.settle(1)
    }

    fn transfers(&mut self, count: u64) -> Result<(), String> {
        let started = Instant::now();
        let mut done = 0;
        while done < count {
            // As the kernel does: no more requests than the admission
            // budget of this pass (the rest would get Busy).
            let budget = self.node.admission_budget() as u64;
            let batch = BATCH.min(count - done).min(budget).max(1);
            for _ in 0..batch {
                self.transfers += 1;
                self.log_ms += self.step_ms;
                let id = u128::from(self.transfers);
                let signed = Transfer {
                    id,
                    from: self.plan.reserve_account,
                    to: ACCOUNT,
                    amount: 1,
                    client: id,
                    seq: 1,
                    expires_at: self.log_ms + self.validity_ms,
                }
                .sign(&self.plan.operator, u128::from(self.cluster_id));
                self.submit(BankEntry::single(signed).encode());
            }
            self.settle(batch as usize)?;
            done += batch;
            if let Some(snapshot) = continuum_raft::Storage::snapshot(self.node.raft().storage()) {
                self.chunks.observe(snapshot);
            }
            if self.transfers.is_multiple_of(100_000) {
                let s = self.node.snapshot_status();
                println!(
                    "  {} transfers applied ({:.0}/s on the host), applied index {}, snapshot index {}, first index {}, WAL used {} KiB",
                    self.transfers,
                    done as f64 / started.elapsed().as_secs_f64(),
                    self.node.applied(),
                    s.snapshot_index,
                    s.first_index,
                    s.wal_used_bytes / 1024
                );
            }
        }
        Ok(())
    }

    /// Copies the disk image (every write the node made is in the file:
    /// each settled request was persisted, and flushed, before its reply).
    fn copy_to(&mut self, label: &str, from: &Path, to: &Path) -> Result<Image, String> {
        copy_synced(from, to)?;
        Ok(Image {
            label: label.into(),
            path: to.to_owned(),
            applied: self.node.applied(),
            snapshot_index: self.node.snapshot_status().snapshot_index,
            transfers: self.transfers,
        })
    }
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
        eprintln!("restart-bench: {e}");
        std::process::exit(1);
    }
}

/// The kernel's timestamp of a console line, `[  seconds.micros ...]`:
/// time since kernel entry, by the guest's clock.
fn guest_seconds(line: &str) -> Option<f64> {
    let rest = line.trim_start().strip_prefix('[')?;
    rest.split_whitespace().next()?.parse().ok()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn elect(node: &mut HostNode) -> Result<(), String> {
    for _ in 0..1000 {
        node.tick();
        node.drive().map_err(|e| format!("node: {e}"))?;
        if node.role() == Role::Leader {
            return Ok(());
        }
    }
    Err("a one-node cluster did not elect itself".into())
}

fn build(args: &Args, plan: &ClusterPlan, dir: &Path) -> Result<Vec<Image>, String> {
    let text = plan.node_config(1).map_err(|e| e.to_string())?;
    let config = continuum_config::Config::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let node_config = node_config(&config)?;
    let limits = node_config.genesis.limits;
    let window = config.dedup_window_ms;
    // Ids inside the window fill at most half the transfer table.
    let step_ms = window.div_ceil((limits.max_transfers / 2).max(1)).max(1);
    let total = args.transfers + args.tail;
    println!(
        "history: {} transfers then {} more, one per entry, log time +{step_ms} ms each ({:.0} transfers/s of log time, {} ids in the {window} ms window, max_transfers {}), snapshot every {} entries",
        args.transfers,
        args.tail,
        1000.0 / step_ms as f64,
        window / step_ms,
        limits.max_transfers,
        config.snapshot_entries
    );
    let build_disk = dir.join("build.img");
    let disk = FileDisk::create(&build_disk, args.disk_mib)?;
    let identity = Identity {
        cluster_id: u128::from(config.cluster_id),
        node_id: config.node_id,
    };
    let (store, _) = Store::format(disk, identity).map_err(|e| e.to_string())?;
    let node_config_copy = node_config.clone();
    let mut node: HostNode = Node::new(node_config, store).map_err(|e| e.to_string())?;
    elect(&mut node)?;
    // Log time ends an hour before now, so the booted node's clock is ahead.
    let start_ms = unix_ms() - total * step_ms - 3_600_000;
    let mut b = Builder {
        node,
        plan: plan.clone(),
        cluster_id: config.cluster_id,
        validity_ms: validity_for_window(window),
        step_ms,
        log_ms: start_ms,
        request: 0,
        transfers: 0,
        chunks: ChunkSharing::default(),
    };
    let started = Instant::now();
    b.create_account()?;
    b.transfers(args.transfers)?;
    let mut images = vec![b.copy_to("history", &build_disk, &dir.join("history.img"))?];
    if args.tail > 0 {
        b.transfers(args.tail)?;
        images.push(b.copy_to(
            &format!("history + {}", args.tail),
            &build_disk,
            &dir.join("tail.img"),
        )?);
    }
    // What was built, so a failed boot can be looked into (the directory
    // is removed only after a successful run).
    let listing: String = images
        .iter()
        .map(|i| {
            format!(
                "{}\t{}\tapplied {}\tsnapshot {}\ttransfers {}\n",
                i.label,
                i.path.display(),
                i.applied,
                i.snapshot_index,
                i.transfers
            )
        })
        .collect();
    print!("{listing}");
    std::fs::write(dir.join("images.txt"), listing).map_err(|e| e.to_string())?;
    let c = &b.chunks;
    println!(
        "consecutive snapshots: {} pairs, {} of {} chunks ({:.1}%) shared with the previous snapshot, worst pair {:.1}%; last snapshot {} bytes",
        c.pairs,
        c.shared,
        c.chunks,
        100.0 * c.shared as f64 / c.chunks.max(1) as f64,
        c.worst_pct,
        c.bytes
    );
    for image in &images {
        println!(
            "{}",
            host_restart(
                &image.label,
                &image.path,
                Some(image.applied),
                &node_config_copy,
                identity
            )?
        );
    }
    let balance = b.node.ledger().balance(ACCOUNT);
    if balance != Some(total) {
        return Err(format!(
            "account {ACCOUNT} holds {balance:?}, expected {total}"
        ));
    }
    println!(
        "built in {:.0} s on the host: balance {total}, {} bytes written to the WAL",
        started.elapsed().as_secs_f64(),
        b.node.raft().storage().bytes_written
    );
    Ok(images)
}

/// What one boot measured.
struct Boot {
    restored_line: Option<(Duration, String)>,
    open_line: (Duration, String),
    serving: Duration,
    applied: u64,
}

fn boot(plan: &ClusterPlan, dir: &Path, image: Option<&Image>, mib: u64) -> Result<Boot, String> {
    let run_dir = dir.join("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    let mut spec = LaunchSpec::from_plan("rb", plan, &run_dir, mib)?;
    spec.nodes[0].boot = false;
    spec.qmp = false;
    spec.timeout = WAIT;
    let node_dir = run_dir.join("node-1");
    continuum_harness::private::create_private_dir(&node_dir).map_err(|e| e.to_string())?;
    if let Some(image) = image {
        copy_synced(&image.path, &node_dir.join("disk.img"))?;
    }
    let target = image.map_or(1, |i| i.applied);
    let mut cluster = Cluster::launch(spec)?;
    let started = Instant::now();
    cluster.start_node(1)?;
    let serving = loop {
        if let Ok(status) = cluster.status(1) {
            if status["raft"]["applied"]
                .as_u64()
                .is_some_and(|a| a >= target)
            {
                break started.elapsed();
            }
        }
        if started.elapsed() > WAIT {
            return Err(format!("node did not apply {target} within {WAIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let applied = cluster.status(1)?["raft"]["applied"].as_u64().unwrap_or(0);
    let vm = cluster
        .vms
        .iter_mut()
        .find(|vm| vm.name() == "rb-node1")
        .ok_or("no VM")?;
    let open_line = vm.wait_for_line("consensus: node");
    let restored_line = image.map(|_| vm.wait_for_line("restored snapshot at index"));
    Ok(Boot {
        restored_line,
        open_line,
        serving,
        applied,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let mut plan = ClusterPlan::for_test("restart-bench", 11, &[1]).map_err(|e| e.to_string())?;
    // Enough money for every transfer to apply.
    plan.supply = plan.supply.max(2 * (args.transfers + args.tail));
    if let Some(path) = &args.restart {
        return restart_only(&plan, path);
    }
    let dir = std::env::temp_dir().join(format!("ctm-rb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    continuum_harness::private::create_private_dir(&dir).map_err(|e| e.to_string())?;
    let images = build(args, &plan, &dir)?;
    if args.no_boot {
        if args.keep {
            println!("images kept in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    let floor = boot(&plan, &dir, None, args.disk_mib)?;
    rows.push(("blank disk (floor)".to_string(), 0, 0, floor));
    for image in &images {
        let b = boot(&plan, &dir, Some(image), args.disk_mib)?;
        rows.push((
            format!("{} ({} transfers)", image.label, image.transfers),
            image.snapshot_index,
            image.applied - image.snapshot_index,
            b,
        ));
    }
    println!(
        "\nboot under {:?}, load average {}:",
        continuum_harness::Accel::detect(),
        continuum_harness::load::load_average()
    );
    println!("| disk | snapshot index | tail entries | kernel entry -> log open (guest clock) | QEMU start -> log open | -> restored line | -> /status applied | over the floor | applied |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let floor = rows[0].3.serving;
    for (label, snapshot, tail, b) in &rows {
        println!(
            "| {label} | {snapshot} | {tail} | {} | {:.2} s | {} | {:.2} s | {:+.2} s | {} |",
            guest_seconds(&b.open_line.1).map_or("?".into(), |s| format!("{s:.3} s")),
            b.open_line.0.as_secs_f64(),
            b.restored_line
                .as_ref()
                .map_or("-".into(), |(at, _)| format!("{:.2} s", at.as_secs_f64())),
            b.serving.as_secs_f64(),
            b.serving.as_secs_f64() - floor.as_secs_f64(),
            b.applied
        );
    }
    for (label, _, _, b) in &rows {
        println!("  {label}: console: {}", b.open_line.1.trim());
    }
    if args.keep {
        println!("images kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// `--restart IMAGE`: the host restart of one kept image, nothing else
/// (what a profiler should see). The image's last log index stands for
/// the applied index it had.
fn restart_only(plan: &ClusterPlan, path: &Path) -> Result<(), String> {
    let text = plan.node_config(1).map_err(|e| e.to_string())?;
    let config = continuum_config::Config::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let identity = Identity {
        cluster_id: u128::from(config.cluster_id),
        node_id: config.node_id,
    };
    let label = path.display().to_string();
    let line = host_restart(&label, path, None, &node_config(&config)?, identity)?;
    println!("{line}");
    Ok(())
}
