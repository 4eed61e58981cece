//! Peer authentication scenarios: forgery, replay, reordering within the
//! window, epochs, wrong cluster/receiver/scheme, and the counters.

use continuum_net::*;
use ed25519_dalek::{SigningKey, VerifyingKey};
use proptest::prelude::*;

const CLUSTER: ClusterId = 7;

fn key(node: NodeId) -> SigningKey {
    SigningKey::from_bytes(&[node as u8 * 17; 32])
}

fn members(n: NodeId) -> Vec<(NodeId, VerifyingKey)> {
    (1..=n).map(|id| (id, key(id).verifying_key())).collect()
}

fn node(me: NodeId, epoch: u64, scheme: AuthScheme) -> PeerAuth {
    node_in(CLUSTER, me, epoch, scheme)
}

fn node_in(cluster_id: ClusterId, me: NodeId, epoch: u64, scheme: AuthScheme) -> PeerAuth {
    PeerAuth::new(PeerConfig {
        cluster_id,
        me,
        epoch,
        scheme,
        signing_key: &key(me),
        members: &members(3),
    })
    .unwrap()
}

fn seal(from: &mut PeerAuth, to: NodeId, body: PeerBody<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    from.seal(to, &body, &mut out).unwrap();
    assert!(out.len() <= MAX_DATAGRAM_BYTES);
    out
}

/// The bootstrap exchange: `a` pings `b`, `b` answers with a pong. After it
/// each knows the other's epoch, so Raft messages get through both ways.
/// Uses sequence number 1 of each direction.
fn introduce(a: &mut PeerAuth, b: &mut PeerAuth) {
    let ping = seal(a, b.me(), PeerBody::Ping { nonce: 0 });
    b.open(&ping)
        .expect("a ping is accepted whatever epoch it names");
    let pong = seal(b, a.me(), PeerBody::Pong { nonce: 0 });
    a.open(&pong).expect("the pong names the pinger's epoch");
}

const SCHEMES: [AuthScheme; 2] = [AuthScheme::HmacSha256, AuthScheme::Ed25519];

#[test]
fn messages_round_trip_between_peers() {
    for scheme in SCHEMES {
        let mut n1 = node(1, 1, scheme);
        let mut n2 = node(2, 1, scheme);
        introduce(&mut n1, &mut n2);
        let raft = [9u8; 100];
        let bodies = [
            PeerBody::Node(&raft),
            PeerBody::Node(&[]),
            PeerBody::Node(&[5; MAX_PEER_PAYLOAD_BYTES]),
            PeerBody::Ping { nonce: 42 },
            PeerBody::Pong { nonce: 43 },
        ];
        for (i, body) in bodies.iter().enumerate() {
            let datagram = seal(&mut n1, 2, *body);
            let msg = n2.open(&datagram).unwrap();
            assert_eq!(msg.from, 1);
            assert_eq!(msg.epoch, 1);
            assert_eq!(msg.seq, i as u64 + 2, "sequence 1 was the introduction");
            assert_eq!(msg.body, *body);
        }
        // And back.
        let datagram = seal(&mut n2, 1, PeerBody::Node(&raft));
        assert_eq!(n1.open(&datagram).unwrap().from, 2);
        assert_eq!(n2.counters().accepted, 6);
        assert_eq!(n1.counters().accepted, 2);
    }
}

#[test]
fn oversized_payload_is_refused_by_seal() {
    let mut n1 = node(1, 1, AuthScheme::HmacSha256);
    let mut out = Vec::new();
    let big = vec![0u8; MAX_PEER_PAYLOAD_BYTES + 1];
    assert!(matches!(
        n1.seal(2, &PeerBody::Node(&big), &mut out),
        Err(SealError::Encode(EncodeError::PayloadTooLarge { .. }))
    ));
    assert_eq!(
        n1.seal(9, &PeerBody::Ping { nonce: 0 }, &mut out),
        Err(SealError::UnknownPeer(9))
    );
}

#[test]
fn impersonation_with_another_key_is_forged() {
    for scheme in SCHEMES {
        // Node 3's key, claiming to be node 1.
        let mut forged_members = members(3);
        forged_members[0].1 = key(3).verifying_key();
        let mut rogue = PeerAuth::new(PeerConfig {
            cluster_id: CLUSTER,
            me: 1,
            epoch: 1,
            scheme,
            signing_key: &key(3),
            members: &forged_members,
        })
        .unwrap();
        let mut n2 = node(2, 1, scheme);
        let datagram = seal(&mut rogue, 2, PeerBody::Node(b"vote for me"));
        assert_eq!(n2.open(&datagram), Err(PeerReject::Forged { sender: 1 }));
        assert_eq!(n2.counters().forged, 1);
        assert_eq!(n2.counters().accepted, 0);
    }
}

#[test]
fn forged_message_does_not_move_the_window() {
    let mut n1 = node(1, 1, AuthScheme::HmacSha256);
    let mut n2 = node(2, 1, AuthScheme::HmacSha256);
    let mut later = node(1, 5, AuthScheme::HmacSha256);
    let good = seal(&mut n1, 2, PeerBody::Ping { nonce: 1 });
    // A forged message with a higher epoch must not reset node 1's window.
    let mut forged = seal(&mut later, 2, PeerBody::Ping { nonce: 2 });
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(n2.open(&forged), Err(PeerReject::Forged { sender: 1 }));
    assert!(n2.open(&good).is_ok());
}

#[test]
fn replays_are_refused_and_counted() {
    for scheme in SCHEMES {
        let mut n1 = node(1, 1, scheme);
        let mut n2 = node(2, 1, scheme);
        introduce(&mut n1, &mut n2);
        let datagram = seal(&mut n1, 2, PeerBody::Node(b"append"));
        assert!(n2.open(&datagram).is_ok());
        assert_eq!(
            n2.open(&datagram),
            Err(PeerReject::Replayed {
                sender: 1,
                epoch: 1,
                seq: 2
            })
        );
        assert_eq!(n2.counters().replayed, 1);
    }
}

#[test]
fn reordering_within_the_window_is_accepted_once() {
    let mut n1 = node(1, 1, AuthScheme::HmacSha256);
    let mut n2 = node(2, 1, AuthScheme::HmacSha256);
    let datagrams: Vec<Vec<u8>> = (0..(REPLAY_WINDOW_BITS + 10))
        .map(|i| seal(&mut n1, 2, PeerBody::Ping { nonce: i }))
        .collect();
    // Newest first: the last WINDOW messages are accepted in reverse order,
    // anything older than the window is refused as too old.
    let mut accepted = 0;
    for datagram in datagrams.iter().rev() {
        match n2.open(datagram) {
            Ok(_) => accepted += 1,
            Err(PeerReject::TooOld { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted, REPLAY_WINDOW_BITS);
    assert_eq!(n2.counters().too_old, 10);
    for datagram in &datagrams {
        assert!(n2.open(datagram).is_err());
    }
}

#[test]
fn restarted_peer_resets_the_window_and_old_epoch_is_refused() {
    let mut n2 = node(2, 1, AuthScheme::HmacSha256);
    let mut boot1 = node(1, 1, AuthScheme::HmacSha256);
    let old: Vec<Vec<u8>> = (0..3)
        .map(|i| seal(&mut boot1, 2, PeerBody::Ping { nonce: i }))
        .collect();
    assert!(n2.open(&old[0]).is_ok());
    // Node 1 restarts with a higher epoch; its numbering starts at 1 again.
    let mut boot2 = node(1, 2, AuthScheme::HmacSha256);
    let fresh = seal(&mut boot2, 2, PeerBody::Ping { nonce: 100 });
    let msg = n2.open(&fresh).unwrap();
    assert_eq!((msg.epoch, msg.seq), (2, 1));
    let window = n2.peer_window(1).unwrap();
    assert_eq!((window.epoch(), window.top()), (2, 1));
    assert_eq!(
        n2.open(&old[1]),
        Err(PeerReject::StaleEpoch {
            sender: 1,
            current: 2,
            got: 1
        })
    );
    assert_eq!(n2.counters().stale_epoch, 1);
}

#[test]
fn wrong_cluster_receiver_scheme_and_sender_are_distinct() {
    let mut n1 = node(1, 1, AuthScheme::HmacSha256);
    let mut n2 = node(2, 1, AuthScheme::HmacSha256);
    let mut other_cluster = node_in(8, 1, 1, AuthScheme::HmacSha256);
    let datagram = seal(&mut other_cluster, 2, PeerBody::Ping { nonce: 1 });
    assert_eq!(n2.open(&datagram), Err(PeerReject::WrongCluster { got: 8 }));

    let to_three = seal(&mut n1, 3, PeerBody::Ping { nonce: 1 });
    assert_eq!(
        n2.open(&to_three),
        Err(PeerReject::Misdirected { receiver: 3 })
    );

    let mut signer = node(1, 1, AuthScheme::Ed25519);
    let signed = seal(&mut signer, 2, PeerBody::Ping { nonce: 1 });
    assert_eq!(
        n2.open(&signed),
        Err(PeerReject::WrongScheme {
            got: AuthScheme::Ed25519
        })
    );

    // Node 4 is a member of a bigger cluster config but not of node 2's.
    let four_members = members(4);
    let mut n4 = PeerAuth::new(PeerConfig {
        cluster_id: CLUSTER,
        me: 4,
        epoch: 1,
        scheme: AuthScheme::HmacSha256,
        signing_key: &key(4),
        members: &four_members,
    })
    .unwrap();
    let stranger = seal(&mut n4, 2, PeerBody::Ping { nonce: 1 });
    assert_eq!(
        n2.open(&stranger),
        Err(PeerReject::UnknownSender { sender: 4 })
    );

    assert!(matches!(n2.open(b"junk"), Err(PeerReject::Malformed(_))));
    let c = n2.counters();
    assert_eq!(
        (
            c.wrong_cluster,
            c.misdirected,
            c.wrong_scheme,
            c.unknown_sender,
            c.malformed
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn membership_is_validated() {
    let k1 = key(1);
    let mut dup = members(3);
    dup.push((2, key(2).verifying_key()));
    let result = PeerAuth::new(PeerConfig {
        cluster_id: CLUSTER,
        me: 1,
        epoch: 1,
        scheme: AuthScheme::HmacSha256,
        signing_key: &k1,
        members: &dup,
    });
    assert_eq!(result.err(), Some(KeyError::DuplicateMember(2)));
    let result = PeerAuth::new(PeerConfig {
        cluster_id: CLUSTER,
        me: 5,
        epoch: 1,
        scheme: AuthScheme::HmacSha256,
        signing_key: &k1,
        members: &members(3),
    });
    assert_eq!(result.err(), Some(KeyError::NotAMember(5)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn raft_payloads_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PEER_PAYLOAD_BYTES)) {
        let mut n1 = node(1, 3, AuthScheme::HmacSha256);
        let mut n3 = node(3, 1, AuthScheme::HmacSha256);
        introduce(&mut n1, &mut n3);
        let datagram = seal(&mut n1, 3, PeerBody::Node(&payload));
        fuzz_check::peer_frame(&datagram);
        let msg = n3.open(&datagram).unwrap();
        prop_assert_eq!(msg.body, PeerBody::Node(&payload));
    }

    /// Any single-bit change anywhere in a sealed datagram is refused.
    #[test]
    fn any_bit_flip_is_refused(payload in proptest::collection::vec(any::<u8>(), 0..64), bit: usize) {
        for scheme in SCHEMES {
            let mut n1 = node(1, 1, scheme);
            let mut n2 = node(2, 1, scheme);
            introduce(&mut n1, &mut n2);
            let mut datagram = seal(&mut n1, 2, PeerBody::Node(&payload));
            let bit = bit % (datagram.len() * 8);
            datagram[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(n2.open(&datagram).is_err());
            // Flips in the payload or MAC are caught by the authenticator.
            if bit / 8 >= PEER_HEADER_BYTES {
                prop_assert_eq!(n2.counters().forged, 1);
            }
        }
    }
}

/// A datagram recorded before the receiver restarted must not be accepted
/// by the restarted receiver, even though the sender's epoch is unchanged:
/// the receiver's replay windows were lost with its RAM. (This test failed
/// before the receiver epoch was in the peer header: the restarted node
/// accepted the recorded Raft datagram.)
#[test]
fn recorded_datagram_is_refused_after_the_receiver_restarts() {
    for scheme in SCHEMES {
        let mut n1 = node(1, 1, scheme);
        let mut n2 = node(2, 1, scheme);
        introduce(&mut n1, &mut n2);
        let recorded = seal(&mut n1, 2, PeerBody::Node(b"append index 7"));
        let recorded_pong = seal(&mut n1, 2, PeerBody::Pong { nonce: 1 });
        let recorded_ping = seal(&mut n1, 2, PeerBody::Ping { nonce: 9 });
        assert!(n2.open(&recorded).is_ok(), "{scheme:?}: first delivery");
        // Node 2 reboots: a higher epoch, empty replay windows.
        let mut rebooted = node(2, 2, scheme);
        assert_eq!(
            rebooted.open(&recorded),
            Err(PeerReject::StaleReceiverEpoch {
                sender: 1,
                current: 2,
                got: 1
            }),
            "{scheme:?}: a recorded Raft datagram was accepted again after the receiver rebooted"
        );
        // A pong's nonce could match a ping of the new boot: refused too.
        assert!(matches!(
            rebooted.open(&recorded_pong),
            Err(PeerReject::StaleReceiverEpoch { .. })
        ));
        assert_eq!(rebooted.counters().stale_receiver_epoch, 2);
        // The refusals did not move node 1's window in the new boot.
        assert_eq!(rebooted.peer_window(1), Some(ReplayWindow::new()));
        // The bootstrap ping is accepted once: it teaches node 1's epoch
        // (true: node 1 did not restart), nothing else.
        let msg = rebooted.open(&recorded_ping).unwrap();
        assert_eq!(
            (msg.from, msg.epoch, msg.body),
            (1, 1, PeerBody::Ping { nonce: 9 })
        );
        assert!(matches!(
            rebooted.open(&recorded_ping),
            Err(PeerReject::Replayed { .. })
        ));
        // And the recorded Raft datagram is still refused once node 1's
        // epoch is known again.
        assert!(matches!(
            rebooted.open(&recorded),
            Err(PeerReject::StaleReceiverEpoch { .. })
        ));
        assert_eq!(rebooted.counters().accepted, 1);
    }
}

/// After either side restarts, one ping and its pong restore Raft traffic
/// in both directions; before that exchange, Raft sealed for the old boot
/// is refused.
#[test]
fn a_restart_on_either_side_heals_after_one_ping_exchange() {
    let raft = |from: &mut PeerAuth, to: &mut PeerAuth| {
        let datagram = seal(from, to.me(), PeerBody::Node(b"heartbeat"));
        to.open(&datagram).map(|m| m.from)
    };
    let mut n1 = node(1, 10, AuthScheme::HmacSha256);
    let mut n2 = node(2, 20, AuthScheme::HmacSha256);
    // Before any ping, neither knows the other: Raft names epoch 0.
    assert_eq!(
        raft(&mut n1, &mut n2),
        Err(PeerReject::StaleReceiverEpoch {
            sender: 1,
            current: 20,
            got: 0
        })
    );
    introduce(&mut n1, &mut n2);
    assert_eq!(raft(&mut n1, &mut n2), Ok(1));
    assert_eq!(raft(&mut n2, &mut n1), Ok(2));

    // The receiver side restarts.
    let mut n2 = node(2, 21, AuthScheme::HmacSha256);
    assert!(matches!(
        raft(&mut n1, &mut n2),
        Err(PeerReject::StaleReceiverEpoch { got: 20, .. })
    ));
    assert!(matches!(
        raft(&mut n2, &mut n1),
        Err(PeerReject::StaleReceiverEpoch { got: 0, .. })
    ));
    // The restarted node's boot ping (or node 1's next one) heals it.
    introduce(&mut n2, &mut n1);
    assert_eq!(raft(&mut n1, &mut n2), Ok(1));
    assert_eq!(raft(&mut n2, &mut n1), Ok(2));

    // The sender side restarts: same story the other way round.
    let mut n1 = node(1, 11, AuthScheme::HmacSha256);
    assert!(matches!(
        raft(&mut n2, &mut n1),
        Err(PeerReject::StaleReceiverEpoch { got: 10, .. })
    ));
    introduce(&mut n2, &mut n1);
    assert_eq!(raft(&mut n1, &mut n2), Ok(1));
    assert_eq!(raft(&mut n2, &mut n1), Ok(2));
    assert_eq!(n2.peer_window(1).map(|w| w.epoch()), Some(11));
}

/// A replayed ping from an earlier boot of the sender, delivered to a
/// restarted receiver, teaches an old epoch; the sender's next message
/// overtakes it and the old stream is then refused.
#[test]
fn a_replayed_old_epoch_ping_is_overtaken() {
    let mut n2 = node(2, 5, AuthScheme::HmacSha256);
    let mut old_boot = node(1, 1, AuthScheme::HmacSha256);
    let old_ping = seal(&mut old_boot, 2, PeerBody::Ping { nonce: 1 });
    let mut n1 = node(1, 2, AuthScheme::HmacSha256);
    assert!(n2.open(&old_ping).is_ok());
    assert_eq!(n2.peer_window(1).map(|w| w.epoch()), Some(1));
    // Node 2's pong names epoch 1: the real node 1 (epoch 2) refuses it...
    let pong = seal(&mut n2, 1, PeerBody::Pong { nonce: 1 });
    assert!(matches!(
        n1.open(&pong),
        Err(PeerReject::StaleReceiverEpoch { got: 1, .. })
    ));
    // ...until node 1's own ping arrives.
    introduce(&mut n1, &mut n2);
    assert_eq!(n2.peer_window(1).map(|w| w.epoch()), Some(2));
    assert!(matches!(
        n2.open(&old_ping),
        Err(PeerReject::StaleEpoch { .. })
    ));
}

#[test]
fn epoch_zero_is_refused() {
    let result = PeerAuth::new(PeerConfig {
        cluster_id: CLUSTER,
        me: 1,
        epoch: 0,
        scheme: AuthScheme::HmacSha256,
        signing_key: &key(1),
        members: &members(3),
    });
    assert_eq!(result.err(), Some(KeyError::ZeroEpoch));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a receiver saw in one boot, a later boot of it accepts none
    /// of those datagrams but pings, in any order.
    #[test]
    fn no_datagram_of_an_earlier_receiver_boot_is_accepted_but_pings(
        kinds in proptest::collection::vec(0u8..3, 1..40),
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..80),
        reboots in 1u64..4,
    ) {
        let mut n1 = node(1, 1, AuthScheme::HmacSha256);
        let mut n2 = node(2, 1, AuthScheme::HmacSha256);
        introduce(&mut n1, &mut n2);
        let recorded: Vec<(bool, Vec<u8>)> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let body = match kind {
                    0 => PeerBody::Node(b"entries"),
                    1 => PeerBody::Pong { nonce: i as u64 },
                    _ => PeerBody::Ping { nonce: i as u64 },
                };
                (body.is_bootstrap(), seal(&mut n1, 2, body))
            })
            .collect();
        for (_, datagram) in &recorded {
            prop_assert!(n2.open(datagram).is_ok());
        }
        let mut rebooted = node(2, 1 + reboots, AuthScheme::HmacSha256);
        let replays = order.iter().map(|i| &recorded[i.index(recorded.len())]);
        for (bootstrap, datagram) in replays.chain(recorded.iter()) {
            match rebooted.open(datagram) {
                Ok(msg) => prop_assert!(*bootstrap && msg.body.is_bootstrap()),
                Err(PeerReject::StaleReceiverEpoch { current, got: 1, .. }) => {
                    prop_assert!(!*bootstrap);
                    prop_assert_eq!(current, 1 + reboots);
                }
                Err(PeerReject::Replayed { .. } | PeerReject::TooOld { .. }) => {
                    prop_assert!(*bootstrap)
                }
                Err(other) => prop_assert!(false, "unexpected {}", other),
            }
        }
    }
}

/// Membership follows the log: a member added later is accepted once
/// both sides list it, a removed one is refused as an unknown sender, and
/// a peer whose key is unchanged keeps its replay window (an old datagram
/// of it stays refused across the change).
#[test]
fn set_members_adds_and_removes_peers() {
    let scheme = AuthScheme::HmacSha256;
    let mut one = node(1, 10, scheme);
    let mut two = node(2, 20, scheme);
    let mut four = PeerAuth::new(PeerConfig {
        cluster_id: CLUSTER,
        me: 4,
        epoch: 40,
        scheme,
        signing_key: &key(4),
        members: &members(4),
    })
    .unwrap();
    let ping = PeerBody::Ping { nonce: 1 };
    let from_four = seal(&mut four, 1, ping);
    assert!(matches!(
        one.open(&from_four),
        Err(PeerReject::UnknownSender { sender: 4 })
    ));
    let old = seal(&mut two, 1, ping);
    assert!(one.open(&old).is_ok());
    assert!(one.set_members(&members(4)).unwrap());
    assert!(!one.set_members(&members(4)).unwrap(), "no change");
    assert!(one.open(&seal(&mut four, 1, ping)).is_ok());
    assert!(
        one.open(&old).is_err(),
        "node 2's window survived the change"
    );
    // Node 2 removed: refused from now on.
    let without_two: Vec<_> = members(4).into_iter().filter(|m| m.0 != 2).collect();
    assert!(one.set_members(&without_two).unwrap());
    assert!(matches!(
        one.open(&seal(&mut two, 1, ping)),
        Err(PeerReject::UnknownSender { sender: 2 })
    ));
    assert!(one.peer_ids().eq([3, 4]));
    // Our own key must be ours; nothing changes on a refusal.
    let mut wrong_self = without_two.clone();
    wrong_self[0].1 = key(9).verifying_key();
    assert_eq!(one.set_members(&wrong_self), Err(KeyError::OwnKeyMismatch));
    assert!(one.peer_ids().eq([3, 4]));
}
