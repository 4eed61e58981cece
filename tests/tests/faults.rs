//! Faults from outside the guests on a real 3-node cluster with disks:
//! a misbehaving peer (its frames corrupted after sealing, replayed), a
//! running node's wall clock stepped (its shell's `clock step`, what
//! `nemesis skew` types), a node booted with its wall clock off, and a node
//! whose disk fails.
//! Each must be visible on `/status` (or the console) while the others
//! keep committing and every replica keeps the same receipt chain. The
//! disk faults start at boot (blkdebug has no clock to start them later):
//! today the node halts with `storage: refusing to start: disk error`.
//!
//! The tests take turns (one cluster at a time); one alone:
//! `cargo test -p continuum-tests --test faults -- NAME`.

use continuum_bank::{AccountFlags, Outcome};
use continuum_config::NodeId;
use continuum_fabric::LinkFaults;
use continuum_harness::client::{Client, RetryPolicy};
use continuum_harness::cluster::{Cluster, LaunchSpec};
use continuum_harness::faults::DiskFault;
use continuum_harness::plan::{derived_key, ClusterPlan};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(180);

/// One cluster at a time: three TCG guests are what two cores carry.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn launch(name: &str, seed: u64) -> (Cluster, ClusterPlan) {
    let plan = ClusterPlan::for_test(name, seed, &[1, 2, 3]).unwrap();
    let dir = std::env::temp_dir().join(format!("ctm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = LaunchSpec::from_plan(name, &plan, &dir, 64).unwrap();
    spec.remove_dir_on_drop = true;
    let cluster = Cluster::launch(spec).unwrap();
    cluster.wait_leader(WAIT).unwrap();
    (cluster, plan)
}

fn client(cluster: &Cluster) -> Client {
    cluster.client().unwrap().with_policy(RetryPolicy {
        deadline: Duration::from_secs(60),
        ..RetryPolicy::default()
    })
}

/// Opens accounts 10 and 11 (funded) and returns a transfer function that
/// moves 1 from 10 to 11 with a fresh id and panics unless it applies.
fn bank(name: &str, cluster: &Cluster, plan: &ClusterPlan) -> impl FnMut(&mut Client) {
    let owner = |a: u128| derived_key(name, "owner", a as u8);
    let mut c = client(cluster);
    for account in [10u128, 11] {
        let (outcome, _) = c
            .create_account(
                &plan.operator,
                account,
                &owner(account).verifying_key(),
                AccountFlags::empty(),
            )
            .unwrap();
        assert!(matches!(outcome, Outcome::Ok | Outcome::Exists));
    }
    let funded = c
        .transfer(&plan.operator, 1_000, plan.reserve_account, 10, 1_000_000)
        .unwrap();
    assert!(matches!(funded.outcome, Outcome::Ok | Outcome::Exists));
    let key = owner(10);
    let mut next = 50_000u128;
    move |c: &mut Client| {
        next += 1;
        let done = c.transfer(&key, next, 10, 11, 1).unwrap();
        assert_eq!(done.outcome, Outcome::Ok, "transfer {next}");
    }
}

fn peer_counter(status: &serde_json::Value, name: &str) -> u64 {
    status["peer_messages"][name].as_u64().unwrap_or(0)
}

/// Every node applied everything committed and names the same chain head.
fn assert_replicas_agree(cluster: &Cluster, nodes: &[continuum_config::NodeId]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let heads: Vec<Option<(u64, String)>> = nodes
            .iter()
            .map(|&id| {
                let s = cluster.status(id).ok()?;
                let raft = &s["raft"];
                (raft["applied"] == raft["commit"]).then(|| {
                    (
                        raft["chain_head"]["index"].as_u64().unwrap_or(0),
                        raft["chain_head"]["hash"].to_string(),
                    )
                })
            })
            .collect();
        if heads.iter().all(Option::is_some) && heads.windows(2).all(|w| w[0] == w[1]) {
            for &id in nodes {
                let s = cluster.status(id).unwrap();
                assert_eq!(s["raft"]["counters"]["chain_checks_mismatched"], 0, "{s}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never agreed: {heads:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn corrupted_and_replayed_peer_frames_are_rejected_and_counted() {
    let _turn = serial();
    let name = "faultlink";
    let (cluster, plan) = launch(name, 31);
    let mut transfer = bank(name, &cluster, &plan);
    let mut c = client(&cluster);
    let before: Vec<serde_json::Value> = [2, 3].map(|id| cluster.status(id).unwrap()).into();
    // Node 1 misbehaves: a third of its UDP frames corrupted after sealing,
    // a third followed by a replay of an earlier frame.
    for to in [2, 3] {
        cluster
            .fabric
            .set_link(
                1,
                to,
                &LinkFaults {
                    corrupt: 0.3,
                    replay: 0.3,
                    ..LinkFaults::default()
                },
            )
            .unwrap();
    }
    for _ in 0..5 {
        transfer(&mut c);
    }
    let deadline = Instant::now() + WAIT;
    let (forged, replayed) = loop {
        let after: Vec<serde_json::Value> = [2, 3].map(|id| cluster.status(id).unwrap()).into();
        let delta = |name: &str| -> u64 {
            after
                .iter()
                .zip(&before)
                .map(|(a, b)| peer_counter(a, name) - peer_counter(b, name))
                .sum()
        };
        let replays = delta("replayed") + delta("too_old");
        if delta("forged") > 0 && replays > 0 {
            break (delta("forged"), replays);
        }
        assert!(Instant::now() < deadline, "no rejection counted: {after:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let stats = cluster.fabric.stats().unwrap();
    let link = stats["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["from"] == 1 && l["to"] == 2)
        .unwrap()
        .clone();
    eprintln!(
        "faults: fabric corrupted {} and replayed {} frames on 1->2; nodes 2+3 counted {forged} forged, {replayed} replayed or too old",
        link["corrupted"], link["replayed"]
    );
    assert!(link["corrupted"].as_u64().unwrap() > 0);
    // No corrupted frame was accepted: every rejection is counted, and the
    // cluster still commits and agrees on its chain.
    for _ in 0..3 {
        transfer(&mut c);
    }
    cluster.reset_network().unwrap();
    transfer(&mut c);
    assert_replicas_agree(&cluster, &[1, 2, 3]);
}

/// Node 3 as node `id` sees it in `/status` (`raft.peers[]`).
fn peer_3(cluster: &Cluster, id: NodeId) -> Option<serde_json::Value> {
    let s = cluster.status(id).ok()?;
    s["raft"]["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["id"] == 3).cloned())
}

fn rejections_of_3(cluster: &Cluster) -> [u64; 2] {
    [1, 2].map(|id| peer_3(cluster, id).map_or(0, |p| p["skew_rejections"].as_u64().unwrap_or(0)))
}

/// Waits until node 1 or 2 counts more skew rejections of node 3 than
/// `before`; returns who and how it sees node 3.
fn wait_rejections(cluster: &Cluster, before: [u64; 2]) -> (NodeId, serde_json::Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = [1, 2].into_iter().find_map(|id| {
            let p = peer_3(cluster, id)?;
            let now = p["skew_rejections"].as_u64().unwrap_or(0);
            (now > before[id as usize - 1]).then_some((id, p))
        });
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no node counted new skew rejections of node 3: {:?} / {:?}\n{}",
            peer_3(cluster, 1),
            peer_3(cluster, 2),
            cluster
                .vm(3)
                .map(|vm| vm.console_text())
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Types `clock step <ms>` into node 3's shell and waits until its
/// `/status` shows the total step.
fn step_clock_of_3(cluster: &mut Cluster, ms: i64, total: i64) {
    cluster
        .type_console(3, &format!("clock step {ms}\n"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let step = cluster
            .status(3)
            .ok()
            .and_then(|s| s["clock"]["wall_step_ms"].as_i64());
        if step == Some(total) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 never showed a {total} ms step: {step:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_booted_with_a_skewed_clock_is_counted_and_the_cluster_stays_safe() {
    let _turn = serial();
    let name = "faultclock";
    let (mut cluster, plan) = launch(name, 32);
    let mut transfer = bank(name, &cluster, &plan);
    let mut c = client(&cluster);

    // Running: node 3's wall clock stepped 5 s ahead (the HLC max offset is
    // 500 ms). Its peers refuse its stamps and count them; writes commit.
    let before = rejections_of_3(&cluster);
    step_clock_of_3(&mut cluster, 5_000, 5_000);
    assert!(cluster
        .vm(3)
        .unwrap()
        .console_text()
        .contains("wall clock stepped by 5000 ms, now 5000 ms off the RTC"));
    for _ in 0..3 {
        transfer(&mut c);
    }
    let (seen_by, peer) = wait_rejections(&cluster, before);
    eprintln!("faults: stepped while running, node {seen_by} sees node 3 as {peer}");
    let offset = peer["offset_ms"].as_i64().unwrap();
    assert!(
        (3_000..=7_000).contains(&offset),
        "node 3's offset as node {seen_by} sees it after a 5 s step: {offset} ms"
    );
    assert_replicas_agree(&cluster, &[1, 2, 3]);
    // Stepped back: once its HLC (which never goes back) is within the max
    // offset again, the rejections stop growing.
    step_clock_of_3(&mut cluster, -5_000, 0);
    std::thread::sleep(Duration::from_secs(8));
    let settled = rejections_of_3(&cluster);
    for _ in 0..3 {
        transfer(&mut c);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        rejections_of_3(&cluster),
        settled,
        "rejections still growing"
    );
    assert_replicas_agree(&cluster, &[1, 2, 3]);

    // Node 3 reboots with its RTC 20 s ahead.
    let before = rejections_of_3(&cluster);
    cluster.kill(3).unwrap();
    cluster.set_node_faults(3, 20, None).unwrap();
    cluster.start_node(3).unwrap();
    for _ in 0..5 {
        transfer(&mut c);
    }
    // Followers hear only the leader: look on whichever of 1 and 2 hears 3.
    let (seen_by, peer) = wait_rejections(&cluster, before);
    eprintln!("faults: node {seen_by} sees node 3 as {peer}");
    let offset = peer["offset_ms"].as_i64().unwrap();
    assert!(
        (15_000..=25_000).contains(&offset),
        "node 3's offset as node {seen_by} sees it: {offset} ms"
    );
    // Safe and live: node 3 catches up and every replica has the same chain.
    for _ in 0..3 {
        transfer(&mut c);
    }
    assert_replicas_agree(&cluster, &[1, 2, 3]);
    // Back on a sane clock, the rejections stop growing.
    cluster.kill(3).unwrap();
    cluster.set_node_faults(3, 0, None).unwrap();
    cluster.start_node(3).unwrap();
    transfer(&mut c);
    assert_replicas_agree(&cluster, &[1, 2, 3]);
}

/// Waits until node 3 halts on its failing disk and returns the console
/// line that says why; panics if it neither halts nor runs normally.
fn disk_fault_halt(cluster: &mut Cluster, fault: DiskFault) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let console = cluster
            .vm(3)
            .map(|vm| vm.console_text())
            .unwrap_or_default();
        if console.lines().any(|l| l.contains("ERROR halted")) {
            return console
                .lines()
                .find(|l| l.contains("refusing to start") || l.contains("ERROR storage"))
                .unwrap_or("(no storage error line)")
                .to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{}: node 3 neither halted nor ran within 90 s; status {:?}; console:\n{console}",
            fault.name(),
            cluster.status(3).map(|s| s["raft"]["role"].clone())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_failing_disk_on_one_node_does_not_lose_acknowledged_writes() {
    let _turn = serial();
    let name = "faultdisk";
    let (mut cluster, plan) = launch(name, 33);
    let mut transfer = bank(name, &cluster, &plan);
    let mut c = client(&cluster);
    for fault in DiskFault::ALL {
        cluster.kill(3).unwrap();
        cluster.set_node_faults(3, 0, Some(fault)).unwrap();
        cluster.start_node(3).unwrap();
        // The other two keep committing while node 3 meets its disk.
        for _ in 0..3 {
            transfer(&mut c);
        }
        // Today's kernel meets the error while opening its log at boot and
        // halts with a clear message (a hang or a silent start would fail).
        let why = disk_fault_halt(&mut cluster, fault);
        eprintln!("faults: {}: node 3 halted: {why}", fault.name());
        assert!(why.contains("disk error"), "{}: {why}", fault.name());
        assert!(cluster.status(3).is_err(), "a halted node serves no status");
        // Node 3 back on a sane disk: it recovers what it had and catches up.
        cluster.kill(3).unwrap();
        cluster.set_node_faults(3, 0, None).unwrap();
        cluster.start_node(3).unwrap();
        transfer(&mut c);
        assert_replicas_agree(&cluster, &[1, 2, 3]);
    }
}
