//! The bodies of the `node/fuzz` targets as property tests: arbitrary and
//! mutated envelopes and entry data never panic and keep one encoding.

use continuum_node::fuzz_check;
use continuum_node::{Body, EntryHeader, Envelope, ForwardRefusal};
use proptest::prelude::*;

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 1..64),
            any::<bool>()
        )
            .prop_map(|(origin, request_tag, command, admitted)| Body::Forward {
                origin,
                request_tag,
                entry: command,
                admitted
            }),
        (any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(index, head)| Body::ChainCheck { index, head }),
        (
            any::<u64>(),
            prop_oneof![
                Just(ForwardRefusal::BadSignature),
                Just(ForwardRefusal::Unresolved)
            ]
        )
            .prop_map(|(request_tag, reason)| Body::ForwardRefused {
                request_tag,
                reason
            }),
    ]
}

proptest! {
    #[test]
    fn mutated_envelopes_keep_one_encoding(
        lamport: u64,
        hlc: u64,
        body in body(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        let envelope = Envelope { lamport, hlc, body };
        envelope.encode(&mut bytes);
        prop_assert_eq!(Envelope::decode(&bytes), Ok(envelope));
        fuzz_check::envelope(&bytes);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        fuzz_check::envelope(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_node_decoders(
        bytes in prop::collection::vec(any::<u8>(), 0..400)
    ) {
        fuzz_check::envelope(&bytes);
        fuzz_check::entry_header(&bytes);
    }

    #[test]
    fn entry_headers_round_trip(origin: u64, request_tag: u64, hlc: u64, command in prop::collection::vec(any::<u8>(), 0..64)) {
        let data = EntryHeader { origin, request_tag, hlc }.wrap(&command);
        fuzz_check::entry_header(&data);
    }
}
