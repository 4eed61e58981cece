//! Codec properties: every message round-trips, arbitrary bytes never panic
//! and are accepted only in canonical form (the same function the fuzz
//! target in `raft/fuzz` runs).

use continuum_raft::codec::CODEC_VERSION;
use continuum_raft::{
    check_decode_canonical, ChunkRef, ConfState, DecodeError, Entry, EntryKind, Message,
    MessageBody, SnapshotPart, GENESIS_CHAIN_HASH,
};
use proptest::prelude::*;

fn entries(prev_index: u64, prev_term: u64, max_term: u64, count: usize, seed: u8) -> Vec<Entry> {
    let mut prev = GENESIS_CHAIN_HASH;
    (0..count)
        .map(|i| {
            let term = (prev_term + i as u64 / 2).min(max_term);
            let entry = Entry::new(
                &prev,
                prev_index + 1 + i as u64,
                term,
                EntryKind::Normal,
                vec![seed; i % 5],
            );
            prev = entry.chain_hash;
            entry
        })
        .collect()
}

fn arb_body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(i, t)| MessageBody::PreVote {
            last_log_index: i,
            last_log_term: t
        }),
        any::<bool>().prop_map(|reject| MessageBody::PreVoteResponse { reject }),
        (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(i, t, x)| MessageBody::Vote {
            last_log_index: i,
            last_log_term: t,
            leader_transfer: x
        }),
        any::<bool>().prop_map(|reject| MessageBody::VoteResponse { reject }),
        (0u64..1000, 0u64..5, any::<u64>(), 0usize..6, any::<u8>()).prop_map(
            |(pi, pt, c, n, s)| {
                MessageBody::Append {
                    prev_log_index: pi,
                    prev_log_term: pt,
                    leader_commit: c,
                    entries: entries(pi, pt, 10, n, s),
                }
            }
        ),
        (any::<bool>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(r, i, h, t)| {
            MessageBody::AppendResponse {
                reject: r,
                index: i,
                reject_hint: h,
                hint_term: t,
            }
        }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(commit, read_seq)| MessageBody::Heartbeat { commit, read_seq }),
        any::<u64>().prop_map(|read_seq| MessageBody::HeartbeatResponse { read_seq }),
        Just(MessageBody::TimeoutNow),
        any::<u64>().prop_map(|ctx| MessageBody::ReadIndexRequest { ctx }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(ctx, index)| MessageBody::ReadIndexResponse { ctx, index }),
        (
            any::<u64>(),
            0u64..5,
            any::<u8>(),
            1u32..2048,
            0usize..8,
            any::<u32>()
        )
            .prop_map(|(index, term, seed, max_chunk, n, first)| {
                // Members 1..=seed % 8, every third one a learner.
                let (learners, voters): (Vec<u64>, Vec<u64>) =
                    (1..=u64::from(seed % 8)).partition(|id| id % 3 == 0);
                let entries: Vec<ChunkRef> = (0..n)
                    .map(|i| ChunkRef {
                        name: [seed.wrapping_add(i as u8); 32],
                        len: 1 + (i as u32 * 7919) % max_chunk,
                    })
                    .collect();
                let chunk_count = (first % 100) + n as u32 + (seed % 3) as u32;
                MessageBody::InstallSnapshot {
                    index,
                    snapshot_term: term,
                    chain_hash: [seed; 32],
                    conf_state: ConfState { voters, learners },
                    conf_index: index / 2,
                    total_len: u64::from(chunk_count) * u64::from(max_chunk),
                    total_hash: [!seed; 32],
                    part: SnapshotPart::Manifest {
                        max_chunk,
                        chunk_count,
                        manifest_hash: [seed ^ 0x5a; 32],
                        first: first % 100,
                        entries,
                    },
                }
            }),
        (
            any::<u64>(),
            0u64..5,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..64)
        )
            .prop_map(
                |(index, term, position, chunk)| MessageBody::InstallSnapshot {
                    index,
                    snapshot_term: term,
                    chain_hash: [1; 32],
                    conf_state: ConfState {
                        voters: vec![1, 2, 3],
                        learners: vec![4],
                    },
                    conf_index: index,
                    total_len: chunk.len() as u64 + u64::from(position),
                    total_hash: [2; 32],
                    part: SnapshotPart::Chunk { position, chunk },
                }
            ),
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
            |(index, m, c, done)| {
                MessageBody::InstallSnapshotResponse {
                    index,
                    manifest_next: m,
                    chunk_next: c,
                    done,
                }
            }
        ),
    ]
}

fn manifest(max_chunk: u32, chunk_count: u32, first: u32, lens: &[u32]) -> Message {
    Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::InstallSnapshot {
            index: 10,
            snapshot_term: 3,
            chain_hash: [0; 32],
            conf_state: ConfState::default(),
            conf_index: 0,
            total_len: 1000,
            total_hash: [0; 32],
            part: SnapshotPart::Manifest {
                max_chunk,
                chunk_count,
                manifest_hash: [0; 32],
                first,
                entries: lens
                    .iter()
                    .map(|&len| ChunkRef { name: [9; 32], len })
                    .collect(),
            },
        },
    }
}

#[test]
fn out_of_bounds_snapshot_manifests_and_chunks_are_refused() {
    let decode = |m: &Message| {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        Message::decode(&bytes)
    };
    assert!(decode(&manifest(64, 10, 8, &[1, 64])).is_ok());
    for bad in [
        manifest(0, 10, 0, &[1]),             // no chunk size
        manifest(64 * 1024 + 1, 10, 0, &[1]), // chunk size over the bound
        manifest(64, 1001, 0, &[1]),          // more chunks than bytes
        manifest(64, 10, 9, &[1, 1]),         // entries past the count
        manifest(64, 10, u32::MAX, &[1]),     // position overflow
        manifest(64, 10, 0, &[0]),            // empty chunk
        manifest(64, 10, 0, &[65]),           // chunk over max_chunk
    ] {
        assert_eq!(decode(&bad), Err(DecodeError::SnapshotManifest), "{bad:?}");
    }
    let chunk = |chunk: Vec<u8>, total_len: u64| Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::InstallSnapshot {
            index: 10,
            snapshot_term: 3,
            chain_hash: [0; 32],
            conf_state: ConfState::default(),
            conf_index: 0,
            total_len,
            total_hash: [0; 32],
            part: SnapshotPart::Chunk { position: 0, chunk },
        },
    };
    assert!(decode(&chunk(vec![1; 10], 10)).is_ok());
    assert_eq!(decode(&chunk(vec![], 10)), Err(DecodeError::SnapshotChunk));
    assert_eq!(
        decode(&chunk(vec![1; 11], 10)),
        Err(DecodeError::SnapshotChunk)
    );
    let mut bytes = Vec::new();
    chunk(vec![1; 10], 10).encode(&mut bytes);
    // header, index, term, chain hash, conf index, empty conf, total len, hash
    let part_at = 2 + 24 + 8 + 8 + 32 + 8 + 8 + 8 + 32;
    bytes[part_at] = 7;
    assert_eq!(Message::decode(&bytes), Err(DecodeError::SnapshotPart(7)));
}

fn arb_message() -> impl Strategy<Value = Message> {
    (1u64..u64::MAX, 1u64..u64::MAX, 10u64..u64::MAX, arb_body()).prop_map(
        |(from, to, term, body)| Message {
            from,
            to,
            term,
            body,
        },
    )
}

proptest! {
    #[test]
    fn every_message_round_trips(message in arb_message()) {
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        prop_assert_eq!(Message::decode(&bytes), Ok(message));
        check_decode_canonical(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_decode_canonical(&bytes);
    }

    #[test]
    fn mutated_encodings_stay_total_and_canonical(message in arb_message(), pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        check_decode_canonical(&bytes);
        bytes.truncate(cut % (bytes.len() + 1));
        check_decode_canonical(&bytes);
    }
}

fn header(kind: u8) -> Vec<u8> {
    let mut bytes = vec![CODEC_VERSION, kind];
    for v in [1u64, 2, 3] {
        bytes.extend_from_slice(&v.to_be_bytes());
    }
    bytes
}

#[test]
fn non_canonical_and_hostile_inputs_are_refused() {
    let mut ok = header(9); // TimeoutNow
    assert!(Message::decode(&ok).is_ok());
    ok.push(0);
    assert_eq!(Message::decode(&ok), Err(DecodeError::TrailingBytes));
    let mut boolean = header(2);
    boolean.push(2);
    assert_eq!(Message::decode(&boolean), Err(DecodeError::Bool(2)));
    let mut version = header(9);
    version[0] = 1; // the layout before content-addressed snapshots
    assert_eq!(Message::decode(&version), Err(DecodeError::Version(1)));
    assert_eq!(
        Message::decode(&header(99)),
        Err(DecodeError::MessageKind(99))
    );
    let mut zero = header(9);
    zero[2..10].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(Message::decode(&zero), Err(DecodeError::ZeroNode));
    // An append claiming 4 billion entries must fail before allocating.
    let mut append = header(5);
    append.extend_from_slice(&[0u8; 24]);
    append.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Message::decode(&append), Err(DecodeError::TooManyEntries));
    let mut append = header(5);
    append.extend_from_slice(&[0u8; 24]);
    append.extend_from_slice(&1000u32.to_be_bytes());
    assert_eq!(Message::decode(&append), Err(DecodeError::Truncated));
    assert_eq!(
        Message::decode(&vec![0u8; continuum_raft::MAX_MESSAGE_BYTES + 1]),
        Err(DecodeError::TooLarge)
    );
}

#[test]
fn an_invalid_configuration_in_a_snapshot_chunk_is_refused() {
    let chunk = |conf_state: ConfState, conf_index: u64| {
        let message = Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::InstallSnapshot {
                index: 10,
                snapshot_term: 2,
                chain_hash: [1; 32],
                conf_state,
                conf_index,
                total_len: 4,
                total_hash: [2; 32],
                part: SnapshotPart::Chunk {
                    position: 0,
                    chunk: vec![9; 4],
                },
            },
        };
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        Message::decode(&bytes)
    };
    let conf = |voters: Vec<u64>, learners: Vec<u64>| ConfState { voters, learners };
    assert!(chunk(conf(vec![1, 2, 3], vec![4]), 7).is_ok());
    for bad in [
        conf(vec![2, 1], vec![]),
        conf(vec![1, 1], vec![]),
        conf(vec![0, 1], vec![]),
        conf(vec![1, 2], vec![2]),
        conf(vec![1], vec![5, 4]),
        conf((1..=65).collect(), vec![]),
    ] {
        assert_eq!(chunk(bad, 7), Err(DecodeError::ConfState));
    }
    assert_eq!(
        chunk(conf(vec![1], vec![]), 11),
        Err(DecodeError::EntryOrder),
        "the configuration cannot come from after the snapshot point"
    );
    // A member count of 4 billion fails before allocating.
    let mut bytes = Vec::new();
    Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::TimeoutNow,
    }
    .encode(&mut bytes);
    bytes[1] = 12; // InstallSnapshot kind
    bytes.extend_from_slice(&[0u8; 8 + 8 + 32 + 8]);
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Message::decode(&bytes), Err(DecodeError::ConfState));
}

#[test]
fn out_of_order_entries_are_refused() {
    let mut good = entries(4, 1, 3, 3, 7);
    let message = |entries| Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::Append {
            prev_log_index: 4,
            prev_log_term: 1,
            leader_commit: 0,
            entries,
        },
    };
    let mut bytes = Vec::new();
    message(good.clone()).encode(&mut bytes);
    assert!(Message::decode(&bytes).is_ok());
    good[1].index = 9;
    let mut bytes = Vec::new();
    message(good).encode(&mut bytes);
    assert_eq!(Message::decode(&bytes), Err(DecodeError::EntryOrder));
}

#[test]
fn a_configuration_entry_must_carry_a_valid_change() {
    let message = |data: Vec<u8>| {
        let entry = Entry::new(&GENESIS_CHAIN_HASH, 1, 1, EntryKind::ConfChange, data);
        let mut bytes = Vec::new();
        Message {
            from: 1,
            to: 2,
            term: 1,
            body: MessageBody::Append {
                prev_log_index: 0,
                prev_log_term: 0,
                leader_commit: 0,
                entries: vec![entry],
            },
        }
        .encode(&mut bytes);
        Message::decode(&bytes)
    };
    let valid = continuum_raft::ConfEntry {
        change: continuum_raft::ConfChange {
            kind: continuum_raft::ConfChangeKind::AddLearner,
            node: 4,
            context: b"addr+key".to_vec(),
        },
        conf_state: ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
        },
    };
    assert!(message(valid.encode()).is_ok());
    assert_eq!(message(vec![]), Err(DecodeError::Truncated));
    assert_eq!(message(vec![7; 40]), Err(DecodeError::ConfState));
}
