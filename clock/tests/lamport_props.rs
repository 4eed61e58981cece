//! Property tests of the Lamport clock's rules and of timestamp decoding.

use continuum_clock::{
    lamport_from_bytes, lamport_to_bytes, HlcTimestamp, LamportClock, LamportError,
    LAMPORT_REMOTE_MAX,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Tick,
    Send,
    Recv(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Tick),
        Just(Op::Send),
        (0u64..400).prop_map(Op::Recv),
        (0u64..=LAMPORT_REMOTE_MAX).prop_map(Op::Recv),
        ((LAMPORT_REMOTE_MAX + 1)..=u64::MAX).prop_map(Op::Recv),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// IR1/IR2 against a one-line model: tick is `+1`, receive is
    /// `max(local, remote) + 1`, out-of-range remotes are refused untouched,
    /// and every returned value exceeds all earlier ones.
    #[test]
    fn follows_ir1_and_ir2(ops in proptest::collection::vec(op(), 1..300)) {
        let clock = LamportClock::new();
        let mut model = 0u64;
        for op in ops {
            let before = clock.current();
            let returned = match op {
                Op::Tick => clock.tick(),
                Op::Send => clock.send(),
                Op::Recv(remote) => match clock.recv(remote) {
                    Ok(value) => {
                        prop_assert!(value > remote);
                        model = model.max(remote);
                        value
                    }
                    Err(error) => {
                        prop_assert!(remote > LAMPORT_REMOTE_MAX);
                        prop_assert_eq!(error, LamportError::RemoteOutOfRange { remote });
                        prop_assert_eq!(clock.current(), before);
                        continue;
                    }
                },
            };
            model += 1;
            prop_assert_eq!(returned, model);
            prop_assert!(returned > before);
            prop_assert_eq!(clock.current(), returned);
        }
    }

    /// Decoding is total and canonical on arbitrary bytes (the same check
    /// the `wire_decode` fuzz target runs).
    #[test]
    fn decoding_is_total_and_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
        continuum_clock::check_wire_decoding(&bytes);
    }

    #[test]
    fn encodings_round_trip(packed in any::<u64>(), lamport in 0..=LAMPORT_REMOTE_MAX) {
        let stamp = HlcTimestamp::from_packed(packed);
        prop_assert_eq!(HlcTimestamp::from_bytes(&stamp.to_bytes()), Ok(stamp));
        prop_assert_eq!(lamport_from_bytes(&lamport_to_bytes(lamport)), Ok(lamport));
        // Big-endian encoding preserves order, so byte-wise comparison of
        // encodings agrees with timestamp order.
        let other = HlcTimestamp::from_packed(packed.rotate_left(13));
        prop_assert_eq!(stamp.to_bytes().cmp(&other.to_bytes()), stamp.cmp(&other));
    }
}
