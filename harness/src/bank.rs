//! A bank cluster for tests and benchmarks: three or five nodes in QEMU
//! with disks and the bank's genesis, on a fabric LAN, and a UDP client
//! that speaks the client protocol (`continuum_net::client`) with retries.
//!
//! Signing keys are deterministic (from names), so a test can sign for the
//! operator and for any account owner.

use crate::cluster::{ip_text, lan_ip, lan_mac, node_key, CLUSTER_ID};
use crate::{blank_disk, free_port, free_udp_port, http_get, DiskCache, DiskKind, Vm, VmConfig};
use continuum_bank::{AccountFlags, CreateAccount, Entry, Outcome, Transfer};
use continuum_config::NodeId;
use continuum_fabric::{Fabric, FabricConfig, FabricHandle};
use continuum_net::client::{
    decode_balance_answer, ClientReply, ClientRequest, ReplyBody, ReplyError, RequestOp,
};
use ed25519_dalek::SigningKey;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const SUPPLY: u64 = 1_000_000_000;

/// The operator key of every bank test cluster.
pub fn operator() -> SigningKey {
    crate::plan::derived_key("bank", "operator", 0)
}

/// The owner key of test account `account` (keys repeat every 256 ids).
pub fn owner(account: u128) -> SigningKey {
    crate::plan::derived_key("bank", "owner", account as u8)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct Nodes {
    pub fabric: FabricHandle,
    pub configs: Vec<VmConfig>,
    pub vms: Vec<Vm>,
    pub status: Vec<u16>,
    pub client: Vec<u16>,
    _dir: PathBuf,
}

pub fn start(name: &str, nodes: NodeId) -> Nodes {
    start_with_disks(name, &vec![DiskKind::Virtio; nodes as usize])
}

/// [`start`] with node `i + 1`'s disk behind a `disks[i]` controller.
pub fn start_with_disks(name: &str, disks: &[DiskKind]) -> Nodes {
    start_with_config(name, disks, &[])
}

/// [`start_with_disks`] with `extra` config lines on every node (a key
/// given there replaces the generated line, as in
/// [`crate::cluster::merge_config`]).
pub fn start_with_config(name: &str, disks: &[DiskKind], extra: &[&str]) -> Nodes {
    let nodes = NodeId::try_from(disks.len()).expect("fewer nodes than u64::MAX");
    let dir = std::env::temp_dir().join(format!("ctm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fabric_config = FabricConfig {
        dir: dir.clone(),
        nodes,
        seed: 1,
    };
    let fabric = Fabric::start(fabric_config.clone()).expect("fabric starts");
    let mut out = Nodes {
        fabric,
        configs: Vec::new(),
        vms: Vec::new(),
        status: Vec::new(),
        client: Vec::new(),
        _dir: dir.clone(),
    };
    for id in 1..=nodes {
        let mut config = format!(
            "node_id = {id}\ncluster_id = {CLUSTER_ID}\nheap_mib = 64\nsecret_key = {}\nlan_ip = {}/24\noperator_key = {}\nsupply = {SUPPLY}\n",
            hex(&node_key(name, id).to_bytes()),
            ip_text(lan_ip(id)),
            hex(operator().verifying_key().as_bytes()),
        );
        for peer in (1..=nodes).filter(|&p| p != id) {
            config.push_str(&format!(
                "peer = {peer} {} {}\n",
                ip_text(lan_ip(peer)),
                hex(node_key(name, peer).verifying_key().as_bytes())
            ));
        }
        let config = crate::cluster::merge_config(&config, extra);
        let disk = dir.join(format!("disk{id}.img"));
        blank_disk(&disk, 64);
        let (status, client) = (free_port(), free_udp_port());
        let mac = lan_mac(id);
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        let vm = VmConfig::new(&format!("{name}-{id}"))
            .node_config(&config)
            .disk_of(disks[(id - 1) as usize], &disk, DiskCache::Writeback)
            .nic(&fabric_config.qemu_netdev(id, "lan"), "lan", Some(&mac))
            .client_nic(status, client)
            .timeout(Duration::from_secs(600));
        out.vms.push(vm.start());
        out.configs.push(vm);
        out.status.push(status);
        out.client.push(client);
    }
    out
}

pub struct Client {
    pub socket: UdpSocket,
    next: u64,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Client { socket, next: 1 }
    }

    /// Sends `op` to the node on `port` until it answers something other
    /// than a retryable error, for at most `patience`.
    pub fn call(
        &mut self,
        ports: &[u16],
        first: usize,
        op: RequestOp,
        patience: Duration,
    ) -> ClientReply {
        let deadline = Instant::now() + patience;
        let mut attempt = 0;
        loop {
            let port = ports[(first + attempt) % ports.len()];
            self.next += 1;
            let request = ClientRequest {
                cluster_id: CLUSTER_ID,
                client_id: 1,
                request_id: self.next,
                op: op.clone(),
            };
            let datagram = request.encode().unwrap();
            if let Some(reply) = exchange(&self.socket, port, &datagram, self.next) {
                return reply;
            }
            attempt += 1;
            assert!(
                Instant::now() < deadline,
                "no answer for {op:?} within {patience:?}"
            );
        }
    }
}

/// Sends the request `datagram` (whose id is `request_id`) from `socket`
/// to the node on `port` once and waits up to 3 s for its answer: the
/// answer if it is final, `None` on silence or a retryable one
/// (`Unavailable`, `Busy`, `Timeout`, a redirect).
pub fn exchange(
    socket: &UdpSocket,
    port: u16,
    datagram: &[u8],
    request_id: u64,
) -> Option<ClientReply> {
    socket.send_to(datagram, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 2048];
    let wait_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < wait_until {
        let Ok(len) = socket.recv(&mut buf) else {
            continue;
        };
        let Ok(reply) = ClientReply::decode(&buf[..len]) else {
            continue;
        };
        if reply.request_id != request_id {
            continue;
        }
        return match reply.body {
            ReplyBody::Error(ReplyError::Unavailable | ReplyError::Busy | ReplyError::Timeout)
            | ReplyBody::Redirect { .. } => None,
            _ => Some(reply),
        };
    }
    None
}

pub fn submit(client: &mut Client, nodes: &Nodes, via: usize, command: Vec<u8>) -> (Outcome, u64) {
    let reply = client.call(
        &nodes.client,
        via,
        RequestOp::Submit { entry: command },
        Duration::from_secs(120),
    );
    match reply.body {
        ReplyBody::Ok { outcome, index, .. } => {
            (Outcome::from_unit_code(outcome[0]).unwrap(), index)
        }
        other => panic!("submit failed: {other:?}"),
    }
}

pub fn create_account(id: u128) -> Vec<u8> {
    Entry::single(
        CreateAccount {
            id,
            owner: owner(id).verifying_key().to_bytes(),
            flags: AccountFlags::empty(),
            expires_at: crate::client::default_expires_at(),
        }
        .sign(&operator(), CLUSTER_ID as u128),
    )
    .encode()
}

pub fn transfer(id: u128, from: u128, to: u128, amount: u64) -> Vec<u8> {
    let key = if from == 1 { operator() } else { owner(from) };
    signed_transfer(&key, CLUSTER_ID, id, from, to, amount)
}

/// A single-transfer entry signed with `key`, in its own session
/// (`client = id`, `seq = 1`), valid for the client library's default
/// validity from now; retries re-send these bytes and are deduplicated by
/// the id.
pub fn signed_transfer(
    key: &SigningKey,
    cluster_id: u64,
    id: u128,
    from: u128,
    to: u128,
    amount: u64,
) -> Vec<u8> {
    signed_entry(
        key,
        cluster_id,
        Transfer {
            id,
            from,
            to,
            amount,
            client: id,
            seq: 1,
            expires_at: crate::client::default_expires_at(),
        },
    )
}

/// The encoded one-transfer entry of `transfer` signed by `key`.
pub fn signed_entry(key: &SigningKey, cluster_id: u64, transfer: Transfer) -> Vec<u8> {
    Entry::single(transfer.sign(key, u128::from(cluster_id))).encode()
}

/// `/status` of node `id` (1-based) as JSON.
pub fn status(nodes: &Nodes, id: usize) -> Option<serde_json::Value> {
    let body = http_get(nodes.status[id - 1], "/status").ok()?;
    serde_json::from_str(&body).ok()
}

pub fn raft_field(status: &serde_json::Value, field: &str) -> u64 {
    status["raft"][field].as_u64().unwrap_or(0)
}

impl Nodes {
    /// The directory holding the nodes' disks and the fabric's sockets.
    pub fn dir(&self) -> &std::path::Path {
        &self._dir
    }

    /// Waits until every running node reports the same leader; returns it.
    pub fn wait_for_leader(&mut self) -> usize {
        self.wait_for_leader_among(
            &(1..=self.vms.len()).collect::<Vec<_>>(),
            0,
            Duration::from_secs(120),
        )
    }

    /// Waits until `members` agree on one leader other than `not` (a node
    /// that was killed or cut off: followers keep naming it until their
    /// election timeout fires).
    pub fn wait_for_leader_among(
        &mut self,
        members: &[usize],
        not: usize,
        patience: Duration,
    ) -> usize {
        let deadline = Instant::now() + patience;
        loop {
            let leaders: Vec<u64> = members
                .iter()
                .map(|&id| status(self, id).map_or(0, |s| raft_field(&s, "leader")))
                .collect();
            if leaders[0] != 0
                && leaders[0] != not as u64
                && leaders.iter().all(|&l| l == leaders[0])
            {
                return leaders[0] as usize;
            }
            if Instant::now() > deadline {
                let consoles: String = members
                    .iter()
                    .map(|&id| format!("--- node {id} ---\n{}\n", self.vms[id - 1].console_text()))
                    .collect();
                panic!("no agreed leader among {members:?} (saw {leaders:?})\n{consoles}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the given nodes have applied the same index and report the
    /// same receipt-chain head; returns that head.
    pub fn wait_converged(&self, members: &[usize]) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let heads: Vec<Option<(u64, String)>> = members
                .iter()
                .map(|&id| {
                    status(self, id).map(|s| {
                        (
                            raft_field(&s, "applied"),
                            s["raft"]["chain_head"]["hash"]
                                .as_str()
                                .unwrap_or("")
                                .to_owned(),
                        )
                    })
                })
                .collect();
            if let Some(Some(first)) = heads.first() {
                if heads.iter().all(|h| h.as_ref() == Some(first)) {
                    return first.1.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "nodes {members:?} never converged: {heads:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn balance(&self, client: &mut Client, via: usize, account: u128) -> Option<u64> {
        let reply = client.call(
            &self.client,
            via,
            RequestOp::QueryBalance { account },
            Duration::from_secs(60),
        );
        match reply.body {
            ReplyBody::Ok { outcome, .. } => decode_balance_answer(&outcome).unwrap(),
            other => panic!("balance read failed: {other:?}"),
        }
    }
}
