//! A cluster plan: everything that makes a set of nodes one cluster, decided
//! before any VM boots.
//!
//! * identity: the cluster id and, per member, a node id (1..=255), an
//!   Ed25519 key pair (peer authentication), a replication-LAN address and MAC;
//! * the bank's genesis, identical on every node: the operator key (owns the
//!   reserve account, signs account creation), the reserve account id and
//!   the supply;
//! * the ledger's bounds, also identical on every node: the heap its tables
//!   are sized for (`ledger_heap_mib`, here the node heap) and the dedup
//!   window (`dedup_window_ms`);
//! * Raft timing (`election_ms`, `heartbeat_ms`), the node heap and how
//!   often a node snapshots its ledger (`snapshot_entries`).
//!
//! Keys are either derived from a label (tests and `cluster init --insecure-test-keys`:
//! the same label gives the same cluster, so a failing run can be replayed)
//! or drawn from the operating system's random source (`/dev/urandom`) for a
//! cluster someone means to keep.
//!
//! [`ClusterPlan::node_config`] renders one node's config file (every key,
//! including its secret key); [`ClusterPlan::facts`] the public part that is
//! safe to print or share. Generated configs are checked with the kernel's
//! own parser before anyone boots them.

use continuum_config::{Config, NodeId};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;

/// Largest cluster a config can describe (a node has at most 8 peers).
pub const MAX_NODES: NodeId = continuum_config::MAX_PEERS as NodeId + 1;
/// Default supply of a new cluster (what the node config defaults to).
pub const DEFAULT_SUPPLY: u64 = 1_000_000_000;
/// Default reserve account id.
pub const DEFAULT_RESERVE_ACCOUNT: u128 = 1;
/// Default Raft election timeout: sized for TCG, where three guests share
/// two host cores (the config's own default).
pub const DEFAULT_ELECTION_MS: u32 = 1000;
/// Default leader heartbeat interval.
pub const DEFAULT_HEARTBEAT_MS: u32 = 100;
/// Default node heap, and the heap the bank's limits are sized for.
pub const DEFAULT_HEAP_MIB: u32 = 64;
pub use continuum_config::{DEFAULT_DEDUP_WINDOW_MS, DEFAULT_SNAPSHOT_ENTRIES};
// The node config's default window is the bank's.
const _: () = assert!(DEFAULT_DEDUP_WINDOW_MS == continuum_bank::DEFAULT_MAX_EXPIRY_WINDOW_MS);

/// A deterministic key for `role` number `id` derived from `label`.
pub fn derived_key(label: &str, role: &str, id: u8) -> SigningKey {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"continuum cluster key")
        .chain_update((label.len() as u64).to_le_bytes())
        .chain_update(label.as_bytes())
        .chain_update((role.len() as u64).to_le_bytes())
        .chain_update(role.as_bytes())
        .chain_update([id])
        .finalize()
        .into();
    SigningKey::from_bytes(&seed)
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// A fresh random signing key.
pub fn random_key() -> std::io::Result<SigningKey> {
    Ok(SigningKey::from_bytes(&random_bytes::<32>()?))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses exactly 64 hex digits (surrounding whitespace allowed) into 32 bytes.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Node `id` as the one byte addresses and key derivation use. Every id
/// comes from a config or a plan, which keep it within
/// `continuum_config::MAX_NODE_ID` (255).
fn id_byte(id: NodeId) -> u8 {
    u8::try_from(id).expect("node ids are at most MAX_NODE_ID (255)")
}

/// The deterministic test key of node `id` of the cluster labelled `label`
/// ([`derived_key`], role "node").
pub fn node_key(label: &str, id: NodeId) -> SigningKey {
    derived_key(label, "node", id_byte(id))
}

/// Node `id`'s address on the replication LAN.
pub fn lan_ip(id: NodeId) -> [u8; 4] {
    [10, 7, 0, id_byte(id)]
}

/// Node `id`'s MAC on the replication LAN.
pub fn lan_mac(id: NodeId) -> [u8; 6] {
    [0x52, 0x54, 0x00, 0x07, 0x00, id_byte(id)]
}

/// One member of the cluster.
#[derive(Clone, Debug)]
pub struct NodePlan {
    pub id: NodeId,
    pub key: SigningKey,
}

/// Why a plan cannot be made.
#[derive(Debug)]
pub enum PlanError {
    /// Member ids must be 1..=255, unique, at most [`MAX_NODES`] of them.
    BadMembers(String),
    /// The random source failed.
    Random(std::io::Error),
    /// A generated config did not pass the kernel's parser (a bug here or
    /// an out-of-range setting).
    Config { node: NodeId, error: String },
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::BadMembers(why) => write!(f, "bad cluster members: {why}"),
            PlanError::Random(e) => write!(f, "cannot read /dev/urandom: {e}"),
            PlanError::Config { node, error } => {
                write!(
                    f,
                    "the config generated for node {node} is invalid: {error}"
                )
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// A whole cluster's identity, genesis and settings.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub cluster_id: u64,
    /// Members in ascending id order.
    pub nodes: Vec<NodePlan>,
    /// Signs account creation and owns the reserve account.
    pub operator: SigningKey,
    pub reserve_account: u128,
    pub supply: u64,
    pub election_ms: u32,
    pub heartbeat_ms: u32,
    /// Node heap, and the heap the bank's table limits are sized for
    /// (`ledger_heap_mib`, so it is the same on every node).
    pub heap_mib: u32,
    /// Genesis: longest validity of a signed command.
    pub dedup_window_ms: u64,
    /// Applied entries between two ledger snapshots.
    pub snapshot_entries: u64,
    /// Every key follows from a public label ([`ClusterPlan::from_seed`]):
    /// anyone who guesses the seed holds the operator and node keys.
    pub insecure_test_keys: bool,
    /// Members made for `continuum cluster add-node` (`cluster init
    /// --spare K`): their configs say `join = true` and list the boot
    /// members as contacts, the boot members' configs do not list them,
    /// and `cluster up` does not boot them until `add-node` takes one.
    pub spares: Vec<NodeId>,
}

fn check_members(members: &[NodeId]) -> Result<Vec<NodeId>, PlanError> {
    let mut ids = members.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != members.len() {
        return Err(PlanError::BadMembers(format!(
            "duplicate ids in {members:?}"
        )));
    }
    if ids.is_empty() || ids.len() > MAX_NODES as usize {
        return Err(PlanError::BadMembers(format!(
            "{} members; a cluster has 1 to {MAX_NODES}",
            ids.len()
        )));
    }
    if ids.contains(&0) {
        return Err(PlanError::BadMembers("node id 0 (ids are 1..=255)".into()));
    }
    Ok(ids)
}

impl ClusterPlan {
    fn with_keys(
        cluster_id: u64,
        members: &[NodeId],
        operator: SigningKey,
        mut key: impl FnMut(NodeId) -> Result<SigningKey, PlanError>,
    ) -> Result<ClusterPlan, PlanError> {
        let ids = check_members(members)?;
        let nodes = ids
            .into_iter()
            .map(|id| Ok(NodePlan { id, key: key(id)? }))
            .collect::<Result<Vec<_>, PlanError>>()?;
        Ok(ClusterPlan {
            cluster_id,
            nodes,
            operator,
            reserve_account: DEFAULT_RESERVE_ACCOUNT,
            supply: DEFAULT_SUPPLY,
            election_ms: DEFAULT_ELECTION_MS,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            heap_mib: DEFAULT_HEAP_MIB,
            dedup_window_ms: DEFAULT_DEDUP_WINDOW_MS,
            snapshot_entries: DEFAULT_SNAPSHOT_ENTRIES,
            insecure_test_keys: false,
            spares: Vec::new(),
        })
    }

    /// The test harness's plan: node keys are [`crate::cluster::node_key`]
    /// of `name` (so tests can speak for any member), the operator key is
    /// derived from `name` too.
    pub fn for_test(
        name: &str,
        cluster_id: u64,
        members: &[NodeId],
    ) -> Result<ClusterPlan, PlanError> {
        ClusterPlan::with_keys(
            cluster_id,
            members,
            derived_key(name, "operator", 0),
            |id| Ok(crate::cluster::node_key(name, id)),
        )
    }

    /// A cluster of nodes `1..=nodes` whose keys and id all follow from
    /// `seed`: the same seed gives the same cluster. **Insecure**: the
    /// cluster id (public on `/status`) lets anyone find the seed and so
    /// every secret key; for tests only (`cluster init --insecure-test-keys`).
    pub fn from_seed(seed: u64, nodes: NodeId) -> Result<ClusterPlan, PlanError> {
        let label = format!("seed {seed}");
        let id_bytes = derived_key(&label, "cluster id", 0).to_bytes();
        let cluster_id = u64::from_le_bytes(id_bytes[..8].try_into().expect("8 bytes")).max(1);
        let members: Vec<NodeId> = (1..=nodes).collect();
        ClusterPlan::with_keys(
            cluster_id,
            &members,
            derived_key(&label, "operator", 0),
            |id| Ok(node_key(&label, id)),
        )
        .map(|plan| ClusterPlan {
            insecure_test_keys: true,
            ..plan
        })
    }

    /// A cluster of nodes `1..=nodes` with random keys and a random id.
    pub fn random(nodes: NodeId) -> Result<ClusterPlan, PlanError> {
        let cluster_id = u64::from_le_bytes(random_bytes::<8>().map_err(PlanError::Random)?).max(1);
        let members: Vec<NodeId> = (1..=nodes).collect();
        let operator = random_key().map_err(PlanError::Random)?;
        ClusterPlan::with_keys(cluster_id, &members, operator, |_| {
            random_key().map_err(PlanError::Random)
        })
    }

    /// Member ids in ascending order.
    pub fn member_ids(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Member `id`, if it is one.
    pub fn node(&self, id: NodeId) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The config file of node `id` (every key, including its secret key:
    /// keep the file private), checked with the kernel's parser.
    pub fn node_config(&self, id: NodeId) -> Result<String, PlanError> {
        let me = self
            .node(id)
            .ok_or_else(|| PlanError::BadMembers(format!("node {id} is not a member")))?;
        let ip = |id: NodeId| {
            let a = lan_ip(id);
            format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
        };
        let mut text = format!(
            "# Continuum node {id} of cluster {cluster}. Contains this node's secret key: keep it private.\n\
             node_id = {id}\n\
             cluster_id = {cluster}\n\
             heap_mib = {heap}\n\
             log_level = info\n\
             mode = node\n\
             secret_key = {secret}\n\
             lan_ip = {ip}/24\n",
            cluster = self.cluster_id,
            heap = self.heap_mib,
            secret = hex(&me.key.to_bytes()),
            ip = ip(id),
        );
        let spare = self.spares.contains(&id);
        if spare {
            text.push_str(
                "# a spare for `continuum cluster add-node`: it joins the running cluster as a learner; the peers below are the members to contact\n\
                 join = true\n",
            );
        }
        // The boot configuration: every member but the spares.
        for peer in self
            .nodes
            .iter()
            .filter(|n| n.id != id && !self.spares.contains(&n.id))
        {
            text.push_str(&format!(
                "peer = {} {} {}\n",
                peer.id,
                ip(peer.id),
                hex(peer.key.verifying_key().as_bytes())
            ));
        }
        text.push_str(&format!(
            "# the bank's genesis (identical on every node) and Raft timing\n\
             operator_key = {}\n\
             reserve_account = {}\n\
             supply = {}\n\
             election_ms = {}\n\
             heartbeat_ms = {}\n\
             ledger_heap_mib = {}\n\
             dedup_window_ms = {}\n\
             snapshot_entries = {}\n",
            hex(self.operator.verifying_key().as_bytes()),
            self.reserve_account,
            self.supply,
            self.election_ms,
            self.heartbeat_ms,
            self.heap_mib,
            self.dedup_window_ms,
            self.snapshot_entries
        ));
        Config::parse(text.as_bytes()).map_err(|e| PlanError::Config {
            node: id,
            error: e.to_string(),
        })?;
        Ok(text)
    }

    /// The public facts of the cluster (no secret key).
    pub fn facts(&self) -> ClusterFacts {
        ClusterFacts {
            cluster_id: self.cluster_id,
            members: self
                .nodes
                .iter()
                .map(|n| MemberFacts {
                    id: n.id,
                    lan_ip: lan_ip(n.id),
                    lan_mac: crate::cluster::mac_text(lan_mac(n.id)),
                    public_key: hex(n.key.verifying_key().as_bytes()),
                    disk: None,
                    removed_at: None,
                    spare: self.spares.contains(&n.id),
                })
                .collect(),
            operator_key: hex(self.operator.verifying_key().as_bytes()),
            reserve_account: self.reserve_account,
            supply: self.supply,
            election_ms: self.election_ms,
            heartbeat_ms: self.heartbeat_ms,
            heap_mib: self.heap_mib,
            dedup_window_ms: self.dedup_window_ms,
            snapshot_entries: self.snapshot_entries,
            insecure_test_keys: self.insecure_test_keys,
        }
    }
}

/// What anyone may know about a cluster: ids, addresses, public keys,
/// genesis. Stored as `cluster.json` by `continuum cluster init`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFacts {
    pub cluster_id: u64,
    pub members: Vec<MemberFacts>,
    /// The operator's Ed25519 public key (hex).
    pub operator_key: String,
    pub reserve_account: u128,
    pub supply: u64,
    pub election_ms: u32,
    pub heartbeat_ms: u32,
    pub heap_mib: u32,
    /// Genesis dedup window (absent in a `cluster.json` written before it
    /// existed: the default).
    #[serde(default = "default_dedup_window_ms")]
    pub dedup_window_ms: u64,
    /// Applied entries between two ledger snapshots (absent: the default).
    #[serde(default = "default_snapshot_entries")]
    pub snapshot_entries: u64,
    /// The keys were derived from a seed (`--insecure-test-keys`): `cluster
    /// up` warns on every start. Absent (false) for random keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_test_keys: bool,
}

/// One member's public facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFacts {
    pub id: NodeId,
    pub lan_ip: [u8; 4],
    pub lan_mac: String,
    /// Ed25519 public key (hex).
    pub public_key: String,
    /// The kind of disk this node boots with under `cluster up` (`virtio`,
    /// `nvme`, `ahci`); absent: `cluster up --disk` decides (default virtio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<crate::DiskKind>,
    /// `continuum cluster remove-node` removed it from the configuration
    /// by the change at this log index: `cluster up` no longer boots it.
    /// Absent: a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<u64>,
    /// Made by `cluster init --spare` and not added yet: `cluster up` does
    /// not boot it; `cluster add-node` boots it and adds it (and clears
    /// this). Absent: a member of the boot configuration or an added one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spare: bool,
}

fn default_dedup_window_ms() -> u64 {
    DEFAULT_DEDUP_WINDOW_MS
}

fn default_snapshot_entries() -> u64 {
    DEFAULT_SNAPSHOT_ENTRIES
}

impl ClusterFacts {
    /// The operator's public key, if the stored hex is a valid key.
    pub fn operator_verifying_key(&self) -> Option<VerifyingKey> {
        VerifyingKey::from_bytes(&parse_hex32(&self.operator_key)?).ok()
    }

    /// Member ids in ascending order.
    pub fn member_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Member `id`'s facts, if it is listed (removed or not).
    pub fn member(&self, id: NodeId) -> Option<&MemberFacts> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Whether `id` is listed and was not removed (`removed_at`).
    pub fn is_active_member(&self, id: NodeId) -> bool {
        self.member(id).is_some_and(|m| m.removed_at.is_none())
    }

    /// Whether `cluster up` boots `id`: a member, not removed, not a spare.
    pub fn boots(&self, id: NodeId) -> bool {
        self.member(id)
            .is_some_and(|m| m.removed_at.is_none() && !m.spare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_join_and_stay_out_of_the_boot_configuration() {
        let mut plan = ClusterPlan::from_seed(9, 4).unwrap();
        plan.spares = vec![4];
        for id in 1..=3 {
            let config = Config::parse(plan.node_config(id).unwrap().as_bytes()).unwrap();
            assert!(!config.join);
            let peers: Vec<NodeId> = config.peers().map(|p| p.id).collect();
            assert_eq!(peers.len(), 2, "node {id}: {peers:?}");
            assert!(!peers.contains(&4), "node {id}: {peers:?}");
        }
        let spare = Config::parse(plan.node_config(4).unwrap().as_bytes()).unwrap();
        assert!(spare.join);
        assert_eq!(spare.peers().map(|p| p.id).collect::<Vec<_>>(), [1, 2, 3]);
        let facts = plan.facts();
        assert!(facts.member(4).unwrap().spare && !facts.boots(4));
        assert!(facts.boots(1) && !facts.member(1).unwrap().spare);
        let text = serde_json::to_string(&facts).unwrap();
        assert_eq!(text.matches("\"spare\"").count(), 1, "{text}");
        assert!(!text.contains("removed_at"), "{text}");
        let back: ClusterFacts = serde_json::from_str(&text).unwrap();
        assert_eq!(back, facts);
        let mut removed = facts.clone();
        removed.members[1].removed_at = Some(12);
        assert!(!removed.boots(2) && !removed.is_active_member(2));
        let back: ClusterFacts =
            serde_json::from_str(&serde_json::to_string(&removed).unwrap()).unwrap();
        assert_eq!(back.member(2).unwrap().removed_at, Some(12));
    }

    #[test]
    fn seeded_plans_repeat_and_configs_parse_with_every_key() {
        let a = ClusterPlan::from_seed(42, 3).unwrap();
        let b = ClusterPlan::from_seed(42, 3).unwrap();
        let c = ClusterPlan::from_seed(43, 3).unwrap();
        assert_eq!(a.facts(), b.facts());
        assert_ne!(a.facts(), c.facts());
        assert_ne!(a.cluster_id, c.cluster_id);
        for id in 1..=3 {
            let text = a.node_config(id).unwrap();
            let config = Config::parse(text.as_bytes()).unwrap();
            assert_eq!(config.node_id, id);
            assert_eq!(config.cluster_id, a.cluster_id);
            assert_eq!(config.secret_key, Some(a.node(id).unwrap().key.to_bytes()));
            assert_eq!(config.peers().count(), 2);
            assert_eq!(
                config.operator_key,
                Some(a.operator.verifying_key().to_bytes())
            );
            assert_eq!(config.reserve_account, DEFAULT_RESERVE_ACCOUNT);
            assert_eq!(config.supply, DEFAULT_SUPPLY);
            assert_eq!(config.heap_mib, DEFAULT_HEAP_MIB);
            assert_eq!(config.ledger_heap_mib, DEFAULT_HEAP_MIB);
            assert_eq!(config.dedup_window_ms, DEFAULT_DEDUP_WINDOW_MS);
            assert_eq!(config.snapshot_entries, DEFAULT_SNAPSHOT_ENTRIES);
            assert_eq!(config.lan_ip.unwrap().address, lan_ip(id));
        }
        assert!(a.node_config(4).is_err());
    }

    #[test]
    fn random_plans_differ_and_facts_hold_no_secret() {
        let a = ClusterPlan::random(5).unwrap();
        let b = ClusterPlan::random(5).unwrap();
        assert_ne!(a.facts(), b.facts());
        let facts = serde_json::to_string(&a.facts()).unwrap();
        for node in &a.nodes {
            assert!(!facts.contains(&hex(&node.key.to_bytes())));
        }
        assert!(!facts.contains(&hex(&a.operator.to_bytes())));
        let back: ClusterFacts = serde_json::from_str(&facts).unwrap();
        assert_eq!(back, a.facts());
        assert_eq!(
            back.operator_verifying_key(),
            Some(a.operator.verifying_key())
        );
    }

    #[test]
    fn bad_member_lists_are_refused() {
        assert!(ClusterPlan::for_test("t", 7, &[]).is_err());
        assert!(ClusterPlan::for_test("t", 7, &[1, 1]).is_err());
        assert!(ClusterPlan::for_test("t", 7, &[0, 1]).is_err());
        assert!(ClusterPlan::for_test("t", 7, &(1..=10).collect::<Vec<_>>()).is_err());
        let mut plan = ClusterPlan::for_test("t", 7, &[1, 2, 3]).unwrap();
        plan.heartbeat_ms = plan.election_ms;
        let error = plan.node_config(1).unwrap_err().to_string();
        assert!(error.contains("heartbeat_ms"), "{error}");
    }

    #[test]
    fn hex32_parses_only_64_digits() {
        let key = [0xabu8; 32];
        assert_eq!(parse_hex32(&format!(" {}\n", hex(&key))), Some(key));
        assert_eq!(parse_hex32("ab"), None);
        assert_eq!(parse_hex32(&"zz".repeat(32)), None);
        assert_eq!(parse_hex32(&"é".repeat(32)), None);
    }
}
