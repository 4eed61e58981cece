//! The network task: the replication LAN and the client network, driven by
//! smoltcp over the NIC trait (`continuum_net::nic`).
//!
//! Who owns what:
//!
//! * [`port`]: one NIC behind a smoltcp interface, its sockets and its
//!   interrupt. The **LAN** is the first NIC in PCI order (virtio-net or
//!   Intel e1000-class, see `drivers::nic`) when `lan_ip` is configured;
//!   the **client network** is the next one.
//! * [`peers`]: the LAN's traffic — peer authentication (`PeerAuth`),
//!   per-peer sockets, liveness pings and ARP, dispatch of opened
//!   datagrams to the consensus node. Its docs say where the peer boot
//!   epoch comes from ([`Network::claim`] reads it).
//! * [`clients`]: the client UDP server on `client_port`.
//! * [`http`]: the status server on `status_port` (`GET /status`,
//!   `GET /metrics`) and the two pages' renderers.
//! * this file: claiming the ports ([`Network::claim`]), the task's loop
//!   and its wait, and the [`NetworkStatus`] the pages show.
//!
//! The consensus node is built by `main` between [`Network::claim`] and
//! [`Network::spawn`] (it needs to know whether the LAN is authenticated);
//! it has no task of its own. Each turn of the loop polls both ports, then
//! runs the peer traffic, the status server, the client server and the
//! consensus verbs (`run_consensus`: Raft ticks, the Ready loop with its
//! disk writes, then the messages and client replies it produced), and
//! polls again. The task sleeps until a NIC interrupt, smoltcp's
//! `poll_delay`, the next ping, a status connection's deadline or the next
//! Raft tick is due — whichever is first. NICs without a routable interrupt
//! are polled every [`POLL_FALLBACK_MS`] instead (and the console says so).
//!
//! Nothing under `network/` decides anything for the node or writes to the
//! disk: it moves bytes between the NICs and the consensus verbs.

mod clients;
mod http;
mod peers;
mod port;

use crate::arch::x86_64::device_irq::DeviceIrq;
use crate::drivers;
use crate::metrics::Wake;
use crate::netbench::{self, NetBench};
use crate::{executor, time};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use clients::ClientServer;
use continuum_config::{Config, Ipv4Cidr, Mode};
use continuum_net::nic::NicCounters;
use core::future::{poll_fn, Future};
use core::task::Poll;
use core::time::Duration;
use http::StatusServer;
use peers::Peers;
use port::Port;
use spin::Mutex;

/// Poll period for a NIC whose interrupt could not be routed.
pub const POLL_FALLBACK_MS: u64 = 5;

/// What one peer looks like from here.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerStatus {
    pub ip: [u8; 4],
    pub pings_sent: u64,
    pub pongs_received: u64,
    pub last_rtt_us: u64,
    pub last_heard_ms: Option<u64>,
    pub reachable: bool,
}

/// Everything the status page shows about the network.
#[derive(Clone, Debug, Default)]
pub struct NetworkStatus {
    pub lan: Option<(Ipv4Cidr, [u8; 6])>,
    pub client: Option<(Ipv4Cidr, [u8; 6])>,
    pub epoch: u64,
    pub peers: BTreeMap<continuum_config::NodeId, PeerStatus>,
    pub auth: continuum_net::peer_auth::RejectCounters,
    pub lan_nic: NicCounters,
    pub client_nic: NicCounters,
    pub status_requests: u64,
    /// Status connections aborted: request head not complete within
    /// `STATUS_HEAD_DEADLINE_MS`, or the client closed with a partial head.
    pub status_aborted: u64,
    pub client_requests: u64,
    pub client_rejected: u64,
}

static STATUS: Mutex<Option<NetworkStatus>> = Mutex::new(None);

fn count_status(update: impl FnOnce(&mut NetworkStatus)) {
    if let Some(status) = STATUS.lock().as_mut() {
        update(status);
    }
}

/// The claimed ports and the LAN's keys, before the task runs.
pub struct Network {
    node_id: continuum_config::NodeId,
    cluster_id: u64,
    status_port: u16,
    client_port: u16,
    lan: Option<Port>,
    client: Option<Port>,
    peers: Option<Peers>,
}

impl Network {
    /// Claims the NICs (LAN first when `lan_ip` is set, then the client
    /// network), derives the LAN's link keys, and publishes the initial
    /// [`NetworkStatus`]. `has_disk`: the node opened a store at boot, so
    /// the peer epoch comes from the disk (see [`peers`]). Without a usable
    /// NIC, says so on the console and returns `None`.
    pub fn claim(config: &Config, has_disk: bool) -> Option<Network> {
        let mut nics = drivers::claim_nics().into_iter();
        let lan = config.lan_ip.and_then(|cidr| {
            Port::claim(&mut nics, "replication LAN", cidr, None).map(|p| (p, cidr))
        });
        let client = Port::claim(
            &mut nics,
            "client network",
            config.client_ip,
            Some(config.client_gateway),
        )
        .map(|p| (p, config.client_ip));
        if lan.is_none() && client.is_none() {
            log::warn!("net: no usable network interface; the node runs offline");
            return None;
        }

        let epoch = if has_disk {
            crate::disk::boot_wal_generation()
        } else {
            None
        }
        .map_or_else(time::wall_clock_millis, continuum_net::persisted_boot_epoch);
        let bench = (config.mode == Mode::NetBench)
            .then(|| netbench::bench_peer(config))
            .flatten()
            .map(|peer| (peer, NetBench::new()));
        let peers = lan.as_ref().and_then(|_| Peers::new(config, epoch, bench));
        let mut status = NetworkStatus {
            lan: lan.as_ref().map(|((_, mac), cidr)| (*cidr, *mac)),
            client: client.as_ref().map(|((_, mac), cidr)| (*cidr, *mac)),
            epoch,
            ..NetworkStatus::default()
        };
        for peer in config.peers() {
            status.peers.insert(
                peer.id,
                PeerStatus {
                    ip: peer.lan_ip,
                    ..PeerStatus::default()
                },
            );
        }
        *STATUS.lock() = Some(status);
        Some(Network {
            node_id: config.node_id,
            cluster_id: config.cluster_id,
            status_port: config.status_port,
            client_port: config.client_port,
            lan: lan.map(|((port, _), _)| port),
            client: client.map(|((port, _), _)| port),
            peers,
        })
    }

    /// Whether peers can be reached with authentication: a LAN port and
    /// valid keys. The consensus node runs only then.
    pub fn lan_authenticated(&self) -> bool {
        self.peers.is_some()
    }

    /// Starts the network task.
    pub fn spawn(self) {
        let task = NetworkTask {
            node_id: self.node_id,
            cluster_id: self.cluster_id,
            status_port: self.status_port,
            client_port: self.client_port,
            lan: self.lan,
            client: self.client,
            peers: self.peers,
            status: None,
            clients: None,
            next_tick_ms: 0,
        };
        executor::spawn(task.run());
    }
}

struct NetworkTask {
    node_id: continuum_config::NodeId,
    cluster_id: u64,
    status_port: u16,
    client_port: u16,
    lan: Option<Port>,
    client: Option<Port>,
    /// Present with an authenticated LAN (then `lan` is too).
    peers: Option<Peers>,
    /// The status server, once its sockets are added to `client`.
    status: Option<StatusServer>,
    /// The client server, once its socket is bound on `client`.
    clients: Option<ClientServer>,
    /// When the consensus node's next Raft tick is due.
    next_tick_ms: u64,
}

impl NetworkTask {
    async fn run(mut self) {
        if let (Some(lan), Some(peers)) = (self.lan.as_mut(), self.peers.as_mut()) {
            let ids: Vec<continuum_config::NodeId> = STATUS
                .lock()
                .as_ref()
                .map_or(Vec::new(), |s| s.peers.keys().copied().collect());
            peers.bind(lan, ids);
        }
        if let Some(client) = self.client.as_mut() {
            self.status = Some(StatusServer::new(
                client,
                self.status_port,
                self.node_id,
                self.cluster_id,
            ));
            self.clients =
                ClientServer::bind(client, self.client_port, self.node_id, self.cluster_id);
        }
        loop {
            let pass_started = time::monotonic_ns();
            time::discipline_from_rtc();
            for port in [self.lan.as_mut(), self.client.as_mut()]
                .into_iter()
                .flatten()
            {
                port.ack_and_poll();
            }
            if let (Some(lan), Some(peers)) = (self.lan.as_mut(), self.peers.as_mut()) {
                let mut status = STATUS.lock();
                let status = status.as_mut().expect("status is set before the task runs");
                peers.traffic(lan, status);
            }
            if let (Some(client), Some(server)) = (self.client.as_mut(), self.status.as_mut()) {
                server.serve(client);
            }
            if let (Some(client), Some(server)) = (self.client.as_mut(), self.clients.as_mut()) {
                server.serve(client);
            }
            self.run_consensus();
            for port in [self.lan.as_mut(), self.client.as_mut()]
                .into_iter()
                .flatten()
            {
                port.poll();
            }
            self.publish_counters();
            crate::metrics::LOOP_PASS
                .lock()
                .record(crate::metrics::micros_since(pass_started));
            let wake = self.wait().await;
            crate::metrics::WAKES.lock().record(wake);
        }
    }

    /// Sleeps until an interrupt, smoltcp's next timer, the next ping, a
    /// status deadline or the next Raft tick; says which ended the sleep.
    async fn wait(&mut self) -> Wake {
        let now_ms = time::monotonic_ns() / 1_000_000;
        let mut wait_ms = match &self.peers {
            Some(peers) => peers.wait_ms(now_ms),
            None => 60_000,
        };
        if self.next_tick_ms != 0 {
            wait_ms = wait_ms.min(self.next_tick_ms.saturating_sub(now_ms));
        }
        if self.clients.as_ref().is_some_and(ClientServer::backlog) {
            wait_ms = 0;
        }
        if let Some(deadline) = self
            .status
            .as_ref()
            .and_then(StatusServer::next_deadline_ms)
        {
            wait_ms = wait_ms.min(deadline.saturating_sub(now_ms));
        }
        let mut irqs: Vec<&DeviceIrq> = Vec::new();
        for port in [self.lan.as_mut(), self.client.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(delay) = port.iface.poll_delay(port::now(), &port.sockets) {
                wait_ms = wait_ms.min(delay.total_millis());
            }
            match &port.irq {
                Some(irq) => irqs.push(irq),
                None => wait_ms = wait_ms.min(POLL_FALLBACK_MS),
            }
        }
        if wait_ms == 0 {
            return Wake::Immediate;
        }
        let interrupts = irqs.len();
        let mut waits: Vec<core::pin::Pin<alloc::boxed::Box<dyn Future<Output = ()> + Send + '_>>> =
            irqs.into_iter()
                .map(|irq| alloc::boxed::Box::pin(irq.wait()) as _)
                .collect();
        waits.push(alloc::boxed::Box::pin(executor::sleep(
            Duration::from_millis(wait_ms),
        )));
        if first_ready(waits).await < interrupts {
            Wake::Interrupt
        } else {
            Wake::Timer
        }
    }

    /// The consensus verbs: Raft ticks, then the Ready loop, which hands
    /// over messages and client replies as they become sendable; each
    /// batch goes on the wire at once (a poll), not at the end of the pass.
    fn run_consensus(&mut self) {
        if !crate::consensus::running() {
            return;
        }
        let now_ms = time::monotonic_ns() / 1_000_000;
        crate::consensus::tick_until(&mut self.next_tick_ms, now_ms);
        let (lan, peers) = (&mut self.lan, &mut self.peers);
        let (client, clients) = (&mut self.client, &mut self.clients);
        crate::consensus::drive(|outbox, replies| {
            if let (Some(lan), Some(peers)) = (lan.as_mut(), peers.as_mut()) {
                if !outbox.is_empty() {
                    peers.send_envelopes(lan, STATUS.lock().as_ref(), outbox);
                    lan.poll(); // on the wire now, before this Ready applies
                }
            }
            if let (Some(client), Some(server)) = (client.as_mut(), clients.as_mut()) {
                if !replies.is_empty() {
                    server.send_replies(client, replies);
                    client.poll();
                }
            }
        });
        if let (Some(lan), Some(peers), Some(directory)) = (
            self.lan.as_mut(),
            self.peers.as_mut(),
            crate::consensus::peer_directory(),
        ) {
            if let Some(status) = STATUS.lock().as_mut() {
                peers.follow_membership(lan, status, directory);
            }
        }
    }

    fn publish_counters(&mut self) {
        let mut status = STATUS.lock();
        if let Some(status) = status.as_mut() {
            if let Some(lan) = &self.lan {
                status.lan_nic = lan.device.counters;
            }
            if let Some(client) = &self.client {
                status.client_nic = client.device.counters;
            }
        }
    }
}

/// Completes when the first of `futures` does, with its position.
pub async fn first_ready(
    mut futures: Vec<core::pin::Pin<alloc::boxed::Box<dyn Future<Output = ()> + Send + '_>>>,
) -> usize {
    poll_fn(|cx| {
        for (i, future) in futures.iter_mut().enumerate() {
            if future.as_mut().poll(cx).is_ready() {
                return Poll::Ready(i);
            }
        }
        Poll::Pending
    })
    .await
}

/// Completes when either future does.
pub async fn first_of(a: impl Future<Output = ()> + Send, b: impl Future<Output = ()> + Send) {
    first_ready(vec![alloc::boxed::Box::pin(a), alloc::boxed::Box::pin(b)]).await;
}

fn fmt_mac(mac: [u8; 6]) -> String {
    alloc::format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    )
}

fn fmt_cidr(cidr: Ipv4Cidr) -> String {
    let a = cidr.address;
    alloc::format!("{}.{}.{}.{}/{}", a[0], a[1], a[2], a[3], cidr.prefix_len)
}

fn fmt_ip(a: [u8; 4]) -> String {
    alloc::format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}
