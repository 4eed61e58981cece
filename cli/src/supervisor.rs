//! `cluster up`: the supervisor that owns a running cluster.
//!
//! The fabric switch runs as threads of this process and every QEMU is its
//! child, so one process must live as long as the cluster: the supervisor.
//! `cluster up --foreground` *is* the supervisor (Ctrl-C stops everything);
//! plain `cluster up` starts `cluster up --foreground` in the background
//! (its own process group, output in `run/supervisor.log`), waits until it
//! reports the cluster running, prints where everything is and returns.
//!
//! The supervisor keeps `run/state.json` current (pids, ports, node
//! states) and answers one JSON line per connection on `run/control.sock`:
//!
//! ```text
//! {"cmd":"start","node":4}     boot node 4 if it is down (a spare, for add-node)
//! {"cmd":"kill","node":2}      SIGKILL node 2's QEMU
//! {"cmd":"restart","node":2}   kill (if running), boot again on the same disk
//! {"cmd":"pause","node":2}     QMP stop          {"cmd":"resume","node":2}  QMP cont
//! {"cmd":"skew","node":2,"ms":3000}  type `clock step 3000` into node 2's serial shell
//! {"cmd":"shutdown"}           stop every node and the fabric, then exit
//! ```
//!
//! Answers: `{"ok":true}` or `{"ok":false,"error":"..."}`. Partitions and
//! packet loss go straight to the fabric's own control socket.

use crate::error::CliError;
use crate::layout::{pid_alive, Layout, NodeRun, Phase, RunState};
use continuum_harness::cluster::{Cluster, LaunchSpec, NodeLaunch, NodeState};
use continuum_harness::faults::DiskFault;
use continuum_harness::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the supervisor looks at its nodes, its socket and the signals.
const LOOP_INTERVAL: Duration = Duration::from_millis(100);
/// Longest control request line.
const MAX_CONTROL_LINE: u64 = 4096;
/// How long a control connection may take to send its line.
const CONTROL_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `cluster up` waits for the background supervisor to report.
const BACKGROUND_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `cluster down` waits for the supervisor to exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// VMs of a CLI cluster run until stopped; this bounds only console waits,
/// which the CLI does not use.
const VM_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// A supervisor control request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Boot a node that is down (a spare for `cluster add-node`); refused
    /// if it runs.
    Start {
        node: NodeId,
    },
    Kill {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    Pause {
        node: NodeId,
    },
    Resume {
        node: NodeId,
    },
    /// Step the running node's wall clock by `ms` (its shell's `clock step`).
    Skew {
        node: NodeId,
        ms: i64,
    },
    /// kill -9 (if running) and boot again with the wall clock
    /// `rtc_offset_s` seconds off and the disk failing as `disk_fault`
    /// (`write-error`, `flush-error`, `full`; absent: a sane disk).
    Reboot {
        node: NodeId,
        #[serde(default)]
        rtc_offset_s: i64,
        #[serde(default)]
        disk_fault: Option<String>,
    },
    Shutdown,
}

/// What `cluster up` was asked for.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Boot nodes 1..=N (default all members).
    pub nodes: Option<NodeId>,
    pub images: PathBuf,
    pub disk_mib: u64,
    /// Disk kind of members whose cluster.json entry names none.
    pub disk: continuum_harness::DiskKind,
}

/// Fails if a supervisor of this directory is alive.
fn check_not_running(layout: &Layout) -> Result<(), CliError> {
    if let Some(state) = layout.state()? {
        if state.phase != Phase::Stopped && pid_alive(state.supervisor_pid) {
            return Err(CliError::AlreadyRunning(format!(
                "the cluster in {} is already up (supervisor pid {}); stop it with `continuum --dir {} cluster down`",
                layout.dir.display(),
                state.supervisor_pid,
                layout.dir.display()
            )));
        }
    }
    Ok(())
}

/// Which members boot: the first `nodes` (all by default).
fn members_to_boot(
    layout: &Layout,
    nodes: Option<NodeId>,
) -> Result<(Vec<NodeId>, usize), CliError> {
    let facts = layout.facts()?;
    let members = facts.member_ids();
    let boot = nodes.map_or(members.len(), |n| n as usize);
    if boot > members.len() {
        return Err(CliError::Other(format!(
            "the cluster in {} has {} nodes, so --nodes {boot} cannot boot; a {boot}-node cluster needs its own directory: `continuum --dir <other dir> cluster init --nodes {boot}`",
            layout.dir.display(),
            members.len()
        )));
    }
    Ok((members, boot))
}

fn node_run(cluster: &mut Cluster, id: NodeId, last_exit: Option<String>) -> NodeRun {
    let state = cluster.node_state(id);
    let pid = match state {
        NodeState::Down => None,
        _ => cluster.vm(id).map(|vm| vm.pid()),
    };
    NodeRun {
        id,
        state: state.to_string(),
        pid,
        status_port: cluster.status_port(id).unwrap_or(0),
        client_port: cluster.client_port(id).unwrap_or(0),
        console: cluster.console_path(id).unwrap_or_default(),
        disk: cluster.disk_path(id).unwrap_or_default(),
        last_exit,
    }
}

/// Runs the cluster in this process until Ctrl-C, SIGTERM or a
/// `shutdown` request.
pub fn run_foreground(layout: &Layout, options: &UpOptions, json: bool) -> Result<(), CliError> {
    let facts = layout.facts()?;
    let (members, boot) = members_to_boot(layout, options.nodes)?;
    check_not_running(layout)?;
    let images = continuum_harness::prebuilt_images(&options.images).map_err(CliError::Other)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(CliError::io(format!("cannot handle signal {signal}")))?;
    }
    let mut nodes = Vec::new();
    for (i, &id) in members.iter().enumerate() {
        let mut node = NodeLaunch::new(id, layout.node_config(id)?);
        // A member `remove-node` removed stays down; a spare waits for
        // `add-node` (its fabric port exists from now on).
        node.boot = i < boot && facts.boots(id);
        node.disk_kind = facts
            .members
            .iter()
            .find(|m| m.id == id)
            .and_then(|m| m.disk)
            .unwrap_or(options.disk);
        nodes.push(node);
    }
    let run_dir = layout.run_dir();
    let spec = LaunchSpec {
        name: "continuum".into(),
        dir: run_dir.clone(),
        fabric_ports: members.iter().copied().max().unwrap_or(1),
        fabric_seed: facts.cluster_id,
        nodes,
        disk_mib: Some(options.disk_mib),
        images: Some(images),
        console_logs: true,
        qmp: true,
        timeout: VM_TIMEOUT,
        remove_dir_on_drop: false,
    };
    let mut cluster = Cluster::launch(spec).map_err(CliError::Other)?;
    let control_path = layout.control_path();
    // No live supervisor owns it (checked above): a leftover of a killed one.
    let _ = std::fs::remove_file(&control_path);
    let listener =
        UnixListener::bind(&control_path).map_err(CliError::io_path("listen on", &control_path))?;
    // It kills, restarts and pauses nodes: owner only (run/ is 0700 too).
    continuum_harness::private::restrict(&control_path)
        .map_err(CliError::io_path("restrict", &control_path))?;
    listener
        .set_nonblocking(true)
        .map_err(CliError::io_path("configure", &control_path))?;
    let mut last_exit: Vec<Option<String>> = vec![None; members.len()];
    let mut state = RunState {
        phase: Phase::Running,
        supervisor_pid: std::process::id(),
        cluster_id: facts.cluster_id,
        control_socket: control_path.clone(),
        fabric_control: cluster.fabric.config().control_path(),
        nodes: members
            .iter()
            .map(|&id| node_run(&mut cluster, id, None))
            .collect(),
    };
    layout.write_state(&state)?;
    print_summary(layout, &state, json, true);
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if serve_control(&mut cluster, stream) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("continuum: control socket: {e}"),
        }
        for (i, &id) in members.iter().enumerate() {
            if cluster.node_state(id) == NodeState::Down {
                if let Some(status) = cluster.exit_status(id) {
                    last_exit[i] = Some(status.to_string());
                }
            }
        }
        let nodes: Vec<NodeRun> = members
            .iter()
            .enumerate()
            .map(|(i, &id)| node_run(&mut cluster, id, last_exit[i].clone()))
            .collect();
        if nodes != state.nodes {
            for (old, new) in state.nodes.iter().zip(&nodes) {
                if old.state != new.state || old.pid != new.pid {
                    let how = new
                        .last_exit
                        .as_deref()
                        .filter(|_| new.state == "down")
                        .map(|e| format!(" (QEMU {e})"))
                        .unwrap_or_default();
                    let pid = new.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
                    println!("continuum: node {}: {}{pid}{how}", new.id, new.state);
                }
            }
            state.nodes = nodes;
            layout.write_state(&state)?;
        }
        std::thread::sleep(LOOP_INTERVAL);
    }
    state.phase = Phase::Stopping;
    layout.write_state(&state)?;
    drop(listener);
    drop(cluster);
    let _ = std::fs::remove_file(&control_path);
    state.phase = Phase::Stopped;
    for node in &mut state.nodes {
        node.state = "down".into();
        node.pid = None;
    }
    layout.write_state(&state)?;
    if !json {
        println!(
            "continuum: cluster stopped (disks kept in {})",
            run_dir.display()
        );
    }
    Ok(())
}

/// Handles one control connection; returns whether to shut down.
fn serve_control(cluster: &mut Cluster, stream: UnixStream) -> bool {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(CONTROL_READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return false;
    };
    let mut line = String::new();
    let read = BufReader::new(stream.take(MAX_CONTROL_LINE)).read_line(&mut line);
    let (reply, shutdown) = match read {
        Err(e) => (
            json!({"ok": false, "error": format!("cannot read the request: {e}")}),
            false,
        ),
        Ok(_) => match serde_json::from_str::<ControlRequest>(&line) {
            Err(e) => (
                json!({"ok": false, "error": format!("bad request: {e}")}),
                false,
            ),
            Ok(request) => {
                let result = match &request {
                    ControlRequest::Start { node } => cluster.start_node(*node),
                    ControlRequest::Kill { node } => cluster.kill(*node),
                    ControlRequest::Restart { node } => cluster.restart(*node),
                    ControlRequest::Pause { node } => cluster.pause(*node),
                    ControlRequest::Resume { node } => cluster.resume(*node),
                    ControlRequest::Skew { node, ms } => {
                        cluster.type_console(*node, &format!("clock step {ms}\n"))
                    }
                    ControlRequest::Reboot {
                        node,
                        rtc_offset_s,
                        disk_fault,
                    } => disk_fault
                        .as_deref()
                        .map(str::parse::<DiskFault>)
                        .transpose()
                        .and_then(|fault| cluster.set_node_faults(*node, *rtc_offset_s, fault))
                        .and_then(|()| cluster.restart(*node)),
                    ControlRequest::Shutdown => Ok(()),
                };
                match result {
                    Ok(()) => {
                        println!(
                            "continuum: control: {}",
                            serde_json::to_string(&request).unwrap_or_default()
                        );
                        (json!({"ok": true}), request == ControlRequest::Shutdown)
                    }
                    Err(e) => (json!({"ok": false, "error": e}), false),
                }
            }
        },
    };
    let _ = writeln!(writer, "{reply}");
    shutdown
}

/// Sends one request to the supervisor of a running cluster.
pub fn control(state: &RunState, request: &ControlRequest) -> Result<(), CliError> {
    let path = &state.control_socket;
    let stream = UnixStream::connect(path).map_err(|e| {
        CliError::NotRunning(format!(
            "the supervisor (pid {}) does not answer on {}: {e}",
            state.supervisor_pid,
            path.display()
        ))
    })?;
    // A pause or resume waits for QEMU's QMP answer (up to 5 s).
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let mut writer = stream.try_clone().map_err(CliError::io_path("use", path))?;
    let line = serde_json::to_string(request).map_err(|e| CliError::Other(e.to_string()))?;
    writeln!(writer, "{line}").map_err(CliError::io_path("write to", path))?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_CONTROL_LINE))
        .read_line(&mut answer)
        .map_err(CliError::io_path("read from", path))?;
    let answer: Value = serde_json::from_str(&answer)
        .map_err(|e| CliError::Other(format!("the supervisor answered {answer:?}: {e}")))?;
    if answer["ok"] == true {
        Ok(())
    } else {
        Err(CliError::Other(
            answer["error"]
                .as_str()
                .unwrap_or("the supervisor refused")
                .to_owned(),
        ))
    }
}

/// `cluster up` without `--foreground`: the supervisor in the background.
pub fn start_background(layout: &Layout, options: &UpOptions, json: bool) -> Result<(), CliError> {
    members_to_boot(layout, options.nodes)?;
    check_not_running(layout)?;
    continuum_harness::prebuilt_images(&options.images).map_err(CliError::Other)?;
    let run_dir = layout.run_dir();
    continuum_harness::private::create_private_dir(&run_dir)
        .map_err(CliError::io_path("create", &run_dir))?;
    let log_path = layout.supervisor_log_path();
    let log = std::fs::File::create(&log_path).map_err(CliError::io_path("create", &log_path))?;
    let log_err = log
        .try_clone()
        .map_err(CliError::io_path("use", &log_path))?;
    let exe = std::env::current_exe().map_err(CliError::io("cannot find the continuum binary"))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("--dir")
        .arg(&layout.dir)
        .args(["cluster", "up", "--foreground", "--disk-mib"])
        .arg(options.disk_mib.to_string())
        .args(["--disk", options.disk.name()])
        .arg("--images")
        .arg(&options.images);
    if let Some(nodes) = options.nodes {
        command.args(["--nodes", &nodes.to_string()]);
    }
    use std::os::unix::process::CommandExt;
    // Its own process group: a Ctrl-C in this terminal must not stop it.
    command
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(CliError::io("cannot start the supervisor"))?;
    let deadline = Instant::now() + BACKGROUND_START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::Other(format!(
                "the cluster did not come up: the supervisor exited ({status}); its log {}:\n{}",
                log_path.display(),
                tail(&log_path, 20)
            )));
        }
        if let Some(state) = layout.state()? {
            if state.supervisor_pid == child.id() && state.phase == Phase::Running {
                print_summary(layout, &state, json, false);
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(CliError::Other(format!(
                "the supervisor (pid {}) did not report the cluster running within {} s; see {}",
                child.id(),
                BACKGROUND_START_TIMEOUT.as_secs(),
                log_path.display()
            )));
        }
        std::thread::sleep(LOOP_INTERVAL);
    }
}

/// `cluster down`.
pub fn down(layout: &Layout, json: bool) -> Result<(), CliError> {
    layout.facts()?;
    let Some(state) = layout.state()? else {
        return Err(CliError::NotRunning(format!(
            "the cluster in {} is not running",
            layout.dir.display()
        )));
    };
    if state.phase == Phase::Stopped {
        return Err(CliError::NotRunning(format!(
            "the cluster in {} is already stopped",
            layout.dir.display()
        )));
    }
    let pid = state.supervisor_pid;
    let mut message = String::from("cluster stopped");
    if pid_alive(pid) {
        control(&state, &ControlRequest::Shutdown)?;
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while pid_alive(pid) {
            if Instant::now() >= deadline {
                return Err(CliError::Other(format!(
                    "the supervisor (pid {pid}) did not exit within {} s",
                    SHUTDOWN_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(LOOP_INTERVAL);
        }
    } else {
        // The supervisor died without cleaning up: end the QEMUs it left.
        let mut killed = Vec::new();
        for node in &state.nodes {
            if let Some(qemu) = node.pid.filter(|&p| is_our_qemu(p, &node.disk)) {
                let status = std::process::Command::new("kill")
                    .args(["-KILL", &qemu.to_string()])
                    .status()
                    .map_err(CliError::io("cannot run kill"))?;
                if status.success() {
                    killed.push(node.id);
                }
            }
        }
        let _ = std::fs::remove_file(&state.control_socket);
        let mut stopped = state.clone();
        stopped.phase = Phase::Stopped;
        for node in &mut stopped.nodes {
            node.state = "down".into();
            node.pid = None;
        }
        layout.write_state(&stopped)?;
        message = format!(
            "the supervisor (pid {pid}) was already gone; killed the QEMUs of nodes {killed:?} it left behind"
        );
    }
    if json {
        println!("{}", json!({"stopped": true, "message": message}));
    } else {
        println!("{message}");
    }
    Ok(())
}

/// Whether `pid` is a QEMU using `disk` (so a recycled pid is never killed).
fn is_our_qemu(pid: u32, disk: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let text = String::from_utf8_lossy(&cmdline);
    text.contains("qemu-system") && text.contains(&*disk.to_string_lossy())
}

/// The last `lines` lines of a file (for error messages).
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Where everything is, after `up`.
fn print_summary(layout: &Layout, state: &RunState, json: bool, foreground: bool) {
    if json {
        println!("{}", serde_json::to_string(state).unwrap_or_default());
        return;
    }
    let booted = state.nodes.iter().filter(|n| n.state != "down").count();
    println!(
        "cluster {} up: {booted} of {} nodes started (supervisor pid {})",
        state.cluster_id,
        state.nodes.len(),
        state.supervisor_pid
    );
    println!("node  pid      status (HTTP)                  client (UDP)     console");
    for node in &state.nodes {
        println!(
            "{:<5} {:<8} {:<30} {:<16} {}",
            node.id,
            node.pid.map_or("-".into(), |p| p.to_string()),
            format!("http://127.0.0.1:{}/status", node.status_port),
            format!("127.0.0.1:{}", node.client_port),
            node.console.display()
        );
    }
    println!("state: {}", layout.state_path().display());
    if !foreground {
        println!("log:   {}", layout.supervisor_log_path().display());
    }
    println!(
        "the nodes boot and elect a leader in a few seconds; `continuum --dir {} cluster wait` returns once the cluster serves requests",
        layout.dir.display()
    );
    if foreground {
        println!("Ctrl-C stops the cluster");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_requests_have_one_spelling() {
        let kill = ControlRequest::Kill { node: 2 };
        let text = serde_json::to_string(&kill).unwrap();
        assert_eq!(text, r#"{"cmd":"kill","node":2}"#);
        assert_eq!(serde_json::from_str::<ControlRequest>(&text).unwrap(), kill);
        assert_eq!(
            serde_json::to_string(&ControlRequest::Shutdown).unwrap(),
            r#"{"cmd":"shutdown"}"#
        );
        assert!(serde_json::from_str::<ControlRequest>(r#"{"cmd":"kill"}"#).is_err());
        assert!(
            serde_json::from_str::<ControlRequest>(r#"{"cmd":"kill","node":2,"x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<ControlRequest>(r#"{"cmd":"explode"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<ControlRequest>(r#"{"cmd":"start","node":4}"#).unwrap(),
            ControlRequest::Start { node: 4 }
        );
        let reboot: ControlRequest =
            serde_json::from_str(r#"{"cmd":"reboot","node":3,"rtc_offset_s":-20}"#).unwrap();
        assert_eq!(
            reboot,
            ControlRequest::Reboot {
                node: 3,
                rtc_offset_s: -20,
                disk_fault: None
            }
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let path = std::env::temp_dir().join(format!("ctm-tail-{}", std::process::id()));
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&path, 2), "b\nc");
        assert_eq!(tail(&path, 10), "a\nb\nc");
        let _ = std::fs::remove_file(&path);
    }
}
