//! The switch core over explicit time: learning, flooding, every fault kind,
//! partitions of each shape, and determinism from the seed.

use continuum_base::NodeId;
use continuum_fabric::switch::{Delivery, Switch};
use continuum_fabric::topology::ring_groups;
use continuum_fabric::LinkFaults;

const BROADCAST: [u8; 6] = [0xff; 6];

fn mac(node: NodeId) -> [u8; 6] {
    [0x52, 0x54, 0, 0, 0, node as u8]
}

/// An Ethernet frame with a sequence number in its payload.
fn frame(dst: [u8; 6], src: [u8; 6], tag: u32) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&tag.to_be_bytes());
    f.resize(60, 0);
    f
}

fn tag_of(d: &Delivery) -> u32 {
    u32::from_be_bytes(d.frame[14..18].try_into().unwrap())
}

fn drain(switch: &mut Switch, now: u64) -> Vec<Delivery> {
    std::iter::from_fn(|| switch.pop_due(now)).collect()
}

/// A switch whose MAC table knows node i on port i.
fn learned(nodes: NodeId, seed: u64) -> Switch {
    let mut s = Switch::new(nodes, seed).unwrap();
    for n in 1..=nodes {
        s.ingress(0, n, &frame(BROADCAST, mac(n), 0), false);
    }
    drain(&mut s, 0);
    s
}

/// Sends `count` unicast frames 1 → 2, one per millisecond, and returns the
/// deliveries in order (draining at each step and at the end).
fn stream_1_to_2(s: &mut Switch, count: u32) -> Vec<Delivery> {
    let mut out = Vec::new();
    for i in 0..count {
        let now = u64::from(i) * 1000;
        s.ingress(now, 1, &frame(mac(2), mac(1), i), false);
        out.extend(drain(s, now));
    }
    out.extend(drain(s, u64::MAX));
    out
}

#[test]
fn learns_forwards_and_floods() {
    let mut s = Switch::new(3, 1).unwrap();
    // Unknown destination: flooded to every other port.
    s.ingress(0, 1, &frame(mac(2), mac(1), 1), false);
    let out = drain(&mut s, 0);
    assert_eq!(out.iter().map(|d| d.to).collect::<Vec<_>>(), vec![2, 3]);
    // Node 2 answers node 1, whose MAC was learned: only port 1 gets it.
    s.ingress(0, 2, &frame(mac(1), mac(2), 2), false);
    let out = drain(&mut s, 0);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].from, out[0].to), (2, 1));
    // Now 1 → 2 is unicast too.
    s.ingress(0, 1, &frame(mac(2), mac(1), 3), false);
    assert_eq!(
        drain(&mut s, 0).iter().map(|d| d.to).collect::<Vec<_>>(),
        vec![2]
    );
    // Broadcast always floods; a frame to a MAC on the ingress port is filtered.
    s.ingress(0, 3, &frame(BROADCAST, mac(3), 4), false);
    assert_eq!(drain(&mut s, 0).len(), 2);
    s.ingress(0, 1, &frame(mac(1), mac(9), 5), false);
    assert!(drain(&mut s, 0).is_empty());
    let p1 = s.port_stats(1).unwrap();
    assert_eq!((p1.received, p1.flooded, p1.filtered), (3, 1, 1));
    // Runts are counted, not forwarded.
    s.ingress(0, 2, &[0u8; 10], false);
    assert_eq!(s.port_stats(2).unwrap().malformed, 1);
    assert!(drain(&mut s, 0).is_empty());
}

#[test]
fn injected_frames_are_forwarded_but_not_learned() {
    let mut s = learned(3, 1);
    // A forgery claiming node 1's MAC injected on port 3.
    s.ingress(0, 3, &frame(mac(2), mac(1), 7), true);
    let out = drain(&mut s, 0);
    assert_eq!((out[0].from, out[0].to), (3, 2));
    // Node 1's MAC still maps to port 1.
    s.ingress(0, 2, &frame(mac(1), mac(2), 8), false);
    assert_eq!(drain(&mut s, 0)[0].to, 1);
    assert_eq!(s.port_stats(3).unwrap().injected, 1);
}

#[test]
fn drop_rate_matches_plan_within_tolerance() {
    let mut s = learned(2, 42);
    let plan = LinkFaults {
        drop: 0.2,
        ..LinkFaults::default()
    };
    s.set_link(1, 2, plan).unwrap();
    let delivered = stream_1_to_2(&mut s, 10_000).len();
    let stats = s.link_stats(1, 2).unwrap();
    assert_eq!(stats.dropped as usize + delivered, 10_000);
    assert!(
        (1_800..=2_200).contains(&stats.dropped),
        "dropped {}",
        stats.dropped
    );
    // The reverse link has its own (clean) plan.
    assert_eq!(s.link_stats(2, 1).unwrap().dropped, 0);
}

#[test]
fn fixed_delay_and_jitter_bound_delivery_time() {
    let mut s = learned(2, 3);
    s.set_link(
        1,
        2,
        LinkFaults {
            delay_ms: 5,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    s.ingress(1_000, 1, &frame(mac(2), mac(1), 1), false);
    assert!(s.pop_due(5_999).is_none());
    assert_eq!(s.next_due(), Some(6_000));
    assert_eq!(tag_of(&s.pop_due(6_000).unwrap()), 1);

    s.set_link(
        1,
        2,
        LinkFaults {
            delay_ms: 2,
            jitter_ms: 10,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    for i in 0..200u32 {
        let now = u64::from(i) * 100; // frames 0.1 ms apart, jitter 10 ms
        s.ingress(now, 1, &frame(mac(2), mac(1), i), false);
    }
    let mut seen = Vec::new();
    while let Some(now) = s.next_due() {
        for d in drain(&mut s, now) {
            let sent_at = u64::from(tag_of(&d)) * 100;
            assert!(
                now >= sent_at + 2_000 && now <= sent_at + 12_000,
                "frame {} at {now}",
                tag_of(&d)
            );
            seen.push(tag_of(&d));
        }
    }
    assert_eq!(seen.len(), 200);
    assert!(
        seen.windows(2).any(|w| w[0] > w[1]),
        "10 ms jitter on 0.1 ms spacing must reorder"
    );
    assert_eq!(s.link_stats(1, 2).unwrap().delayed, 201);
}

#[test]
fn duplication_delivers_copies() {
    let mut s = learned(2, 5);
    s.set_link(
        1,
        2,
        LinkFaults {
            dup: 1.0,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    let tags: Vec<u32> = stream_1_to_2(&mut s, 3).iter().map(tag_of).collect();
    assert_eq!(tags, vec![0, 0, 1, 1, 2, 2]);
    s.set_link(
        1,
        2,
        LinkFaults {
            dup: 0.1,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    let before = s.link_stats(1, 2).unwrap().duplicated;
    let delivered = stream_1_to_2(&mut s, 5_000).len();
    let dups = s.link_stats(1, 2).unwrap().duplicated - before;
    assert_eq!(delivered as u64, 5_000 + dups);
    assert!((400..=600).contains(&dups), "duplicated {dups}");
}

#[test]
fn reorder_swaps_with_the_next_frame_or_releases_after_hold() {
    let mut s = learned(2, 9);
    s.set_link(
        1,
        2,
        LinkFaults {
            reorder: 1.0,
            hold_ms: 20,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    let tags: Vec<u32> = stream_1_to_2(&mut s, 6).iter().map(tag_of).collect();
    assert_eq!(tags, vec![1, 0, 3, 2, 5, 4]);
    // A lone held frame waits hold_ms, then goes.
    s.ingress(100_000, 1, &frame(mac(2), mac(1), 99), false);
    assert!(s.pop_due(119_999).is_none());
    assert_eq!(tag_of(&s.pop_due(120_000).unwrap()), 99);
    assert_eq!(s.link_stats(1, 2).unwrap().reordered, 4);
}

/// Which directed links carry a broadcast from every node.
fn reachability(s: &mut Switch, nodes: NodeId) -> Vec<(NodeId, NodeId)> {
    let mut links = Vec::new();
    for n in 1..=nodes {
        s.ingress(0, n, &frame(BROADCAST, mac(n), 0), false);
        links.extend(drain(s, 0).iter().map(|d| (d.from, d.to)));
    }
    links.sort();
    links
}

fn all_links(nodes: NodeId) -> Vec<(NodeId, NodeId)> {
    let mut v = Vec::new();
    for a in 1..=nodes {
        for b in (1..=nodes).filter(|&b| b != a) {
            v.push((a, b));
        }
    }
    v
}

#[test]
fn partitions_of_each_shape_and_heal() {
    let mut s = learned(5, 1);
    s.isolate(3).unwrap();
    let r = reachability(&mut s, 5);
    assert!(r.iter().all(|&(a, b)| a != 3 && b != 3));
    assert_eq!(r.len(), 4 * 3);

    s.partition(&[vec![1, 2], vec![3, 4, 5]]).unwrap();
    let r = reachability(&mut s, 5);
    assert!(r.contains(&(1, 2)) && r.contains(&(5, 3)) && !r.contains(&(2, 3)));
    assert_eq!(r.len(), 2 + 6);

    // Bridge: 3 talks to both sides, the sides do not talk to each other.
    s.partition(&[vec![1, 2, 3], vec![3, 4, 5]]).unwrap();
    let r = reachability(&mut s, 5);
    assert!(r.contains(&(3, 1)) && r.contains(&(3, 5)) && r.contains(&(5, 3)));
    assert!(!r.contains(&(1, 5)) && !r.contains(&(4, 2)));

    // Ring: each node hears exactly its two neighbours.
    s.partition(&ring_groups(5)).unwrap();
    let r = reachability(&mut s, 5);
    for n in 1..=5 as NodeId {
        let heard: Vec<NodeId> = r.iter().filter(|l| l.1 == n).map(|l| l.0).collect();
        assert_eq!(heard.len(), 2, "node {n} hears {heard:?}");
    }

    // One-way: 1 hears 2 but 2 does not hear 1.
    s.heal();
    s.set_blocked(1, 2, true).unwrap();
    let r = reachability(&mut s, 5);
    assert!(!r.contains(&(1, 2)) && r.contains(&(2, 1)));

    s.heal();
    assert_eq!(reachability(&mut s, 5), all_links(5));
    assert!(s.partition(&[vec![1, 6]]).is_err());
}

#[test]
fn partition_drops_frames_already_in_flight() {
    let mut s = learned(2, 1);
    s.set_link(
        1,
        2,
        LinkFaults {
            delay_ms: 10,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    s.ingress(0, 1, &frame(mac(2), mac(1), 1), false);
    s.isolate(2).unwrap();
    assert!(drain(&mut s, u64::MAX).is_empty());
    assert_eq!(s.link_stats(1, 2).unwrap().blocked, 1);
}

#[test]
fn same_seed_same_fate_different_seed_differs() {
    let plan = LinkFaults {
        drop: 0.3,
        dup: 0.2,
        reorder: 0.2,
        jitter_ms: 3,
        ..LinkFaults::default()
    };
    let run = |seed: u64| {
        let mut s = learned(2, seed);
        s.set_link(1, 2, plan.clone()).unwrap();
        let tags: Vec<u32> = stream_1_to_2(&mut s, 500).iter().map(tag_of).collect();
        (tags, s.link_stats(1, 2).unwrap().clone())
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7).0, run(8).0);
}

#[test]
fn invalid_plans_are_refused() {
    let mut s = Switch::new(3, 1).unwrap();
    let bad = LinkFaults {
        drop: 1.5,
        ..LinkFaults::default()
    };
    assert!(s.set_link(1, 2, bad).unwrap_err().contains("drop"));
    assert!(s.set_link(1, 1, LinkFaults::default()).is_err());
    assert!(s.set_link(1, 4, LinkFaults::default()).is_err());
    let nan = LinkFaults {
        dup: f64::NAN,
        ..LinkFaults::default()
    };
    assert!(s.set_all_links(nan).is_err());
    assert!(Switch::new(0, 1).is_err());
}

/// An IPv4/UDP frame 1 → 2 whose payload starts with `tag`, with a valid
/// UDP checksum.
fn udp_frame(tag: u32) -> Vec<u8> {
    let mut payload = tag.to_be_bytes().to_vec();
    payload.extend_from_slice(b"sealed message body ....");
    let mut f = mac(2).to_vec();
    f.extend_from_slice(&mac(1));
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0]);
    f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let udp_len = 8 + payload.len();
    f.extend_from_slice(&[
        0x1f,
        0x90,
        0x1f,
        0x90,
        (udp_len >> 8) as u8,
        udp_len as u8,
        0,
        0,
    ]);
    f.extend_from_slice(&payload);
    let end = f.len();
    let sum = continuum_fabric::mangle::udp_checksum(&f, 34, end);
    f[40..42].copy_from_slice(&sum.to_be_bytes());
    f
}

fn checksum_holds(frame: &[u8]) -> bool {
    let (udp, _, end) = continuum_fabric::mangle::udp_payload(frame).unwrap();
    frame[udp + 6..udp + 8] == continuum_fabric::mangle::udp_checksum(frame, udp, end).to_be_bytes()
}

fn udp_stream(s: &mut Switch, count: u32) -> (Vec<Vec<u8>>, Vec<Delivery>) {
    let mut sent = Vec::new();
    let mut out = Vec::new();
    for i in 0..count {
        let now = u64::from(i) * 1000;
        let f = udp_frame(i);
        s.ingress(now, 1, &f, false);
        sent.push(f);
        out.extend(drain(s, now));
    }
    out.extend(drain(s, u64::MAX));
    (sent, out)
}

#[test]
fn corruption_rewrites_payload_bytes_behind_a_valid_checksum() {
    let mut s = learned(2, 11);
    s.set_link(
        1,
        2,
        LinkFaults {
            corrupt: 1.0,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    let (sent, got) = udp_stream(&mut s, 50);
    assert_eq!(got.len(), 50);
    for (original, delivered) in sent.iter().zip(&got) {
        assert_ne!(original, &delivered.frame, "a frame passed uncorrupted");
        assert_eq!(original.len(), delivered.frame.len());
        // Headers up to the UDP checksum are untouched; the checksum holds.
        assert_eq!(original[..40], delivered.frame[..40]);
        assert!(checksum_holds(&delivered.frame));
    }
    assert_eq!(s.link_stats(1, 2).unwrap().corrupted, 50);
    // Non-UDP frames are not corrupted (nor counted), and the reverse link
    // has no plan.
    let plain = stream_1_to_2(&mut s, 10);
    assert_eq!(
        plain.iter().map(tag_of).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(s.link_stats(1, 2).unwrap().corrupted, 50);
    // A 10 % plan corrupts about 10 %.
    s.set_link(
        1,
        2,
        LinkFaults {
            corrupt: 0.1,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    let (sent, got) = udp_stream(&mut s, 2_000);
    let changed = sent
        .iter()
        .zip(&got)
        .filter(|(a, b)| *a != &b.frame)
        .count();
    assert_eq!(changed as u64, s.link_stats(1, 2).unwrap().corrupted - 50);
    assert!((140..=260).contains(&changed), "corrupted {changed}");
}

#[test]
fn replay_resends_an_earlier_frame_of_the_same_link() {
    let mut s = learned(2, 13);
    s.set_link(
        1,
        2,
        LinkFaults {
            replay: 1.0,
            ..LinkFaults::default()
        },
    )
    .unwrap();
    let (_, got) = udp_stream(&mut s, 40);
    let tags: Vec<u32> = got
        .iter()
        .map(|d| u32::from_be_bytes(d.frame[42..46].try_into().unwrap()))
        .collect();
    // The first frame has no history; every later one brings a replay.
    assert_eq!(got.len(), 40 + 39);
    assert_eq!(s.link_stats(1, 2).unwrap().replayed, 39);
    // Each original arrives once in order; each replay is an earlier frame
    // from at most REPLAY_HISTORY_FRAMES back.
    let mut next = 0u32;
    for tag in tags {
        if tag == next {
            next += 1;
        } else {
            assert!(tag < next, "replayed {tag} before it was sent");
            let back = (next - tag) as usize;
            assert!(back <= continuum_fabric::faults::REPLAY_HISTORY_FRAMES);
        }
    }
    assert_eq!(next, 40);
    // Turning replay off forgets the history: nothing more is replayed.
    s.set_link(1, 2, LinkFaults::default()).unwrap();
    let (_, got) = udp_stream(&mut s, 20);
    assert_eq!(got.len(), 20);
    assert_eq!(s.link_stats(1, 2).unwrap().replayed, 39);
}

#[test]
fn corrupt_and_replay_are_seeded_and_leave_older_fates_unchanged() {
    let mangled = LinkFaults {
        drop: 0.2,
        dup: 0.1,
        corrupt: 0.3,
        replay: 0.2,
        ..LinkFaults::default()
    };
    let run = |seed: u64, plan: &LinkFaults| {
        let mut s = learned(2, seed);
        s.set_link(1, 2, plan.clone()).unwrap();
        let (_, got) = udp_stream(&mut s, 400);
        let frames: Vec<Vec<u8>> = got.into_iter().map(|d| d.frame).collect();
        (frames, s.link_stats(1, 2).unwrap().clone())
    };
    assert_eq!(run(21, &mangled), run(21, &mangled));
    assert_ne!(run(21, &mangled).0, run(22, &mangled).0);
    // The drop/dup fates of a seed do not depend on corrupt and replay:
    // the same frames are dropped and duplicated with or without them.
    let plain = LinkFaults {
        corrupt: 0.0,
        replay: 0.0,
        ..mangled.clone()
    };
    let (_, with) = run(21, &mangled);
    let (_, without) = run(21, &plain);
    assert_eq!(
        (with.dropped, with.duplicated),
        (without.dropped, without.duplicated)
    );
    assert!(with.corrupted > 0 && with.replayed > 0);
}

#[test]
fn corrupt_and_replay_out_of_range_are_refused() {
    let mut s = Switch::new(2, 1).unwrap();
    for bad in [
        LinkFaults {
            corrupt: 1.01,
            ..LinkFaults::default()
        },
        LinkFaults {
            replay: -0.5,
            ..LinkFaults::default()
        },
    ] {
        let error = s.set_link(1, 2, bad).unwrap_err();
        assert!(
            error.contains("corrupt") || error.contains("replay"),
            "{error}"
        );
    }
}
