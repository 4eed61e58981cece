//! Three real nodes on the fabric: authenticated peer traffic, `/status`
//! over loopback, partitions and healing, and injected forgeries and
//! replays that must be dropped and counted.
//!
//! One cluster serves all scenarios: three TCG guests on two cores is the
//! most this machine runs comfortably, and booting costs more than checking.

use continuum_harness::cluster::{
    lan_ip, lan_mac, node_key, peer_field, peer_reachable, udp_frame, Cluster, ClusterSpec,
    CLUSTER_ID,
};
use continuum_net::client::{ClientReply, ClientRequest, ReplyBody, ReplyError, RequestOp};
use continuum_net::peer::{AuthScheme, PeerBody};
use continuum_net::peer_auth::{PeerAuth, PeerConfig};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
/// Node 4 is in every config but has no VM: the test speaks for it.
const PHANTOM: continuum_config::NodeId = 4;

fn counter(status: &serde_json::Value, name: &str) -> u64 {
    status["peer_messages"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {status}"))
}

#[test]
fn three_nodes_talk_partition_heal_and_reject_forgeries() {
    let mut cluster = Cluster::start(ClusterSpec {
        name: "net3".into(),
        nodes: 3,
        phantom_members: vec![PHANTOM],
        seed: 42,
        extra_config: vec![],
    });

    // Every node hears both others, authenticated, and serves /status.
    for id in 1..=3 {
        let status = cluster.wait_status(id, WAIT, "both peers reachable", |s| {
            (1..=3).filter(|&p| p != id).all(|p| peer_reachable(s, p))
        });
        assert_eq!(status["node_id"], id);
        assert_eq!(status["cluster_id"], CLUSTER_ID);
        assert_eq!(status["lan"]["ip"], format!("10.7.0.{id}/24"));
        assert!(counter(&status, "accepted") > 0, "{status}");
        assert_eq!(counter(&status, "forged"), 0, "{status}");
        assert!(
            !peer_reachable(&status, PHANTOM),
            "the phantom has no VM: {status}"
        );
    }

    // The client port answers in the client wire format; garbage is counted.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client socket");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = ClientRequest {
        cluster_id: CLUSTER_ID,
        client_id: 9,
        request_id: 77,
        op: RequestOp::QueryChainHead,
    };
    let mut reply = None;
    for _ in 0..10 {
        // UDP: the first datagram can race the forwarding set-up; retry a few times.
        let sent = client.send_to(
            &request.encode().unwrap(),
            ("127.0.0.1", cluster.client_ports[1]),
        );
        sent.expect("send to the forwarded client port");
        let mut buf = [0u8; 1500];
        if let Ok(len) = client.recv(&mut buf) {
            reply = Some(ClientReply::decode(&buf[..len]).expect("a well-formed reply"));
            break;
        }
    }
    let reply = reply.unwrap_or_else(|| {
        panic!(
            "no reply from node 2's client port; status: {:?}",
            cluster.status(2)
        )
    });
    assert_eq!((reply.node, reply.request_id), (2, 77));
    assert_eq!(
        reply.body,
        ReplyBody::Error(ReplyError::Unavailable),
        "no ledger runs yet: the node must say so"
    );
    client
        .send_to(b"not a request", ("127.0.0.1", cluster.client_ports[1]))
        .unwrap();
    cluster.wait_status(2, WAIT, "the malformed client datagram counted", |s| {
        s["client_rejected"] == 1
    });

    // A forged and a replayed datagram, injected as if from node 4.
    let before = cluster.status(1).expect("node 1 answers");
    let members: Vec<_> = (1..=PHANTOM)
        .map(|id| (id, node_key("net3", id).verifying_key()))
        .collect();
    let phantom_key = node_key("net3", PHANTOM);
    let mut phantom = PeerAuth::new(PeerConfig {
        cluster_id: CLUSTER_ID,
        me: PHANTOM,
        epoch: 1,
        scheme: AuthScheme::HmacSha256,
        signing_key: &phantom_key,
        members: &members,
    })
    .expect("phantom keys");
    let mut datagram = Vec::new();
    phantom
        .seal(1, &PeerBody::Ping { nonce: 7 }, &mut datagram)
        .expect("seal");
    let frame = |payload: &[u8]| {
        udp_frame(
            lan_mac(PHANTOM),
            lan_mac(1),
            lan_ip(PHANTOM),
            lan_ip(1),
            7000,
            payload,
        )
    };
    let genuine = frame(&datagram);
    cluster
        .fabric
        .inject(PHANTOM, &genuine)
        .expect("inject genuine");
    cluster
        .fabric
        .inject(PHANTOM, &genuine)
        .expect("inject replay");
    let mut forged = datagram.clone();
    *forged.last_mut().unwrap() ^= 0x01; // one bit of the MAC
    cluster
        .fabric
        .inject(PHANTOM, &frame(&forged))
        .expect("inject forgery");
    let after = cluster.wait_status(1, WAIT, "the forgery and the replay counted", |s| {
        counter(s, "forged") == counter(&before, "forged") + 1
            && counter(s, "replayed") == counter(&before, "replayed") + 1
    });
    assert!(
        counter(&after, "accepted") > counter(&before, "accepted"),
        "the genuine ping is accepted"
    );

    // Isolate node 3: 1 and 2 keep talking, 3 hears nothing.
    cluster.fabric.isolate(3).expect("isolate");
    for id in 1..=2 {
        cluster.wait_status(id, WAIT, "node 3 unreachable", |s| !peer_reachable(s, 3));
    }
    cluster.wait_status(3, WAIT, "nodes 1 and 2 unreachable", |s| {
        !peer_reachable(s, 1) && !peer_reachable(s, 2)
    });
    let pongs = |s: &serde_json::Value, p| {
        peer_field(s, p, "pongs_received")
            .and_then(|v| v.as_u64())
            .unwrap()
    };
    let one = cluster.status(1).unwrap();
    let from_two = pongs(&one, 2);
    cluster.wait_status(1, WAIT, "node 2 still answering", |s| {
        pongs(s, 2) >= from_two + 2 && peer_reachable(s, 2)
    });

    // Heal: everyone hears everyone again.
    cluster.fabric.heal().expect("heal");
    for id in 1..=3 {
        cluster.wait_status(id, WAIT, "both peers reachable after heal", |s| {
            (1..=3).filter(|&p| p != id).all(|p| peer_reachable(s, p))
        });
    }
}
