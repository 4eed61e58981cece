//! A node that runs for ever on a small disk: 2,000 transfers through a
//! one-node cluster whose WAL cannot hold them all. With
//! `snapshot_entries = 200` the node snapshots and compacts, never hits
//! `WalFull`, and a restart restores the snapshot and replays only the
//! tail; with snapshots off the same workload fills the WAL.
//!
//! The replay after a restart re-applies the entries the disk's clean mark
//! covers without verifying their signatures again (node `disk_log.rs`); a
//! forged entry in the log stops the mark, so it is verified, and rejected,
//! again after every restart.

use continuum_bank::{
    AccountFlags, CreateAccount, Entry, GenesisConfig, Limits, Transfer,
    DEFAULT_MAX_EXPIRY_WINDOW_MS,
};
use continuum_clock::HlcTimestamp;
use continuum_net::client::{ClientRequest, ReplyBody, RequestOp};
use continuum_node::{EntryHeader, Node, NodeConfig, NodeError, SnapshotEvent};
use continuum_raft::{compute_chain_hash, EntryKind, Role, GENESIS_CHAIN_HASH};
use continuum_storage::{HardState, Identity, MemDisk, Record, Store, StoreError};
use ed25519_dalek::SigningKey;

const CLUSTER: u64 = 21;
const RESERVE: u128 = 1;
const ACCOUNT: u128 = 10;
const TRANSFERS: u64 = 2000;
/// 1024 blocks: a 252 KiB WAL, 127.5 KiB snapshot slots.
const DISK_BLOCKS: u64 = 1024;
/// Each transfer expires this long after it is signed (log time), so the
/// bank's dedup window, and with it the snapshot, stays small.
const VALIDITY_MS: u64 = 100;

fn operator() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn genesis() -> GenesisConfig {
    GenesisConfig {
        cluster_id: CLUSTER as u128,
        operator_key: operator().verifying_key().to_bytes(),
        reserve_account: RESERVE,
        supply: 1_000_000,
        limits: Limits {
            max_accounts: 16,
            max_transfers: 10_000,
            max_sessions: 16,
        },
        max_expiry_window_ms: DEFAULT_MAX_EXPIRY_WINDOW_MS,
    }
}

fn config(snapshot_entries: u64) -> NodeConfig {
    NodeConfig {
        id: 1,
        voters: vec![1],
        members: Vec::new(),
        cluster_id: CLUSTER,
        genesis: genesis(),
        election_ticks: 10,
        heartbeat_ticks: 2,
        request_timeout_ticks: 1000,
        chain_check_ticks: 0,
        seed: 5,
        snapshot_entries,
    }
}

const ID: Identity = Identity {
    cluster_id: CLUSTER as u128,
    node_id: 1,
};

fn hlc(ms: u64) -> u64 {
    HlcTimestamp::new(ms, 0).expect("in range").packed()
}

/// Command `i` (0: the account creation), signed at log time `i` ms.
fn command(i: u64) -> Vec<u8> {
    signed_command(i, &operator())
}

/// Command `i` as [`command`] makes it, transfers signed by `signer`.
fn signed_command(i: u64, signer: &SigningKey) -> Vec<u8> {
    if i == 0 {
        let signed = CreateAccount {
            id: ACCOUNT,
            owner: SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes(),
            flags: AccountFlags::empty(),
            expires_at: VALIDITY_MS,
        }
        .sign(&operator(), CLUSTER as u128);
        return Entry::single(signed).encode();
    }
    let signed = Transfer {
        id: 10_000 + u128::from(i),
        from: RESERVE,
        to: ACCOUNT,
        amount: 1,
        client: 77,
        seq: i,
        expires_at: i + VALIDITY_MS,
    }
    .sign(signer, CLUSTER as u128);
    Entry::single(signed).encode()
}

type TestNode = Node<MemDisk, u64>;

fn elect(node: &mut TestNode) {
    for _ in 0..100 {
        node.tick();
        node.drive().expect("drive");
        if node.role() == Role::Leader {
            return;
        }
    }
    panic!("a one-node cluster elects itself");
}

/// Submits commands `0..=TRANSFERS` one per drive; `Err` at the first
/// node error.
fn run(node: &mut TestNode) -> Result<(), NodeError> {
    for i in 0..=TRANSFERS {
        let request = ClientRequest {
            cluster_id: CLUSTER,
            client_id: 1,
            request_id: i + 1,
            op: RequestOp::Submit { entry: command(i) },
        };
        node.on_client(1, request, hlc(i));
        node.tick();
        node.drive()?;
        for (_, reply) in node.take_replies() {
            assert!(
                matches!(reply.body, ReplyBody::Ok { .. }),
                "command {i}: {:?}",
                reply.body
            );
        }
    }
    Ok(())
}

#[test]
fn a_small_disk_holds_an_unbounded_history_and_restart_replays_only_the_tail() {
    let (store, _) = Store::format(MemDisk::new(DISK_BLOCKS), ID).unwrap();
    let wal = store.wal_capacity_bytes();
    let mut node: TestNode = Node::new(config(200), store).unwrap();
    elect(&mut node);
    run(&mut node).expect("never WalFull with snapshots");
    assert_eq!(node.ledger().balance(ACCOUNT), Some(TRANSFERS));
    let written = node.raft().storage().bytes_written;
    assert!(
        written > wal,
        "{written} bytes of entries would not overflow a {wal}-byte WAL"
    );
    let status = node.snapshot_status();
    assert!(status.snapshots_taken >= 9, "{status:?}");
    // Half an interval is kept before the snapshot for followers a little behind.
    assert_eq!(status.first_index, status.snapshot_index + 1 - 100);
    assert!(status.wal_used_bytes <= status.wal_capacity_bytes);
    let events = node.take_snapshot_events();
    assert!(events
        .iter()
        .all(|e| matches!(e, SnapshotEvent::Taken { .. })));
    let applied = node.applied();
    let snapshot_index = status.snapshot_index;
    assert!(applied - snapshot_index < 200);

    // Restart: the ledger comes from the snapshot, only the tail replays.
    let disk = node.into_device();
    let (store, report) = Store::open(disk, ID).unwrap();
    assert_eq!(report.snapshot_index, snapshot_index);
    let mut node: TestNode = Node::new(config(200), store).unwrap();
    assert_eq!(
        node.take_snapshot_events(),
        vec![SnapshotEvent::Restored {
            index: snapshot_index
        }]
    );
    assert_eq!(node.applied(), snapshot_index);
    elect(&mut node);
    while node.applied() < applied {
        node.tick();
        node.drive().unwrap();
    }
    let replayed = node.metrics().committed_entries;
    assert!(
        replayed <= applied - snapshot_index + 2,
        "replayed {replayed} entries after a snapshot at {snapshot_index} of {applied}"
    );
    assert_eq!(node.ledger().balance(ACCOUNT), Some(TRANSFERS));
}

#[test]
fn without_snapshots_the_same_history_fills_the_wal() {
    let (store, _) = Store::format(MemDisk::new(DISK_BLOCKS), ID).unwrap();
    let mut node: TestNode = Node::new(config(0), store).unwrap();
    elect(&mut node);
    match run(&mut node) {
        Err(NodeError::Persist(e)) => {
            assert!(matches!(e.0, StoreError::WalFull { .. }), "{e}")
        }
        other => panic!("expected WalFull, got {other:?}"),
    }
}

/// Restarts `node` on its disk and drives it until it has applied what it
/// had; returns the restarted node.
fn restart(node: TestNode, snapshot_entries: u64) -> TestNode {
    let applied = node.applied();
    let (store, _) = Store::open(node.into_device(), ID).unwrap();
    let mut node: TestNode = Node::new(config(snapshot_entries), store).unwrap();
    elect(&mut node);
    while node.applied() < applied {
        node.tick();
        node.drive().unwrap();
    }
    node
}

#[test]
fn a_restart_reapplies_the_clean_tail_without_verifying_it_again() {
    let (store, _) = Store::format(MemDisk::new(DISK_BLOCKS), ID).unwrap();
    // 2,001 entries, snapshots every 300: a tail of 201 after the last.
    let mut node: TestNode = Node::new(config(300), store).unwrap();
    elect(&mut node);
    run(&mut node).expect("runs");
    let (applied, head) = (node.applied(), node.ledger().chain_head());
    let snapshot_index = node.snapshot_status().snapshot_index;
    let tail = applied - snapshot_index;
    assert!(tail > 100, "a tail of {tail} entries to replay");

    let node = restart(node, 300);
    // Each record carries the mark as of its write, so only the newest
    // entry (its own record's mark lags it) is verified again.
    let (_, verified) = node.verdict_memo_counts();
    assert!(verified <= 1, "{verified} signatures verified again");
    let replayed = node.metrics().replayed_clean;
    assert!(
        replayed + 2 >= tail,
        "{replayed} of {tail} re-applied clean"
    );
    assert_eq!(node.ledger().chain_head().1, head.1);
    assert_eq!(node.ledger().balance(ACCOUNT), Some(TRANSFERS));
}

#[test]
fn a_forged_entry_in_the_log_stops_the_clean_mark_and_stays_rejected() {
    // A log as a malicious leader of term 1 could have left it: the
    // account, a transfer, a forged transfer, another transfer.
    let forger = SigningKey::from_bytes(&[9; 32]);
    let commands = [
        command(0),
        command(1),
        signed_command(2, &forger),
        command(3),
    ];
    let (mut store, _) = Store::format(MemDisk::new(DISK_BLOCKS), ID).unwrap();
    let mut chain = GENESIS_CHAIN_HASH;
    let records: Vec<Record> = commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let index = i as u64 + 1;
            let header = EntryHeader {
                origin: 2,
                request_tag: index,
                hlc: hlc(index),
            };
            let payload = header.wrap(c);
            chain = compute_chain_hash(&chain, index, 1, EntryKind::Normal, &payload);
            Record {
                index,
                term: 1,
                kind: EntryKind::Normal.byte(),
                chain_hash: chain,
                payload,
            }
        })
        .collect();
    store.append(&records).unwrap();
    store
        .set_hard_state(HardState {
            term: 1,
            vote: 0,
            commit: 4,
        })
        .unwrap();
    store.sync().unwrap();

    let mut node: TestNode = Node::new(config(0), store).unwrap();
    elect(&mut node);
    while node.applied() < 5 {
        node.tick();
        node.drive().unwrap();
    }
    assert_eq!(
        node.ledger().balance(ACCOUNT),
        Some(2),
        "the forgery moved nothing"
    );
    // One more entry, so a record carries the mark past the forgery's.
    let request = ClientRequest {
        cluster_id: CLUSTER,
        client_id: 1,
        request_id: 1,
        op: RequestOp::Submit { entry: command(4) },
    };
    node.on_client(1, request, hlc(4));
    while node.applied() < 6 {
        node.tick();
        node.drive().unwrap();
    }
    let head = node.ledger().chain_head();

    for _ in 0..2 {
        node = restart(node, 0);
        assert_eq!(
            node.metrics().replayed_clean,
            2,
            "only the entries before the forgery re-apply unchecked"
        );
        assert_eq!(node.ledger().chain_head(), head);
        assert_eq!(node.ledger().balance(ACCOUNT), Some(3));
    }
}
