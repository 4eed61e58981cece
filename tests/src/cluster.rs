//! Clusters of real kernel images: a fabric switch for the replication LAN,
//! per-node keys and configs, and one QEMU per node with a client NIC whose
//! status port is forwarded to loopback.

use crate::{free_port, http_get, Vm, VmConfig};
use continuum_fabric::{Fabric, FabricConfig, FabricHandle};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The cluster id every test cluster uses.
pub const CLUSTER_ID: u64 = 7;

/// A deterministic test key for node `id` of cluster `name`.
pub fn node_key(name: &str, id: u8) -> SigningKey {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"continuum test key")
        .chain_update(name.as_bytes())
        .chain_update([id])
        .finalize()
        .into();
    SigningKey::from_bytes(&seed)
}

pub fn lan_ip(id: u8) -> [u8; 4] {
    [10, 7, 0, id]
}

pub fn lan_mac(id: u8) -> [u8; 6] {
    [0x52, 0x54, 0x00, 0x07, 0x00, id]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What to start.
pub struct ClusterSpec {
    pub name: String,
    pub nodes: u8,
    /// Members that appear in every config but have no VM (the test speaks
    /// for them with their keys).
    pub phantom_members: Vec<u8>,
    pub seed: u64,
    /// Extra config lines for node `id` (e.g. a benchmark `mode`).
    pub extra_config: Vec<(u8, String)>,
}

pub struct Cluster {
    pub name: String,
    pub fabric: FabricHandle,
    pub vms: Vec<Vm>,
    pub status_ports: Vec<u16>,
    pub dir: PathBuf,
}

impl Cluster {
    pub fn start(spec: ClusterSpec) -> Cluster {
        let dir = std::env::temp_dir().join(format!("ctm-{}-{}", spec.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create the cluster directory");
        let ports = spec.nodes as u16 + spec.phantom_members.len() as u16;
        let fabric_config = FabricConfig {
            dir: dir.clone(),
            nodes: ports,
            seed: spec.seed,
        };
        let fabric = Fabric::start(fabric_config.clone()).expect("fabric starts");
        let members: Vec<u8> = (1..=spec.nodes)
            .chain(spec.phantom_members.iter().copied())
            .collect();
        let mut vms = Vec::new();
        let mut status_ports = Vec::new();
        for id in 1..=spec.nodes {
            let mut config = format!(
                "node_id = {id}\ncluster_id = {CLUSTER_ID}\nsecret_key = {}\nlan_ip = {}/24\n",
                hex(&node_key(&spec.name, id).to_bytes()),
                ip_text(lan_ip(id))
            );
            for &peer in members.iter().filter(|&&m| m != id) {
                config.push_str(&format!(
                    "peer = {peer} {} {}\n",
                    ip_text(lan_ip(peer)),
                    hex(node_key(&spec.name, peer).verifying_key().as_bytes())
                ));
            }
            for (_, line) in spec.extra_config.iter().filter(|(node, _)| *node == id) {
                config.push_str(line);
                config.push('\n');
            }
            let status_port = free_port();
            let vm = VmConfig::new(&format!("{}-node{id}", spec.name))
                .node_config(&config)
                .nic(
                    &fabric_config.qemu_netdev(id as u16, "lan"),
                    "lan",
                    Some(&mac_text(lan_mac(id))),
                )
                .client_nic(status_port)
                .start();
            vms.push(vm);
            status_ports.push(status_port);
        }
        Cluster {
            name: spec.name,
            fabric,
            vms,
            status_ports,
            dir,
        }
    }

    /// Node `id`'s `/status` as JSON, or why not.
    pub fn status(&self, id: u8) -> Result<serde_json::Value, String> {
        let body = http_get(self.status_ports[id as usize - 1], "/status")?;
        serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}): {body}"))
    }

    /// Polls until `check` holds for node `id`'s status; panics with the
    /// node's console and last status after `timeout`.
    pub fn wait_status(
        &mut self,
        id: u8,
        timeout: Duration,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        let mut last = Err(String::from("not asked yet"));
        while Instant::now() < deadline {
            last = self.status(id);
            if let Ok(status) = &last {
                if check(status) {
                    return status.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "node {id}: timed out waiting for {what}; last status: {last:?}\n--- node {id} console ---\n{}",
            self.vms[id as usize - 1].console_text()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.vms.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether node status `s` reports peer `peer` reachable.
pub fn peer_reachable(s: &serde_json::Value, peer: u8) -> bool {
    peer_field(s, peer, "reachable").and_then(|v| v.as_bool()) == Some(true)
}

pub fn peer_field<'a>(
    s: &'a serde_json::Value,
    peer: u8,
    field: &str,
) -> Option<&'a serde_json::Value> {
    s["peers"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == peer)?
        .get(field)
}

/// An Ethernet + IPv4 + UDP frame carrying `payload` (for injection).
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(42 + payload.len());
    frame.extend_from_slice(&dst_mac);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = ip
        .chunks(2)
        .fold(0u32, |s, w| s + u16::from_be_bytes([w[0], w[1]]) as u32);
    let folded = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&folded.to_be_bytes());
    frame.extend_from_slice(&ip);
    let udp_len = (8 + payload.len()) as u16;
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // no checksum (allowed for UDP over IPv4, RFC 768)
    frame.extend_from_slice(payload);
    frame
}
