//! The running fabric: sockets and threads around the [`Switch`] core.
//!
//! ```text
//!  VM i ──datagram──▶ switch-i.sock ─[ingress thread i]─┐
//!                                                       ├─▶ events ─▶ [core thread: Switch]
//!  control.sock ─[control thread]─[connection threads]──┘   (control_server.rs)                 │
//!  VM j ◀──datagram── switch-j.sock ◀─[egress thread j]◀─ egress queue j ◀┘
//! ```
//!
//! One switch-side unix datagram socket per port: whatever arrives on
//! `switch-i.sock` came from node i, and replies leave from the same socket so
//! QEMU sees them come from its configured remote address. Egress has its own
//! thread and bounded queue per port, so a paused or dead VM (whose socket
//! queue is full) never stalls the other ports; its frames are dropped and
//! counted. No IP traffic and no privileges: only files in the run directory.

use continuum_base::NodeId;
use std::io;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::control::{decode_hex, Request};
use crate::control_server::{control_loop, submit};
use crate::ethernet::MAX_FRAME_BYTES;
use crate::faults::LinkFaults;
use crate::switch::{Stats, Switch};

/// Frames waiting for the core thread; ingress threads block when it is
/// full, which backs pressure up into the VMs' socket queues.
pub const INGRESS_QUEUE_FRAMES: usize = 4096;
/// Frames waiting to be written to one VM; beyond it frames are dropped and
/// counted `egress_queue_full` (a paused VM must not grow memory).
pub const EGRESS_QUEUE_FRAMES: usize = 1024;
/// How long an egress write may block on a VM's full socket queue.
pub const EGRESS_SEND_TIMEOUT: Duration = Duration::from_millis(200);
/// How often idle threads look at the stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(50);

/// What the fabric is started with.
#[derive(Clone, Debug)]
pub struct FabricConfig {
    /// Directory for the socket files (created if missing).
    pub dir: PathBuf,
    /// Number of ports = nodes, numbered 1..=nodes.
    pub nodes: NodeId,
    /// Seed of every link's fault generator.
    pub seed: u64,
}

impl FabricConfig {
    /// The switch-side socket of `port` (QEMU's `remote.path`).
    pub fn switch_path(&self, port: NodeId) -> PathBuf {
        self.dir.join(format!("switch-{port}.sock"))
    }

    /// The VM-side socket of `port` (QEMU's `local.path`; QEMU binds it).
    pub fn vm_path(&self, port: NodeId) -> PathBuf {
        self.dir.join(format!("node-{port}.sock"))
    }

    /// The control socket.
    pub fn control_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// The QEMU `-netdev` argument that attaches node `port` to the fabric.
    pub fn qemu_netdev(&self, port: NodeId, netdev_id: &str) -> String {
        format!(
            "dgram,id={netdev_id},local.type=unix,local.path={},remote.type=unix,remote.path={}",
            self.vm_path(port).display(),
            self.switch_path(port).display()
        )
    }
}

/// Why the fabric could not start or a request failed.
#[derive(Debug)]
pub enum FabricError {
    InvalidConfig(String),
    /// Another fabric answers on the control socket in this directory.
    AlreadyRunning(PathBuf),
    Io {
        context: String,
        source: io::Error,
    },
    /// The fabric refused a request (the reason is the fabric's message).
    Refused(String),
    /// The fabric has stopped.
    Stopped,
}

impl std::fmt::Display for FabricError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FabricError::InvalidConfig(why) => write!(f, "invalid fabric config: {why}"),
            FabricError::AlreadyRunning(path) => {
                write!(f, "a fabric is already running on {}", path.display())
            }
            FabricError::Io { context, source } => write!(f, "{context}: {source}"),
            FabricError::Refused(why) => write!(f, "request refused: {why}"),
            FabricError::Stopped => write!(f, "the fabric has stopped"),
        }
    }
}

impl std::error::Error for FabricError {}

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> FabricError {
    let context = context.into();
    move |source| FabricError::Io { context, source }
}

pub(crate) enum Event {
    Frame {
        port: NodeId,
        frame: Vec<u8>,
    },
    Control {
        request: Request,
        reply: mpsc::Sender<Result<Value, String>>,
    },
}

/// Egress counters shared between the egress threads and the core.
#[derive(Default)]
struct EgressCounters {
    sent: AtomicU64,
    errors: AtomicU64,
    queue_full: AtomicU64,
}

/// Starts fabrics.
pub struct Fabric;

/// Narrows a socket the fabric bound to mode 0600.
fn owner_only(path: &std::path::Path) -> Result<(), FabricError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(format!("restricting {}", path.display())))
}

impl Fabric {
    /// Binds the sockets and starts the threads.
    pub fn start(config: FabricConfig) -> Result<FabricHandle, FabricError> {
        let switch = Switch::new(config.nodes, config.seed).map_err(FabricError::InvalidConfig)?;
        // The sockets let anyone who can reach them cut links and inject
        // frames: owner only, directory 0700 and each socket 0600.
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.dir)
                .and_then(|()| {
                    std::fs::set_permissions(&config.dir, std::fs::Permissions::from_mode(0o700))
                })
                .map_err(io_error(format!("creating {}", config.dir.display())))?;
        }
        let control_path = config.control_path();
        if UnixStream::connect(&control_path).is_ok() {
            return Err(FabricError::AlreadyRunning(control_path));
        }
        // Nobody answers: leftovers of a killed fabric may be removed.
        remove_if_present(&control_path);
        let mut sockets = Vec::new();
        for port in 1..=config.nodes {
            let path = config.switch_path(port);
            remove_if_present(&path);
            let socket = UnixDatagram::bind(&path)
                .map_err(io_error(format!("binding {}", path.display())))?;
            owner_only(&path)?;
            sockets.push(socket);
        }
        let listener = UnixListener::bind(&control_path)
            .map_err(io_error(format!("binding {}", control_path.display())))?;
        owner_only(&control_path)?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("control socket"))?;

        let stop = Arc::new(AtomicBool::new(false));
        let (events_tx, events_rx) = mpsc::sync_channel(INGRESS_QUEUE_FRAMES);
        let egress_counters: Arc<Vec<EgressCounters>> = Arc::new(
            (0..config.nodes)
                .map(|_| EgressCounters::default())
                .collect(),
        );
        let mut threads = Vec::new();
        let mut egress_queues = Vec::new();
        for (index, socket) in sockets.into_iter().enumerate() {
            let port = index as NodeId + 1;
            let clone_err = io_error(format!("port {port} socket"));
            let send_socket = socket.try_clone().map_err(clone_err)?;
            socket
                .set_read_timeout(Some(STOP_POLL))
                .map_err(io_error("socket timeout"))?;
            send_socket
                .set_write_timeout(Some(EGRESS_SEND_TIMEOUT))
                .map_err(io_error("socket timeout"))?;
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(EGRESS_QUEUE_FRAMES);
            egress_queues.push(tx);
            let vm_path = config.vm_path(port);
            let counters = Arc::clone(&egress_counters);
            threads.push(spawn(format!("fabric-egress-{port}"), move || {
                egress_loop(send_socket, vm_path, rx, &counters[index])
            })?);
            let (events, stop) = (events_tx.clone(), Arc::clone(&stop));
            threads.push(spawn(format!("fabric-ingress-{port}"), move || {
                ingress_loop(port, socket, events, stop)
            })?);
        }
        {
            let (events, stop) = (events_tx.clone(), Arc::clone(&stop));
            threads.push(spawn("fabric-control".to_string(), move || {
                control_loop(listener, events, stop)
            })?);
        }
        let core_stop = Arc::clone(&stop);
        let core_config = config.clone();
        let core_counters = Arc::clone(&egress_counters);
        threads.push(spawn("fabric-core".to_string(), move || {
            core_loop(
                switch,
                &core_config,
                events_rx,
                egress_queues,
                &core_counters,
                core_stop,
            )
        })?);
        Ok(FabricHandle {
            config,
            events: events_tx,
            stop,
            threads,
        })
    }
}

fn spawn(
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, FabricError> {
    thread::Builder::new()
        .name(name.clone())
        .spawn(body)
        .map_err(io_error(format!("spawning {name}")))
}

fn remove_if_present(path: &Path) {
    // A missing file is the normal case; any other error shows up at bind.
    let _ = std::fs::remove_file(path);
}

fn ingress_loop(
    port: NodeId,
    socket: UnixDatagram,
    events: SyncSender<Event>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; MAX_FRAME_BYTES + 1];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv(&mut buf) {
            Ok(len) => {
                let frame = buf[..len].to_vec();
                if events.send(Event::Frame { port, frame }).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => thread::sleep(STOP_POLL),
        }
    }
}

fn egress_loop(
    socket: UnixDatagram,
    vm_path: PathBuf,
    queue: Receiver<Vec<u8>>,
    counters: &EgressCounters,
) {
    // Ends when the core drops the queue's sender.
    for frame in queue {
        match socket.send_to(&frame, &vm_path) {
            Ok(_) => counters.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn core_loop(
    mut switch: Switch,
    config: &FabricConfig,
    events: Receiver<Event>,
    egress: Vec<SyncSender<Vec<u8>>>,
    counters: &[EgressCounters],
    stop: Arc<AtomicBool>,
) {
    let start = Instant::now();
    let now_us = || start.elapsed().as_micros() as u64;
    loop {
        let now = now_us();
        while let Some(delivery) = switch.pop_due(now) {
            let index = (delivery.to - 1) as usize;
            if let Err(TrySendError::Full(_)) = egress[index].try_send(delivery.frame) {
                counters[index].queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let wait = switch
            .next_due()
            .map(|due| Duration::from_micros(due.saturating_sub(now)))
            .unwrap_or(STOP_POLL)
            .min(STOP_POLL);
        match events.recv_timeout(wait) {
            Ok(Event::Frame { port, frame }) => switch.ingress(now_us(), port, &frame, false),
            Ok(Event::Control { request, reply }) => {
                let shutdown = request == Request::Shutdown;
                let answer = handle_request(&mut switch, config, counters, request, now_us());
                // The requester may have gone away; nothing to do then.
                let _ = reply.send(answer);
                if shutdown {
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn stats_with_egress(switch: &Switch, counters: &[EgressCounters]) -> Stats {
    let mut stats = switch.stats();
    for (entry, counter) in stats.ports.iter_mut().zip(counters) {
        entry.stats.egress_sent = counter.sent.load(Ordering::Relaxed);
        entry.stats.egress_errors = counter.errors.load(Ordering::Relaxed);
        entry.stats.egress_queue_full = counter.queue_full.load(Ordering::Relaxed);
    }
    stats
}

fn handle_request(
    switch: &mut Switch,
    config: &FabricConfig,
    counters: &[EgressCounters],
    request: Request,
    now_us: u64,
) -> Result<Value, String> {
    match request {
        Request::Partition { groups } => switch.partition(&groups)?,
        Request::Isolate { node } => switch.isolate(node)?,
        Request::Block { from, to } => switch.set_blocked(from, to, true)?,
        Request::Unblock { from, to } => switch.set_blocked(from, to, false)?,
        Request::Heal => switch.heal(),
        Request::Link { from, to, .. } => {
            let faults = request.faults().expect("a link request");
            switch.set_link(from, to, faults)?
        }
        Request::Links { .. } => {
            switch.set_all_links(request.faults().expect("a links request"))?
        }
        Request::Reset => switch.reset(),
        Request::Stats => {
            let stats = stats_with_egress(switch, counters);
            let stats = serde_json::to_value(stats).map_err(|e| e.to_string())?;
            return Ok(json!({ "ok": true, "stats": stats }));
        }
        Request::Inject { port, frame_hex } => {
            crate::topology::check_node(switch.nodes(), port)?;
            let frame = decode_hex(&frame_hex)?;
            switch.ingress(now_us, port, &frame, true);
        }
        Request::Status => {
            let ports: Vec<Value> = (1..=switch.nodes())
                .map(|port| {
                    json!({
                        "port": port,
                        "switch_path": config.switch_path(port),
                        "vm_path": config.vm_path(port),
                        "qemu_netdev": config.qemu_netdev(port, &format!("n{port}")),
                    })
                })
                .collect();
            return Ok(json!({
                "ok": true,
                "nodes": switch.nodes(),
                "seed": switch.seed(),
                "control_path": config.control_path(),
                "ports": ports,
            }));
        }
        Request::Shutdown => {}
    }
    Ok(json!({ "ok": true }))
}

/// A running fabric. Dropping it shuts it down.
pub struct FabricHandle {
    config: FabricConfig,
    events: SyncSender<Event>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FabricHandle {
    pub fn config(&self) -> &FabricConfig {
        &self.config
    }

    /// Sends any control request, as the control socket would.
    pub fn request(&self, request: Request) -> Result<Value, FabricError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(FabricError::Stopped);
        }
        submit(&self.events, request).map_err(FabricError::Refused)
    }

    fn command(&self, request: Request) -> Result<(), FabricError> {
        self.request(request).map(|_| ())
    }

    /// Replaces partitions: a link is open iff a group holds both ends.
    pub fn partition(&self, groups: &[Vec<NodeId>]) -> Result<(), FabricError> {
        self.command(Request::Partition {
            groups: groups.to_vec(),
        })
    }

    /// Additionally blocks every link into and out of `node`.
    pub fn isolate(&self, node: NodeId) -> Result<(), FabricError> {
        self.command(Request::Isolate { node })
    }

    /// Blocks one directed link.
    pub fn block(&self, from: NodeId, to: NodeId) -> Result<(), FabricError> {
        self.command(Request::Block { from, to })
    }

    /// Unblocks one directed link.
    pub fn unblock(&self, from: NodeId, to: NodeId) -> Result<(), FabricError> {
        self.command(Request::Unblock { from, to })
    }

    /// Removes all partitions.
    pub fn heal(&self) -> Result<(), FabricError> {
        self.command(Request::Heal)
    }

    /// Replaces the fault plan of `from → to`.
    pub fn set_link(
        &self,
        from: NodeId,
        to: NodeId,
        faults: &LinkFaults,
    ) -> Result<(), FabricError> {
        self.command(Request::link(from, to, faults))
    }

    /// Replaces the fault plan of every link.
    pub fn set_all_links(&self, faults: &LinkFaults) -> Result<(), FabricError> {
        self.command(Request::links(faults))
    }

    /// No partitions, no faults.
    pub fn reset(&self) -> Result<(), FabricError> {
        self.command(Request::Reset)
    }

    /// Injects `frame` as if it arrived on `port` (not learned).
    pub fn inject(&self, port: NodeId, frame: &[u8]) -> Result<(), FabricError> {
        self.command(Request::inject(port, frame))
    }

    /// All counters (JSON, as the control socket returns them).
    pub fn stats(&self) -> Result<Value, FabricError> {
        let mut reply = self.request(Request::Stats)?;
        Ok(reply["stats"].take())
    }

    /// Whether the fabric is still running (a control `shutdown` stops it).
    pub fn is_running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    /// Stops every thread and removes the socket files this fabric created.
    pub fn shutdown(mut self) {
        self.stop_and_clean();
    }

    fn stop_and_clean(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        remove_if_present(&self.config.control_path());
        for port in 1..=self.config.nodes {
            remove_if_present(&self.config.switch_path(port));
        }
    }
}

impl Drop for FabricHandle {
    fn drop(&mut self) {
        self.stop_and_clean();
    }
}
