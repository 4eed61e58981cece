//! The harness's own cluster verbs on a real 3-node cluster with disks:
//! `Cluster::launch` from a plan, `wait_leader`, the retrying `Client`,
//! kill -9 and restart on the same disk, packet loss on every link, a
//! halves partition, pause and resume over QMP.

use continuum_bank::{AccountFlags, Outcome};
use continuum_harness::cluster::{Cluster, LaunchSpec, NodeState};
use continuum_harness::plan::{derived_key, ClusterPlan};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(180);

#[test]
fn launch_restart_loss_partition_and_pause() {
    let plan = ClusterPlan::for_test("harness3", 7, &[1, 2, 3]).unwrap();
    let dir = std::env::temp_dir().join(format!("ctm-harness3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = LaunchSpec::from_plan("harness3", &plan, &dir, 64).unwrap();
    spec.remove_dir_on_drop = true;
    let mut cluster = Cluster::launch(spec).unwrap();
    let leader = cluster.wait_leader(WAIT).unwrap();

    let mut client = cluster.client().unwrap();
    let owner = derived_key("harness3", "owner", 10);
    let (created, _) = client
        .create_account(
            &plan.operator,
            10,
            &owner.verifying_key(),
            AccountFlags::empty(),
        )
        .unwrap();
    assert_eq!(created, Outcome::Ok);
    let first = client.transfer(&plan.operator, 1, 1, 10, 500).unwrap();
    assert_eq!(first.outcome, Outcome::Ok);

    // Crash the leader and bring it back on its disk.
    cluster.restart(leader).unwrap();
    assert_eq!(cluster.node_state(leader), NodeState::Running);
    let second = client.transfer(&plan.operator, 2, 1, 10, 250).unwrap();
    assert!(committed(second.outcome), "{:?}", second.outcome);
    assert!(second.applied_at > first.applied_at);
    // 20 % loss on every link: slower, still correct.
    cluster.set_loss_all(20.0).unwrap();
    let lossy = client.transfer(&plan.operator, 3, 1, 10, 25).unwrap();
    assert!(committed(lossy.outcome), "{:?}", lossy.outcome);
    cluster.reset_network().unwrap();

    // Halves: {1} against {2, 3}; the majority side keeps serving.
    cluster.partition_halves().unwrap();
    let during = client.transfer(&plan.operator, 4, 1, 10, 5).unwrap();
    assert!(committed(during.outcome), "{:?}", during.outcome);
    assert_ne!(
        during.committed.position.node, 1,
        "node 1 is in the minority"
    );
    cluster.heal().unwrap();

    // A paused node is frozen, then resumes.
    let follower = (1..=3)
        .find(|&n| n != cluster.wait_leader(WAIT).unwrap())
        .unwrap();
    cluster.pause(follower).unwrap();
    assert_eq!(cluster.node_state(follower), NodeState::Paused);
    assert!(!cluster.vm(follower).unwrap().guest_running().unwrap());
    cluster.resume(follower).unwrap();
    assert!(cluster.vm(follower).unwrap().guest_running().unwrap());

    let balance = client.balance(10).unwrap();
    assert_eq!(balance.value, Some(500 + 250 + 25 + 5));
    // The restarted node's console shows it reopened its disk.
    let console = std::fs::read_to_string(cluster.console_path(leader).unwrap()).unwrap();
    assert_eq!(console.matches("QEMU pid").count(), 2, "{console}");
}

/// A transfer the client saw commit. `Exists` too: a retry (after a crash,
/// a lost frame or a cut forward) of a call whose earlier attempt already
/// committed; the closing balance check still counts each transfer once.
fn committed(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Ok | Outcome::Exists)
}
