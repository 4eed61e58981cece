//! The product: three Continuum nodes in QEMU with disks, a replicated bank,
//! driven over the client protocol like a user's client would.

use continuum_bank::{AccountFlags, CreateAccount, Entry, Outcome, Transfer};
use continuum_fabric::{Fabric, FabricConfig, FabricHandle};
use continuum_net::client::{
    decode_balance_answer, ClientReply, ClientRequest, ReplyBody, ReplyError, RequestOp,
};
use continuum_tests::cluster::{ip_text, lan_ip, lan_mac, node_key, CLUSTER_ID};
use continuum_tests::{blank_disk, free_port, free_udp_port, http_get, DiskCache, Vm, VmConfig};
use ed25519_dalek::SigningKey;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const NAME: &str = "node3";
const SUPPLY: u64 = 1_000_000_000;

fn operator() -> SigningKey {
    node_key("operator", 0)
}

fn owner(account: u128) -> SigningKey {
    node_key("owner", account as u8)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Nodes {
    _fabric: FabricHandle,
    vms: Vec<Vm>,
    status: Vec<u16>,
    client: Vec<u16>,
    _dir: PathBuf,
}

fn start(nodes: u8) -> Nodes {
    let dir = std::env::temp_dir().join(format!("ctm-{NAME}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fabric_config = FabricConfig {
        dir: dir.clone(),
        nodes: nodes as u16,
        seed: 1,
    };
    let fabric = Fabric::start(fabric_config.clone()).expect("fabric starts");
    let mut out = Nodes {
        _fabric: fabric,
        vms: Vec::new(),
        status: Vec::new(),
        client: Vec::new(),
        _dir: dir.clone(),
    };
    for id in 1..=nodes {
        let mut config = format!(
            "node_id = {id}\ncluster_id = {CLUSTER_ID}\nheap_mib = 64\nsecret_key = {}\nlan_ip = {}/24\noperator_key = {}\nsupply = {SUPPLY}\n",
            hex(&node_key(NAME, id).to_bytes()),
            ip_text(lan_ip(id)),
            hex(operator().verifying_key().as_bytes()),
        );
        for peer in (1..=nodes).filter(|&p| p != id) {
            config.push_str(&format!(
                "peer = {peer} {} {}\n",
                ip_text(lan_ip(peer)),
                hex(node_key(NAME, peer).verifying_key().as_bytes())
            ));
        }
        let disk = dir.join(format!("disk{id}.img"));
        blank_disk(&disk, 64);
        let (status, client) = (free_port(), free_udp_port());
        let mac = lan_mac(id);
        let mac = mac.map(|b| format!("{b:02x}")).join(":");
        let vm = VmConfig::new(&format!("{NAME}-{id}"))
            .node_config(&config)
            .disk(&disk, DiskCache::Writeback)
            .nic(
                &fabric_config.qemu_netdev(id as u16, "lan"),
                "lan",
                Some(&mac),
            )
            .client_nic(status, client)
            .timeout(Duration::from_secs(600))
            .start();
        out.vms.push(vm);
        out.status.push(status);
        out.client.push(client);
    }
    out
}

struct Client {
    socket: UdpSocket,
    next: u64,
}

impl Client {
    fn new() -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Client { socket, next: 1 }
    }

    /// Sends `op` to the node on `port` until it answers something other
    /// than a retryable error, for at most `patience`.
    fn call(
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
            self.socket
                .send_to(&request.encode().unwrap(), ("127.0.0.1", port))
                .unwrap();
            let mut buf = [0u8; 2048];
            let wait_until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < wait_until {
                let Ok(len) = self.socket.recv(&mut buf) else {
                    continue;
                };
                let Ok(reply) = ClientReply::decode(&buf[..len]) else {
                    continue;
                };
                if reply.request_id != self.next {
                    continue;
                }
                match reply.body {
                    ReplyBody::Error(
                        ReplyError::Unavailable | ReplyError::Busy | ReplyError::Timeout,
                    )
                    | ReplyBody::Redirect { .. } => break,
                    _ => return reply,
                }
            }
            attempt += 1;
            assert!(
                Instant::now() < deadline,
                "no answer for {op:?} within {patience:?}"
            );
        }
    }
}

fn submit(client: &mut Client, nodes: &Nodes, via: usize, command: Vec<u8>) -> (Outcome, u64) {
    let reply = client.call(
        &nodes.client,
        via,
        RequestOp::Submit { command },
        Duration::from_secs(120),
    );
    match reply.body {
        ReplyBody::Ok { outcome, index, .. } => {
            (Outcome::from_unit_code(outcome[0]).unwrap(), index)
        }
        other => panic!("submit failed: {other:?}"),
    }
}

fn create_account(id: u128) -> Vec<u8> {
    Entry::single(
        CreateAccount {
            id,
            owner: owner(id).verifying_key().to_bytes(),
            flags: AccountFlags::empty(),
        }
        .sign(&operator(), CLUSTER_ID as u128),
    )
    .encode()
}

fn transfer(id: u128, from: u128, to: u128, amount: u64) -> Vec<u8> {
    let key = if from == 1 { operator() } else { owner(from) };
    Entry::single(
        Transfer {
            id,
            from,
            to,
            amount,
            client: id,
            seq: 1,
        }
        .sign(&key, CLUSTER_ID as u128),
    )
    .encode()
}

#[test]
fn three_nodes_elect_and_replicate_transfers() {
    let mut nodes = start(3);
    for vm in nodes.vms.iter_mut() {
        vm.wait_for_line("consensus: node");
    }
    let mut client = Client::new();
    assert_eq!(
        submit(&mut client, &nodes, 0, create_account(10)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 1, create_account(11)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 2, transfer(100, 1, 10, 5_000)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 0, transfer(101, 10, 11, 2_000)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 1, transfer(102, 10, 11, 4_000)).0,
        Outcome::InsufficientFunds
    );
    for via in 0..3 {
        let reply = client.call(
            &nodes.client,
            via,
            RequestOp::QueryBalance { account: 11 },
            Duration::from_secs(60),
        );
        let ReplyBody::Ok { outcome, .. } = reply.body else {
            panic!("{reply:?}")
        };
        assert_eq!(decode_balance_answer(&outcome).unwrap(), Some(2_000));
    }
    let status = http_get(nodes.status[0], "/status").unwrap();
    assert!(status.contains("\"raft\":{\"role\""), "{status}");
    let metrics = http_get(nodes.status[1], "/metrics").unwrap();
    assert!(metrics.contains("continuum_raft_commit_index"), "{metrics}");
}
