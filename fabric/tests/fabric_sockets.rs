//! The running fabric with fake VMs (unix datagram sockets in a temp dir):
//! forwarding, partitions and heal through the control socket, inject,
//! counters, bad requests, delay, shutdown and the CLI.

use continuum_base::NodeId;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use continuum_fabric::{
    ControlClient, Fabric, FabricConfig, FabricError, FabricHandle, LinkFaults, Request,
};
use serde_json::Value;

const BROADCAST: [u8; 6] = [0xff; 6];
/// How long a fake VM waits before concluding nothing will arrive.
const SILENCE: Duration = Duration::from_millis(300);

fn mac(node: NodeId) -> [u8; 6] {
    [0x52, 0x54, 0, 0, 0, node as u8]
}

fn frame(dst: [u8; 6], src: [u8; 6], tag: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(&tag.to_be_bytes());
    f.resize(60, 0);
    f
}

/// A fake VM: bound where QEMU's `local.path` would be, sending to the
/// switch-side socket like QEMU's `remote.path`.
struct FakeVm {
    node: NodeId,
    socket: UnixDatagram,
    switch_path: std::path::PathBuf,
}

impl FakeVm {
    fn new(config: &FabricConfig, node: NodeId) -> FakeVm {
        let socket = UnixDatagram::bind(config.vm_path(node)).unwrap();
        socket.set_read_timeout(Some(SILENCE)).unwrap();
        FakeVm {
            node,
            socket,
            switch_path: config.switch_path(node),
        }
    }

    fn send(&self, dst: [u8; 6], tag: u32) {
        self.socket
            .send_to(&frame(dst, mac(self.node), tag), &self.switch_path)
            .unwrap();
    }

    /// The tag of the next frame, or None after [`SILENCE`].
    fn recv(&self) -> Option<u32> {
        let mut buf = [0u8; 2048];
        let n = self.socket.recv(&mut buf).ok()?;
        assert!(n >= 18);
        Some(u32::from_be_bytes(buf[14..18].try_into().unwrap()))
    }
}

fn start(dir: &Path, nodes: NodeId) -> (FabricHandle, Vec<FakeVm>) {
    let config = FabricConfig {
        dir: dir.to_path_buf(),
        nodes,
        seed: 11,
    };
    let handle = Fabric::start(config.clone()).unwrap();
    let vms = (1..=nodes).map(|n| FakeVm::new(&config, n)).collect();
    (handle, vms)
}

/// Every VM broadcasts once so the switch learns all MACs; drains the floods.
fn learn_all(vms: &[FakeVm]) {
    for vm in vms {
        vm.send(BROADCAST, 0);
        for other in vms.iter().filter(|o| o.node != vm.node) {
            assert_eq!(other.recv(), Some(0));
        }
    }
}

fn counter(stats: &Value, from: u64, to: u64, name: &str) -> u64 {
    stats["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["from"] == from && l["to"] == to)
        .unwrap()[name]
        .as_u64()
        .unwrap()
}

#[test]
fn forwards_unicast_after_learning_and_floods_broadcast() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 3);
    learn_all(&vms);
    vms[0].send(mac(2), 5);
    assert_eq!(vms[1].recv(), Some(5));
    assert_eq!(vms[2].recv(), None, "unicast must not reach node 3");
    let stats = fabric.stats().unwrap();
    assert_eq!(counter(&stats, 1, 2, "forwarded"), 2);
    assert_eq!(counter(&stats, 1, 3, "forwarded"), 1);
    assert_eq!(stats["ports"][0]["egress_sent"], 2);
}

#[test]
fn isolate_then_heal_through_the_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 3);
    learn_all(&vms);
    let mut control = ControlClient::connect(&fabric.config().control_path()).unwrap();
    control.raw(r#"{"cmd":"isolate","node":3}"#).unwrap();
    vms[0].send(mac(2), 1);
    vms[1].send(mac(1), 2);
    vms[2].send(BROADCAST, 3);
    vms[0].send(mac(3), 4);
    assert_eq!(vms[1].recv(), Some(1));
    assert_eq!(vms[0].recv(), Some(2));
    assert_eq!(vms[2].recv(), None, "isolated node hears nothing");
    assert_eq!(vms[0].recv(), None, "nobody hears the isolated node");
    let reply = control.raw(r#"{"cmd":"stats"}"#).unwrap();
    assert_eq!(counter(&reply["stats"], 3, 1, "blocked"), 1);
    assert_eq!(counter(&reply["stats"], 1, 3, "blocked"), 1);

    assert_eq!(control.raw(r#"{"cmd":"heal"}"#).unwrap()["ok"], true);
    vms[2].send(mac(1), 5);
    vms[0].send(mac(3), 6);
    assert_eq!(vms[0].recv(), Some(5));
    assert_eq!(vms[2].recv(), Some(6));
}

#[test]
fn partition_groups_via_library_api() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 3);
    learn_all(&vms);
    fabric.partition(&[vec![1, 2], vec![3]]).unwrap();
    vms[0].send(BROADCAST, 1);
    assert_eq!(vms[1].recv(), Some(1));
    assert_eq!(vms[2].recv(), None);
    fabric.block(1, 2).unwrap();
    vms[0].send(mac(2), 2);
    vms[1].send(mac(1), 3);
    assert_eq!(vms[1].recv(), None, "1 → 2 blocked one way");
    assert_eq!(vms[0].recv(), Some(3), "2 → 1 still open");
    fabric.heal().unwrap();
    vms[0].send(mac(2), 4);
    assert_eq!(vms[1].recv(), Some(4));
}

#[test]
fn inject_delivers_a_raw_frame_and_counts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 3);
    learn_all(&vms);
    let mut control = ControlClient::connect(&fabric.config().control_path()).unwrap();
    control
        .request(&Request::inject(1, &frame(mac(2), mac(1), 77)))
        .unwrap();
    assert_eq!(vms[1].recv(), Some(77));
    let stats = fabric.stats().unwrap();
    assert_eq!(stats["ports"][0]["injected"], 1);
    let bad = control
        .raw(r#"{"cmd":"inject","port":1,"frame_hex":"zz"}"#)
        .unwrap();
    assert_eq!(bad["ok"], false);
    let bad = control
        .raw(r#"{"cmd":"inject","port":9,"frame_hex":"00"}"#)
        .unwrap();
    assert!(bad["error"].as_str().unwrap().contains("port"));
}

#[test]
fn bad_requests_get_errors_and_the_switch_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 2);
    let mut control = ControlClient::connect(&fabric.config().control_path()).unwrap();
    for line in [
        "not json",
        r#"{"cmd":"explode"}"#,
        r#"{"cmd":"link","from":1,"to":2,"drop":2.0}"#,
        r#"{"cmd":"link","from":1,"to":2,"dorp":0.1}"#,
        r#"{"cmd":"partition","groups":[[1,5]]}"#,
        r#"{"cmd":"isolate"}"#,
        "",
    ] {
        let reply = control.raw(line).unwrap();
        assert_eq!(reply["ok"], false, "{line:?} accepted");
        assert!(!reply["error"].as_str().unwrap().is_empty());
    }
    assert!(matches!(
        fabric.set_link(1, 1, &LinkFaults::default()),
        Err(FabricError::Refused(_))
    ));
    let status = control.raw(r#"{"cmd":"status"}"#).unwrap();
    assert_eq!(status["nodes"], 2);
    assert!(status["ports"][0]["qemu_netdev"]
        .as_str()
        .unwrap()
        .contains("dgram"));
    learn_all(&vms);
}

#[test]
fn link_delay_holds_frames_back() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 2);
    learn_all(&vms);
    fabric
        .set_link(
            1,
            2,
            &LinkFaults {
                delay_ms: 150,
                ..LinkFaults::default()
            },
        )
        .unwrap();
    let sent = Instant::now();
    vms[0].send(mac(2), 9);
    vms[1].send(mac(1), 10);
    assert_eq!(vms[0].recv(), Some(10), "reverse link undelayed");
    let fast = sent.elapsed();
    assert_eq!(vms[1].recv(), Some(9));
    assert!(sent.elapsed() >= Duration::from_millis(150));
    assert!(fast < Duration::from_millis(150));
}

#[test]
fn shutdown_removes_sockets_and_a_second_fabric_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (fabric, _vms) = start(dir.path(), 2);
    let config = fabric.config().clone();
    assert!(matches!(
        Fabric::start(config.clone()),
        Err(FabricError::AlreadyRunning(_))
    ));
    let mut control = ControlClient::connect(&config.control_path()).unwrap();
    assert_eq!(control.raw(r#"{"cmd":"shutdown"}"#).unwrap()["ok"], true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fabric.is_running() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(matches!(fabric.heal(), Err(FabricError::Stopped)));
    fabric.shutdown();
    assert!(!config.control_path().exists());
    assert!(!config.switch_path(1).exists());
    // The directory can host a new fabric.
    let again = Fabric::start(config.clone()).unwrap();
    drop(again);
    assert!(!config.switch_path(2).exists());
}

#[test]
fn cli_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_continuum-fabric"))
        .args(["--dir", "/tmp/x", "--nodes", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nodes"));
    let out = Command::new(env!("CARGO_BIN_EXE_continuum-fabric"))
        .args(["--nodes", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dir"));
}

#[test]
fn cli_prints_paths_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_continuum-fabric"))
        .args([
            "--dir",
            dir.path().to_str().unwrap(),
            "--nodes",
            "2",
            "--seed",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("seed");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("control "), "{text}");
    assert!(
        text.contains("-netdev dgram,id=n2,local.type=unix"),
        "{text}"
    );
    let control = dir.path().join("control.sock");
    assert!(control.exists());
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    assert!(!control.exists());
    assert!(!dir.path().join("switch-1.sock").exists());
}

/// Sends `count` frames 1 → 2 with faults on that link; returns the tags
/// node 2 received (read concurrently so its socket queue never fills).
fn run_link(seed: u64, faults: LinkFaults, count: u32) -> (Vec<u32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let config = FabricConfig {
        dir: dir.path().to_path_buf(),
        nodes: 2,
        seed,
    };
    let fabric = Fabric::start(config.clone()).unwrap();
    let vms: Vec<FakeVm> = (1..=2).map(|n| FakeVm::new(&config, n)).collect();
    learn_all(&vms);
    fabric.set_link(1, 2, &faults).unwrap();
    let mut vms = vms.into_iter();
    let (sender, receiver) = (vms.next().unwrap(), vms.next().unwrap());
    let reader =
        std::thread::spawn(move || std::iter::from_fn(|| receiver.recv()).collect::<Vec<u32>>());
    for tag in 1..=count {
        sender.send(mac(2), tag);
        // Paced so no queue on the way can overflow on a loaded host.
        std::thread::sleep(Duration::from_millis(1));
    }
    let got = reader.join().unwrap();
    let stats = fabric.stats().unwrap();
    (got, stats)
}

#[test]
fn faults_through_sockets_are_reproducible_from_the_seed() {
    let plan = LinkFaults {
        drop: 0.3,
        dup: 0.1,
        ..LinkFaults::default()
    };
    let (first, stats) = run_link(21, plan.clone(), 200);
    let (second, _) = run_link(21, plan.clone(), 200);
    let (other_seed, _) = run_link(22, plan, 200);
    assert_eq!(first, second);
    assert_ne!(first, other_seed);
    let dropped = counter(&stats, 1, 2, "dropped");
    let duplicated = counter(&stats, 1, 2, "duplicated");
    assert_eq!(first.len() as u64, 200 - dropped + duplicated);
    assert!((30..=90).contains(&dropped), "dropped {dropped}");
}

#[test]
fn duplicate_and_reorder_through_sockets() {
    let (got, _) = run_link(
        3,
        LinkFaults {
            dup: 1.0,
            ..LinkFaults::default()
        },
        3,
    );
    assert_eq!(got, vec![1, 1, 2, 2, 3, 3]);
    let (got, stats) = run_link(
        3,
        LinkFaults {
            reorder: 1.0,
            hold_ms: 200,
            ..LinkFaults::default()
        },
        4,
    );
    assert_eq!(got, vec![2, 1, 4, 3]);
    assert_eq!(counter(&stats, 1, 2, "reordered"), 2);
}

#[test]
fn hostile_control_input_and_oversized_frames_are_survived() {
    use std::io::{BufRead, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (fabric, vms) = start(dir.path(), 2);
    let path = fabric.config().control_path();
    // Invalid UTF-8.
    let mut raw = std::os::unix::net::UnixStream::connect(&path).unwrap();
    raw.write_all(b"\xff\xfe\n").unwrap();
    let mut reply = String::new();
    std::io::BufReader::new(&raw).read_line(&mut reply).unwrap();
    assert!(reply.contains("UTF-8"), "{reply}");
    // A line longer than the limit: error, then the connection is closed.
    let mut raw = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let long = vec![b'a'; continuum_fabric::control::MAX_CONTROL_LINE_BYTES + 10_000];
    let _ = raw.write_all(&long);
    let mut text = String::new();
    let _ = raw.read_to_string(&mut text);
    assert!(text.contains("longer than"), "{text}");
    // A datagram longer than any frame is counted as malformed.
    let big = vec![0u8; continuum_fabric::ethernet::MAX_FRAME_BYTES + 100];
    vms[0].socket.send_to(&big, &vms[0].switch_path).unwrap();
    // The fabric still works.
    learn_all(&vms);
    let stats = fabric.stats().unwrap();
    assert_eq!(stats["ports"][0]["malformed"], 1);
}

/// Issue 14 MEDIUM 4: the fabric's sockets (cut links, inject frames) and
/// their directory are owner only.
#[test]
fn sockets_and_their_directory_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fabric_dir = dir.path().join("fabric");
    let (fabric, _vms) = start(&fabric_dir, 2);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fabric_dir), 0o700);
    assert_eq!(mode(&fabric.config().control_path()), 0o600);
    for port in 1..=2 {
        assert_eq!(mode(&fabric.config().switch_path(port)), 0o600);
    }
}
