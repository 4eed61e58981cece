//! The replication LAN's traffic: peer authentication, one UDP socket per
//! peer, liveness pings with their ARP nudges, and the dispatch of opened
//! datagrams.
//!
//! UDP on `peer_port`. Every datagram is sealed and opened by
//! `continuum_net::PeerAuth` (HMAC-SHA256 with pairwise keys derived from
//! the members' Ed25519 keys, per-sender sequence numbers in a replay
//! window, the sender's boot epoch and the receiver's as the sender knows
//! it). Anything that fails to open is dropped and counted by cause. A ping
//! is the one message accepted when it names another boot of this node:
//! the first ping round (at boot, then every [`PING_INTERVAL_MS`]) teaches
//! both sides each other's epoch, after which Raft gets through; until then
//! Raft sealed for an earlier boot is refused (`stale_receiver_epoch`),
//! which is what stops a datagram recorded before a restart from being
//! accepted after it. The traffic is the consensus node's envelopes
//! (`PeerBody::Node`, handed to [`crate::consensus::on_peer_payload`] and
//! sent from what [`crate::consensus::drive`] returned) and a liveness ping
//! to every peer each [`PING_INTERVAL_MS`], whose round trips `/status`
//! reports per peer. With each ping to a peer not (or no longer) reachable
//! goes our own ARP request for it: smoltcp rate-limits address resolution
//! per interface, not per address, so one peer that never answers (down,
//! partitioned) would otherwise keep every later peer in socket order
//! unresolved for good (`continuum_net::nic::arp_request`).
//!
//! The peer boot epoch comes from the disk when the node has one: the WAL
//! generation that opening the store bumped and flushed
//! (`disk::boot_wal_generation`, `continuum_net::persisted_boot_epoch`),
//! so it is durable before the first sealed datagram and grows across
//! reboots even if the wall clock steps backwards (with `unsafe_no_flush`
//! the bump may be lost: benchmarks only). Without a disk (ping-only
//! modes) it is the wall clock in milliseconds at boot, which grows only as
//! long as the RTC does not step back by more than a reboot takes.
//!
//! The peers follow the membership in the log, not only the boot config
//! ([`Peers::follow_membership`], after every Ready loop): a member whose
//! addition is appended gets its link keys, socket and status entry; one
//! whose removal committed is dropped, and its datagrams are refused as
//! `unknown_sender` from then on (`docs/membership.md`).
//!
//! This module decides nothing about Raft: it moves opaque envelopes
//! between the LAN and the consensus verbs, and never holds the node.

use super::port::{self, ipv4, udp_socket, Port};
use super::NetworkStatus;
use crate::consensus::Outbox;
use crate::netbench::NetBench;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use continuum_config::Config;
use continuum_config::NodeId;
use continuum_net::nic::NicDevice;
use continuum_net::peer::{AuthScheme, PeerBody};
use continuum_net::peer_auth::{PeerAuth, PeerConfig};
use continuum_node::membership::Member;
use ed25519_dalek::{SigningKey, VerifyingKey};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;
use smoltcp::wire::{IpAddress, IpEndpoint};

/// How often each peer is pinged.
pub const PING_INTERVAL_MS: u64 = 1_000;
/// A peer that has not answered for this long is reported unreachable.
const UNREACHABLE_AFTER_MS: u64 = 3_500;
/// Local port of the socket that sends to peer `id`: `PEER_SOCKET_BASE + id`.
/// Each peer gets its own socket because smoltcp keeps a datagram whose
/// next hop is not yet resolved (ARP) at the head of its socket's queue: one
/// dead peer sharing a socket would silence the node towards every peer.
const PEER_SOCKET_BASE: u16 = 49_152;
/// Ping nonces with this bit set belong to the benchmark.
const BENCH_NONCE: u64 = 1 << 63;

/// The LAN side of the network task: exists only with an authenticated
/// LAN (a LAN port and valid keys).
pub(super) struct Peers {
    auth: PeerAuth,
    peer_port: u16,
    /// The well-known socket on `peer_port`.
    socket: Option<SocketHandle>,
    /// Sending (and reply-receiving) socket per peer.
    sockets: BTreeMap<continuum_config::NodeId, SocketHandle>,
    next_ping_ms: u64,
    nonce: u64,
    /// Ping nonce -> (peer, sent at µs).
    outstanding: BTreeMap<u64, (NodeId, u64)>,
    /// Scratch for one sealed datagram.
    datagram: Vec<u8>,
    /// `mode = net-bench` on the lowest node id: (peer, driver).
    bench: Option<(NodeId, NetBench)>,
    /// The member directory the peers were last set from.
    directory: Vec<(NodeId, Member)>,
}

impl Peers {
    /// Derives the link keys; says on the console why the LAN stays off
    /// when it cannot (no secret key, a bad member key).
    pub(super) fn new(
        config: &Config,
        epoch: u64,
        bench: Option<(NodeId, NetBench)>,
    ) -> Option<Peers> {
        let auth = peer_setup(config, epoch)?;
        Some(Peers {
            auth,
            peer_port: config.peer_port,
            socket: None,
            sockets: BTreeMap::new(),
            next_ping_ms: 0,
            nonce: 0,
            outstanding: BTreeMap::new(),
            datagram: Vec::new(),
            bench,
            directory: Vec::new(),
        })
    }

    /// Binds the well-known socket and one per peer in `peers` on `lan`.
    pub(super) fn bind(&mut self, lan: &mut Port, peers: Vec<NodeId>) {
        self.bind_sockets(lan, core::iter::once(0).chain(peers));
    }

    /// Binds the socket of each id (0: the well-known one).
    fn bind_sockets(&mut self, lan: &mut Port, ids: impl Iterator<Item = NodeId>) {
        for (id, port) in ids.map(|id| {
            let port = if id == 0 {
                self.peer_port
            } else {
                PEER_SOCKET_BASE + id as u16
            };
            (id, port)
        }) {
            let mut socket = udp_socket();
            if let Err(error) = socket.bind(port) {
                log::error!("net: cannot bind UDP port {port}: {error}");
                continue;
            }
            let handle = lan.sockets.add(socket);
            if id == 0 {
                self.socket = Some(handle);
            } else {
                self.sockets.insert(id, handle);
            }
        }
    }

    /// How long the task may sleep before the next ping round (10 ms at
    /// most while a benchmark runs: loss timeouts and the hand-off between
    /// its phases).
    pub(super) fn wait_ms(&self, now_ms: u64) -> u64 {
        let wait_ms = self.next_ping_ms.saturating_sub(now_ms);
        if self.bench.is_some() {
            wait_ms.min(10)
        } else {
            wait_ms
        }
    }

    /// Receives and opens every datagram (answering pings, matching pongs,
    /// handing Raft payloads to the consensus node), drives the benchmark,
    /// and sends the ping round when it is due.
    pub(super) fn traffic(&mut self, lan: &mut Port, status: &mut NetworkStatus) {
        let Some(handle) = self.socket else {
            return;
        };
        let auth = &mut self.auth;
        let now_us = crate::time::monotonic_ns() / 1_000;
        let now_ms = now_us / 1_000;

        // Receive on the well-known port and on every per-peer socket (where
        // pongs come back): open, then answer pings and match pongs.
        let mut replies: Vec<(u64, IpEndpoint, u64)> = Vec::new();
        for socket_handle in core::iter::once(handle).chain(self.sockets.values().copied()) {
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
                            let Some(p) =
                                status.peers.get_mut(&peer).filter(|_| peer == message.from)
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
                        PeerBody::Node(payload) => {
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
            let Some(&socket_handle) = self.sockets.get(&to) else {
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
                if let Some(&socket_handle) = self.sockets.get(peer) {
                    let endpoint = IpEndpoint::new(
                        IpAddress::Ipv4(ipv4(status.peers[peer].ip)),
                        self.peer_port,
                    );
                    for seq in bench.due(now_us) {
                        if auth
                            .seal(
                                *peer,
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
                let Some(&socket_handle) = self.sockets.get(&id) else {
                    continue;
                };
                if auth
                    .seal(
                        id,
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

    /// Makes the peers the members of `directory` (see the module doc):
    /// link keys, sockets and status entries for new ones, none for
    /// removed ones. A no-op while the directory is unchanged.
    pub(super) fn follow_membership(
        &mut self,
        lan: &mut Port,
        status: &mut NetworkStatus,
        directory: Vec<(NodeId, Member)>,
    ) {
        if directory == self.directory {
            return;
        }
        let me = self.auth.me();
        let mut members = Vec::with_capacity(directory.len());
        for (id, member) in &directory {
            match VerifyingKey::from_bytes(&member.node_key) {
                Ok(key) => members.push((*id, key)),
                Err(_) => log::error!("net: member {id} has an invalid public key; skipped"),
            }
        }
        if let Err(error) = self.auth.set_members(&members) {
            log::error!("net: membership change refused by peer authentication: {error:?}");
            return;
        }
        let wanted: BTreeMap<NodeId, [u8; 4]> = directory
            .iter()
            .filter(|(id, _)| *id != me)
            .map(|(id, m)| (*id, m.lan_ip))
            .collect();
        let gone: Vec<NodeId> = self
            .sockets
            .keys()
            .copied()
            .filter(|id| !wanted.contains_key(id))
            .collect();
        for id in gone {
            if let Some(handle) = self.sockets.remove(&id) {
                lan.sockets.remove(handle);
            }
            status.peers.remove(&id);
            log::info!("net: peer {id} left the membership; its messages are refused now");
        }
        let new: Vec<NodeId> = wanted
            .keys()
            .copied()
            .filter(|id| !self.sockets.contains_key(id))
            .collect();
        for (&id, &ip) in &wanted {
            status.peers.entry(id).or_default().ip = ip;
        }
        if !new.is_empty() {
            log::info!("net: peers {new:?} joined the membership");
            self.bind_sockets(lan, new.into_iter());
        }
        self.directory = directory;
    }

    /// Seals each of the consensus node's envelopes as `PeerBody::Raft`
    /// and queues it on its peer's socket. A full socket drops the
    /// message; Raft retransmits.
    pub(super) fn send_envelopes(
        &mut self,
        lan: &mut Port,
        status: Option<&NetworkStatus>,
        outbox: Outbox,
    ) {
        for (to, payload) in outbox {
            let (peer, Some(status)) = (to, status) else {
                continue;
            };
            let (Some(&handle), Some(p)) = (self.sockets.get(&peer), status.peers.get(&peer))
            else {
                continue;
            };
            if self
                .auth
                .seal(to, &PeerBody::Node(&payload), &mut self.datagram)
                .is_ok()
            {
                let endpoint = IpEndpoint::new(IpAddress::Ipv4(ipv4(p.ip)), self.peer_port);
                let _ = lan
                    .sockets
                    .get_mut::<udp::Socket>(handle)
                    .send_slice(&self.datagram, endpoint);
            }
        }
    }
}

/// The link keys for this node and every configured peer, or `None` (and
/// the reason on the console) when the LAN cannot be authenticated.
fn peer_setup(config: &Config, epoch: u64) -> Option<PeerAuth> {
    let Some(secret) = config.secret_key else {
        log::error!(
            "net: lan_ip is set but secret_key is not; peers cannot be authenticated, LAN off"
        );
        return None;
    };
    let signing_key = SigningKey::from_bytes(&secret);
    let mut members = vec![(config.node_id, signing_key.verifying_key())];
    for peer in config.peers() {
        match VerifyingKey::from_bytes(&peer.public_key) {
            Ok(key) => members.push((peer.id, key)),
            Err(_) => {
                log::error!("net: peer {} has an invalid public key; LAN off", peer.id);
                return None;
            }
        }
    }
    let peer_config = PeerConfig {
        cluster_id: config.cluster_id,
        me: config.node_id,
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

/// Sends our own ARP request for `target` (see the module docs: smoltcp
/// alone would starve a peer behind one that never answers). A full
/// transmit queue skips it; the next ping round asks again.
fn resolve(
    device: &mut NicDevice<crate::drivers::nic::AnyNic>,
    mac: [u8; 6],
    ip: [u8; 4],
    target: [u8; 4],
) {
    use smoltcp::phy::{Device, TxToken};
    let frame = continuum_net::nic::arp_request(mac, ip, target);
    if let Some(token) = device.transmit(port::now()) {
        token.consume(frame.len(), |buffer| buffer.copy_from_slice(&frame));
    }
}
