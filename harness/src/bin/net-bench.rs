//! `cargo run --release -p continuum-harness --bin net-bench`
//!
//! Two nodes on the fabric. First the floor: raw Ethernet frames echoed NIC
//! to NIC (no IP stack, no authentication) — what QEMU's dgram netdev and
//! the fabric switch can carry. Then the real thing: authenticated peer
//! messages (HMAC-SHA256, replay window) through smoltcp UDP. Each run
//! prints round-trip p50/p99 (closed loop, one in flight) and messages/s
//! (32 round trips in flight), measured by node 1's TSC.

use continuum_harness::cluster::{Cluster, ClusterSpec};
use continuum_harness::Exit;

fn run(mode: &str) -> String {
    let mut cluster = Cluster::start(ClusterSpec {
        name: format!("bench-{mode}"),
        nodes: 2,
        phantom_members: vec![],
        seed: 1,
        extra_config: vec![(1, format!("mode = {mode}")), (2, format!("mode = {mode}"))],
    });
    let measurer = cluster.vms.remove(0);
    let run = measurer.wait_exit();
    run.assert_exit(Exit::Success);
    let line = run
        .lines
        .iter()
        .map(|(_, l)| l)
        .find(|l| l.contains("rtt_p50_us="))
        .expect("the measuring node prints a result")
        .clone();
    line.split("INFO  ").nth(1).unwrap_or(&line).to_owned()
}

fn main() {
    println!(
        "accelerator: {:?}; 2 nodes, fabric with no faults",
        continuum_harness::Accel::detect()
    );
    let raw = run("net-bench-raw");
    println!("floor  {raw}");
    let auth = run("net-bench");
    println!("peers  {auth}");
    let field = |line: &str, key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    println!(
        "authenticated / raw: rtt p50 x{:.2}, rtt p99 x{:.2}, messages/s x{:.2}",
        field(&auth, "rtt_p50_us") / field(&raw, "rtt_p50_us"),
        field(&auth, "rtt_p99_us") / field(&raw, "rtt_p99_us"),
        field(&auth, "messages_per_s") / field(&raw, "messages_per_s"),
    );
}
