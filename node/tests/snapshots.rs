//! A node that runs for ever on a small disk: 2,000 transfers through a
//! one-node cluster whose WAL cannot hold them all. With
//! `snapshot_entries = 200` the node snapshots and compacts, never hits
//! `WalFull`, and a restart restores the snapshot and replays only the
//! tail; with snapshots off the same workload fills the WAL.

use continuum_bank::{
    AccountFlags, CreateAccount, Entry, GenesisConfig, Limits, Transfer,
    DEFAULT_MAX_EXPIRY_WINDOW_MS,
};
use continuum_clock::HlcTimestamp;
use continuum_net::client::{ClientRequest, ReplyBody, RequestOp};
use continuum_node::{Node, NodeConfig, NodeError, SnapshotEvent};
use continuum_raft::Role;
use continuum_storage::{Identity, MemDisk, Store, StoreError};
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
    .sign(&operator(), CLUSTER as u128);
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
            op: RequestOp::Submit {
                command: command(i),
            },
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
