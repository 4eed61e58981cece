//! Compaction and InstallSnapshot (Raft §7) as scenarios: a lagging
//! follower catches up by a chunked snapshot; lost chunks are re-sent and
//! the transfer resumes where the follower is; a follower restarting
//! mid-install keeps its old state; a new leader resumes the transfer.

mod harness;

use continuum_raft::{MessageBody, NodeId, ProgressState, Raft, Role, Storage};
use harness::Net;
use std::cell::RefCell;
use std::rc::Rc;

/// 5 chunks of 1 KiB and a bit.
const STATE_BYTES: usize = 4 * 1024 + 100;

fn state_at(index: u64) -> Vec<u8> {
    (0..STATE_BYTES).map(|i| (i as u64 ^ index) as u8).collect()
}

fn net() -> Net {
    Net::new(3, |c| c.snapshot_chunk_bytes = 1024)
}

/// Node 1 leads; node 3 is cut off while 20 entries commit; then nodes 1
/// and 2 compact everything they applied. Returns the compaction index.
fn lagging_follower(net: &mut Net) -> u64 {
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    net.isolate(3);
    for i in 0..20u8 {
        net.node(1).propose(vec![i]).unwrap();
        net.settle();
    }
    let applied = net.node(1).applied_index();
    for id in [1, 2] {
        let raft = net.node(id);
        let at = raft.applied_index();
        assert_eq!(at, applied);
        raft.storage_mut().compact(at, state_at(at)).unwrap();
        assert_eq!(raft.storage().first_index(), at + 1);
    }
    applied
}

fn snapshot_chunks(net: &Net, to: NodeId) -> Vec<(NodeId, u64)> {
    net.delivered
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::InstallSnapshot { offset, .. } if m.to == to => Some((m.from, *offset)),
            _ => None,
        })
        .collect()
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
fn a_lagging_follower_catches_up_by_a_chunked_snapshot() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    net.heal();
    net.tick_all(10);
    let offsets: Vec<u64> = snapshot_chunks(&net, 3).iter().map(|c| c.1).collect();
    assert_eq!(
        offsets,
        [0, 1024, 2048, 3072, 4096],
        "one message per chunk"
    );
    for m in &net.delivered {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        assert!(bytes.len() <= 1024 + 200, "{} bytes", bytes.len());
    }
    assert_caught_up(&mut net, index);
}

#[test]
fn lost_chunks_are_resent_and_the_transfer_resumes() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    // Lose every third InstallSnapshot and every fourth answer.
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
    net.tick_all(60);
    assert!(*count.borrow() > 10);
    net.deliver = None;
    // Never restarted from zero once data was held: offsets only grow or
    // repeat (a re-send), none goes back.
    let offsets: Vec<u64> = snapshot_chunks(&net, 3).iter().map(|c| c.1).collect();
    assert!(offsets.windows(2).all(|w| w[1] >= w[0]), "{offsets:?}");
    assert_caught_up(&mut net, index);
}

#[test]
fn a_follower_restarting_mid_install_keeps_its_old_state() {
    let mut net = net();
    let index = lagging_follower(&mut net);
    // Deliver only the first two chunks to node 3.
    let chunks = Rc::new(RefCell::new(0u32));
    let seen = chunks.clone();
    net.deliver = Some(Box::new(move |m| match m.body {
        MessageBody::InstallSnapshot { .. } => {
            *seen.borrow_mut() += 1;
            *seen.borrow() <= 2
        }
        _ => true,
    }));
    net.heal();
    net.tick_all(5);
    assert!(*chunks.borrow() >= 2);
    assert!(!net.installed.contains_key(&3));
    // Crash and restart node 3: its storage never saw the partial snapshot.
    let storage = net.nodes.remove(&3).unwrap().into_storage();
    assert_eq!(storage.first_index(), 1, "old state: the full, short log");
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
    // Leader 1 sends three chunks, then is cut off.
    let chunks = Rc::new(RefCell::new(0u32));
    let seen = chunks.clone();
    net.deliver = Some(Box::new(move |m| match m.body {
        MessageBody::InstallSnapshot { .. } if m.from == 1 => {
            *seen.borrow_mut() += 1;
            *seen.borrow() <= 3
        }
        _ => true,
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
    let from_2: Vec<u64> = snapshot_chunks(&net, 3)
        .into_iter()
        .filter(|c| c.0 == 2)
        .map(|c| c.1)
        .collect();
    assert_eq!(from_2.first(), Some(&0), "a new leader starts at 0");
    assert_eq!(
        from_2.get(1),
        Some(&3072),
        "and resumes where the follower is: {from_2:?}"
    );
    assert_eq!(from_2.len(), 3, "{from_2:?}");
    net.heal();
    net.tick_all(10);
    assert_caught_up(&mut net, index);
}

#[test]
fn a_corrupt_chunk_is_refused() {
    let mut net = net();
    lagging_follower(&mut net);
    net.rewrite = Some(|m| {
        if let MessageBody::InstallSnapshot { chunk, .. } = &mut m.body {
            if let Some(b) = chunk.first_mut() {
                *b ^= 1;
            }
        }
    });
    net.heal();
    net.tick_all(20);
    assert!(!net.installed.contains_key(&3));
    assert!(net.node(3).stats().ignored_messages > 0);
    assert!(net.node(3).last_index() < net.node(1).last_index());
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
