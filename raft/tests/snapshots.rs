//! Compaction and InstallSnapshot (Raft §7) as scenarios: a lagging
//! follower catches up by a manifest of content-addressed chunks; lost
//! parts are re-sent and the transfer resumes where the follower is; a
//! follower restarting mid-install keeps its old state; a new leader
//! resumes the transfer; a follower holding the previous snapshot fetches
//! only the chunks that changed; corrupt chunks and manifests are refused.

mod harness;

use continuum_raft::{
    manifest_of, MessageBody, NodeId, ProgressState, Raft, Role, SnapshotPart, SplitMix64, Storage,
};
use harness::Net;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// About 43 chunks of at most 1 KiB, so the manifest takes two messages.
const STATE_BYTES: usize = 32 * 1024;
/// Where `state_at` writes the index: the only bytes that differ between
/// two snapshots.
const INDEX_AT: usize = 9000;

/// The application's state after `index`: fixed pseudo-random bytes with
/// the index written at [`INDEX_AT`].
fn state_at(index: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(42);
    let mut state: Vec<u8> = (0..STATE_BYTES).map(|_| rng.next_u64() as u8).collect();
    state[INDEX_AT..INDEX_AT + 8].copy_from_slice(&index.to_be_bytes());
    state
}

fn net() -> Net {
    Net::new(3, |c| c.snapshot_chunk_bytes = 1024)
}

/// Commits `count` entries through leader 1 with the network as it is.
fn commit(net: &mut Net, count: u8) {
    for i in 0..count {
        net.node(1).propose(vec![i]).unwrap();
        net.settle();
    }
}

/// Nodes `ids` compact everything they applied into `state_at`.
fn compact(net: &mut Net, ids: &[NodeId]) -> u64 {
    let applied = net.node(ids[0]).applied_index();
    for &id in ids {
        let raft = net.node(id);
        let at = raft.applied_index();
        assert_eq!(at, applied);
        raft.storage_mut().compact(at, state_at(at)).unwrap();
        assert_eq!(raft.storage().first_index(), at + 1);
    }
    applied
}

/// Node 1 leads; node 3 is cut off while 20 entries commit; then nodes 1
/// and 2 compact everything they applied. Returns the compaction index.
fn lagging_follower(net: &mut Net) -> u64 {
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    net.isolate(3);
    commit(net, 20);
    compact(net, &[1, 2])
}

/// Chunk positions delivered to `to`, with their senders, in order.
fn chunks_to(net: &Net, to: NodeId) -> Vec<(NodeId, u32)> {
    net.delivered
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::InstallSnapshot {
                part: SnapshotPart::Chunk { position, .. },
                ..
            } if m.to == to => Some((m.from, *position)),
            _ => None,
        })
        .collect()
}

/// Manifest pieces (sender, first entry) delivered to `to`, in order.
fn manifest_pieces_to(net: &Net, to: NodeId) -> Vec<(NodeId, u32)> {
    net.delivered
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::InstallSnapshot {
                part: SnapshotPart::Manifest { first, .. },
                ..
            } if m.to == to => Some((m.from, *first)),
            _ => None,
        })
        .collect()
}

fn is_chunk(body: &MessageBody) -> bool {
    matches!(
        body,
        MessageBody::InstallSnapshot {
            part: SnapshotPart::Chunk { .. },
            ..
        }
    )
}

fn assert_caught_up(net: &mut Net, snapshot_index: u64) {
    let installed = &net.installed[&3];
    assert_eq!(installed.len(), 1, "one snapshot installed");
    assert_eq!(installed[0].metadata.index, snapshot_index);
    assert_eq!(installed[0].data, state_at(snapshot_index));
    // Replication goes on normally after the snapshot.
    let leader = [1, 2]
        .into_iter()
        .find(|&id| net.node(id).role() == Role::Leader)
        .expect("a leader");
    net.node(leader).propose(b"after".to_vec()).unwrap();
    net.settle();
    net.tick_all(10);
    let last = net.node(leader).last_index();
    assert_eq!(net.node(3).last_index(), last);
    assert_eq!(net.node(3).commit_index(), last);
    assert_eq!(
        net.node(3).log_chain_hash(last),
        net.node(leader).log_chain_hash(last)
    );
    assert_eq!(net.node(3).storage().first_index(), snapshot_index + 1);
    assert_eq!(
        net.payloads(3).last().map(Vec::as_slice),
        Some(&b"after"[..])
    );
}

#[test]
fn a_lagging_follower_catches_up_by_content_addressed_chunks() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    net.heal();
    net.tick_all(10);
    let manifest = manifest_of(&state_at(index), 1024);
    assert!(
        manifest.len() > 28,
        "two manifest pieces: {}",
        manifest.len()
    );
    let pieces: Vec<u32> = manifest_pieces_to(&net, 3).iter().map(|p| p.1).collect();
    assert_eq!(pieces, [0, 28], "the manifest in two pieces");
    let positions: Vec<u32> = chunks_to(&net, 3).iter().map(|c| c.1).collect();
    let expected: Vec<u32> = (0..manifest.len() as u32).collect();
    assert_eq!(positions, expected, "each chunk once, in order");
    for m in &net.delivered {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        assert!(bytes.len() <= 1024 + 200, "{} bytes", bytes.len());
    }
    let stats = net.node(3).snapshot_chunk_stats();
    assert_eq!(stats.chunks_fetched, manifest.len() as u64);
    assert_eq!(stats.chunks_reused, 0, "node 3 had no snapshot");
    assert_eq!(stats.bytes_fetched, STATE_BYTES as u64);
    assert_caught_up(&mut net, index);
}

#[test]
fn a_follower_holding_the_previous_snapshot_fetches_only_the_changed_chunks() {
    let mut net = net();
    net.campaign(1);
    commit(&mut net, 10);
    let old = compact(&mut net, &[1, 2, 3]);
    net.isolate(3);
    commit(&mut net, 20);
    let new = compact(&mut net, &[1, 2]);
    let old_names: BTreeSet<_> = manifest_of(&state_at(old), 1024)
        .into_iter()
        .map(|e| e.name)
        .collect();
    let manifest = manifest_of(&state_at(new), 1024);
    let changed: Vec<u32> = (0..manifest.len() as u32)
        .filter(|&p| !old_names.contains(&manifest[p as usize].name))
        .collect();
    assert!(
        !changed.is_empty() && changed.len() <= 2,
        "8 changed bytes touch one or two chunks: {changed:?}"
    );
    net.heal();
    net.tick_all(10);
    let positions: Vec<u32> = chunks_to(&net, 3).iter().map(|c| c.1).collect();
    assert_eq!(positions, changed, "only the changed chunks are sent");
    let stats = net.node(3).snapshot_chunk_stats();
    assert_eq!(stats.chunks_fetched, changed.len() as u64);
    assert_eq!(stats.chunks_reused, (manifest.len() - changed.len()) as u64);
    assert_eq!(stats.bytes_fetched + stats.bytes_reused, STATE_BYTES as u64);
    assert_caught_up(&mut net, new);
}

#[test]
fn lost_parts_are_resent_and_the_transfer_resumes() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    // Lose every third InstallSnapshot message or answer.
    let count = Rc::new(RefCell::new(0u32));
    let seen = count.clone();
    net.deliver = Some(Box::new(move |m| {
        let mut n = seen.borrow_mut();
        match m.body {
            MessageBody::InstallSnapshot { .. } | MessageBody::InstallSnapshotResponse { .. } => {
                *n += 1;
                !(*n).is_multiple_of(3)
            }
            _ => true,
        }
    }));
    net.heal();
    // Each loss costs a heartbeat interval (the re-send waits for one).
    for _ in 0..100 {
        net.tick_all(10);
        if net.installed.contains_key(&3) {
            break;
        }
    }
    assert!(*count.borrow() > 10);
    net.deliver = None;
    // Never restarted from zero once chunks were held: positions only grow
    // or repeat (a re-send), none goes back.
    let positions: Vec<u32> = chunks_to(&net, 3).iter().map(|c| c.1).collect();
    assert!(positions.windows(2).all(|w| w[1] >= w[0]), "{positions:?}");
    let manifest = manifest_of(&state_at(index), 1024);
    assert_eq!(
        net.node(3).snapshot_chunk_stats().chunks_fetched,
        manifest.len() as u64,
        "a re-sent chunk is not counted twice"
    );
    assert_caught_up(&mut net, index);
}

#[test]
fn a_follower_restarting_mid_install_keeps_its_old_state() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    // Deliver only the manifest and the first three chunks to node 3.
    let chunks = Rc::new(RefCell::new(0u32));
    let seen = chunks.clone();
    net.deliver = Some(Box::new(move |m| {
        if is_chunk(&m.body) {
            *seen.borrow_mut() += 1;
            return *seen.borrow() <= 3;
        }
        true
    }));
    net.heal();
    net.tick_all(5);
    assert!(*chunks.borrow() >= 3);
    assert!(!net.installed.contains_key(&3));
    // Crash and restart node 3: its storage never saw the partial snapshot.
    let storage = net.nodes.remove(&3).unwrap().into_storage();
    assert_eq!(storage.first_index(), 1, "old state: the full, short log");
    assert!(storage.snapshot().is_none());
    let old_last = storage.last_index();
    assert!(old_last < index);
    let mut config = continuum_raft::Config::new(3);
    config.snapshot_chunk_bytes = 1024;
    net.nodes.insert(3, Raft::new(config, storage, 7).unwrap());
    net.deliver = None;
    net.tick_all(20);
    assert_caught_up(&mut net, index);
}

#[test]
fn a_new_leader_resumes_the_transfer_where_the_follower_is() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    // Leader 1 sends the manifest and three chunks, then is cut off.
    let chunks = Rc::new(RefCell::new(0u32));
    let seen = chunks.clone();
    net.deliver = Some(Box::new(move |m| {
        if is_chunk(&m.body) && m.from == 1 {
            *seen.borrow_mut() += 1;
            return *seen.borrow() <= 3;
        }
        true
    }));
    net.heal();
    net.tick_all(5);
    net.deliver = None;
    assert_eq!(
        net.node(1).progress(3).map(|p| p.state),
        Some(ProgressState::Snapshot)
    );
    net.isolate(1);
    // Node 3's log is behind, so only node 2 can win.
    for _ in 0..100 {
        net.tick_all(1);
        if net.node(2).role() == Role::Leader {
            break;
        }
    }
    assert_eq!(net.node(2).role(), Role::Leader);
    net.tick_all(20);
    let pieces_from_2: Vec<u32> = manifest_pieces_to(&net, 3)
        .into_iter()
        .filter(|p| p.0 == 2)
        .map(|p| p.1)
        .collect();
    assert_eq!(pieces_from_2, [0], "a new leader starts at the manifest");
    let from_2: Vec<u32> = chunks_to(&net, 3)
        .into_iter()
        .filter(|c| c.0 == 2)
        .map(|c| c.1)
        .collect();
    let count = manifest_of(&state_at(index), 1024).len() as u32;
    let expected: Vec<u32> = (3..count).collect();
    assert_eq!(
        from_2, expected,
        "and resumes at the follower's first missing chunk"
    );
    net.heal();
    net.tick_all(10);
    assert_caught_up(&mut net, index);
}

#[test]
fn a_corrupt_chunk_is_refused() {
    let mut net = net();
    lagging_follower(&mut net);
    net.rewrite = Some(|m| {
        if let MessageBody::InstallSnapshot {
            part: SnapshotPart::Chunk { chunk, .. },
            ..
        } = &mut m.body
        {
            if let Some(b) = chunk.first_mut() {
                *b ^= 1;
            }
        }
    });
    net.heal();
    net.tick_all(20);
    assert!(!net.installed.contains_key(&3));
    assert!(net.node(3).stats().ignored_messages > 0);
    assert_eq!(net.node(3).snapshot_chunk_stats().chunks_fetched, 0);
    assert!(net.node(3).last_index() < net.node(1).last_index());
}

#[test]
fn a_corrupt_manifest_is_refused_and_asked_for_again() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    net.rewrite = Some(|m| {
        if let MessageBody::InstallSnapshot {
            part: SnapshotPart::Manifest { entries, .. },
            ..
        } = &mut m.body
        {
            if let Some(e) = entries.first_mut() {
                e.name[0] ^= 1;
            }
        }
    });
    net.heal();
    net.tick_all(20);
    assert!(!net.installed.contains_key(&3));
    let stats = net.node(3).snapshot_chunk_stats();
    assert!(stats.manifests_refused > 1, "{stats:?}");
    assert!(chunks_to(&net, 3).is_empty(), "no chunk without a manifest");
    net.rewrite = None;
    net.tick_all(20);
    assert_caught_up(&mut net, index);
}

/// A snapshot covers only applied, so committed, entries: a restart whose
/// hard state recorded an older commit index (it is written lazily) still
/// starts with the application at the snapshot.
#[test]
fn a_restart_applied_at_the_snapshot_is_valid_whatever_commit_the_hard_state_recorded() {
    use continuum_raft::{ConfState, HardState, MemStorage, Snapshot, SnapshotMetadata};
    let mut storage = MemStorage::new(vec![1]);
    let metadata = SnapshotMetadata {
        index: 10,
        term: 1,
        chain_hash: [7; 32],
        conf_state: ConfState::with_voters(vec![1]),
        conf_index: 0,
    };
    storage.apply_snapshot(Snapshot::new(metadata, vec![1, 2, 3]));
    storage.set_hard_state(HardState {
        term: 1,
        vote: 1,
        commit: 4,
    });
    let mut config = continuum_raft::Config::new(1);
    config.applied = 10;
    let raft = Raft::new(config, storage, 7).expect("applied at the snapshot is committed");
    assert_eq!(raft.commit_index(), 10);
    assert_eq!(raft.applied_index(), 10);
}
