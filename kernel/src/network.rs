//! The network task: the replication LAN and the client network, driven by
//! smoltcp over the NIC trait (`continuum_net::nic`).
//!
//! * **LAN** (first NIC in PCI order — virtio-net or Intel e1000-class,
//!   see `drivers::nic` — when `lan_ip` is configured): UDP on
//!   `peer_port`. Every datagram is sealed and opened by
//!   `continuum_net::PeerAuth` (HMAC-SHA256 with pairwise keys derived from
//!   the members' Ed25519 keys, per-sender sequence numbers in a replay
//!   window, the sender's boot epoch and the receiver's as the sender
//!   knows it). Anything that fails to open is dropped and counted by
//!   cause. A ping is the one message accepted when it names another boot
//!   of this node: the first ping round (at boot, then every
//!   [`PING_INTERVAL_MS`]) teaches both sides each other's epoch, after
//!   which Raft gets through; until then Raft sealed for an earlier boot
//!   is refused (`stale_receiver_epoch`), which is what stops a datagram
//!   recorded before a restart from being accepted after it. The traffic is the consensus node's envelopes
//!   (`PeerBody::Raft`, see [`crate::consensus`]) and a liveness ping to
//!   every peer each [`PING_INTERVAL_MS`], whose round trips `/status`
//!   reports per peer. With each ping to a peer not (or no longer)
//!   reachable goes our own ARP request for it: smoltcp rate-limits address
//!   resolution per interface, not per address, so one peer that never
//!   answers (down, partitioned) would otherwise keep every later peer in
//!   socket order unresolved for good (`continuum_net::nic::arp_request`).
//! * **Client network** (the next NIC): TCP `status_port` serves
//!   `GET /status` as JSON and `GET /metrics` (request heads parsed by
//!   `continuum_net::http`: junk `400`, heads over 2 KiB `431`; a
//!   connection must send its head within [`STATUS_HEAD_DEADLINE_MS`] and
//!   is aborted [`STATUS_EXCHANGE_DEADLINE_MS`] after it opened, so slow or
//!   half-closed clients cannot hold the [`STATUS_SOCKETS`]); UDP
//!   `client_port` takes client requests in the `continuum_net::client`
//!   format: with a consensus node running, every well-formed request
//!   goes to it; without one (no disk, no authenticated LAN) it is
//!   answered `Unavailable`. Malformed requests and requests for another
//!   cluster are counted and dropped.
//!
//! Each turn also runs the consensus node (`run_consensus`: Raft ticks,
//! the Ready loop with its disk writes, then the messages and client
//! replies it produced); the node has no task of its own. The task sleeps
//! until a NIC interrupt, smoltcp's `poll_delay`, the next ping or the
//! next Raft tick is due — whichever is first. NICs without a routable interrupt
//! are polled every [`POLL_FALLBACK_MS`] instead (and the console says so).
//!
//! The peer boot epoch comes from the disk when the node has one: the WAL
//! generation that opening the store bumped and flushed
//! (`storage::boot_wal_generation`, `continuum_net::persisted_boot_epoch`),
//! so it is durable before the first sealed datagram and grows across
//! reboots even if the wall clock steps backwards (with `unsafe_no_flush`
//! the bump may be lost: benchmarks only). Without a disk (ping-only
//! modes) it is the wall clock in milliseconds at boot, which grows only as
//! long as the RTC does not step back by more than a reboot takes.

use crate::arch::x86_64::device_irq::DeviceIrq;
use crate::drivers::{self, nic::AnyNic};
use crate::metrics::Wake;
use crate::netbench::NetBench;
use crate::{executor, time};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use continuum_config::{Config, Ipv4Cidr, Mode};
use continuum_net::client::{ClientReply, ClientRequest, ReplyBody, ReplyError};
use continuum_net::http::{self, Head, Resource};
use continuum_net::nic::{Nic, NicCounters, NicDevice};
use continuum_net::peer::{AuthScheme, PeerBody};
use continuum_net::peer_auth::{PeerAuth, PeerConfig};
use core::fmt::Write;
use core::future::{poll_fn, Future};
use core::task::Poll;
use core::time::Duration;
use ed25519_dalek::{SigningKey, VerifyingKey};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use spin::Mutex;

/// How often each peer is pinged.
pub const PING_INTERVAL_MS: u64 = 1_000;
/// A peer that has not answered for this long is reported unreachable.
const UNREACHABLE_AFTER_MS: u64 = 3_500;
/// Poll period for a NIC whose interrupt could not be routed.
pub const POLL_FALLBACK_MS: u64 = 5;
/// UDP socket buffers: datagrams in flight per direction, and their bytes.
const UDP_PACKETS: usize = 64;
const UDP_BYTES: usize = 64 * 1024;
/// Local port of the socket that sends to peer `id`: `PEER_SOCKET_BASE + id`.
/// Each peer gets its own socket because smoltcp keeps a datagram whose
/// next hop is not yet resolved (ARP) at the head of its socket's queue: one
/// dead peer sharing a socket would silence the node towards every peer.
const PEER_SOCKET_BASE: u16 = 49_152;
/// Listening status sockets (see `NetworkTask::status_sockets`).
const STATUS_SOCKETS: usize = 8;
/// A status connection must deliver its whole request head within this
/// long after the handshake, or it is aborted (RST): a slow or silent
/// client cannot hold one of the [`STATUS_SOCKETS`].
pub const STATUS_HEAD_DEADLINE_MS: u64 = 2_000;
/// A status connection is aborted this long after the handshake whatever
/// its state (answer unread, FIN never acknowledged).
pub const STATUS_EXCHANGE_DEADLINE_MS: u64 = 5_000;

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
    pub peers: BTreeMap<u8, PeerStatus>,
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

struct Port {
    device: NicDevice<AnyNic>,
    iface: Interface,
    sockets: SocketSet<'static>,
    irq: Option<DeviceIrq>,
}

fn now() -> Instant {
    Instant::from_micros((time::monotonic_ns() / 1_000) as i64)
}

fn ipv4(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

impl Port {
    fn new(nic: AnyNic, irq: Option<DeviceIrq>, cidr: Ipv4Cidr, gateway: Option<[u8; 4]>) -> Port {
        let mut device = NicDevice::new(nic);
        let mut config =
            IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(device.nic.mac())));
        config.random_seed = time::rdtsc();
        let mut iface = Interface::new(config, &mut device, now());
        iface.update_ip_addrs(|addrs| {
            let address = IpAddress::Ipv4(ipv4(cidr.address));
            // One address per interface: the push cannot overflow.
            let _ = addrs.push(IpCidr::new(address, cidr.prefix_len));
        });
        if let Some(gateway) = gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(ipv4(gateway));
        }
        Port {
            device,
            iface,
            sockets: SocketSet::new(Vec::new()),
            irq,
        }
    }

    fn poll(&mut self) {
        self.iface.poll(now(), &mut self.device, &mut self.sockets);
    }
}

/// Claims the NICs and starts the network task. Without a NIC, or with a
/// LAN configured but no key, says why on the console and returns.
/// For the benchmarks: the peer to measure against, if this node is the
/// lowest id (the one that measures).
fn bench_peer(config: &Config) -> Option<u8> {
    let lowest_peer = config.peers().map(|p| p.id).min()?;
    (config.node_id < lowest_peer).then_some(lowest_peer)
}

pub fn start(config: &Config, store: Option<crate::storage::DiskStore>) {
    let mut nics = drivers::claim_nics().into_iter();
    if config.mode == Mode::NetBenchRaw {
        let Some(device) = nics.next() else {
            crate::halt_with(format_args!("net-bench-raw: no NIC"));
        };
        match device.start() {
            Ok((nic, irq)) => {
                executor::spawn(crate::netbench::raw(nic, irq, bench_peer(config).is_some()))
            }
            Err(error) => crate::halt_with(format_args!("net-bench-raw: NIC failed: {error}")),
        }
        return;
    }
    let mut take_port = |role: &str, cidr: Ipv4Cidr, gateway: Option<[u8; 4]>| {
        let device = nics.next()?;
        let (b, d, f) = device.location;
        let model = device.model();
        match device.start() {
            Ok((nic, irq)) => {
                let mac = nic.mac();
                log::info!(
                    "net: {role} on {b:02x}:{d:02x}.{f} ({model}), mac {}, {}, {}",
                    fmt_mac(mac),
                    fmt_cidr(cidr),
                    irq.as_ref()
                        .map_or(String::from("polled"), |i| alloc::format!(
                            "irq gsi {}",
                            i.gsi()
                        ))
                );
                Some((Port::new(nic, irq, cidr, gateway), mac))
            }
            Err(error) => {
                log::error!("net: {role} NIC {b:02x}:{d:02x}.{f} failed to start: {error}");
                None
            }
        }
    };
    let lan = config
        .lan_ip
        .and_then(|cidr| take_port("replication LAN", cidr, None).map(|p| (p, cidr)));
    let client = take_port(
        "client network",
        config.client_ip,
        Some(config.client_gateway),
    )
    .map(|p| (p, config.client_ip));
    if lan.is_none() && client.is_none() {
        log::warn!("net: no usable network interface; the node runs offline");
        return;
    }

    let epoch = store
        .as_ref()
        .and(crate::storage::boot_wal_generation())
        .map_or_else(time::wall_clock_millis, continuum_net::persisted_boot_epoch);
    let peers = lan.as_ref().and_then(|_| peer_setup(config, epoch));
    if config.mode == Mode::Node {
        crate::consensus::start(config, store, peers.is_some());
    }
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
    let task = NetworkTask {
        node_id: config.node_id,
        cluster_id: config.cluster_id,
        peer_port: config.peer_port,
        status_port: config.status_port,
        lan: lan.map(|((port, _), _)| port),
        client: client.map(|((port, _), _)| port),
        auth: peers,
        peer_socket: None,
        peer_sockets: BTreeMap::new(),
        status_sockets: Vec::new(),
        status_conns: Vec::new(),
        client_socket: None,
        client_port: config.client_port,
        client_backlog: false,
        next_ping_ms: 0,
        next_tick_ms: 0,
        nonce: 0,
        outstanding: BTreeMap::new(),
        datagram: Vec::new(),
        bench: (config.mode == Mode::NetBench)
            .then(|| bench_peer(config))
            .flatten()
            .map(|peer| (peer, NetBench::new())),
    };
    executor::spawn(task.run());
}

fn peer_setup(config: &Config, epoch: u64) -> Option<PeerAuth> {
    let Some(secret) = config.secret_key else {
        log::error!(
            "net: lan_ip is set but secret_key is not; peers cannot be authenticated, LAN off"
        );
        return None;
    };
    let signing_key = SigningKey::from_bytes(&secret);
    let mut members = vec![(config.node_id as u64, signing_key.verifying_key())];
    for peer in config.peers() {
        match VerifyingKey::from_bytes(&peer.public_key) {
            Ok(key) => members.push((peer.id as u64, key)),
            Err(_) => {
                log::error!("net: peer {} has an invalid public key; LAN off", peer.id);
                return None;
            }
        }
    }
    let peer_config = PeerConfig {
        cluster_id: config.cluster_id,
        me: config.node_id as u64,
        epoch,
        scheme: AuthScheme::HmacSha256,
        signing_key: &signing_key,
        members: &members,
    };
    match PeerAuth::new(peer_config) {
        Ok(auth) => {
            log::info!(
                "net: {} peers, HMAC-SHA256 link keys derived, epoch {epoch}",
                members.len() - 1
            );
            Some(auth)
        }
        Err(error) => {
            log::error!("net: peer keys rejected: {error:?}; LAN off");
            None
        }
    }
}

struct NetworkTask {
    node_id: u8,
    cluster_id: u64,
    peer_port: u16,
    status_port: u16,
    lan: Option<Port>,
    client: Option<Port>,
    auth: Option<PeerAuth>,
    peer_socket: Option<SocketHandle>,
    /// Sending (and reply-receiving) socket per peer.
    peer_sockets: BTreeMap<u8, SocketHandle>,
    /// Listening HTTP sockets: a closed connection sits in TIME-WAIT for
    /// smoltcp's 10 s, so one socket alone would refuse status requests
    /// for 10 s after each answer.
    status_sockets: Vec<SocketHandle>,
    /// Per status socket: when its current connection left LISTEN, and
    /// whether it was answered.
    status_conns: Vec<StatusConn>,
    client_socket: Option<SocketHandle>,
    client_port: u16,
    /// Client datagrams were left in the socket because the node's
    /// admission budget was spent: the next pass starts without sleeping.
    client_backlog: bool,
    next_ping_ms: u64,
    /// When the consensus node's next Raft tick is due.
    next_tick_ms: u64,
    nonce: u64,
    /// Ping nonce -> (peer, sent at µs).
    outstanding: BTreeMap<u64, (u8, u64)>,
    datagram: Vec<u8>,
    /// `mode = net-bench` on the lowest node id: (peer, driver).
    bench: Option<(u8, NetBench)>,
}

/// Ping nonces with this bit set belong to the benchmark.
const BENCH_NONCE: u64 = 1 << 63;

impl NetworkTask {
    async fn run(mut self) {
        if let (Some(lan), Some(_)) = (self.lan.as_mut(), self.auth.as_ref()) {
            let peers: Vec<u8> = STATUS
                .lock()
                .as_ref()
                .map_or(Vec::new(), |s| s.peers.keys().copied().collect());
            for (id, port) in core::iter::once((0, self.peer_port)).chain(
                peers
                    .into_iter()
                    .map(|id| (id, PEER_SOCKET_BASE + id as u16)),
            ) {
                let rx = udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                    vec![0; UDP_BYTES],
                );
                let tx = udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                    vec![0; UDP_BYTES],
                );
                let mut socket = udp::Socket::new(rx, tx);
                if let Err(error) = socket.bind(port) {
                    log::error!("net: cannot bind UDP port {port}: {error}");
                    continue;
                }
                let handle = lan.sockets.add(socket);
                if id == 0 {
                    self.peer_socket = Some(handle);
                } else {
                    self.peer_sockets.insert(id, handle);
                }
            }
        }
        if let Some(client) = self.client.as_mut() {
            for _ in 0..STATUS_SOCKETS {
                let socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; 4096]),
                    tcp::SocketBuffer::new(vec![0; 16 * 1024]),
                );
                self.status_sockets.push(client.sockets.add(socket));
                self.status_conns.push(StatusConn::default());
            }
            let rx = udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            );
            let tx = udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BYTES],
            );
            let mut socket = udp::Socket::new(rx, tx);
            match socket.bind(self.client_port) {
                Ok(()) => self.client_socket = Some(client.sockets.add(socket)),
                Err(error) => log::error!(
                    "net: cannot bind client UDP port {}: {error}",
                    self.client_port
                ),
            }
        }
        loop {
            let pass_started = time::monotonic_ns();
            time::discipline_from_rtc();
            for port in [self.lan.as_mut(), self.client.as_mut()]
                .into_iter()
                .flatten()
            {
                port.device.nic.ack_interrupt();
                port.poll();
            }
            self.peer_traffic();
            self.serve_status();
            self.serve_clients();
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

    /// Sleeps until an interrupt, smoltcp's next timer, or the next ping;
    /// says which ended the sleep.
    async fn wait(&mut self) -> Wake {
        let now_ms = time::monotonic_ns() / 1_000_000;
        let mut wait_ms = if self.auth.is_some() {
            self.next_ping_ms.saturating_sub(now_ms)
        } else {
            60_000
        };
        if self.bench.is_some() {
            wait_ms = wait_ms.min(10); // loss timeouts and the hand-off between phases
        }
        if self.next_tick_ms != 0 {
            wait_ms = wait_ms.min(self.next_tick_ms.saturating_sub(now_ms));
        }
        if self.client_backlog {
            wait_ms = 0;
        }
        for conn in &self.status_conns {
            if let Some(deadline) = conn.deadline_ms() {
                wait_ms = wait_ms.min(deadline.saturating_sub(now_ms));
            }
        }
        let mut irqs: Vec<&DeviceIrq> = Vec::new();
        for port in [self.lan.as_mut(), self.client.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(delay) = port.iface.poll_delay(now(), &port.sockets) {
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

    fn peer_traffic(&mut self) {
        let (Some(lan), Some(auth), Some(handle)) =
            (self.lan.as_mut(), self.auth.as_mut(), self.peer_socket)
        else {
            return;
        };
        let mut status = STATUS.lock();
        let status = status.as_mut().expect("status is set before the task runs");
        let now_us = time::monotonic_ns() / 1_000;
        let now_ms = now_us / 1_000;

        // Receive on the well-known port and on every per-peer socket (where
        // pongs come back): open, then answer pings and match pongs.
        let mut replies: Vec<(u64, IpEndpoint, u64)> = Vec::new();
        for socket_handle in core::iter::once(handle).chain(self.peer_sockets.values().copied()) {
            let socket = lan.sockets.get_mut::<udp::Socket>(socket_handle);
            while let Ok((datagram, meta)) = socket.recv() {
                match auth.open(datagram) {
                    Ok(message) => match message.body {
                        PeerBody::Ping { nonce } => {
                            replies.push((message.from, meta.endpoint, nonce))
                        }
                        PeerBody::Pong { nonce } if nonce & BENCH_NONCE != 0 => {
                            if let Some((_, bench)) = self.bench.as_mut() {
                                bench.on_reply(nonce & !BENCH_NONCE, now_us);
                            }
                        }
                        PeerBody::Pong { nonce } => {
                            let Some((peer, sent_us)) = self.outstanding.remove(&nonce) else {
                                continue;
                            };
                            let Some(p) = status
                                .peers
                                .get_mut(&peer)
                                .filter(|_| peer as u64 == message.from)
                            else {
                                continue;
                            };
                            p.pongs_received += 1;
                            p.last_rtt_us = now_us - sent_us;
                            p.last_heard_ms = Some(now_ms);
                            if !p.reachable {
                                p.reachable = true;
                                log::info!("net: peer {peer} reachable, rtt {} us", p.last_rtt_us);
                            }
                        }
                        PeerBody::Raft(payload) => {
                            crate::consensus::on_peer_payload(message.from, payload)
                        }
                    },
                    Err(reject) => {
                        log::debug!("net: dropped a datagram from {}: {reject:?}", meta.endpoint)
                    }
                }
            }
        }
        for (to, endpoint, nonce) in replies {
            let Some(&socket_handle) = u8::try_from(to)
                .ok()
                .and_then(|id| self.peer_sockets.get(&id))
            else {
                continue;
            };
            if auth
                .seal(to, &PeerBody::Pong { nonce }, &mut self.datagram)
                .is_ok()
            {
                let _ = lan
                    .sockets
                    .get_mut::<udp::Socket>(socket_handle)
                    .send_slice(&self.datagram, endpoint);
            }
        }

        // The benchmark runs once its peer is reachable.
        if let Some((peer, bench)) = self.bench.as_mut() {
            if status.peers.get(peer).is_some_and(|p| p.reachable) {
                if bench.done() {
                    if let Some((_, bench)) = self.bench.take() {
                        bench.finish("authenticated peer messages");
                    }
                    return;
                }
                if let Some(&socket_handle) = self.peer_sockets.get(peer) {
                    let endpoint = IpEndpoint::new(
                        IpAddress::Ipv4(ipv4(status.peers[peer].ip)),
                        self.peer_port,
                    );
                    for seq in bench.due(now_us) {
                        if auth
                            .seal(
                                *peer as u64,
                                &PeerBody::Ping {
                                    nonce: seq | BENCH_NONCE,
                                },
                                &mut self.datagram,
                            )
                            .is_ok()
                        {
                            let _ = lan
                                .sockets
                                .get_mut::<udp::Socket>(socket_handle)
                                .send_slice(&self.datagram, endpoint);
                        }
                    }
                }
            }
        }

        // Ping every peer on schedule; notice peers that went quiet.
        if now_ms >= self.next_ping_ms {
            self.next_ping_ms = now_ms + PING_INTERVAL_MS;
            // Unanswered pings older than the unreachable horizon are forgotten.
            self.outstanding
                .retain(|_, (_, sent)| now_us - *sent < UNREACHABLE_AFTER_MS * 1_000);
            let lan_address = status.lan.map(|(cidr, mac)| (cidr.address, mac));
            for (&id, peer) in status.peers.iter_mut() {
                if let (false, Some((ip, mac))) = (peer.reachable, lan_address) {
                    resolve(&mut lan.device, mac, ip, peer.ip);
                }
                self.nonce += 1;
                let Some(&socket_handle) = self.peer_sockets.get(&id) else {
                    continue;
                };
                if auth
                    .seal(
                        id as u64,
                        &PeerBody::Ping { nonce: self.nonce },
                        &mut self.datagram,
                    )
                    .is_err()
                {
                    continue;
                }
                let endpoint = IpEndpoint::new(IpAddress::Ipv4(ipv4(peer.ip)), self.peer_port);
                let socket = lan.sockets.get_mut::<udp::Socket>(socket_handle);
                if socket.send_slice(&self.datagram, endpoint).is_ok() {
                    peer.pings_sent += 1;
                    self.outstanding.insert(self.nonce, (id, now_us));
                }
                let silent = peer
                    .last_heard_ms
                    .is_none_or(|t| now_ms - t > UNREACHABLE_AFTER_MS);
                if peer.reachable && silent {
                    peer.reachable = false;
                    log::warn!(
                        "net: peer {id} unreachable (no answer for {UNREACHABLE_AFTER_MS} ms)"
                    );
                }
            }
        }
        status.auth = auth.counters();
    }

    /// Raft ticks, the Ready loop (persist + flush first), then the
    /// messages and client replies it produced.
    fn run_consensus(&mut self) {
        if !crate::consensus::running() {
            return;
        }
        let now_ms = time::monotonic_ns() / 1_000_000;
        crate::consensus::tick_until(&mut self.next_tick_ms, now_ms);
        let (lan, client) = (&mut self.lan, &mut self.client);
        let (auth, peer_sockets, datagram) =
            (&mut self.auth, &self.peer_sockets, &mut self.datagram);
        let (client_socket, peer_port) = (self.client_socket, self.peer_port);
        crate::consensus::drive(|outbox, replies| {
            if let (Some(lan), Some(auth)) = (lan.as_mut(), auth.as_mut()) {
                if !outbox.is_empty() {
                    send_to_peers(lan, auth, peer_sockets, peer_port, datagram, outbox);
                    lan.poll(); // on the wire now, before this Ready applies
                }
            }
            if let (Some(client), Some(handle)) = (client.as_mut(), client_socket) {
                if !replies.is_empty() {
                    let socket = client.sockets.get_mut::<udp::Socket>(handle);
                    for (endpoint, reply) in replies {
                        if let Ok(bytes) = reply.encode() {
                            let _ = socket.send_slice(&bytes, endpoint);
                        }
                    }
                    client.poll();
                }
            }
        });
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

    fn serve_clients(&mut self) {
        let (Some(client), Some(handle)) = (self.client.as_mut(), self.client_socket) else {
            return;
        };
        let socket = client.sockets.get_mut::<udp::Socket>(handle);
        let mut answered = 0;
        let mut rejected = 0;
        let running = crate::consensus::running();
        self.client_backlog = false;
        while socket.can_recv() {
            // Signature checks are budgeted per pass (~526 µs each under
            // TCG): the rest waits in the socket, bounded by its buffer.
            if running && !crate::consensus::can_admit() {
                self.client_backlog = true;
                break;
            }
            let Ok((datagram, meta)) = socket.recv() else {
                break;
            };
            let request = match ClientRequest::decode(datagram) {
                Ok(request) if request.cluster_id == self.cluster_id => request,
                Ok(_) | Err(_) => {
                    rejected += 1;
                    continue;
                }
            };
            if running {
                crate::consensus::on_client(meta.endpoint, request);
                answered += 1;
                continue;
            }
            let reply = ClientReply {
                cluster_id: self.cluster_id,
                node: self.node_id as u64,
                request_id: request.request_id,
                body: ReplyBody::Error(ReplyError::Unavailable),
            };
            if let Ok(bytes) = reply.encode() {
                let _ = socket.send_slice(&bytes, meta.endpoint);
                answered += 1;
            }
        }
        if answered + rejected > 0 {
            if let Some(status) = STATUS.lock().as_mut() {
                status.client_requests += answered;
                status.client_rejected += rejected;
            }
        }
    }

    fn serve_status(&mut self) {
        let now_ms = time::monotonic_ns() / 1_000_000;
        for i in 0..self.status_sockets.len() {
            self.serve_status_socket(i, now_ms);
        }
    }

    /// One status connection: parse the head (`continuum_net::http`),
    /// answer once, and abort whatever outlives its deadline or can no
    /// longer complete a request (the peer closed with a partial head).
    fn serve_status_socket(&mut self, i: usize, now_ms: u64) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let handle = self.status_sockets[i];
        let conn = &mut self.status_conns[i];
        let socket = client.sockets.get_mut::<tcp::Socket>(handle);
        if !socket.is_open() {
            *conn = StatusConn::default();
            let _ = socket.listen(self.status_port);
            return;
        }
        if socket.state() == tcp::State::Listen {
            // Also after a handshake the client reset: a fresh connection.
            *conn = StatusConn::default();
            return;
        }
        let started = *conn.started_ms.get_or_insert(now_ms);
        let age_ms = now_ms.saturating_sub(started);
        if conn.answered {
            if age_ms >= STATUS_EXCHANGE_DEADLINE_MS {
                socket.abort();
            }
            return;
        }
        let mut request = [0u8; http::MAX_HEAD_BYTES];
        let len = socket.peek_slice(&mut request).unwrap_or(0);
        let head = http::parse_head(&request[..len]);
        if head == Head::Incomplete {
            // The peer closed (CLOSE-WAIT) or the deadline passed: the head
            // can never complete in time. Abort even with unread bytes. (A
            // socket still in the handshake cannot receive yet: only the
            // deadline applies to it.)
            let handshaking = socket.state() == tcp::State::SynReceived;
            let peer_closed =
                socket.state() == tcp::State::CloseWait || (!handshaking && !socket.may_recv());
            if peer_closed || age_ms >= STATUS_HEAD_DEADLINE_MS {
                socket.abort();
                count_status(|s| s.status_aborted += 1);
            }
            return;
        }
        let mut consumed = [0u8; http::MAX_HEAD_BYTES];
        let _ = socket.recv_slice(&mut consumed[..len]);
        let mut content_type = "application/json";
        let (code, body) = match head {
            Head::Complete(head) => match http::route(&head) {
                Ok(Resource::Status) => ("200 OK", status_json(self.node_id, self.cluster_id)),
                Ok(Resource::Metrics) => {
                    content_type = "text/plain; version=0.0.4";
                    let mut text = String::new();
                    crate::consensus::metrics_text(&mut text, self.node_id);
                    ("200 OK", text)
                }
                Err(error) => (
                    error.status(),
                    String::from("{\"error\":\"try GET /status or GET /metrics\"}"),
                ),
            },
            Head::Refused(error) => (error.status(), alloc::format!("{{\"error\":\"{error}\"}}")),
            Head::Incomplete => unreachable!("handled above"),
        };
        let mut response = String::new();
        let _ = write!(
            response,
            "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.send_slice(response.as_bytes());
        socket.close();
        conn.answered = true;
        count_status(|s| s.status_requests += 1);
    }
}

/// Sends our own ARP request for `target` (see the module docs: smoltcp
/// alone would starve a peer behind one that never answers). A full
/// transmit queue skips it; the next ping round asks again.
/// Seals each envelope for its peer and queues it on that peer's socket.
/// A full socket drops the message; Raft retransmits.
fn send_to_peers(
    lan: &mut Port,
    auth: &mut PeerAuth,
    peer_sockets: &BTreeMap<u8, SocketHandle>,
    peer_port: u16,
    datagram: &mut Vec<u8>,
    outbox: crate::consensus::Outbox,
) {
    let status = STATUS.lock();
    let Some(status) = status.as_ref() else {
        return;
    };
    for (to, payload) in outbox {
        let Ok(peer) = u8::try_from(to) else {
            continue;
        };
        let (Some(&handle), Some(p)) = (peer_sockets.get(&peer), status.peers.get(&peer)) else {
            continue;
        };
        if auth.seal(to, &PeerBody::Raft(&payload), datagram).is_ok() {
            let endpoint = IpEndpoint::new(IpAddress::Ipv4(ipv4(p.ip)), peer_port);
            let _ = lan
                .sockets
                .get_mut::<udp::Socket>(handle)
                .send_slice(datagram, endpoint);
        }
    }
}

fn resolve(device: &mut NicDevice<AnyNic>, mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) {
    use smoltcp::phy::{Device, TxToken};
    let frame = continuum_net::nic::arp_request(mac, ip, target);
    if let Some(token) = device.transmit(now()) {
        token.consume(frame.len(), |buffer| buffer.copy_from_slice(&frame));
    }
}

/// One status connection's clock.
#[derive(Clone, Copy, Default)]
struct StatusConn {
    /// When the connection left LISTEN (first seen by the task).
    started_ms: Option<u64>,
    answered: bool,
}

impl StatusConn {
    /// When the task must look at this connection again.
    fn deadline_ms(&self) -> Option<u64> {
        let started = self.started_ms?;
        Some(if self.answered {
            started + STATUS_EXCHANGE_DEADLINE_MS
        } else {
            started + STATUS_HEAD_DEADLINE_MS
        })
    }
}

fn count_status(update: impl FnOnce(&mut NetworkStatus)) {
    if let Some(status) = STATUS.lock().as_mut() {
        update(status);
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

/// The `/status` document. Hand-written JSON: every value is a number, a
/// boolean, or a string we formatted ourselves (no escaping needed).
fn status_json(node_id: u8, cluster_id: u64) -> String {
    let status = STATUS.lock().clone().unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"node_id\":{node_id},\"cluster_id\":{cluster_id},\"uptime_ms\":{},\"hlc\":{},\"epoch\":{},",
        time::monotonic_ns() / 1_000_000,
        time::hlc_now().map_or(0, |t| t.packed()),
        status.epoch
    );
    let (heap_used, heap_free) = crate::memory::heap_usage();
    let _ = write!(
        out,
        "\"memory\":{{\"heap_used\":{heap_used},\"heap_free\":{heap_free}}},"
    );
    let (rtc_steps, rtc_error_ms) = time::rtc_discipline();
    let _ = write!(
        out,
        "\"clock\":{{\"rtc_steps\":{rtc_steps},\"rtc_last_error_ms\":{rtc_error_ms}}},"
    );
    for (name, iface, nic) in [
        ("lan", status.lan, status.lan_nic),
        ("client", status.client, status.client_nic),
    ] {
        match iface {
            Some((cidr, mac)) => {
                let _ = write!(
                    out,
                    "\"{name}\":{{\"ip\":\"{}\",\"mac\":\"{}\",\"rx_frames\":{},\"tx_frames\":{},\"tx_errors\":{}}},",
                    fmt_cidr(cidr),
                    fmt_mac(mac),
                    nic.rx_frames,
                    nic.tx_frames,
                    nic.tx_errors
                );
            }
            None => {
                let _ = write!(out, "\"{name}\":null,");
            }
        }
    }
    out.push_str("\"peers\":[");
    for (i, (id, p)) in status.peers.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"id\":{id},\"ip\":\"{}\",\"reachable\":{},\"pings_sent\":{},\"pongs_received\":{},\"last_rtt_us\":{}}}",
            if i > 0 { "," } else { "" },
            fmt_ip(p.ip),
            p.reachable,
            p.pings_sent,
            p.pongs_received,
            p.last_rtt_us
        );
    }
    let a = status.auth;
    let _ = write!(
        out,
        "],\"peer_messages\":{{\"accepted\":{},\"malformed\":{},\"wrong_cluster\":{},\"misdirected\":{},\"unknown_sender\":{},\"wrong_scheme\":{},\"forged\":{},\"replayed\":{},\"too_old\":{},\"stale_epoch\":{},\"stale_receiver_epoch\":{}}},\"status_requests\":{},\"status_aborted\":{},\"client_requests\":{},\"client_rejected\":{}}}",
        a.accepted, a.malformed, a.wrong_cluster, a.misdirected, a.unknown_sender, a.wrong_scheme, a.forged, a.replayed, a.too_old, a.stale_epoch, a.stale_receiver_epoch, status.status_requests, status.status_aborted, status.client_requests, status.client_rejected
    );
    out.pop(); // the closing brace: one more member follows
    out.push_str(",\"raft\":");
    crate::consensus::status_json(&mut out);
    out.push('}');
    out
}
