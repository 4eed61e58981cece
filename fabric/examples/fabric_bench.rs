//! `cargo run --release -p continuum-fabric --example fabric_bench`
//!
//! Frames/s and added latency through the fabric with fake endpoints (unix
//! datagram sockets standing in for QEMU), next to the same measurement over
//! a direct socket pair without the switch (the floor). No faults configured.
//! `FABRIC_BENCH_FRAMES` (default 50000) and `FABRIC_BENCH_ROUNDS` (default
//! 2000) size the runs.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use continuum_fabric::{Fabric, FabricConfig};

fn mac(node: u8) -> [u8; 6] {
    [0x52, 0x54, 0, 0, 0, node]
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(len, 0xab);
    f
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One endpoint: where it listens and where it sends.
struct Endpoint {
    socket: UnixDatagram,
    peer: PathBuf,
}

fn endpoint(local: &Path, peer: PathBuf) -> Endpoint {
    let socket = UnixDatagram::bind(local).expect("bind endpoint");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    Endpoint { socket, peer }
}

/// Blasts `count` frames a → b; returns (frames/s, frames received).
fn throughput(a: Endpoint, b: Endpoint, count: usize, len: usize) -> (f64, usize) {
    let receiver = thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        let mut first = None;
        let mut last = Instant::now();
        while got < count {
            match b.socket.recv(&mut buf) {
                Ok(_) => {
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                    got += 1;
                }
                Err(_) => break,
            }
        }
        (got, first.map(|f| last.duration_since(f)))
    });
    let f = frame(mac(2), mac(1), len);
    let start = Instant::now();
    for _ in 0..count {
        a.socket.send_to(&f, &a.peer).expect("send");
    }
    let (got, span) = receiver.join().expect("receiver");
    let elapsed = span
        .unwrap_or_else(|| start.elapsed())
        .max(Duration::from_micros(1));
    (got as f64 / elapsed.as_secs_f64(), got)
}

/// Ping-pong a → b → a; returns sorted round-trip times in µs.
fn round_trips(a: Endpoint, b: Endpoint, rounds: usize) -> Vec<f64> {
    let echo = thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        for _ in 0..rounds {
            let Ok(n) = b.socket.recv(&mut buf) else {
                return;
            };
            let reply = frame(mac(1), mac(2), n);
            b.socket.send_to(&reply, &b.peer).expect("echo");
        }
    });
    let f = frame(mac(2), mac(1), 64);
    let mut buf = vec![0u8; 4096];
    let mut rtts = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        a.socket.send_to(&f, &a.peer).expect("ping");
        if a.socket.recv(&mut buf).is_err() {
            break;
        }
        rtts.push(start.elapsed().as_secs_f64() * 1e6);
    }
    echo.join().expect("echo thread");
    rtts.sort_by(f64::total_cmp);
    rtts
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Endpoints 1 and 2 attached to a fresh 2-port fabric, MACs learned.
fn through_fabric(dir: &Path) -> (continuum_fabric::FabricHandle, Endpoint, Endpoint) {
    let config = FabricConfig {
        dir: dir.to_path_buf(),
        nodes: 2,
        seed: 1,
    };
    let fabric = Fabric::start(config.clone()).expect("start fabric");
    let a = endpoint(&config.vm_path(1), config.switch_path(1));
    let b = endpoint(&config.vm_path(2), config.switch_path(2));
    // Teach the switch both MACs so the measured traffic is unicast.
    let mut buf = [0u8; 128];
    a.socket
        .send_to(&frame([0xff; 6], mac(1), 60), &a.peer)
        .expect("learn");
    b.socket.recv(&mut buf).expect("learn flood");
    b.socket
        .send_to(&frame([0xff; 6], mac(2), 60), &b.peer)
        .expect("learn");
    a.socket.recv(&mut buf).expect("learn flood");
    (fabric, a, b)
}

/// A direct socket pair: the floor.
fn direct(dir: &Path) -> (Endpoint, Endpoint) {
    let (pa, pb) = (dir.join("a.sock"), dir.join("b.sock"));
    (endpoint(&pa, pb.clone()), endpoint(&pb, pa))
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fabric-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

fn main() {
    let frames = env_usize("FABRIC_BENCH_FRAMES", 50_000);
    let rounds = env_usize("FABRIC_BENCH_ROUNDS", 2_000);
    println!("frames per throughput run: {frames}, ping-pong rounds: {rounds}");
    for len in [64usize, 1514] {
        let dir = fresh_dir(&format!("tp-{len}"));
        let (fabric, a, b) = through_fabric(&dir);
        let (rate, got) = throughput(a, b, frames, len);
        let stats = fabric.stats().expect("stats");
        let dropped = stats["ports"][1]["egress_queue_full"].as_u64().unwrap_or(0)
            + stats["ports"][1]["egress_errors"].as_u64().unwrap_or(0);
        fabric.shutdown();
        let dir2 = fresh_dir(&format!("tpd-{len}"));
        let (da, db) = direct(&dir2);
        let (floor, _) = throughput(da, db, frames, len);
        println!(
            "throughput {len:>4} B frames: fabric {rate:>9.0} frames/s ({got}/{frames} delivered, {dropped} dropped at egress), direct {floor:>9.0} frames/s"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&dir2);
    }
    let dir = fresh_dir("rtt");
    let (fabric, a, b) = through_fabric(&dir);
    let via = round_trips(a, b, rounds);
    fabric.shutdown();
    let dir2 = fresh_dir("rttd");
    let (da, db) = direct(&dir2);
    let floor = round_trips(da, db, rounds);
    for (name, rtts) in [("fabric", &via), ("direct", &floor)] {
        println!(
            "round trip 64 B {name}: p50 {:.1} µs, p99 {:.1} µs ({} rounds)",
            percentile(rtts, 0.5),
            percentile(rtts, 0.99),
            rtts.len()
        );
    }
    println!(
        "added one-way latency (p50): {:.1} µs",
        (percentile(&via, 0.5) - percentile(&floor, 0.5)) / 2.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}
