//! Property tests of the HLC: monotonicity under arbitrary physical time
//! (including backward jumps), equivalence with the paper's rules, the
//! max-offset rule and logical-counter overflow.

mod common;

use common::ManualClock;
use continuum_clock::{Hlc, HlcConfig, HlcError, HlcTimestamp, HLC_MAX_LOGICAL, HLC_MAX_MILLIS};
use proptest::prelude::*;

/// One input to a clock: physical time for this step and what to do.
#[derive(Clone, Debug)]
enum Step {
    Now { physical: u64 },
    Update { physical: u64, remote: HlcTimestamp },
}

/// Physical times clustered so that ties, small steps and big backward
/// jumps are all common.
fn physical_time() -> impl Strategy<Value = u64> {
    prop_oneof![
        1_000u64..1_010,
        0u64..5_000,
        Just(1_000u64),
        (HLC_MAX_MILLIS - 3)..=HLC_MAX_MILLIS,
    ]
}

fn timestamp() -> impl Strategy<Value = HlcTimestamp> {
    prop_oneof![
        (0u64..6_000, any::<u16>()),
        (0u64..6_000, (HLC_MAX_LOGICAL - 2)..=HLC_MAX_LOGICAL),
        (0u64..=HLC_MAX_MILLIS, any::<u16>()),
    ]
    .prop_map(|(millis, logical)| HlcTimestamp::new(millis, logical).expect("millis in range"))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        physical_time().prop_map(|physical| Step::Now { physical }),
        (physical_time(), timestamp())
            .prop_map(|(physical, remote)| Step::Update { physical, remote }),
    ]
}

/// Kulkarni et al., Fig. 5, transcribed literally with an unbounded
/// logical counter. Used only while the counter stays within 16 bits.
#[derive(Clone, Copy, Debug, Default)]
struct PaperHlc {
    l: u64,
    c: u64,
}

impl PaperHlc {
    fn send(&mut self, pt: u64) {
        let l_old = self.l;
        self.l = l_old.max(pt);
        self.c = if self.l == l_old { self.c + 1 } else { 0 };
    }

    fn recv(&mut self, pt: u64, l_m: u64, c_m: u64) {
        let l_old = self.l;
        self.l = l_old.max(l_m).max(pt);
        self.c = if self.l == l_old && self.l == l_m {
            self.c.max(c_m) + 1
        } else if self.l == l_old {
            self.c + 1
        } else if self.l == l_m {
            c_m + 1
        } else {
            0
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever physical time does, each successful call returns more than
    /// every earlier one, never less than the physical time it read, and a
    /// refused call changes nothing.
    #[test]
    fn strictly_monotonic_under_any_physical_time(
        max_offset in 0u64..2_000,
        steps in proptest::collection::vec(step(), 1..200),
    ) {
        let hlc = Hlc::new(HlcConfig { max_offset_millis: max_offset });
        let pt = ManualClock::default();
        let mut previous = HlcTimestamp::ZERO;
        for step in steps {
            let (physical, result) = match step {
                Step::Now { physical } => {
                    pt.set(physical);
                    (physical, hlc.now(&pt))
                }
                Step::Update { physical, remote } => {
                    pt.set(physical);
                    let result = hlc.update(remote, &pt);
                    if let Ok(stamp) = result {
                        prop_assert!(stamp > remote, "receive must exceed the message");
                    }
                    (physical, result)
                }
            };
            match result {
                Ok(stamp) => {
                    prop_assert!(stamp > previous, "{stamp} after {previous}");
                    prop_assert!(stamp.millis() >= physical);
                    prop_assert_eq!(hlc.last(), stamp);
                    previous = stamp;
                }
                Err(_) => prop_assert_eq!(hlc.last(), previous),
            }
        }
    }

    /// While the logical counter fits in 16 bits, the packed arithmetic is
    /// exactly the paper's algorithm.
    #[test]
    fn matches_the_papers_rules(
        steps in proptest::collection::vec(
            prop_oneof![
                (0u64..50).prop_map(|pt| (pt, None)),
                (0u64..50, 0u64..60, 0u16..1_000).prop_map(|(pt, l, c)| (pt, Some((l, c)))),
            ],
            1..300,
        ),
    ) {
        let hlc = Hlc::new(HlcConfig { max_offset_millis: 1_000 });
        let pt = ManualClock::default();
        let mut paper = PaperHlc::default();
        for (physical, remote) in steps {
            pt.set(physical);
            let stamp = match remote {
                None => {
                    paper.send(physical);
                    hlc.now(&pt)
                }
                Some((l_m, c_m)) => {
                    paper.recv(physical, l_m, u64::from(c_m));
                    hlc.update(HlcTimestamp::new(l_m, c_m).expect("small"), &pt)
                }
            }
            .expect("within range and offset");
            prop_assume!(paper.c <= u64::from(HLC_MAX_LOGICAL));
            prop_assert_eq!((stamp.millis(), u64::from(stamp.logical())), (paper.l, paper.c));
        }
    }

    /// `update` refuses exactly the remotes more than `max_offset` ahead of
    /// physical time, counts each refusal and does not adopt them.
    #[test]
    fn max_offset_rule(
        physical in 0u64..1_000_000,
        max_offset in 0u64..10_000,
        ahead in 0u64..20_000,
        logical in any::<u16>(),
        start in 0u64..1_000_000,
    ) {
        let hlc = Hlc::starting_after(HlcTimestamp::new(start, 0).expect("small"), HlcConfig { max_offset_millis: max_offset });
        let pt = ManualClock::at(physical);
        let remote = HlcTimestamp::new(physical + ahead, logical).expect("small");
        let result = hlc.update(remote, &pt);
        if ahead > max_offset {
            prop_assert_eq!(result, Err(HlcError::RemoteTooFarAhead {
                remote,
                physical_millis: physical,
                max_offset_millis: max_offset,
            }));
            prop_assert_eq!(hlc.skew_rejections(), 1);
            prop_assert_eq!(hlc.last(), HlcTimestamp::new(start, 0).expect("small"));
        } else {
            let stamp = result.expect("within max offset");
            prop_assert!(stamp > remote);
            prop_assert_eq!(hlc.skew_rejections(), 0);
        }
    }

    /// With physical time frozen, the counter runs to 65 535 and carries
    /// into the milliseconds: consecutive calls return consecutive packed
    /// words, never a smaller one.
    #[test]
    fn logical_overflow_carries(
        millis in 0u64..(HLC_MAX_MILLIS - 10),
        logical in (HLC_MAX_LOGICAL - 20)..=HLC_MAX_LOGICAL,
        calls in 1usize..100,
    ) {
        let start = HlcTimestamp::new(millis, logical).expect("in range");
        let hlc = Hlc::starting_after(start, HlcConfig::default());
        let pt = ManualClock::at(millis);
        for i in 1..=calls {
            let stamp = hlc.now(&pt).expect("not exhausted");
            prop_assert_eq!(stamp.packed(), start.packed() + i as u64);
        }
        prop_assert!(hlc.last().millis() <= millis + 1);
    }
}

#[test]
fn exhausted_clock_refuses_instead_of_wrapping() {
    let pt = ManualClock::at(HLC_MAX_MILLIS);
    let start = HlcTimestamp::new(HLC_MAX_MILLIS, HLC_MAX_LOGICAL - 2).expect("in range");
    let hlc = Hlc::starting_after(start, HlcConfig::default());
    assert_eq!(
        hlc.now(&pt).map(HlcTimestamp::logical),
        Ok(HLC_MAX_LOGICAL - 1)
    );
    assert_eq!(hlc.now(&pt), Ok(HlcTimestamp::MAX));
    for _ in 0..3 {
        assert_eq!(hlc.now(&pt), Err(HlcError::Exhausted));
    }
    assert_eq!(hlc.last(), HlcTimestamp::MAX);
}
