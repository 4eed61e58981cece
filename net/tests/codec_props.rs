//! Property tests of the codecs: round trips, one encoding per message, and
//! the fuzz properties on arbitrary and mutated bytes.

use continuum_net::client::{
    decode_transfer_answer, encode_balance_answer, encode_transfer_answer, TransferAnswer,
    MAX_OUTCOME_BYTES, MAX_QUERY_ANSWER_BYTES, MAX_SUBMIT_BYTES, QUERY_REQUEST_BYTES,
};
use continuum_net::peer::MAX_MAC_BYTES;
use continuum_net::*;
use proptest::prelude::*;

fn request_op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..=MAX_SUBMIT_BYTES)
            .prop_map(|command| RequestOp::Submit { entry: command }),
        any::<u128>().prop_map(|account| RequestOp::QueryBalance { account }),
        any::<u128>().prop_map(|transfer_id| RequestOp::QueryOutcome { transfer_id }),
        Just(RequestOp::QueryChainHead),
        proptest::collection::vec(any::<u8>(), 1..=MAX_SUBMIT_BYTES)
            .prop_map(|command| RequestOp::ChangeMembership { command }),
    ]
}

fn client_request() -> impl Strategy<Value = ClientRequest> {
    (any::<u64>(), any::<u64>(), any::<u64>(), request_op()).prop_map(
        |(cluster_id, client_id, request_id, op)| ClientRequest {
            cluster_id,
            client_id,
            request_id,
            op,
        },
    )
}

fn reply_body() -> impl Strategy<Value = ReplyBody> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_OUTCOME_BYTES)
        )
            .prop_map(|(index, term, hlc, chain_hash, outcome)| ReplyBody::Ok {
                index,
                term,
                hlc,
                chain_hash,
                outcome
            }),
        proptest::option::of(1..u64::MAX)
            .prop_map(|leader_hint| ReplyBody::Redirect { leader_hint }),
        prop_oneof![
            Just(ReplyError::Busy),
            Just(ReplyError::Unavailable),
            Just(ReplyError::BadRequest),
            Just(ReplyError::Timeout),
            Just(ReplyError::BadSignature)
        ]
        .prop_map(ReplyBody::Error),
        (1u8..=17, any::<u64>()).prop_map(|(code, conf_index)| {
            use continuum_net::client::MembershipRefusal as R;
            let all = [
                R::Malformed,
                R::BadSignature,
                R::Expired,
                R::ExpiryTooFar,
                R::StaleConfiguration,
                R::BadMember,
                R::TooManyMembers,
                R::TransferInProgress,
                R::LeaderNotReady,
                R::ChangeInProgress,
                R::AlreadyMember,
                R::UnknownNode,
                R::RemoveLastVoter,
                R::RemoveLeader,
                R::LearnerBehind,
                R::WouldLoseQuorum,
                R::AlreadyLeader,
            ];
            ReplyBody::MembershipRefused {
                reason: all[code as usize - 1],
                conf_index,
            }
        }),
    ]
}

fn client_reply() -> impl Strategy<Value = ClientReply> {
    (any::<u64>(), 1..u64::MAX, any::<u64>(), reply_body()).prop_map(
        |(cluster_id, node, request_id, body)| ClientReply {
            cluster_id,
            node,
            request_id,
            body,
        },
    )
}

/// Flips, truncates or extends a valid encoding.
fn mutate(mut bytes: Vec<u8>, how: u8, at: usize, value: u8) -> Vec<u8> {
    let at = at % bytes.len().max(1);
    match how % 4 {
        0 if !bytes.is_empty() => bytes[at] ^= value | 1,
        1 => bytes.truncate(at),
        2 => bytes.push(value),
        _ => bytes.insert(at, value),
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_request_round_trips(request in client_request()) {
        let bytes = request.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_DATAGRAM_BYTES);
        prop_assert_eq!(ClientRequest::decode(&bytes).unwrap(), request);
    }

    #[test]
    fn client_reply_round_trips(reply in client_reply()) {
        let bytes = reply.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_DATAGRAM_BYTES);
        prop_assert_eq!(ClientReply::decode(&bytes).unwrap(), reply);
    }

    #[test]
    fn mutated_requests_keep_one_encoding(request in client_request(), how: u8, at: usize, value: u8) {
        let bytes = mutate(request.encode().unwrap(), how, at, value);
        fuzz_check::client_request(&bytes);
        fuzz_check::header(&bytes);
    }

    #[test]
    fn mutated_replies_keep_one_encoding(reply in client_reply(), how: u8, at: usize, value: u8) {
        let bytes = mutate(reply.encode().unwrap(), how, at, value);
        fuzz_check::client_reply(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        fuzz_check::header(&bytes);
        fuzz_check::peer_frame(&bytes);
        fuzz_check::client_request(&bytes);
        fuzz_check::client_reply(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_valid_header_never_panic(
        kind in prop_oneof![Just(1u8), Just(2), Just(3), Just(0x10), Just(0x11)],
        rest in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let mut bytes = b"CTNM".to_vec();
        bytes.push(VERSION);
        bytes.push(kind);
        let len = rest.len().saturating_sub(16) as u16;
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&rest);
        fuzz_check::peer_frame(&bytes);
        fuzz_check::client_request(&bytes);
        fuzz_check::client_reply(&bytes);
    }
}

proptest! {
    // Each case derives keys for two fresh 3-node set-ups (slow in debug).
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn arbitrary_peer_datagrams_are_never_accepted(
        kind in prop_oneof![Just(1u8), Just(2), Just(3)],
        scheme in prop_oneof![Just(1u8), Just(2)],
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        mac in proptest::collection::vec(any::<u8>(), 32..=64),
        seq in 1u64..,
        receiver_epoch: u64,
    ) {
        // Structurally valid frames from node 1 to node 2 with random MACs.
        let mut bytes = b"CTNM".to_vec();
        bytes.push(VERSION);
        bytes.push(kind);
        bytes.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&7u64.to_be_bytes());
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.push(scheme);
        bytes.extend_from_slice(&2u64.to_be_bytes());
        bytes.extend_from_slice(&receiver_epoch.to_be_bytes());
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&mac);
        fuzz_check::peer_frame(&bytes);
        fuzz_check::peer_open(&bytes);
    }
}

#[test]
fn oversized_payloads_are_refused_on_encode() {
    let request = ClientRequest {
        cluster_id: 1,
        client_id: 1,
        request_id: 1,
        op: RequestOp::Submit {
            entry: vec![0; MAX_SUBMIT_BYTES + 1],
        },
    };
    assert!(matches!(
        request.encode(),
        Err(EncodeError::PayloadTooLarge { .. })
    ));
    assert_eq!(
        MAX_PEER_PAYLOAD_BYTES + PEER_HEADER_BYTES + MAX_MAC_BYTES,
        MAX_DATAGRAM_BYTES
    );
}

#[test]
fn specific_refusals_name_their_cause() {
    let request = ClientRequest {
        cluster_id: 9,
        client_id: 4,
        request_id: 5,
        op: RequestOp::QueryBalance { account: 77 },
    };
    let good = request.encode().unwrap();
    let mut bad_version = good.clone();
    for version in [VERSION - 1, VERSION + 1] {
        bad_version[4] = version;
        assert_eq!(
            ClientRequest::decode(&bad_version),
            Err(DecodeError::UnsupportedVersion(version))
        );
    }
    let mut bad_kind = good.clone();
    bad_kind[5] = 0x42;
    assert_eq!(
        ClientRequest::decode(&bad_kind),
        Err(DecodeError::UnknownKind(0x42))
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        ClientRequest::decode(&trailing),
        Err(DecodeError::LengthMismatch { .. })
    ));
    // Declared length covers the extra byte: a query longer than its
    // padded size.
    let len = u16::from_be_bytes([trailing[6], trailing[7]]) + 1;
    trailing[6..8].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        ClientRequest::decode(&trailing),
        Err(DecodeError::QueryPadding)
    );
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert_eq!(
        ClientRequest::decode(&bad_magic),
        Err(DecodeError::BadMagic)
    );
    assert_eq!(
        ClientRequest::decode(&good[..10]),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        ClientReply::decode(&good),
        Err(DecodeError::UnexpectedKind(Kind::ClientRequest))
    );
    assert!(ClientRequest::decode(&vec![0u8; MAX_DATAGRAM_BYTES + 1]).is_err());
    let redirect_zero = ClientReply {
        cluster_id: 1,
        node: 1,
        request_id: 1,
        body: ReplyBody::Redirect {
            leader_hint: Some(0),
        },
    };
    assert_eq!(redirect_zero.encode(), Err(EncodeError::ZeroNodeId));
}

fn transfer_answer() -> impl Strategy<Value = TransferAnswer> {
    prop_oneof![
        any::<u64>().prop_map(|log_time_ms| TransferAnswer::NotDecided { log_time_ms }),
        any::<u64>().prop_map(|index| TransferAnswer::Applied { index }),
        (any::<u64>(), any::<u8>()).prop_map(|(index, outcome_code)| TransferAnswer::Rejected {
            index,
            outcome_code
        }),
    ]
}

/// Pieces of request heads, valid and not, for the HTTP parser.
fn http_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET".to_vec()),
        Just(b"POST".to_vec()),
        Just(b" ".to_vec()),
        Just(b"/status".to_vec()),
        Just(b"/metrics?x=1".to_vec()),
        Just(b"HTTP/1.1".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"Host".to_vec()),
        Just(b": ".to_vec()),
        Just(b"a\tb".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..4),
        proptest::collection::vec(Just(b'x'), 0..600),
    ]
}

proptest! {
    /// `QueryOutcome` answers: one encoding each, and any bytes decode to
    /// an answer or an error.
    #[test]
    fn transfer_answers_round_trip_and_decode_totally(
        answer in transfer_answer(),
        bytes in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let mut encoded = Vec::new();
        encode_transfer_answer(&answer, &mut encoded);
        prop_assert_eq!(decode_transfer_answer(&encoded), Ok(answer));
        if let Ok(decoded) = decode_transfer_answer(&bytes) {
            let mut again = Vec::new();
            encode_transfer_answer(&decoded, &mut again);
            prop_assert_eq!(again, bytes);
        }
    }

    #[test]
    fn http_heads_split_anywhere_decide_the_same(
        pieces in proptest::collection::vec(http_piece(), 0..24)
    ) {
        fuzz_check::http_head(&pieces.concat());
    }

    #[test]
    fn valid_http_heads_with_arbitrary_headers_parse(
        headers in proptest::collection::vec(("[A-Za-z0-9-]{1,20}", "[ -~\t]{0,40}"), 0..10),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = b"GET /status HTTP/1.1\r\n".to_vec();
        for (name, value) in &headers {
            bytes.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        match continuum_net::http::parse_head(&bytes) {
            continuum_net::http::Head::Complete(head) => prop_assert_eq!(head.len, len),
            other => prop_assert!(false, "{:?}", other),
        }
        fuzz_check::http_head(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_http_parser(
        bytes in proptest::collection::vec(any::<u8>(), 0..2100)
    ) {
        fuzz_check::http_head(&bytes);
    }
}

#[test]
fn an_undecided_answer_says_whether_a_transfer_expired() {
    let answer = TransferAnswer::NotDecided { log_time_ms: 1_000 };
    assert!(answer.expired(999));
    assert!(!answer.expired(1_000));
    assert!(!TransferAnswer::Applied { index: 3 }.expired(0));
    assert_eq!(TransferAnswer::Applied { index: 3 }.applied_at(), Some(3));
    assert_eq!(answer.applied_at(), None);
}

/// Issue 14 LOW 9: no reply is longer than the request it answers, so a
/// spoofed source reflects at most the bytes the attacker sent. Queries are
/// zero-padded to the largest reply a query can get; unpadded or
/// non-zero-padded queries are refused.
#[test]
fn no_reply_is_longer_than_its_request() {
    let queries = [
        RequestOp::QueryBalance { account: u128::MAX },
        RequestOp::QueryOutcome {
            transfer_id: u128::MAX,
        },
        RequestOp::QueryChainHead,
    ];
    let reply = |body: ReplyBody| {
        ClientReply {
            cluster_id: 1,
            node: 3,
            request_id: u64::MAX,
            body,
        }
        .encode()
        .unwrap()
        .len()
    };
    let ok = |outcome: Vec<u8>| ReplyBody::Ok {
        index: u64::MAX,
        term: u64::MAX,
        hlc: u64::MAX,
        chain_hash: [0xff; 32],
        outcome,
    };
    let mut balance = Vec::new();
    encode_balance_answer(Some(u64::MAX), &mut balance);
    let mut rejected = Vec::new();
    encode_transfer_answer(
        &TransferAnswer::Rejected {
            index: u64::MAX,
            outcome_code: 0xff,
        },
        &mut rejected,
    );
    assert_eq!(rejected.len(), MAX_QUERY_ANSWER_BYTES);
    let answers = [balance, rejected, Vec::new()];
    for (op, answer) in queries.iter().zip(answers) {
        let request = ClientRequest {
            cluster_id: 1,
            client_id: 2,
            request_id: 3,
            op: op.clone(),
        }
        .encode()
        .unwrap();
        assert_eq!(request.len(), QUERY_REQUEST_BYTES, "{op:?}");
        assert!(reply(ok(answer)) <= request.len(), "{op:?}");
        // Unpadded (the version-1 form), short or dirty padding: refused.
        let body_len = match op {
            RequestOp::QueryChainHead => 9,
            _ => 25,
        };
        let mut unpadded = request[..HEADER_BYTES + body_len].to_vec();
        unpadded[6..8].copy_from_slice(&(body_len as u16).to_be_bytes());
        assert_eq!(
            ClientRequest::decode(&unpadded),
            Err(DecodeError::QueryPadding)
        );
        let mut dirty = request.clone();
        *dirty.last_mut().unwrap() = 1;
        assert_eq!(
            ClientRequest::decode(&dirty),
            Err(DecodeError::QueryPadding)
        );
    }
    let shortest = ClientRequest {
        cluster_id: 1,
        client_id: 2,
        request_id: 3,
        op: RequestOp::Submit { entry: vec![0] },
    }
    .encode()
    .unwrap();
    for error in [
        ReplyError::Busy,
        ReplyError::Unavailable,
        ReplyError::BadRequest,
        ReplyError::Timeout,
        ReplyError::BadSignature,
    ] {
        assert!(reply(ReplyBody::Error(error)) <= shortest.len());
    }
}
