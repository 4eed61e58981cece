//! Clusters of real kernel images: a fabric switch for the replication LAN,
//! per-node keys and configs, and one QEMU per node with a client NIC whose
//! status and client ports are forwarded to loopback, optionally a
//! virtio-blk disk per node, and the fault verbs a test or an operator
//! needs: kill -9 and restart on the same disk, pause and resume (QMP),
//! partitions of any shape, packet loss per link.
//!
//! Two ways in:
//! * [`Cluster::start`] with a [`ClusterSpec`]: the test clusters of the
//!   network tests (deterministic keys from the cluster name, no disks,
//!   files in a temporary directory removed on drop).
//! * [`Cluster::launch`] with a [`LaunchSpec`]: any node configs (e.g. from
//!   a [`ClusterPlan`] or from files), disks that persist, prebuilt images,
//!   live console logs, QMP. The `continuum` CLI runs clusters this way.
//!
//! Node `id` is fabric port `id`; its VM is named `<cluster name>-node<id>`.

use crate::client::{Client, ClientError, Endpoint};
use crate::plan::ClusterPlan;
use crate::{free_port, free_udp_port, http_get, Images, Vm, VmConfig};
use continuum_config::NodeId;
use continuum_fabric::{Fabric, FabricConfig, FabricHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::inspect::{ip_text, mac_text, peer_field, peer_reachable, udp_frame};
pub use crate::plan::{lan_ip, lan_mac};
use crate::shapes::loss_faults;
pub use crate::shapes::{shape_bridge, shape_halves, shape_ring};

/// The cluster id every test cluster uses.
pub const CLUSTER_ID: u64 = 7;

/// Longest unix socket path (`sun_path` is 108 bytes with the terminator).
pub const MAX_SOCKET_PATH: usize = 107;

pub use crate::plan::node_key;

/// What to start (the network tests' clusters; see [`Cluster::start`]).
pub struct ClusterSpec {
    pub name: String,
    pub nodes: NodeId,
    /// Members that appear in every config but have no VM (the test speaks
    /// for them with their keys).
    pub phantom_members: Vec<NodeId>,
    pub seed: u64,
    /// Extra config lines for node `id` (e.g. a benchmark `mode`); a key
    /// given here replaces the generated line with that key.
    pub extra_config: Vec<(NodeId, String)>,
}

/// One node of a [`LaunchSpec`].
#[derive(Clone, Debug)]
pub struct NodeLaunch {
    pub id: NodeId,
    /// The node's config file text.
    pub config: String,
    /// Host TCP port forwarded to the node's status port.
    pub status_port: u16,
    /// Host UDP port forwarded to the node's client port.
    pub client_port: u16,
    /// Boot it in [`Cluster::launch`] (otherwise only [`Cluster::start_node`] does).
    pub boot: bool,
    /// The controller its disk sits behind (when the spec has disks).
    pub disk_kind: crate::DiskKind,
    /// Its wall clock (RTC) this many seconds ahead of the host's (negative:
    /// behind), from its next boot (QEMU `-rtc base=`).
    pub rtc_offset_s: i64,
    /// Errors its disk returns from its next boot ([`crate::faults`]).
    pub disk_fault: Option<crate::faults::DiskFault>,
}

impl NodeLaunch {
    /// Node `id` with `config`, on free loopback ports, booted at launch.
    pub fn new(id: NodeId, config: String) -> NodeLaunch {
        NodeLaunch {
            id,
            config,
            status_port: free_port(),
            client_port: free_udp_port(),
            boot: true,
            disk_kind: crate::DiskKind::Virtio,
            rtc_offset_s: 0,
            disk_fault: None,
        }
    }
}

/// Everything [`Cluster::launch`] needs.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    /// VM names are `<name>-node<id>`.
    pub name: String,
    /// Run directory: `fabric/` (sockets), `node-<id>/` (config, disk,
    /// console log, QMP socket). Created if missing.
    pub dir: PathBuf,
    /// Fabric ports: node ids `1..=fabric_ports` (members without a VM
    /// still get a port, so a test can inject their frames).
    pub fabric_ports: NodeId,
    /// Seed of the fabric's fault generators.
    pub fabric_seed: u64,
    /// The nodes that have a VM.
    pub nodes: Vec<NodeLaunch>,
    /// Attach `node-<id>/disk.img` of this many MiB (created blank and
    /// sparse if missing, reused otherwise). `None`: no disk.
    pub disk_mib: Option<u64>,
    /// Boot these images instead of building them.
    pub images: Option<Images>,
    /// Append each node's console to `node-<id>/console.log` as it arrives.
    pub console_logs: bool,
    /// Open a QMP socket per node (needed by pause and resume).
    pub qmp: bool,
    /// The VMs' hard timeout for console waits.
    pub timeout: Duration,
    /// Remove `dir` when the cluster is dropped.
    pub remove_dir_on_drop: bool,
}

impl LaunchSpec {
    /// A spec for every member of `plan`, with disks of `disk_mib` MiB,
    /// QMP, console logs, in `dir` (kept on drop).
    pub fn from_plan(
        name: &str,
        plan: &ClusterPlan,
        dir: &Path,
        disk_mib: u64,
    ) -> Result<LaunchSpec, String> {
        let nodes = plan
            .member_ids()
            .into_iter()
            .map(|id| {
                Ok(NodeLaunch::new(
                    id,
                    plan.node_config(id).map_err(|e| e.to_string())?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(LaunchSpec {
            name: name.into(),
            dir: dir.to_owned(),
            fabric_ports: plan.member_ids().last().map_or(1, |&id| id),
            fabric_seed: 1,
            nodes,
            disk_mib: Some(disk_mib),
            images: None,
            console_logs: true,
            qmp: true,
            timeout: crate::DEFAULT_TIMEOUT,
            remove_dir_on_drop: false,
        })
    }
}

/// What a node's VM is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Running,
    /// Running, guest CPUs stopped over QMP.
    Paused,
    /// No QEMU process: killed, exited by itself, or never started.
    Down,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeState::Running => "running",
            NodeState::Paused => "paused",
            NodeState::Down => "down",
        })
    }
}

pub struct Cluster {
    pub name: String,
    pub fabric: FabricHandle,
    /// The VMs started so far (a killed node's VM stays here, dead, with
    /// its console, until the node is started again).
    pub vms: Vec<Vm>,
    /// Host TCP ports forwarded to each launched node's status port, in
    /// node order.
    pub status_ports: Vec<u16>,
    /// Host UDP ports forwarded to each node's client port.
    pub client_ports: Vec<u16>,
    pub dir: PathBuf,
    spec: LaunchSpec,
    cluster_id: u64,
    paused: std::collections::BTreeSet<NodeId>,
}

/// Replaces the lines of `base` whose key an `extra` line sets (except
/// `peer`, which repeats), then appends the extra lines.
pub fn merge_config(base: &str, extra: &[&str]) -> String {
    let key = |line: &str| line.split('=').next().map(|k| k.trim().to_owned());
    let replaced: Vec<String> = extra
        .iter()
        .filter_map(|l| key(l))
        .filter(|k| k != "peer" && !k.is_empty())
        .collect();
    let mut out = String::new();
    for line in base.lines() {
        if !line.trim_start().starts_with('#') && key(line).is_some_and(|k| replaced.contains(&k)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    for line in extra {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Guest memory a node needs beyond its heap: the kernel image, page
/// tables, DMA buffers and the bootloader's structures.
pub const VM_MEMORY_BEYOND_HEAP_MIB: u32 = 192;

impl Cluster {
    /// Starts a test cluster: nodes `1..=spec.nodes` plus phantom members,
    /// keys [`node_key`]`(name, id)`, cluster id [`CLUSTER_ID`], no disks
    /// (so no consensus node runs: the network tests' clusters). Panics on
    /// failure.
    pub fn start(spec: ClusterSpec) -> Cluster {
        let dir = std::env::temp_dir().join(format!("ctm-{}-{}", spec.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let members: Vec<NodeId> = (1..=spec.nodes)
            .chain(spec.phantom_members.iter().copied())
            .collect();
        let plan = ClusterPlan::for_test(&spec.name, CLUSTER_ID, &members)
            .unwrap_or_else(|e| panic!("cluster {}: {e}", spec.name));
        let nodes = (1..=spec.nodes)
            .map(|id| {
                let extra: Vec<&str> = spec
                    .extra_config
                    .iter()
                    .filter(|(node, _)| *node == id)
                    .map(|(_, line)| line.as_str())
                    .collect();
                let base = plan.node_config(id).unwrap_or_else(|e| panic!("{e}"));
                NodeLaunch::new(id, merge_config(&base, &extra))
            })
            .collect();
        Cluster::launch(LaunchSpec {
            name: spec.name.clone(),
            dir,
            fabric_ports: members.iter().copied().max().unwrap_or(1),
            fabric_seed: spec.seed,
            nodes,
            disk_mib: None,
            images: None,
            console_logs: false,
            qmp: false,
            timeout: crate::DEFAULT_TIMEOUT,
            remove_dir_on_drop: true,
        })
        .unwrap_or_else(|e| panic!("cluster {}: {e}", spec.name))
    }

    /// Starts the fabric and boots every node of `spec` marked `boot`.
    pub fn launch(spec: LaunchSpec) -> Result<Cluster, String> {
        crate::private::create_private_dir(&spec.dir)
            .map_err(|e| format!("cannot create {}: {e}", spec.dir.display()))?;
        let fabric_config = FabricConfig {
            dir: spec.dir.join("fabric"),
            nodes: spec.fabric_ports,
            seed: spec.fabric_seed,
        };
        let mut cluster_id = None;
        for node in &spec.nodes {
            if node.id > spec.fabric_ports || node.id == 0 {
                return Err(format!(
                    "node {} has no fabric port (ports are 1..={})",
                    node.id, spec.fabric_ports
                ));
            }
            let config = continuum_config::Config::parse(node.config.as_bytes())
                .map_err(|e| format!("node {}: {e}", node.id))?;
            if config.node_id != node.id {
                return Err(format!(
                    "the config of node {} says node_id = {}",
                    node.id, config.node_id
                ));
            }
            if cluster_id.is_some_and(|c| c != config.cluster_id) {
                return Err("the node configs name different cluster ids".into());
            }
            cluster_id = Some(config.cluster_id);
            let node_dir = spec.dir.join(format!("node-{}", node.id));
            for socket in [fabric_config.vm_path(node.id), node_dir.join("qmp.sock")] {
                if socket.as_os_str().len() > MAX_SOCKET_PATH {
                    return Err(format!(
                        "socket path {} is longer than {MAX_SOCKET_PATH} bytes (a unix socket limit): use a shorter directory",
                        socket.display()
                    ));
                }
            }
        }
        let fabric = Fabric::start(fabric_config).map_err(|e| format!("fabric: {e}"))?;
        let mut cluster = Cluster {
            name: spec.name.clone(),
            fabric,
            vms: Vec::new(),
            status_ports: spec.nodes.iter().map(|n| n.status_port).collect(),
            client_ports: spec.nodes.iter().map(|n| n.client_port).collect(),
            dir: spec.dir.clone(),
            cluster_id: cluster_id.unwrap_or(CLUSTER_ID),
            paused: Default::default(),
            spec,
        };
        let boot: Vec<NodeId> = cluster
            .spec
            .nodes
            .iter()
            .filter(|n| n.boot)
            .map(|n| n.id)
            .collect();
        for id in boot {
            cluster.start_node(id)?;
        }
        Ok(cluster)
    }

    fn node_launch(&self, id: NodeId) -> Result<&NodeLaunch, String> {
        self.spec
            .nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("node {id} is not a node of cluster {}", self.name))
    }

    /// The cluster id of the node configs.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Ids of the nodes that have a VM (running or not).
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.spec.nodes.iter().map(|n| n.id).collect()
    }

    /// What [`Cluster::launch`] was given.
    pub fn spec(&self) -> &LaunchSpec {
        &self.spec
    }

    /// Node `id`'s directory (config, disk, console log, QMP socket).
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// Node `id`'s disk image, if the cluster has disks.
    pub fn disk_path(&self, id: NodeId) -> Option<PathBuf> {
        self.spec
            .disk_mib
            .map(|_| self.node_dir(id).join("disk.img"))
    }

    /// Node `id`'s live console log, if console logs are on.
    pub fn console_path(&self, id: NodeId) -> Option<PathBuf> {
        self.spec
            .console_logs
            .then(|| self.node_dir(id).join("console.log"))
    }

    /// Host status (TCP) port of node `id`.
    pub fn status_port(&self, id: NodeId) -> Option<u16> {
        self.node_launch(id).ok().map(|n| n.status_port)
    }

    /// Host client (UDP) port of node `id`.
    pub fn client_port(&self, id: NodeId) -> Option<u16> {
        self.node_launch(id).ok().map(|n| n.client_port)
    }

    fn vm_name(&self, id: NodeId) -> String {
        format!("{}-node{id}", self.name)
    }

    /// Node `id`'s VM (the latest one started), if it was ever started.
    pub fn vm(&self, id: NodeId) -> Option<&Vm> {
        let name = self.vm_name(id);
        self.vms.iter().find(|vm| vm.name() == name)
    }

    /// Types `text` into node `id`'s serial console (its shell, e.g.
    /// `clock step 3000\n`).
    pub fn type_console(&mut self, id: NodeId, text: &str) -> Result<(), String> {
        let vm = self
            .vm_mut(id)
            .ok_or_else(|| format!("node {id} was never started"))?;
        vm.type_console(text)
            .map_err(|e| format!("node {id}'s console: {e}"))
    }

    fn vm_mut(&mut self, id: NodeId) -> Option<&mut Vm> {
        let name = self.vm_name(id);
        self.vms.iter_mut().find(|vm| vm.name() == name)
    }

    /// How node `id`'s last QEMU ended, if it has (`None` while it runs or
    /// if it never started).
    pub fn exit_status(&mut self, id: NodeId) -> Option<std::process::ExitStatus> {
        self.vm_mut(id).and_then(|vm| vm.exit_status())
    }

    /// What node `id`'s VM is doing.
    pub fn node_state(&mut self, id: NodeId) -> NodeState {
        let paused = self.paused.contains(&id);
        let running = self.vm_mut(id).is_some_and(|vm| vm.is_running());
        match (running, paused) {
            (false, _) => NodeState::Down,
            (true, true) => NodeState::Paused,
            (true, false) => NodeState::Running,
        }
    }

    /// The VM config node `id` boots with.
    pub fn vm_config(&self, id: NodeId) -> Result<VmConfig, String> {
        let node = self.node_launch(id)?;
        let dir = self.node_dir(id);
        let mut vm = VmConfig::new(&self.vm_name(id));
        // Room for the heap plus the kernel, page tables and DMA buffers.
        let heap_mib = continuum_config::Config::parse(node.config.as_bytes())
            .map_err(|e| format!("node {id}: {e}"))?
            .heap_mib;
        vm.memory_mib = vm.memory_mib.max(heap_mib + VM_MEMORY_BEYOND_HEAP_MIB);
        let mut vm = vm
            .files_in(&dir)
            .node_config(&node.config)
            .timeout(self.spec.timeout)
            .nic(
                &self.fabric.config().qemu_netdev(id, "lan"),
                "lan",
                Some(&mac_text(lan_mac(id))),
            )
            .client_nic(node.status_port, node.client_port);
        if let Some(mib) = self.spec.disk_mib {
            let disk = dir.join("disk.img");
            if !disk.exists() {
                crate::private::create_private_dir(&dir)
                    .and_then(|()| std::fs::File::create(&disk))
                    .and_then(|file| file.set_len(mib * 1024 * 1024))
                    .map_err(|e| format!("cannot create disk {}: {e}", disk.display()))?;
            }
            vm = vm
                .disk_of(node.disk_kind, &disk, crate::DiskCache::Writeback)
                .disk_fault(node.disk_fault);
        }
        if node.rtc_offset_s != 0 {
            let base = crate::faults::rtc_base(node.rtc_offset_s)
                .map_err(|e| format!("node {id}: {e}"))?;
            vm.extra_args
                .extend(["-rtc".to_string(), format!("base={base}")]);
        }
        if let Some(images) = &self.spec.images {
            vm = vm.prebuilt_images(images);
        }
        if self.spec.console_logs {
            vm = vm.console_log(&dir.join("console.log"));
        }
        if self.spec.qmp {
            vm = vm.qmp();
        }
        Ok(vm)
    }

    /// Sets node `id`'s wall clock offset and disk fault for its next boot.
    pub fn set_node_faults(
        &mut self,
        id: NodeId,
        rtc_offset_s: i64,
        disk_fault: Option<crate::faults::DiskFault>,
    ) -> Result<(), String> {
        crate::faults::rtc_base(rtc_offset_s)?;
        let node = self
            .spec
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("node {id} is not a node of cluster {}", self.name))?;
        node.rtc_offset_s = rtc_offset_s;
        node.disk_fault = disk_fault;
        Ok(())
    }

    /// Boots node `id` (on its existing disk, if any). Fails if it runs.
    pub fn start_node(&mut self, id: NodeId) -> Result<(), String> {
        if self.node_state(id) != NodeState::Down {
            return Err(format!("node {id} is already running"));
        }
        let config = self.vm_config(id)?;
        // QEMU binds its end of the LAN socket; a killed QEMU leaves it behind.
        let _ = std::fs::remove_file(self.fabric.config().vm_path(id));
        let vm = config.try_start()?;
        self.paused.remove(&id);
        let name = self.vm_name(id);
        self.vms.retain(|vm| vm.name() != name);
        self.vms.push(vm);
        Ok(())
    }

    /// SIGKILLs node `id`'s QEMU (a crash: nothing unflushed survives).
    pub fn kill(&mut self, id: NodeId) -> Result<(), String> {
        self.node_launch(id)?;
        self.paused.remove(&id);
        match self.vm_mut(id) {
            Some(vm) => {
                vm.kill();
                Ok(())
            }
            None => Err(format!("node {id} was never started")),
        }
    }

    /// kill -9, then boot again on the same disk.
    pub fn restart(&mut self, id: NodeId) -> Result<(), String> {
        if self.vm(id).is_some() {
            self.kill(id)?;
        }
        self.start_node(id)
    }

    /// Freezes node `id`'s guest (QMP `stop`).
    pub fn pause(&mut self, id: NodeId) -> Result<(), String> {
        if self.node_state(id) == NodeState::Down {
            return Err(format!("node {id} is not running"));
        }
        let vm = self
            .vm(id)
            .ok_or_else(|| format!("node {id} was never started"))?;
        vm.pause().map_err(|e| format!("node {id}: {e}"))?;
        self.paused.insert(id);
        Ok(())
    }

    /// Resumes node `id`'s guest (QMP `cont`).
    pub fn resume(&mut self, id: NodeId) -> Result<(), String> {
        if self.node_state(id) == NodeState::Down {
            return Err(format!("node {id} is not running"));
        }
        let vm = self
            .vm(id)
            .ok_or_else(|| format!("node {id} was never started"))?;
        vm.resume().map_err(|e| format!("node {id}: {e}"))?;
        self.paused.remove(&id);
        Ok(())
    }

    /// Replaces the partitions: a link is open iff a group holds both ends.
    pub fn partition(&self, groups: &[Vec<NodeId>]) -> Result<(), String> {
        self.fabric.partition(groups).map_err(|e| e.to_string())
    }

    /// The lower half of the nodes (rounded down) against the rest.
    pub fn partition_halves(&self) -> Result<(), String> {
        self.partition(&shape_halves(&self.node_ids()))
    }

    /// Each node linked only to its two ring neighbours.
    pub fn partition_ring(&self) -> Result<(), String> {
        self.partition(&shape_ring(&self.node_ids()))
    }

    /// Two halves that both see the middle node (the bridge).
    pub fn partition_bridge(&self) -> Result<(), String> {
        self.partition(&shape_bridge(&self.node_ids()))
    }

    /// Cuts every link of node `id` (in addition to current partitions).
    pub fn isolate(&self, id: NodeId) -> Result<(), String> {
        self.fabric.isolate(id).map_err(|e| e.to_string())
    }

    /// Removes every partition (link faults stay).
    pub fn heal(&self) -> Result<(), String> {
        self.fabric.heal().map_err(|e| e.to_string())
    }

    /// Drops `percent` % of frames on the directed link `from → to`.
    pub fn set_loss(&self, from: NodeId, to: NodeId, percent: f64) -> Result<(), String> {
        let faults = loss_faults(percent)?;
        self.fabric
            .set_link(from, to, &faults)
            .map_err(|e| e.to_string())
    }

    /// Drops `percent` % of frames on every link.
    pub fn set_loss_all(&self, percent: f64) -> Result<(), String> {
        let faults = loss_faults(percent)?;
        self.fabric
            .set_all_links(&faults)
            .map_err(|e| e.to_string())
    }

    /// No partitions and no link faults.
    pub fn reset_network(&self) -> Result<(), String> {
        self.fabric.reset().map_err(|e| e.to_string())
    }

    /// A client of every node with a VM.
    pub fn client(&self) -> Result<Client, ClientError> {
        let endpoints = self
            .spec
            .nodes
            .iter()
            .map(|n| Endpoint {
                node: n.id,
                addr: ([127, 0, 0, 1], n.client_port).into(),
            })
            .collect();
        let window = self
            .spec
            .nodes
            .first()
            .and_then(|n| continuum_config::Config::parse(n.config.as_bytes()).ok())
            .map_or(continuum_config::DEFAULT_DEDUP_WINDOW_MS, |c| {
                c.dedup_window_ms
            });
        Client::new(self.cluster_id, endpoints).map(|c| c.with_window(window))
    }

    /// Waits until a majority of the nodes name the same leader in
    /// `/status` and that leader says it leads; returns its id.
    pub fn wait_leader(&self, timeout: Duration) -> Result<NodeId, String> {
        let deadline = Instant::now() + timeout;
        let majority = self.spec.nodes.len() / 2 + 1;
        let mut last = String::from("no status yet");
        while Instant::now() < deadline {
            let mut views = Vec::new();
            for node in &self.spec.nodes {
                match self.status_of(node.id) {
                    Ok(status) => views.push((node.id, status)),
                    Err(e) => last = format!("node {}: {e}", node.id),
                }
            }
            for (id, status) in &views {
                if status["raft"]["role"] != "leader" {
                    continue;
                }
                let followers = views
                    .iter()
                    .filter(|(_, s)| s["raft"]["leader"] == *id)
                    .count();
                if followers >= majority {
                    return Ok(*id);
                }
                last = format!("node {id} leads, {followers} node(s) agree");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Err(format!("no leader within {timeout:?} ({last})"))
    }

    fn status_of(&self, id: NodeId) -> Result<serde_json::Value, String> {
        let port = self.status_port(id).ok_or("no such node")?;
        let body = http_get(port, "/status")?;
        serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}): {body}"))
    }

    /// Node `id`'s `/status` as JSON, or why not.
    pub fn status(&self, id: NodeId) -> Result<serde_json::Value, String> {
        self.status_of(id)
    }

    /// Polls until `check` holds for node `id`'s status; panics with the
    /// node's console and last status after `timeout`.
    pub fn wait_status(
        &mut self,
        id: NodeId,
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
            self.vm(id).map_or(String::from("(never started)"), |vm| vm.console_text())
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.vms.clear();
        if self.spec.remove_dir_on_drop {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
