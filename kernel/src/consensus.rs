//! The consensus node in the kernel: the portable `continuum-node` state
//! machine (Raft over the WAL, the bank, client requests) wired to the
//! network task, the clocks, the status pages and the console shell.
//!
//! This module owns no decision. It builds the node from the config and the
//! disk opened at boot, and offers the network task four verbs:
//! [`on_peer_payload`] (an authenticated peer datagram), [`on_client`] (a
//! decoded client request), [`tick_until`] (Raft's 10 ms ticks) and
//! [`drive`] (the Ready loop: persist + flush, then hand the messages to
//! the network at once, apply, and hand over the client replies). Clocks: every outgoing envelope carries
//! the Lamport clock (`send`) and the HLC; every incoming one advances both
//! (`recv`, `update`). An HLC more than the configured max offset ahead of
//! local physical time is *not* adopted: it is counted per peer as skew and
//! reported on `/status` and `/metrics`.
//!
//! The node lives in [`NODE`], a lock only ever taken from tasks (never from
//! an interrupt handler) on the one CPU, so it cannot contend; the console
//! shell and the status server read through it.

use crate::storage::disk::NodeDisk;
use crate::storage::DiskStore;
use crate::time::{self, KernelClock, HLC};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use continuum_bank::{GenesisConfig, Limits};
use continuum_clock::{HlcTimestamp, LamportClock};
use continuum_config::Config;
use continuum_net::client::{ClientReply, ClientRequest};
use continuum_node::{Envelope, Hex, Node, NodeConfig, NodeError};
use continuum_raft::Role;
use core::fmt::Write;
use smoltcp::wire::IpEndpoint;
use spin::Mutex;

/// Raft's logical tick.
pub const TICK_MS: u64 = 10;

pub type KernelNode = Node<NodeDisk, IpEndpoint>;
/// Envelopes to send: (peer id, encoded envelope).
pub type Outbox = Vec<(u64, Vec<u8>)>;
/// Client replies to send: (client address, reply).
pub type Replies = Vec<(IpEndpoint, ClientReply)>;

pub static NODE: Mutex<Option<KernelNode>> = Mutex::new(None);
static LAMPORT: LamportClock = LamportClock::new();

/// Per-peer clock observations.
#[derive(Clone, Copy, Default)]
struct PeerClock {
    /// Remote HLC milliseconds minus local wall milliseconds at receipt
    /// (one-way: includes the network delay).
    offset_ms: i64,
    skew_rejections: u64,
}

static PEER_CLOCKS: Mutex<BTreeMap<u64, PeerClock>> = Mutex::new(BTreeMap::new());
static DECODE_ERRORS: Mutex<u64> = Mutex::new(0);

/// Builds the node when this kernel runs one: `mode = node`, a disk, a
/// replication LAN with keys, and the bank's genesis. Returns whether it did;
/// says on the console why not. Halts on a config or disk it cannot trust.
pub fn start(config: &Config, store: Option<DiskStore>, lan_ready: bool) -> bool {
    let Some(store) = store else {
        log::warn!("consensus: no disk, so this node cannot vote or store the log; clients get Unavailable");
        return false;
    };
    if !lan_ready {
        log::warn!("consensus: no authenticated replication LAN; clients get Unavailable");
        return false;
    }
    let Some(operator_key) = config.operator_key else {
        crate::halt_with(format_args!(
            "consensus: operator_key is not set, so the bank has no genesis; refusing to start"
        ))
    };
    let mut voters: Vec<u64> = config.peers().map(|p| u64::from(p.id)).collect();
    voters.push(u64::from(config.node_id));
    voters.sort_unstable();
    let election_ticks = u64::from(config.election_ms) / TICK_MS;
    let node_config = NodeConfig {
        id: u64::from(config.node_id),
        voters,
        cluster_id: config.cluster_id,
        genesis: GenesisConfig {
            cluster_id: u128::from(config.cluster_id),
            operator_key,
            reserve_account: config.reserve_account,
            supply: config.supply,
            // Part of the genesis, identical on every node: a full table
            // decides outcomes (the config parser checked the heap fits).
            limits: Limits::for_heap(u64::from(config.ledger_heap_mib)),
            max_expiry_window_ms: config.dedup_window_ms,
        },
        election_ticks,
        heartbeat_ticks: (u64::from(config.heartbeat_ms) / TICK_MS).max(1),
        request_timeout_ticks: (election_ticks * 4).max(300),
        chain_check_ticks: 100,
        seed: time::rdtsc() ^ u64::from(config.node_id),
        snapshot_entries: config.snapshot_entries,
    };
    let started = time::monotonic_ns();
    match Node::new(node_config, store) {
        Ok(node) => {
            let raft = node.raft();
            log::info!(
                "consensus: node {} of {} voters, term {}, commit {}, log {}..={}, replaying the committed tail ({} ms to open)",
                node.id(),
                raft.voters().len(),
                raft.term(),
                raft.commit_index(),
                raft.storage().store().first_index(),
                raft.last_index(),
                (time::monotonic_ns() - started) / 1_000_000
            );
            let mut node = node;
            node.set_stage_clock(|| time::monotonic_ns() / 1_000);
            report_snapshots(&mut node);
            *NODE.lock() = Some(node);
            true
        }
        Err(error) => fatal(error),
    }
}

fn fatal(error: NodeError) -> ! {
    crate::halt_with(format_args!("consensus: {error}"))
}

fn hlc_packed() -> u64 {
    time::hlc_now().map_or(0, |t| t.packed())
}

/// Whether a node runs here.
pub fn running() -> bool {
    NODE.lock().is_some()
}

/// Handles the payload of an authenticated `PeerBody::Raft` datagram.
pub fn on_peer_payload(from: u64, payload: &[u8]) {
    let envelope = match Envelope::decode(payload) {
        Ok(envelope) => envelope,
        Err(error) => {
            *DECODE_ERRORS.lock() += 1;
            log::debug!("consensus: undecodable envelope from {from}: {error}");
            return;
        }
    };
    let _ = LAMPORT.recv(envelope.lamport);
    let remote = HlcTimestamp::from_packed(envelope.hlc);
    let skewed = HLC.update(remote, &KernelClock).is_err();
    {
        let mut clocks = PEER_CLOCKS.lock();
        let entry = clocks.entry(from).or_default();
        entry.offset_ms = remote.millis() as i64 - time::wall_clock_millis() as i64;
        if skewed {
            entry.skew_rejections += 1;
        }
    }
    let mut node = NODE.lock();
    let Some(node) = node.as_mut() else { return };
    if let Err(error) = node.on_peer(from, envelope.body, hlc_packed()) {
        fatal(error)
    }
}

/// Hands a decoded client request to the node.
pub fn on_client(from: IpEndpoint, request: ClientRequest) {
    let mut node = NODE.lock();
    if let Some(node) = node.as_mut() {
        let started = time::monotonic_ns();
        node.on_client(from, request, hlc_packed());
        crate::metrics::ADMIT
            .lock()
            .record(crate::metrics::micros_since(started));
    }
}

/// Whether the node can take another client request this pass: its
/// admission budget (signature verifications until the next [`drive`],
/// `continuum_node::admission`) is not spent. When it is, the network task
/// leaves datagrams in the client socket for the next pass.
pub fn can_admit() -> bool {
    NODE.lock()
        .as_ref()
        .is_some_and(|node| node.admission_budget() > 0)
}

/// Runs the Raft ticks due by `now_ms`; returns when the next one is due.
pub fn tick_until(next_tick_ms: &mut u64, now_ms: u64) {
    let mut node = NODE.lock();
    let Some(node) = node.as_mut() else { return };
    if *next_tick_ms == 0 {
        *next_tick_ms = now_ms;
    }
    // After a long stall (a paused VM) do not replay every missed tick at
    // once: a burst would fire elections; a few catch-up ticks suffice.
    if now_ms.saturating_sub(*next_tick_ms) > 10 * TICK_MS {
        *next_tick_ms = now_ms - 10 * TICK_MS;
    }
    while *next_tick_ms <= now_ms {
        node.tick();
        *next_tick_ms += TICK_MS;
    }
}

/// The Ready loop. `send(outbox, replies)` gets each Ready's envelopes as
/// soon as the Ready is durable (before its entries apply) and client
/// replies as soon as their entries applied; it should transmit them at
/// once. Halts on a persistence failure or divergence.
pub fn drive(mut send: impl FnMut(Outbox, Replies)) {
    let mut node = NODE.lock();
    let Some(node) = node.as_mut() else {
        return;
    };
    let before = DriveStart {
        ns: time::monotonic_ns(),
        disk_us: crate::metrics::disk_busy_us(),
        last: durable_last(node),
        applied: node.applied(),
        snapshots: node.metrics().snapshots_taken,
    };
    let result = node.drive_sending(|outbox, replies| {
        if outbox.is_empty() && replies.is_empty() {
            return;
        }
        let hlc = hlc_packed();
        let envelopes = outbox
            .drain(..)
            .map(|(to, body)| {
                let mut bytes = Vec::new();
                Envelope {
                    lamport: LAMPORT.send(),
                    hlc,
                    body,
                }
                .encode(&mut bytes);
                (to, bytes)
            })
            .collect();
        send(envelopes, core::mem::take(replies));
    });
    if let Err(error) = result {
        fatal(error)
    }
    record_drive(node, &before);
    crate::metrics::record_stages(node.take_stage_samples().0);
    report_snapshots(node);
    report_role(node);
}

/// What a Ready-loop call's metrics are measured against.
struct DriveStart {
    /// Monotonic time at the start.
    ns: u64,
    /// The disk's busy time then.
    disk_us: u64,
    /// The WAL's last index then.
    last: u64,
    /// The applied index then.
    applied: u64,
    /// Snapshots taken then.
    snapshots: u64,
}

/// Prints what the node did with snapshots since the last call (restored
/// at start, installed from a leader, taken) on the console.
fn report_snapshots(node: &mut KernelNode) {
    for event in node.take_snapshot_events() {
        log::info!("consensus: {event}");
    }
}

/// The last index in the WAL (durable: every append is flushed before
/// the Ready loop goes on).
fn durable_last(node: &KernelNode) -> u64 {
    node.raft().storage().store().last_index()
}

/// `/metrics` for one Ready-loop call that started at `before`. A call
/// that found no Ready is not recorded.
fn record_drive(node: &KernelNode, before: &DriveStart) {
    use crate::metrics::{
        self, APPLIED_ENTRIES, APPLY, DRIVE, FOLLOWER_ENTRIES, LEADER_ENTRIES, SNAPSHOT_DRIVE,
    };
    let total = metrics::micros_since(before.ns);
    let disk = metrics::disk_busy_us().saturating_sub(before.disk_us);
    // A truncated log can end below where it was: count what was appended.
    let persisted = durable_last(node).saturating_sub(before.last);
    let applied_now = node.applied().saturating_sub(before.applied);
    if node.metrics().snapshots_taken != before.snapshots {
        SNAPSHOT_DRIVE.lock().record(total);
    }
    if disk == 0 && persisted == 0 && applied_now == 0 {
        return;
    }
    DRIVE.lock().record(total);
    APPLY.lock().record(total.saturating_sub(disk));
    if persisted > 0 {
        match node.raft().role() {
            Role::Leader => LEADER_ENTRIES.lock().record(persisted),
            _ => FOLLOWER_ENTRIES.lock().record(persisted),
        }
    }
    if applied_now > 0 {
        APPLIED_ENTRIES.lock().record(applied_now);
    }
}

/// Last (role, term, leader) printed, so changes are logged once.
static SEEN_ROLE: Mutex<(Option<Role>, u64, u64)> = Mutex::new((None, 0, 0));

fn report_role(node: &KernelNode) {
    let raft = node.raft();
    let now = (Some(raft.role()), raft.term(), raft.leader());
    let mut seen = SEEN_ROLE.lock();
    if *seen == now {
        return;
    }
    *seen = now;
    match raft.role() {
        Role::Leader => log::info!("raft: leader of term {}", raft.term()),
        Role::Follower if raft.leader() != 0 => {
            log::info!(
                "raft: following node {} in term {}",
                raft.leader(),
                raft.term()
            )
        }
        role => log::info!(
            "raft: {} in term {}, no leader known",
            role_name(role),
            raft.term()
        ),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::PreCandidate => "pre-candidate",
        Role::Follower => "follower",
    }
}

/// The `"raft"` member of `/status` (a JSON object), or `null`.
pub fn status_json(out: &mut String) {
    let node = NODE.lock();
    let Some(node) = node.as_ref() else {
        out.push_str("null");
        return;
    };
    let raft = node.raft();
    let (head_index, head) = node.ledger().chain_head();
    let m = node.metrics();
    let log = raft.storage();
    let _ = write!(
        out,
        "{{\"role\":\"{}\",\"term\":{},\"leader\":{},\"commit\":{},\"applied\":{},\"last_index\":{},\"chain_head\":{{\"index\":{head_index},\"hash\":\"{}\"}},\"lamport\":{},",
        role_name(raft.role()),
        raft.term(),
        raft.leader(),
        raft.commit_index(),
        node.applied(),
        raft.last_index(),
        Hex(&head),
        LAMPORT.current(),
    );
    out.push_str("\"peers\":[");
    let clocks = PEER_CLOCKS.lock();
    let mut first = true;
    for &peer in raft.voters() {
        if peer == node.id() {
            continue;
        }
        let matched = raft.progress(peer).map_or(0, |p| p.matched);
        let clock = clocks.get(&peer).copied().unwrap_or_default();
        let _ = write!(
            out,
            "{}{{\"id\":{peer},\"match_index\":{matched},\"offset_ms\":{},\"skew_rejections\":{}}}",
            if first { "" } else { "," },
            clock.offset_ms,
            clock.skew_rejections
        );
        first = false;
    }
    let (writes, reads) = node.waiting();
    let snap = node.snapshot_status();
    let _ = write!(
        out,
        "],\"first_index\":{},\"snapshot_index\":{},\"snapshot_bytes\":{},\"wal_used_bytes\":{},\"wal_free_bytes\":{},\"wal_capacity_bytes\":{}",
        snap.first_index,
        snap.snapshot_index,
        snap.snapshot_bytes,
        snap.wal_used_bytes,
        snap.wal_capacity_bytes.saturating_sub(snap.wal_used_bytes),
        snap.wal_capacity_bytes,
    );
    let _ = write!(
        out,
        ",\"counters\":{{\"snapshots_taken\":{},\"snapshots_installed\":{},\"proposals\":{},\"forwarded\":{},\"committed_entries\":{},\"applied_commands\":{},\"client_requests\":{},\"client_bad_requests\":{},\"client_bad_signatures\":{},\"client_busy\":{},\"forwards_refused\":{},\"client_timeouts\":{},\"reads_served\":{},\"raft_rejected\":{},\"leader_changes\":{},\"elections\":{},\"chain_checks_matched\":{},\"chain_checks_mismatched\":{},\"wal_bytes\":{},\"flushes\":{},\"envelope_decode_errors\":{}}},\"waiting\":{{\"writes\":{writes},\"reads\":{reads}}}}}",
        snap.snapshots_taken,
        snap.snapshots_installed,
        m.proposals,
        m.forwarded,
        m.committed_entries,
        m.applied_commands,
        m.client_requests,
        m.client_bad_requests,
        m.client_bad_signatures,
        m.client_busy,
        m.forwards_refused,
        m.client_timeouts,
        m.reads_served,
        m.raft_rejected,
        m.leader_changes,
        raft.stats().elections_started,
        m.chain_checks_matched,
        m.chain_checks_mismatched,
        log.bytes_written,
        log.flushes,
        *DECODE_ERRORS.lock(),
    );
}

/// Prometheus text exposition of the node's metrics.
pub fn metrics_text(out: &mut String, node_id: u8) {
    let node = NODE.lock();
    let Some(node) = node.as_ref() else {
        let _ = writeln!(
            out,
            "# no consensus node runs here\ncontinuum_node_running{{node=\"{node_id}\"}} 0"
        );
        return;
    };
    let raft = node.raft();
    let m = node.metrics();
    let log = raft.storage();
    let l = node_id;
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP continuum_{name} {help}\n# TYPE continuum_{name} gauge\ncontinuum_{name}{{node=\"{l}\"}} {value}");
    };
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP continuum_{name} {help}\n# TYPE continuum_{name} counter\ncontinuum_{name}{{node=\"{l}\"}} {value}");
    };
    gauge(out, "node_running", "1 when a consensus node runs", 1);
    gauge(out, "raft_term", "Current Raft term", raft.term());
    gauge(
        out,
        "raft_is_leader",
        "1 on the leader",
        u64::from(raft.role() == Role::Leader),
    );
    gauge(
        out,
        "raft_leader",
        "Known leader id (0 = none)",
        raft.leader(),
    );
    gauge(
        out,
        "raft_commit_index",
        "Highest committed log index",
        raft.commit_index(),
    );
    gauge(
        out,
        "raft_applied_index",
        "Highest applied log index",
        node.applied(),
    );
    gauge(out, "raft_last_index", "Last log index", raft.last_index());
    let snap = node.snapshot_status();
    gauge(
        out,
        "raft_first_index",
        "First index the log holds",
        snap.first_index,
    );
    gauge(
        out,
        "snapshot_index",
        "Index of the stored ledger snapshot (0: none)",
        snap.snapshot_index,
    );
    gauge(
        out,
        "snapshot_bytes",
        "Size of the stored snapshot",
        snap.snapshot_bytes,
    );
    gauge(
        out,
        "wal_used_bytes",
        "WAL bytes the live log occupies",
        snap.wal_used_bytes,
    );
    gauge(
        out,
        "wal_capacity_bytes",
        "WAL region size",
        snap.wal_capacity_bytes,
    );
    counter(
        out,
        "snapshots_taken_total",
        "Ledger snapshots this node took (this boot)",
        snap.snapshots_taken,
    );
    counter(
        out,
        "snapshots_installed_total",
        "Snapshots installed from a leader (this boot)",
        snap.snapshots_installed,
    );
    counter(
        out,
        "proposals_total",
        "Entries proposed by this node as leader",
        m.proposals,
    );
    let (memo_hits, memo_misses) = node.verdict_memo_counts();
    counter(
        out,
        "verdict_memo_hits_total",
        "Signature verdicts taken from the memo (verified earlier, off the commit path)",
        memo_hits,
    );
    counter(
        out,
        "signatures_verified_total",
        "Signatures this node verified (admission, ahead of apply, or at apply on a miss)",
        memo_misses,
    );
    counter(
        out,
        "preverified_signatures_total",
        "Signatures verified ahead of apply, after the Ready's messages left",
        m.preverified_signatures,
    );
    counter(
        out,
        "witness_flushes_total",
        "Slot flushes that only witness a quiet log's newest batch",
        m.witness_flushes,
    );
    counter(
        out,
        "forwarded_total",
        "Client writes forwarded to the leader",
        m.forwarded,
    );
    counter(
        out,
        "committed_entries_total",
        "Entries applied after commit",
        m.committed_entries,
    );
    counter(
        out,
        "client_requests_total",
        "Client requests handed to the node",
        m.client_requests,
    );
    counter(
        out,
        "client_timeouts_total",
        "Client requests answered Timeout/Unavailable after waiting",
        m.client_timeouts,
    );
    counter(
        out,
        "reads_served_total",
        "Linearizable reads served",
        m.reads_served,
    );
    counter(
        out,
        "raft_rejected_total",
        "Peer messages rejected by the node",
        m.raft_rejected,
    );
    counter(
        out,
        "elections_total",
        "Elections started",
        raft.stats().elections_started,
    );
    counter(
        out,
        "leader_changes_total",
        "Leader changes seen",
        m.leader_changes,
    );
    counter(
        out,
        "wal_bytes_total",
        "Entry bytes appended to the WAL",
        log.bytes_written,
    );
    counter(out, "wal_flushes_total", "WAL flushes", log.flushes);
    let skew: u64 = PEER_CLOCKS.lock().values().map(|c| c.skew_rejections).sum();
    counter(
        out,
        "hlc_skew_rejections_total",
        "Peer timestamps too far ahead, not adopted",
        skew,
    );
    crate::metrics::render(out, l);
}

/// Runs one console shell command and returns its output.
pub fn console_command(line: &str) -> String {
    let mut out = String::new();
    let mut words = line.split_whitespace();
    let node = NODE.lock();
    match (words.next(), node.as_ref()) {
        (None, _) => {}
        (Some("help"), _) => {
            out.push_str("commands: status, log [n], balance <account id>, peers, help\n")
        }
        (Some(_), None) => {
            out.push_str("no consensus node runs on this kernel (see the boot log)\n")
        }
        (Some("status"), Some(node)) => {
            let raft = node.raft();
            let (index, head) = node.ledger().chain_head();
            let _ = writeln!(
                out,
                "node {} {} term {} leader {} commit {} applied {} last {}\nchain head {index} {}",
                node.id(),
                role_name(raft.role()),
                raft.term(),
                raft.leader(),
                raft.commit_index(),
                node.applied(),
                raft.last_index(),
                Hex(&head)
            );
        }
        (Some("peers"), Some(node)) => {
            let raft = node.raft();
            let clocks = PEER_CLOCKS.lock();
            for &peer in raft.voters().iter().filter(|&&p| p != node.id()) {
                let clock = clocks.get(&peer).copied().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "peer {peer}: match {} offset {} ms skew rejections {}",
                    raft.progress(peer).map_or(0, |p| p.matched),
                    clock.offset_ms,
                    clock.skew_rejections
                );
            }
        }
        (Some("balance"), Some(node)) => match words.next().map(str::parse::<u128>) {
            Some(Ok(account)) => match node.ledger().balance(account) {
                Some(balance) => {
                    let _ = writeln!(
                        out,
                        "account {account}: {balance} (local, applied index {})",
                        node.applied()
                    );
                }
                None => {
                    let _ = writeln!(out, "account {account}: no such account");
                }
            },
            _ => out.push_str("usage: balance <account id>\n"),
        },
        (Some("log"), Some(node)) => {
            let n = match words.next().map(str::parse::<u64>) {
                None => Ok(10),
                Some(Ok(n)) => Ok(n.min(100)),
                Some(Err(_)) => Err(()),
            };
            match n {
                Err(()) => out.push_str("usage: log [n]\n"),
                Ok(n) => {
                    let raft = node.raft();
                    let last = raft.last_index();
                    let first = last.saturating_sub(n).max(1);
                    for index in first..=last {
                        let _ = writeln!(
                            out,
                            "{index} term {} chain {}",
                            raft.log_term(index).unwrap_or(0),
                            raft.log_chain_hash(index)
                                .as_ref()
                                .map_or(String::from("?"), |h| alloc::format!("{}", Hex(h)))
                        );
                    }
                }
            }
        }
        (Some(other), Some(_)) => {
            let _ = writeln!(out, "unknown command `{other}`; try help");
        }
    }
    out
}
