//! Bounded state on a real 3-node cluster: ledger snapshots every 200
//! applied entries, log compaction, a stopped node that catches up by
//! InstallSnapshot, and a restart that replays only the log's tail.
//!
//! Disk bound checked here: after compaction a node's WAL holds at most
//! the entries since its last snapshot plus the ones a lagging follower
//! still needs; with `snapshot_entries = 200` and transfers of about 600
//! bytes per record that is well under [`WAL_BOUND_BYTES`] (1 MiB), while
//! the 2,000 transfers of the test wrote more than that.

use continuum_bank::{AccountFlags, Outcome};
use continuum_harness::cluster::{Cluster, LaunchSpec};
use continuum_harness::plan::{derived_key, ClusterPlan};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(180);
const SNAPSHOT_ENTRIES: u64 = 200;
const TRANSFERS: u64 = 2_000;
/// Most WAL bytes a node may hold once its log is compacted.
const WAL_BOUND_BYTES: u64 = 1 << 20;
const ACCOUNT: u128 = 10;

fn raft(status: &serde_json::Value, field: &str) -> u64 {
    status["raft"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("/status raft.{field} missing: {status}"))
}

#[test]
fn stopped_node_catches_up_by_snapshot_and_restart_replays_only_the_tail() {
    let mut plan = ClusterPlan::for_test("snap3", 9, &[1, 2, 3]).unwrap();
    plan.snapshot_entries = SNAPSHOT_ENTRIES;
    let dir = std::env::temp_dir().join(format!("ctm-snap3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = LaunchSpec::from_plan("snap3", &plan, &dir, 64).unwrap();
    spec.remove_dir_on_drop = true;
    spec.console_logs = true;
    let mut cluster = Cluster::launch(spec).unwrap();
    let leader = cluster.wait_leader(WAIT).unwrap();
    let lagging = (1..=3).rev().find(|&n| n != leader).unwrap();

    let mut client = cluster.client().unwrap();
    let owner = derived_key("snap3", "owner", 10);
    let (created, _) = client
        .create_account(
            &plan.operator,
            ACCOUNT,
            &owner.verifying_key(),
            AccountFlags::empty(),
        )
        .unwrap();
    assert_eq!(created, Outcome::Ok);

    // One follower is down while the others commit ten snapshots' worth.
    cluster.kill(lagging).unwrap();
    let started = Instant::now();
    for id in 1..=TRANSFERS {
        let result = client
            .transfer(&plan.operator, u128::from(id), 1, ACCOUNT, 1)
            .unwrap_or_else(|e| panic!("transfer {id}: {e}"));
        assert_eq!(result.outcome, Outcome::Ok, "transfer {id}");
    }
    eprintln!(
        "{TRANSFERS} transfers in {:.1} s with node {lagging} down",
        started.elapsed().as_secs_f64()
    );
    let leader = cluster.wait_leader(WAIT).unwrap();
    let status = cluster.status(leader).unwrap();
    let applied = raft(&status, "applied");
    assert!(
        raft(&status, "snapshot_index") >= applied - SNAPSHOT_ENTRIES,
        "the leader snapshots every {SNAPSHOT_ENTRIES} entries: {status}"
    );
    assert!(
        raft(&status, "first_index") > applied - 2 * SNAPSHOT_ENTRIES,
        "the leader's log was compacted: {status}"
    );

    // The stopped node restarts behind the leader's first index, so only
    // a snapshot can bring it up to date.
    cluster.start_node(lagging).unwrap();
    let target = raft(&cluster.status(leader).unwrap(), "commit");
    let caught_up = cluster.wait_status(lagging, WAIT, "catching up", |s| {
        s["raft"]["applied"].as_u64().is_some_and(|a| a >= target)
    });
    let console = std::fs::read_to_string(cluster.console_path(lagging).unwrap()).unwrap();
    assert!(
        console.contains("installed snapshot at index"),
        "node {lagging} caught up without InstallSnapshot:\n{console}"
    );
    assert!(raft(&caught_up, "first_index") > 1, "{caught_up}");

    // Same ledger everywhere, and every WAL within its bound.
    for id in 1..=3 {
        let status = cluster.wait_status(id, WAIT, "applying the target", |s| {
            s["raft"]["applied"].as_u64().is_some_and(|a| a >= target)
        });
        assert!(
            raft(&status, "wal_used_bytes") <= WAL_BOUND_BYTES,
            "node {id} keeps more than {WAL_BOUND_BYTES} WAL bytes: {status}"
        );
    }
    wait_same_chain_head(&cluster);
    let balance = client.balance(ACCOUNT).unwrap();
    assert_eq!(balance.value, Some(TRANSFERS));

    // A restart after several snapshots loads the newest and replays only
    // the entries after it.
    let restarted = leader;
    cluster.restart(restarted).unwrap();
    cluster.wait_status(restarted, WAIT, "rejoining", |s| {
        s["raft"]["applied"].as_u64().is_some_and(|a| a >= target)
    });
    let console = std::fs::read_to_string(cluster.console_path(restarted).unwrap()).unwrap();
    let restored = console
        .lines()
        .filter_map(|line| line.split("restored snapshot at index ").nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|digits| digits.parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("node {restarted} did not start from a snapshot:\n{console}"));
    assert!(
        restored + SNAPSHOT_ENTRIES >= target,
        "node {restarted} started from snapshot {restored}, more than {SNAPSHOT_ENTRIES} entries before {target}"
    );
    let balance = client.balance(ACCOUNT).unwrap();
    assert_eq!(balance.value, Some(TRANSFERS));
    wait_same_chain_head(&cluster);
}

/// Waits until every node reports the same receipt-chain head (index and
/// hash); panics with what they report after [`WAIT`].
fn wait_same_chain_head(cluster: &Cluster) {
    let deadline = Instant::now() + WAIT;
    let mut heads = Vec::new();
    while Instant::now() < deadline {
        heads = (1..=3)
            .map(|id| cluster.status(id).map(|s| s["raft"]["chain_head"].clone()))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_default();
        if heads.len() == 3 && heads.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("the nodes' receipt-chain heads differ: {heads:?}");
}
