//! The consensus node in the kernel: the portable `continuum-node` state
//! machine (Raft over the WAL, the bank, client requests) wired to the
//! network task and the clocks.
//!
//! This module owns no decision. `main` builds the node ([`start`]) from
//! the config and the disk opened at boot, before it starts the network
//! task; the network task then calls four verbs:
//! [`on_peer_payload`] (an authenticated peer datagram), [`on_client`] (a
//! decoded client request), [`tick_until`] (Raft's 10 ms ticks) and
//! [`drive`] (the Ready loop: persist + flush, handing the messages to the
//! network as soon as they may leave, then apply and hand over the client
//! replies). Clocks: every outgoing envelope carries
//! the Lamport clock (`send`) and the HLC; every incoming one advances both
//! (`recv`, `update`). An HLC more than the configured max offset ahead of
//! local physical time is *not* adopted: it is counted per peer as skew and
//! reported on `/status` and `/metrics`.
//!
//! Trace: this module also keeps the node's trace ring (`TRACE`,
//! `continuum_node::trace`). It records each envelope it stamps (sends)
//! and merges (receives) with those stamps, and stamps the node's local
//! events (a Lamport tick, an HLC reading, monotonic µs) as the node
//! reports them through its trace sink. `GET /trace` reads it.
//!
//! The node lives in `NODE`, a lock only ever taken from tasks (never from
//! an interrupt handler) on the one CPU, so it cannot contend. The status
//! pages (`network::http`) and the console shell (`shell`) read it through
//! [`with_node`] and the clock accessors below; they render, this module
//! does not. It does no I/O of its own beyond the disk the node writes
//! through, and never touches a NIC or socket.

use crate::disk::node_disk::NodeDisk;
use crate::disk::DiskStore;
use crate::time::{self, KernelClock, HLC};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use continuum_clock::{HlcTimestamp, LamportClock};
use continuum_config::Config;
use continuum_net::client::{ClientReply, ClientRequest};
use continuum_node::trace::{Local, Stamp, TraceRing};
use continuum_node::{Envelope, Node, NodeConfig, NodeError};
use continuum_raft::NodeId;
use continuum_raft::Role;
use smoltcp::wire::IpEndpoint;
use spin::Mutex;

/// Raft's logical tick.
pub const TICK_MS: u64 = continuum_node::TICK_MS;

pub type KernelNode = Node<NodeDisk, IpEndpoint>;
/// Envelopes to send: (peer id, encoded envelope).
pub type Outbox = Vec<(u64, Vec<u8>)>;
/// Client replies to send: (client address, reply).
pub type Replies = Vec<(IpEndpoint, ClientReply)>;

static NODE: Mutex<Option<KernelNode>> = Mutex::new(None);
static LAMPORT: LamportClock = LamportClock::new();

/// Per-peer clock observations.
#[derive(Clone, Copy, Default)]
pub struct PeerClock {
    /// Remote HLC milliseconds minus local wall milliseconds at receipt
    /// (one-way: includes the network delay).
    pub offset_ms: i64,
    pub skew_rejections: u64,
}

static PEER_CLOCKS: Mutex<BTreeMap<NodeId, PeerClock>> = Mutex::new(BTreeMap::new());
/// The node's trace ring (bounded: `continuum_node::trace::TRACE_EVENTS`).
/// Taken after `NODE` when both are needed, never the other way round.
static TRACE: Mutex<Option<TraceRing>> = Mutex::new(None);
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
    let seed = time::rdtsc() ^ config.node_id;
    let node_config = match NodeConfig::from_config(config, seed) {
        Ok(node_config) => node_config,
        Err(error) => crate::halt_with(format_args!("consensus: {error}; refusing to start")),
    };
    let started = time::monotonic_ns();
    match Node::new(node_config, store) {
        Ok(node) => {
            let raft = node.raft();
            log::info!(
                "consensus: node {} of {} voters, term {}, commit {}, log {}..={}, replaying the committed tail, clean through {} ({} ms to open)",
                node.id(),
                raft.voters().len(),
                raft.term(),
                raft.commit_index(),
                raft.storage().store().first_index(),
                raft.last_index(),
                node.replay_clean_through(),
                (time::monotonic_ns() - started) / 1_000_000
            );
            if raft.voters().is_empty() {
                log::info!(
                    "consensus: joining: no configuration yet; waiting for the leader, not voting until a committed change makes node {} a voter",
                    node.id()
                );
            }
            let mut node = node;
            node.set_stage_clock(|| time::monotonic_ns() / 1_000);
            *TRACE.lock() = Some(TraceRing::new(node.id()));
            node.set_trace_sink(trace_local);
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

fn local_us() -> u64 {
    time::monotonic_ns() / 1_000
}

/// The node's trace sink: stamps a local event (a Lamport tick, an HLC
/// reading) and records it.
fn trace_local(_node: u64, event: Local) {
    if let Some(ring) = TRACE.lock().as_mut() {
        let at = Stamp {
            lamport: LAMPORT.tick(),
            hlc: hlc_packed(),
            local_us: local_us(),
        };
        ring.local(event, at);
    }
}

/// Runs `f` on the trace ring (`None` when no node runs here).
pub fn with_trace<R>(f: impl FnOnce(Option<&TraceRing>) -> R) -> R {
    f(TRACE.lock().as_ref())
}

/// Whether a node runs here.
pub fn running() -> bool {
    NODE.lock().is_some()
}

/// Handles the payload of an authenticated `PeerBody::Node` datagram.
pub fn on_peer_payload(from: u64, payload: &[u8]) {
    let envelope = match Envelope::decode(payload) {
        Ok(envelope) => envelope,
        Err(error) => {
            *DECODE_ERRORS.lock() += 1;
            log::debug!("consensus: undecodable envelope from {from}: {error}");
            return;
        }
    };
    let lamport = LAMPORT
        .recv(envelope.lamport)
        .unwrap_or_else(|_| LAMPORT.tick());
    let remote = HlcTimestamp::from_packed(envelope.hlc);
    let merged = HLC.update(remote, &KernelClock);
    let skewed = merged.is_err();
    if let Some(ring) = TRACE.lock().as_mut() {
        // A refused remote stamp leaves the HLC behind it: the trace
        // shows that edge as a violation rather than hiding it.
        let hlc = merged.map_or_else(|_| hlc_packed(), |t| t.packed());
        let at = Stamp {
            lamport,
            hlc,
            local_us: local_us(),
        };
        ring.received(from, &envelope.body, (envelope.lamport, envelope.hlc), at);
    }
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
/// soon as they may leave (a leader's appends before its own write, the
/// rest once the Ready is durable, all before its entries apply) and
/// client replies as soon as their entries applied; it should transmit
/// them at once. Halts on a persistence failure or divergence.
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
        let mut trace = TRACE.lock();
        let envelopes = outbox
            .drain(..)
            .map(|(to, body)| {
                // Each envelope is its own send event: its own Lamport
                // tick and HLC reading, so program order increases both.
                let at = Stamp {
                    lamport: LAMPORT.send(),
                    hlc: hlc_packed(),
                    local_us: local_us(),
                };
                if let Some(ring) = trace.as_mut() {
                    ring.sent(to, &body, at);
                }
                let mut bytes = Vec::new();
                Envelope {
                    lamport: at.lamport,
                    hlc: at.hlc,
                    body,
                }
                .encode(&mut bytes);
                (to, bytes)
            })
            .collect();
        drop(trace);
        send(envelopes, core::mem::take(replies));
    });
    if let Err(error) = result {
        fatal(error)
    }
    record_drive(node, &before);
    crate::metrics::record_stages(node.take_stage_samples().0);
    report_snapshots(node);
    report_membership(node);
    report_role(node);
}

/// Prints the membership changes this node applied (and its own removal)
/// on the console.
fn report_membership(node: &mut KernelNode) {
    for event in node.take_membership_events() {
        if event.removed_self {
            log::warn!("consensus: {event}; this node serves nothing more until stopped");
        } else {
            log::info!("consensus: {event}");
        }
    }
}

/// The members whose peer messages are accepted, with their addresses and
/// keys (`Node::peer_directory`: it follows the log); `None` before the
/// node runs.
pub fn peer_directory() -> Option<Vec<(u64, continuum_node::membership::Member)>> {
    NODE.lock().as_ref().map(|node| node.peer_directory())
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

/// What the console last said about this node's role.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RoleSeen {
    role: Option<Role>,
    term: u64,
    leader: NodeId,
}

/// The last role line printed, so each change is logged once.
static SEEN_ROLE: Mutex<RoleSeen> = Mutex::new(RoleSeen {
    role: None,
    term: 0,
    leader: 0,
});

fn report_role(node: &KernelNode) {
    let raft = node.raft();
    let now = RoleSeen {
        role: Some(raft.role()),
        term: raft.term(),
        leader: raft.leader(),
    };
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

/// The role as `/status` and the shell spell it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        Role::PreCandidate => "pre-candidate",
        Role::Follower => "follower",
    }
}

/// Runs `f` on the node (`None` when none runs here), under its lock: the
/// one way the status pages and the shell read it. `f` must not call back
/// into this module's verbs (the lock is not reentrant).
pub fn with_node<R>(f: impl FnOnce(Option<&KernelNode>) -> R) -> R {
    f(NODE.lock().as_ref())
}

/// What this node has seen of `peer`'s clock (zeros before its first
/// envelope).
pub fn peer_clock(peer: u64) -> PeerClock {
    PEER_CLOCKS.lock().get(&peer).copied().unwrap_or_default()
}

/// Peer timestamps too far ahead to adopt, summed over the peers.
pub fn hlc_skew_rejections() -> u64 {
    PEER_CLOCKS.lock().values().map(|c| c.skew_rejections).sum()
}

/// The Lamport clock's current value.
pub fn lamport() -> u64 {
    LAMPORT.current()
}

/// Peer envelopes that opened (authenticated) but did not decode.
pub fn envelope_decode_errors() -> u64 {
    *DECODE_ERRORS.lock()
}
