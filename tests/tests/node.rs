//! The product: three Continuum nodes in QEMU with disks, a replicated bank,
//! driven over the client protocol like a user's client would.

use continuum_bank::Outcome;
use continuum_config::NodeId;
use continuum_harness::bank::{
    create_account, raft_field, signed_transfer, start, status, submit, transfer, Client, Nodes,
    SUPPLY,
};
use continuum_harness::cluster::CLUSTER_ID;
use continuum_harness::http_get;
use continuum_net::client::{
    decode_balance_answer, ClientReply, ClientRequest, ReplyBody, ReplyError, RequestOp,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One cluster at a time: three TCG guests already share the host's cores,
/// and the timing assertions (election within three timeouts) should
/// measure Raft, not a host running six guests.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn three_nodes_elect_and_replicate_transfers() {
    let _serial = one_cluster();
    let mut nodes = start("replicate", 3);
    nodes.wait_for_leader();
    let mut client = Client::new();
    assert_eq!(
        submit(&mut client, &nodes, 0, create_account(10)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 1, create_account(11)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 2, transfer(100, 1, 10, 5_000)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 0, transfer(101, 10, 11, 2_000)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, 1, transfer(102, 10, 11, 4_000)).0,
        Outcome::InsufficientFunds
    );
    for via in 0..3 {
        let reply = client.call(
            &nodes.client,
            via,
            RequestOp::QueryBalance { account: 11 },
            Duration::from_secs(60),
        );
        let ReplyBody::Ok { outcome, .. } = reply.body else {
            panic!("{reply:?}")
        };
        assert_eq!(decode_balance_answer(&outcome).unwrap(), Some(2_000));
    }
    let status = http_get(nodes.status[0], "/status").unwrap();
    assert!(status.contains("\"raft\":{\"role\""), "{status}");
    let metrics = http_get(nodes.status[1], "/metrics").unwrap();
    assert!(metrics.contains("continuum_raft_commit_index"), "{metrics}");
    // The whole page, not what fits one socket buffer (16 KiB): the wake-up
    // counters come last, and the leader's stage histograms are there.
    assert!(
        metrics.len() > 16 * 1024 && metrics.contains("continuum_wakeups_total{"),
        "/metrics was cut at {} bytes",
        metrics.len()
    );
    assert!(metrics.contains("continuum_stage_replied_seconds_count"));
    forged_submits_are_refused_before_the_log(&mut client, &nodes);
    half_open_and_idle_connections_do_not_stop_status(&nodes);
}

/// Issue 14 HIGH 1: a transfer signed by the wrong key, sent to every node,
/// is answered `BadSignature` and no replica's log grows.
fn forged_submits_are_refused_before_the_log(client: &mut Client, nodes: &Nodes) {
    let last_indexes = || -> Vec<u64> {
        (1..=3)
            .map(|id| raft_field(&status(nodes, id).expect("status"), "last_index"))
            .collect()
    };
    let before = last_indexes();
    let thief = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
    for via in 0..3 {
        let forged = signed_transfer(&thief, CLUSTER_ID, 500 + via as u128, 10, 11, 1);
        let reply = client.call(
            &nodes.client,
            via,
            RequestOp::Submit { entry: forged },
            Duration::from_secs(60),
        );
        assert_eq!(
            reply.body,
            ReplyBody::Error(ReplyError::BadSignature),
            "via node {}",
            via + 1
        );
    }
    assert_eq!(last_indexes(), before, "a forged submit reached the log");
}

/// Issue 14 MEDIUM 3: eight half-sent requests (connect, send `G`, close)
/// and eight idle connections, as many as the node has status sockets, do
/// not stop `/status` from answering.
fn half_open_and_idle_connections_do_not_stop_status(nodes: &Nodes) {
    use std::io::Write as _;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], nodes.status[0]));
    for _ in 0..8 {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"G").unwrap();
    }
    let idle: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let since = Instant::now();
    let answered = loop {
        match http_get(nodes.status[0], "/status") {
            Ok(body) => break body,
            Err(e) if since.elapsed() < Duration::from_secs(30) => {
                eprintln!("status not answered yet: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("/status never answered after half-open connections: {e}"),
        }
    };
    assert!(answered.contains("\"status_aborted\":"), "{answered}");
    drop(idle);
    eprintln!(
        "/status answered {:?} after the connections",
        since.elapsed()
    );
}

#[test]
fn a_leader_is_elected_within_three_election_timeouts_and_all_agree() {
    let _serial = one_cluster();
    let mut nodes = start("elect", 3);
    let mut up = Duration::ZERO;
    for vm in nodes.vms.iter_mut() {
        up = up.max(vm.wait_for_line("consensus: node").0);
    }
    let since = Instant::now();
    let leader = nodes.wait_for_leader();
    // Election timeouts are drawn from [election_ms, 2 * election_ms) with
    // the default election_ms = 1000: three of them are at most 6 s.
    let waited = since.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "leader {leader} agreed on only after {waited:?} (nodes up at {up:?})"
    );
}

#[test]
fn a_thousand_transfers_through_every_node_commit_and_replicas_agree() {
    let _serial = one_cluster();
    let mut nodes = start("thousand", 3);
    nodes.wait_for_leader();
    let mut client = Client::new();
    let accounts: Vec<u128> = (10..15).collect();
    for (i, &account) in accounts.iter().enumerate() {
        assert_eq!(
            submit(&mut client, &nodes, i % 3, create_account(account)).0,
            Outcome::Ok
        );
        assert_eq!(
            submit(
                &mut client,
                &nodes,
                i % 3,
                transfer(1_000 + account, 1, account, 100_000)
            )
            .0,
            Outcome::Ok
        );
    }
    let ports = nodes.client.clone();
    let threads: Vec<_> = (0..5u128)
        .map(|t| {
            let ports = ports.clone();
            std::thread::spawn(move || {
                let mut client = Client::new();
                let mut ok = 0;
                for i in 0..200u128 {
                    let id = 10_000 + t * 1_000 + i;
                    let from = 10 + (t + i) % 5;
                    let to = 10 + (t + i + 1) % 5;
                    let reply = client.call(
                        &ports,
                        (t + i) as usize % 3,
                        RequestOp::Submit {
                            entry: transfer(id, from, to, 1 + (i as u64 % 7)),
                        },
                        Duration::from_secs(120),
                    );
                    // `Exists`: a retry of a transfer an earlier attempt
                    // applied (its reply was slow or lost) — applied once.
                    match reply.body {
                        ReplyBody::Ok { outcome, .. }
                            if outcome == [Outcome::Ok.code()]
                                || outcome == [Outcome::Exists.code()] =>
                        {
                            ok += 1
                        }
                        other => panic!("transfer {id}: {other:?}"),
                    }
                }
                ok
            })
        })
        .collect();
    let committed: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(committed, 1_000);
    let head = nodes.wait_converged(&[1, 2, 3]);
    assert_eq!(head.len(), 64);
    let mut total_by_node = Vec::new();
    for via in 0..3 {
        let total: u64 = core::iter::once(1u128)
            .chain(accounts.iter().copied())
            .map(|a| nodes.balance(&mut client, via, a).unwrap_or(0))
            .sum();
        total_by_node.push(total);
    }
    assert_eq!(
        total_by_node,
        vec![SUPPLY; 3],
        "money is conserved on every node"
    );
}

#[test]
fn two_clients_spending_the_same_money_through_different_nodes_one_wins() {
    let _serial = one_cluster();
    let mut nodes = start("double", 3);
    nodes.wait_for_leader();
    let mut client = Client::new();
    for account in [10u128, 11, 12] {
        assert_eq!(
            submit(&mut client, &nodes, 0, create_account(account)).0,
            Outcome::Ok
        );
    }
    assert_eq!(
        submit(&mut client, &nodes, 0, transfer(500, 1, 10, 1_000)).0,
        Outcome::Ok
    );
    let ports = nodes.client.clone();
    let spend = |via: usize, id: u128, to: u128| {
        let ports = ports.clone();
        std::thread::spawn(move || {
            let mut client = Client::new();
            let reply = client.call(
                &ports,
                via,
                RequestOp::Submit {
                    entry: transfer(id, 10, to, 800),
                },
                Duration::from_secs(120),
            );
            match reply.body {
                ReplyBody::Ok { outcome, .. } => Outcome::from_unit_code(outcome[0]).unwrap(),
                other => panic!("{other:?}"),
            }
        })
    };
    let a = spend(1, 501, 11);
    let b = spend(2, 502, 12);
    let outcomes = [a.join().unwrap(), b.join().unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Ok).count(),
        1,
        "exactly one spend wins: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&Outcome::InsufficientFunds),
        "{outcomes:?}"
    );
    let balances: Vec<u64> = [10u128, 11, 12]
        .iter()
        .map(|&a| nodes.balance(&mut client, 0, a).unwrap())
        .collect();
    assert_eq!(balances.iter().sum::<u64>(), 1_000, "{balances:?}");
    assert_eq!(balances[0], 200);
}

#[test]
fn killing_the_leader_elects_another_and_the_old_one_catches_up_from_disk() {
    let _serial = one_cluster();
    let mut nodes = start("failover", 3);
    let old = nodes.wait_for_leader();
    let mut client = Client::new();
    assert_eq!(
        submit(&mut client, &nodes, old - 1, create_account(10)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, old - 1, transfer(600, 1, 10, 700)).0,
        Outcome::Ok
    );
    nodes.vms[old - 1].kill();
    let others: Vec<usize> = (1..=3).filter(|&id| id != old).collect();
    let killed_at = Instant::now();
    let new = nodes.wait_for_leader_among(&others, old, Duration::from_secs(60));
    assert_ne!(new, old);
    assert_eq!(
        submit(&mut client, &nodes, new - 1, transfer(601, 10, 1, 200)).0,
        Outcome::Ok
    );
    let failover = killed_at.elapsed();
    // The old leader restarts on its disk and catches up.
    nodes.vms[old - 1] = nodes.configs[old - 1].start();
    nodes.vms[old - 1].wait_for_line("consensus: node");
    let head = nodes.wait_converged(&[1, 2, 3]);
    assert_eq!(nodes.balance(&mut client, old - 1, 10), Some(500));
    eprintln!("failover to node {new} in {failover:?}; converged on {head}");
}

#[test]
fn a_leader_partitioned_with_a_minority_steps_down_and_loses_only_unacknowledged_entries() {
    let _serial = one_cluster();
    let mut nodes = start("partition", 3);
    let old = nodes.wait_for_leader();
    let mut client = Client::new();
    assert_eq!(
        submit(&mut client, &nodes, old - 1, create_account(10)).0,
        Outcome::Ok
    );
    assert_eq!(
        submit(&mut client, &nodes, old - 1, transfer(700, 1, 10, 1_000)).0,
        Outcome::Ok
    );
    let majority: Vec<usize> = (1..=3).filter(|&id| id != old).collect();
    nodes
        .fabric
        .partition(&[
            vec![old as NodeId],
            majority.iter().map(|&id| id as NodeId).collect(),
        ])
        .unwrap();
    // The isolated leader cannot commit: the write times out (outcome unknown).
    let lonely = Client::new();
    lonely
        .socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let request = ClientRequest {
        cluster_id: CLUSTER_ID,
        client_id: 9,
        request_id: 1,
        op: RequestOp::Submit {
            entry: transfer(701, 10, 1, 300),
        },
    };
    lonely
        .socket
        .send_to(
            &request.encode().unwrap(),
            ("127.0.0.1", nodes.client[old - 1]),
        )
        .unwrap();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Ok(len) = lonely.socket.recv(&mut buf) {
            break ClientReply::decode(&buf[..len]).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the isolated leader never answered"
        );
    };
    assert!(
        matches!(
            answer.body,
            ReplyBody::Error(ReplyError::Timeout | ReplyError::Unavailable)
        ),
        "a minority must not commit: {answer:?}"
    );
    // The majority elects a leader and commits.
    let new = nodes.wait_for_leader_among(&majority, old, Duration::from_secs(60));
    assert_ne!(new, old);
    assert_eq!(
        submit(&mut client, &nodes, new - 1, transfer(702, 10, 1, 100)).0,
        Outcome::Ok
    );
    // Heal: the old leader steps down (term supremacy) and its
    // unacknowledged entry is discarded; nothing acknowledged is lost.
    nodes.fabric.heal().unwrap();
    assert_eq!(nodes.wait_for_leader(), new);
    nodes.wait_converged(&[1, 2, 3]);
    let outcome = client.call(
        &nodes.client,
        old - 1,
        RequestOp::QueryOutcome { transfer_id: 701 },
        Duration::from_secs(60),
    );
    let ReplyBody::Ok { outcome, .. } = outcome.body else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        continuum_net::client::decode_transfer_answer(&outcome)
            .unwrap()
            .applied_at(),
        None,
        "the minority's uncommitted transfer must not apply"
    );
    assert_eq!(nodes.balance(&mut client, old - 1, 10), Some(900));
}
