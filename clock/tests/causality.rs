//! Happens-before is preserved over random message DAGs: simulated nodes
//! with skewed, drifting (and in one variant backward-jumping) physical
//! clocks exchange messages in random order; vector clocks give the true
//! causal order, and every `e -> f` must have `hlc(e) < hlc(f)` and
//! `lamport(e) < lamport(f)`.

mod common;

use common::ManualClock;
use continuum_clock::{Hlc, HlcConfig, HlcTimestamp, LamportClock};
use proptest::prelude::*;

const MAX_OFFSET_MILLIS: u64 = 500;

#[derive(Clone, Debug)]
enum Action {
    /// A node records a local event.
    Local { node: usize },
    /// A node sends to another (the message goes in flight).
    Send { from: usize, to: usize },
    /// One in-flight message (chosen by index modulo the count) arrives.
    Deliver { pick: usize },
    /// Simulated true time advances.
    Advance { millis: u64 },
    /// A node's physical clock is stepped back (NTP-style correction).
    StepBack { node: usize, millis: u64 },
}

struct Node {
    physical: ManualClock,
    /// Constant offset of this node's clock from true time, ms.
    skew: u64,
    /// Total amount stepped back so far, ms.
    stepped_back: u64,
    hlc: Hlc,
    lamport: LamportClock,
    vector: Vec<u64>,
}

struct Message {
    to: usize,
    hlc: HlcTimestamp,
    lamport: u64,
    vector: Vec<u64>,
}

struct Event {
    node: usize,
    hlc: HlcTimestamp,
    lamport: u64,
    vector: Vec<u64>,
}

fn happens_before(a: &[u64], b: &[u64]) -> bool {
    a != b && a.iter().zip(b).all(|(x, y)| x <= y)
}

fn action(nodes: usize, step_back: bool) -> impl Strategy<Value = Action> {
    let steps = if step_back { 1u32 } else { 0 };
    prop_oneof![
        3 => (0..nodes).prop_map(|node| Action::Local { node }),
        4 => (0..nodes, 0..nodes).prop_map(|(from, to)| Action::Send { from, to }),
        4 => any::<usize>().prop_map(|pick| Action::Deliver { pick }),
        2 => (0u64..30).prop_map(|millis| Action::Advance { millis }),
        steps => ((0..nodes), 1u64..300).prop_map(|(node, millis)| Action::StepBack { node, millis }),
    ]
}

fn scenario(step_back: bool) -> impl Strategy<Value = (Vec<u64>, Vec<Action>)> {
    (2usize..=5).prop_flat_map(move |nodes| {
        (
            proptest::collection::vec(0u64..200, nodes),
            proptest::collection::vec(action(nodes, step_back), 1..250),
        )
    })
}

/// Runs one scenario and checks causality; returns how many messages the
/// max-offset rule refused.
fn run(skews: &[u64], actions: &[Action], step_back: bool) -> Result<u64, TestCaseError> {
    let count = skews.len();
    let base = 1_700_000_000_000u64;
    let mut true_time = base;
    let mut nodes: Vec<Node> = skews
        .iter()
        .map(|&skew| Node {
            physical: ManualClock::at(true_time + skew),
            skew,
            stepped_back: 0,
            hlc: Hlc::new(HlcConfig {
                max_offset_millis: MAX_OFFSET_MILLIS,
            }),
            lamport: LamportClock::new(),
            vector: vec![0; count],
        })
        .collect();
    let mut in_flight: Vec<Message> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut refused = 0u64;
    for action in actions {
        match *action {
            Action::Advance { millis } => {
                true_time += millis;
                for node in &nodes {
                    node.physical
                        .set(true_time + node.skew - node.stepped_back.min(true_time));
                }
                continue;
            }
            Action::StepBack { node, millis } => {
                let node = &mut nodes[node];
                node.stepped_back += millis;
                node.physical
                    .set(true_time + node.skew - node.stepped_back.min(true_time));
                continue;
            }
            Action::Local { node: index } | Action::Send { from: index, .. } => {
                let node = &mut nodes[index];
                node.vector[index] += 1;
                let hlc = node.hlc.now(&node.physical).expect("in range");
                let lamport = node.lamport.tick();
                if let Action::Send { to, .. } = *action {
                    in_flight.push(Message {
                        to,
                        hlc,
                        lamport,
                        vector: node.vector.clone(),
                    });
                }
                events.push(Event {
                    node: index,
                    hlc,
                    lamport,
                    vector: node.vector.clone(),
                });
            }
            Action::Deliver { pick } => {
                if in_flight.is_empty() {
                    continue;
                }
                let message = in_flight.swap_remove(pick % in_flight.len());
                let node = &mut nodes[message.to];
                let hlc = match node.hlc.update(message.hlc, &node.physical) {
                    Ok(stamp) => stamp,
                    Err(_) => {
                        // Refused: dropped, so it creates no causal edge.
                        refused += 1;
                        continue;
                    }
                };
                let lamport = node.lamport.recv(message.lamport).expect("small values");
                for (mine, theirs) in node.vector.iter_mut().zip(&message.vector) {
                    *mine = (*mine).max(*theirs);
                }
                node.vector[message.to] += 1;
                prop_assert!(hlc > message.hlc && lamport > message.lamport);
                events.push(Event {
                    node: message.to,
                    hlc,
                    lamport,
                    vector: node.vector.clone(),
                });
            }
        }
        let last = events.last().expect("an event was just recorded");
        let node = &nodes[last.node];
        prop_assert!(last.hlc.millis() >= node.physical.get());
        if !step_back {
            // Kulkarni et al. Theorem: l never exceeds the largest physical
            // clock in the system (clocks are monotone in this variant and
            // no logical counter gets near a carry).
            let max_physical = nodes.iter().map(|n| n.physical.get()).max().expect("nodes");
            prop_assert!(last.hlc.millis() <= max_physical);
        }
    }
    for earlier in &events {
        for later in &events {
            if happens_before(&earlier.vector, &later.vector) {
                prop_assert!(
                    earlier.hlc < later.hlc,
                    "HLC broke causality: {} -> {}",
                    earlier.hlc,
                    later.hlc
                );
                prop_assert!(earlier.lamport < later.lamport);
            }
        }
    }
    // Skews are below 200 ms, so without steps back nothing is refused.
    if !step_back {
        prop_assert_eq!(refused, 0);
    }
    Ok(refused)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn happens_before_preserved_with_skewed_clocks((skews, actions) in scenario(false)) {
        run(&skews, &actions, false)?;
    }

    #[test]
    fn happens_before_preserved_with_clocks_stepping_back((skews, actions) in scenario(true)) {
        run(&skews, &actions, true)?;
    }
}

/// A node whose clock is far ahead gets its messages refused, and the
/// receiver's clock is not dragged forward.
#[test]
fn fast_node_is_refused_not_followed() {
    let fast = ManualClock::at(1_000_000 + 10_000);
    let slow = ManualClock::at(1_000_000);
    let config = HlcConfig {
        max_offset_millis: MAX_OFFSET_MILLIS,
    };
    let (fast_hlc, slow_hlc) = (Hlc::new(config), Hlc::new(config));
    let stamp = fast_hlc.now(&fast).expect("in range");
    assert!(slow_hlc.update(stamp, &slow).is_err());
    assert_eq!(slow_hlc.skew_rejections(), 1);
    assert_eq!(slow_hlc.now(&slow).expect("in range").millis(), 1_000_000);
}
