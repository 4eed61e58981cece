//! Security scenarios of issue 14 on three real nodes (QEMU, disks, the
//! fabric LAN), one cluster for all of them (booting costs more than
//! checking):
//!
//! 1. HIGH 2, replay of a rejected transfer after its session is evicted:
//!    V's transfer is rejected (insufficient funds), V is paid, an attacker
//!    floods more zero-amount transfers under fresh client ids than the
//!    session table holds, then replays V's captured request datagram byte
//!    for byte. It must not apply: the answer is the original rejection (or
//!    `Expired`), and V's balance is untouched.
//! 2. Expiry: a transfer whose `expires_at` has passed is `Expired`, one
//!    asking for more than the genesis window is `ExpiryTooFar`.
//! 3. MEDIUM 6, peer replay after the *receiver* reboots: the fabric can
//!    inject frames but not capture them, so the test seals, with node 1's
//!    key and epoch, the datagram node 1 would have sent node 2 before node
//!    2 restarted (it names node 2's old epoch), injects it after the
//!    restart, and node 2 must refuse it as `stale_receiver_epoch`; node 2
//!    reaches both peers again and the cluster converges.

use continuum_bank::{Entry, Limits, Outcome, Transfer, DEFAULT_MAX_EXPIRY_WINDOW_MS};
use continuum_config::NodeId;
use continuum_harness::bank::{
    create_account, exchange, owner, signed_entry, start_with_config, status, submit, transfer,
    Client, Nodes,
};
use continuum_harness::client::unix_ms;
use continuum_harness::cluster::{
    lan_ip, lan_mac, node_key, peer_reachable, udp_frame, CLUSTER_ID,
};
use continuum_harness::DiskKind;
use continuum_net::client::{ClientReply, ClientRequest, ReplyBody, RequestOp};
use continuum_net::peer::{AuthScheme, PeerBody};
use continuum_net::peer_auth::{PeerAuth, PeerConfig};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const NAME: &str = "security";
/// V, the victim.
const VICTIM: u128 = 20;
/// The attacker's own account: it signs the flood.
const ATTACKER: u128 = 30;
/// V's rejected transfer: id, and its session's client id.
const REJECTED: u128 = 500;
/// Zero-amount transfers per flood entry: 6 × 153 B + 3 fits the node's
/// 1024-byte command limit.
const FLOOD_BATCH: usize = 6;
/// Parallel flooding clients.
const FLOOD_THREADS: u128 = 6;
/// The ledger's tables are sized for this heap, so the session table
/// (1,310 sessions) is cheap to overflow; the defaults (64 MiB, 10,485
/// sessions) made the flood take most of ten minutes.
const LEDGER_HEAP_MIB: u64 = 8;

fn signed(from: u128, to: u128, amount: u64, id: u128, client: u128, expires_at: u64) -> Vec<u8> {
    let transfer = Transfer {
        id,
        from,
        to,
        amount,
        client,
        seq: 1,
        expires_at,
    };
    signed_entry(&owner(from), CLUSTER_ID, transfer)
}

fn outcome(reply: &ClientReply) -> Option<Outcome> {
    match &reply.body {
        ReplyBody::Ok { outcome, .. } if outcome.len() == 1 => Outcome::from_unit_code(outcome[0]),
        _ => None,
    }
}

/// Sends exactly `datagram` (a client request) to node `via` (0-based)
/// until a final answer comes back, re-sending the same bytes on a
/// retryable one.
fn send_raw(nodes: &Nodes, via: usize, datagram: &[u8]) -> ClientReply {
    let request = ClientRequest::decode(datagram).expect("a well-formed request");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some(reply) = exchange(&socket, nodes.client[via], datagram, request.request_id) {
            return reply;
        }
    }
    panic!("no final answer to the raw request within 120 s");
}

/// More zero-amount transfers from the attacker's account, each under a
/// fresh client id (so a fresh session), than the session table holds.
fn flood_sessions(nodes: &Nodes, sessions: u64) {
    let started = Instant::now();
    let per_thread = sessions.div_ceil(FLOOD_THREADS as u64) as u128;
    let expires_at = continuum_harness::client::default_expires_at();
    let threads: Vec<_> = (0..FLOOD_THREADS)
        .map(|t| {
            let ports = nodes.client.clone();
            std::thread::spawn(move || {
                let mut client = Client::new();
                let mut decided = 0u64;
                let first = 1_000_000 + t * 1_000_000;
                let ids: Vec<u128> = (first..first + per_thread).collect();
                for (n, chunk) in ids.chunks(FLOOD_BATCH).enumerate() {
                    let commands = chunk
                        .iter()
                        .map(|&id| {
                            Transfer {
                                id,
                                from: ATTACKER,
                                to: VICTIM,
                                amount: 0,
                                client: id,
                                seq: 1,
                                expires_at,
                            }
                            .sign(&owner(ATTACKER), u128::from(CLUSTER_ID))
                        })
                        .collect();
                    let command = Entry::new(commands).expect("a valid batch").encode();
                    let reply = client.call(
                        &ports,
                        (t as usize + n) % ports.len(),
                        RequestOp::Submit { entry: command },
                        Duration::from_secs(300),
                    );
                    let ReplyBody::Ok { outcome, .. } = reply.body else {
                        panic!("flood entry refused: {reply:?}");
                    };
                    // A retry of an entry an earlier attempt applied is
                    // `Exists` per command: the session was made either way.
                    for code in outcome {
                        match Outcome::from_unit_code(code) {
                            Some(Outcome::ZeroAmount | Outcome::Exists) => decided += 1,
                            other => panic!("flood transfer: {other:?}"),
                        }
                    }
                }
                decided
            })
        })
        .collect();
    let decided: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(decided >= sessions, "{decided} flood transfers decided");
    eprintln!(
        "flood: {decided} zero-amount transfers under fresh client ids in {:.1?}",
        started.elapsed()
    );
}

fn counter(s: &serde_json::Value, name: &str) -> u64 {
    s["peer_messages"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {s}"))
}

fn wait_status(
    nodes: &Nodes,
    id: usize,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = status(nodes, id).filter(|s| done(s)) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "node {id}: {what} not within 120 s; status {:?}",
            status(nodes, id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn replays_and_expired_transfers_do_not_apply_and_peer_replays_after_a_reboot_are_refused() {
    let ledger = format!("ledger_heap_mib = {LEDGER_HEAP_MIB}");
    let mut nodes = start_with_config(NAME, &[DiskKind::Virtio; 3], &[&ledger]);
    let leader = nodes.wait_for_leader();
    let mut client = Client::new();
    for account in [VICTIM, ATTACKER] {
        assert_eq!(
            submit(&mut client, &nodes, 0, create_account(account)).0,
            Outcome::Ok
        );
    }

    // 1. V's transfer is rejected, and its datagram captured.
    let now = unix_ms();
    let captured = ClientRequest {
        cluster_id: CLUSTER_ID,
        client_id: 77,
        request_id: 1,
        op: RequestOp::Submit {
            entry: signed(
                VICTIM,
                ATTACKER,
                400,
                REJECTED,
                REJECTED,
                now + DEFAULT_MAX_EXPIRY_WINDOW_MS / 2,
            ),
        },
    }
    .encode()
    .unwrap();
    let first = send_raw(&nodes, 1, &captured);
    assert_eq!(
        outcome(&first),
        Some(Outcome::InsufficientFunds),
        "{first:?}"
    );
    // V is paid.
    assert_eq!(
        submit(&mut client, &nodes, 0, transfer(501, 1, VICTIM, 1_000)).0,
        Outcome::Ok
    );
    // The attacker evicts V's session.
    let max_sessions = Limits::for_heap(LEDGER_HEAP_MIB).max_sessions;
    flood_sessions(&nodes, max_sessions + 100);
    // The replay, byte for byte, through every node.
    for via in 0..3 {
        let replay = send_raw(&nodes, via, &captured);
        assert!(
            matches!(
                outcome(&replay),
                Some(Outcome::InsufficientFunds | Outcome::Expired)
            ),
            "replay through node {}: {replay:?}",
            via + 1
        );
    }
    assert_eq!(nodes.balance(&mut client, leader - 1, VICTIM), Some(1_000));
    assert_eq!(nodes.balance(&mut client, leader - 1, ATTACKER), Some(0));
    // The flood did evict V's session: the same (account, client, seq)
    // under a new id is not a session duplicate any more; it applies.
    let fresh = signed(VICTIM, ATTACKER, 1, 502, REJECTED, unix_ms() + 60_000);
    let (fresh_outcome, _) = submit(&mut client, &nodes, 2, fresh);
    assert_eq!(
        fresh_outcome,
        Outcome::Ok,
        "V's session survived the flood: the replay above did not test eviction"
    );

    // 2. Expiry.
    let expired = signed(VICTIM, ATTACKER, 1, 503, 503, unix_ms() - 60_000);
    assert_eq!(submit(&mut client, &nodes, 1, expired).0, Outcome::Expired);
    let too_far = signed(
        VICTIM,
        ATTACKER,
        1,
        504,
        504,
        unix_ms() + DEFAULT_MAX_EXPIRY_WINDOW_MS + 60_000,
    );
    assert_eq!(
        submit(&mut client, &nodes, 1, too_far).0,
        Outcome::ExpiryTooFar
    );
    assert_eq!(nodes.balance(&mut client, leader - 1, VICTIM), Some(999));

    // 3. Peer replay after node 2 reboots.
    let epoch = |nodes: &Nodes, id: usize| {
        status(nodes, id)
            .and_then(|s| s["epoch"].as_u64())
            .expect("status shows the epoch")
    };
    let (epoch1, old_epoch2) = (epoch(&nodes, 1), epoch(&nodes, 2));
    let members: Vec<_> = (1..=3)
        .map(|id| (id, node_key(NAME, id).verifying_key()))
        .collect();
    let as_node = |id: NodeId, epoch: u64| {
        PeerAuth::new(PeerConfig {
            cluster_id: CLUSTER_ID,
            me: id,
            epoch,
            scheme: AuthScheme::HmacSha256,
            signing_key: &node_key(NAME, id),
            members: &members,
        })
        .expect("keys")
    };
    // Node 1 as it was before node 2's restart: it knows node 2's old epoch.
    let (mut node1, mut old_node2) = (as_node(1, epoch1), as_node(2, old_epoch2));
    let mut datagram = Vec::new();
    old_node2
        .seal(1, &PeerBody::Ping { nonce: 1 }, &mut datagram)
        .unwrap();
    node1.open(&datagram).expect("node 1 learns node 2's epoch");
    let mut recorded = Vec::new();
    node1
        .seal(
            2,
            &PeerBody::Node(b"recorded before the restart"),
            &mut recorded,
        )
        .unwrap();

    nodes.vms[1].kill();
    let restarted = Instant::now();
    nodes.vms[1] = nodes.configs[1].start();
    nodes.vms[1].wait_for_line("consensus: node");
    let booted = Instant::now();
    let back = wait_status(&nodes, 2, "both peers reachable after the restart", |s| {
        peer_reachable(s, 1) && peer_reachable(s, 3)
    });
    eprintln!(
        "node 2 restarted: its consensus line {:.1?} after the kill, both peers reachable {:.1?} \
         after that (including its ledger replay, which runs first)",
        booted - restarted,
        booted.elapsed()
    );
    assert!(
        epoch(&nodes, 2) > old_epoch2,
        "the restarted node has a higher epoch"
    );
    let before = counter(&back, "stale_receiver_epoch");
    let frame = udp_frame(
        lan_mac(1),
        lan_mac(2),
        lan_ip(1),
        lan_ip(2),
        7000,
        &recorded,
    );
    nodes.fabric.inject(1, &frame).expect("inject");
    let after = wait_status(&nodes, 2, "the recorded datagram refused", |s| {
        counter(s, "stale_receiver_epoch") > before
    });
    assert_eq!(counter(&after, "forged"), counter(&back, "forged"));
    // The restarted node is a full member again.
    nodes.wait_converged(&[1, 2, 3]);
    assert_eq!(nodes.balance(&mut client, 1, VICTIM), Some(999));
}
