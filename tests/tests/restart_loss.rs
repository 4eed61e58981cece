//! A node restarted while its links drop frames must reach every live peer,
//! even while another peer cannot answer it.
//!
//! Regression test for a restarted node that stayed unable to send to one
//! peer for good: its neighbour (ARP) cache starts empty, smoltcp sends at
//! most one resolution request per second for the whole interface, and the
//! request for a peer that never answers (down, or cut off by a partition)
//! went out every second ahead of the others, so a live peer later in
//! socket order was never asked for (`continuum_net::nic`'s module docs).
//!
//! The cluster runs with [`LOSS_PERCENT`] loss on every link the whole
//! time. Each node in turn is cut off from its lowest-id peer (whose socket
//! comes first), killed and booted again on its disk, and must report its
//! other peer reachable on `/status` (a ping answered: both directions
//! work) within [`REACH_BOUND`]; then the cut heals and it must reach both.

use continuum_config::NodeId;
use continuum_harness::cluster::{peer_reachable, Cluster, LaunchSpec};
use continuum_harness::plan::ClusterPlan;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(180);
/// Loss on every link while the nodes restart: higher than the harness
/// test's 20 %, so resolution exchanges are lost too.
const LOSS_PERCENT: f64 = 30.0;
/// Rounds of restarting every node.
const ROUNDS: usize = 2;
/// From the restart (or the heal) to the peers reachable. A node asking
/// for its peers and pinging each every second gets there in a few seconds
/// at 30 % loss (an exchange succeeds 49 % of the time: thirty seconds of
/// failures happen with probability ~2e-9); boot under TCG takes a few
/// seconds more.
const REACH_BOUND: Duration = Duration::from_secs(40);

#[test]
fn a_node_restarted_onto_lossy_links_reaches_every_peer() {
    let plan = ClusterPlan::for_test("rsloss", 11, &[1, 2, 3]).unwrap();
    let dir = std::env::temp_dir().join(format!("ctm-rsloss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut spec = LaunchSpec::from_plan("rsloss", &plan, &dir, 64).unwrap();
    spec.remove_dir_on_drop = true;
    let mut cluster = Cluster::launch(spec).unwrap();
    cluster.wait_leader(WAIT).unwrap();
    cluster.set_loss_all(LOSS_PERCENT).unwrap();

    let mut failures = Vec::new();
    let ids = cluster.node_ids();
    for round in 0..ROUNDS {
        for &id in &ids {
            let others: Vec<NodeId> = ids.iter().copied().filter(|&p| p != id).collect();
            let (cut, live) = (others[0], &others[1..]);
            // Every link open except id <-> cut (groups may overlap).
            let mut groups = vec![ids
                .iter()
                .copied()
                .filter(|&p| p != cut)
                .collect::<Vec<NodeId>>()];
            groups.push(ids.iter().copied().filter(|&p| p != id).collect());
            cluster.partition(&groups).unwrap();
            cluster.restart(id).unwrap();
            let started = Instant::now();
            let phases: [(&str, &[NodeId]); 2] =
                [("cut off from its first peer", live), ("healed", &others)];
            for (phase, peers) in phases {
                if phase == "healed" {
                    cluster.heal().unwrap();
                }
                match wait_reachable(&cluster, id, peers, REACH_BOUND) {
                    Ok(()) => eprintln!(
                        "round {round}: node {id} ({phase}) reached {peers:?} {:.1} s after its restart",
                        started.elapsed().as_secs_f64()
                    ),
                    Err(last) => failures.push(format!(
                        "round {round}: node {id} ({phase}, node {cut} cut off at boot) did not \
                         reach {peers:?} within {REACH_BOUND:?} at {LOSS_PERCENT} % loss; last \
                         /status: {last}\nfabric: {}",
                        cluster
                            .fabric
                            .stats()
                            .map_or_else(|e| e.to_string(), |s| s.to_string())
                    )),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Polls node `id`'s `/status` until it reports every one of `peers`
/// reachable; the last status seen otherwise.
fn wait_reachable(
    cluster: &Cluster,
    id: NodeId,
    peers: &[NodeId],
    bound: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + bound;
    let mut last = String::from("no status yet");
    while Instant::now() < deadline {
        match cluster.status(id) {
            Ok(status) => {
                if peers.iter().all(|&p| peer_reachable(&status, p)) {
                    return Ok(());
                }
                last = status.to_string();
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}
