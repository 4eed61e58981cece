//! Membership changes in the Raft core (`membership.rs`): single-server
//! changes through the log, learners, the errata rule, refusals, rollback
//! on truncation, restart and snapshots.

mod harness;

use continuum_raft::{
    ConfChange, ConfChangeError, ConfChangeKind, ConfEntry, ConfState, Config, DecodeError,
    EntryKind, MemStorage, MessageBody, NodeId, Raft, Role, Storage, MAX_CONF_CONTEXT_BYTES,
};
use harness::Net;

fn change(kind: ConfChangeKind, node: NodeId) -> ConfChange {
    ConfChange {
        kind,
        node,
        context: format!("member {node}").into_bytes(),
    }
}

fn net_with_leader(n: u64) -> Net {
    let mut net = Net::new(n, |_| {});
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    net
}

/// Adds a node with blank storage (it learns the membership from the
/// leader) to the test network.
fn join(net: &mut Net, id: NodeId) {
    let raft = Raft::new(Config::new(id), MemStorage::new(vec![]), 100 + id).expect("joiner");
    net.nodes.insert(id, raft);
}

fn conf(voters: &[NodeId], learners: &[NodeId]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
    }
}

#[test]
fn a_learner_joins_catches_up_and_is_promoted() {
    let mut net = net_with_leader(3);
    net.node(1).propose(b"before".to_vec()).unwrap();
    net.settle();
    join(&mut net, 4);
    let index = net
        .node(1)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .unwrap();
    // In effect on the leader as soon as it is appended (thesis §4.1).
    assert_eq!(net.node(1).conf_state(), &conf(&[1, 2, 3], &[4]));
    assert_eq!(net.node(1).conf_index(), index);
    net.settle();
    for id in 1..=4 {
        assert_eq!(
            net.node(id).conf_state(),
            &conf(&[1, 2, 3], &[4]),
            "node {id}"
        );
        assert_eq!(net.node(id).commit_index(), index, "node {id}");
    }
    // The application sees the entry when it commits.
    let applied = net.applied[&2].iter().find(|e| e.index == index).unwrap();
    assert_eq!(applied.kind, EntryKind::ConfChange);
    let entry = ConfEntry::decode(&applied.data).unwrap();
    assert_eq!(entry.change, change(ConfChangeKind::AddLearner, 4));
    assert_eq!(net.payloads(4), vec![b"before".to_vec()]);
    // A learner never campaigns.
    for _ in 0..200 {
        net.node(4).tick();
    }
    net.settle();
    assert_eq!(net.node(4).stats().elections_started, 0);
    assert_eq!(net.node(1).role(), Role::Leader);
    let index = net
        .node(1)
        .propose_conf_change(change(ConfChangeKind::PromoteLearner, 4))
        .unwrap();
    net.settle();
    for id in 1..=4 {
        assert_eq!(
            net.node(id).conf_state(),
            &conf(&[1, 2, 3, 4], &[]),
            "node {id}"
        );
        assert_eq!(net.node(id).commit_index(), index);
    }
}

#[test]
fn a_learner_never_counts_toward_a_commit() {
    let mut net = net_with_leader(3);
    join(&mut net, 4);
    net.node(1)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .unwrap();
    net.settle();
    // Leader + learner: two acks, but only one voter.
    for id in [2, 3] {
        net.cut.insert((1, id));
        net.cut.insert((id, 1));
    }
    let index = net.node(1).propose(b"x".to_vec()).unwrap();
    net.settle();
    assert_eq!(net.node(4).last_index(), index, "the learner has it");
    assert!(
        net.node(1).commit_index() < index,
        "but it is not committed"
    );
    net.heal();
    net.tick_all(10);
    assert!(net.node(1).commit_index() >= index);
}

#[test]
fn a_new_leader_proposes_no_change_before_committing_in_its_term() {
    let mut net = Net::new(3, |_| {});
    // Appends never reach the followers: the election no-op stays
    // uncommitted.
    net.deliver = Some(Box::new(|m| !matches!(m.body, MessageBody::Append { .. })));
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(
        net.node(1)
            .propose_conf_change(change(ConfChangeKind::AddLearner, 4)),
        Err(ConfChangeError::LeaderNotReady)
    );
    net.deliver = None;
    net.tick_all(10);
    assert!(net
        .node(1)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .is_ok());
}

#[test]
fn refusals_are_typed() {
    let mut net = net_with_leader(3);
    join(&mut net, 4);
    net.isolate(4);
    assert_eq!(
        net.node(2)
            .propose_conf_change(change(ConfChangeKind::AddLearner, 4)),
        Err(ConfChangeError::NotLeader { leader: 1 })
    );
    let leader = net.node(1);
    for (c, err) in [
        (
            change(ConfChangeKind::AddLearner, 2),
            ConfChangeError::AlreadyMember,
        ),
        (
            change(ConfChangeKind::PromoteLearner, 2),
            ConfChangeError::AlreadyMember,
        ),
        (
            change(ConfChangeKind::PromoteLearner, 7),
            ConfChangeError::UnknownNode,
        ),
        (
            change(ConfChangeKind::RemoveVoter, 7),
            ConfChangeError::UnknownNode,
        ),
        (
            change(ConfChangeKind::RemoveLearner, 2),
            ConfChangeError::UnknownNode,
        ),
        (
            change(ConfChangeKind::AddLearner, 0),
            ConfChangeError::UnknownNode,
        ),
        (
            change(ConfChangeKind::RemoveVoter, 1),
            ConfChangeError::RemoveLeader,
        ),
        (
            ConfChange {
                kind: ConfChangeKind::AddLearner,
                node: 4,
                context: vec![0; MAX_CONF_CONTEXT_BYTES + 1],
            },
            ConfChangeError::ContextTooLarge,
        ),
    ] {
        assert_eq!(leader.propose_conf_change(c.clone()), Err(err), "{c:?}");
    }
    // One change at a time.
    leader
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .unwrap();
    assert_eq!(
        leader.propose_conf_change(change(ConfChangeKind::AddLearner, 5)),
        Err(ConfChangeError::ChangeInProgress)
    );
    // A learner that holds nothing is not promoted (node 4 is cut off).
    net.settle();
    assert_eq!(
        net.node(1)
            .propose_conf_change(change(ConfChangeKind::PromoteLearner, 4)),
        Err(ConfChangeError::LearnerBehind)
    );
    // A single voter cannot be removed.
    let mut single = Net::new(1, |_| {});
    single.campaign(1);
    assert_eq!(
        single
            .node(1)
            .propose_conf_change(change(ConfChangeKind::RemoveVoter, 1)),
        Err(ConfChangeError::RemoveLastVoter)
    );
}

#[test]
fn removing_a_voter_that_is_up_while_another_is_down_is_refused() {
    let mut net = net_with_leader(3);
    net.isolate(3);
    // Long enough for check-quorum to notice 3 is silent.
    net.tick_all(40);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(
        net.node(1)
            .propose_conf_change(change(ConfChangeKind::RemoveVoter, 2)),
        Err(ConfChangeError::WouldLoseQuorum)
    );
    // Removing the silent one is what the operator wants.
    net.node(1)
        .propose_conf_change(change(ConfChangeKind::RemoveVoter, 3))
        .unwrap();
    net.settle();
    assert_eq!(net.node(1).conf_state(), &conf(&[1, 2], &[]));
}

#[test]
fn the_leader_is_removed_after_handing_leadership_over() {
    let mut net = net_with_leader(3);
    assert_eq!(
        net.node(1)
            .propose_conf_change(change(ConfChangeKind::RemoveVoter, 1)),
        Err(ConfChangeError::RemoveLeader)
    );
    net.node(1).transfer_leader(2).unwrap();
    net.settle();
    assert_eq!(net.node(2).role(), Role::Leader);
    net.tick_all(1); // commit the new leader's no-op everywhere
    let index = net
        .node(2)
        .propose_conf_change(change(ConfChangeKind::RemoveVoter, 1))
        .unwrap();
    net.settle();
    assert_eq!(net.node(2).commit_index(), index);
    assert_eq!(net.node(1).conf_state(), &conf(&[2, 3], &[]));
    // The removed node is sent nothing more and never campaigns.
    let elections = net.node(1).stats().elections_started;
    let before = net.delivered.len();
    net.tick_all(100);
    assert_eq!(net.node(1).stats().elections_started, elections);
    assert!(net.delivered[before..].iter().all(|m| m.to != 1));
    assert_eq!(net.node(2).role(), Role::Leader);
    net.node(2).propose(b"after".to_vec()).unwrap();
    net.settle();
    assert!(net.payloads(3).contains(&b"after".to_vec()));
}

#[test]
fn a_truncated_configuration_entry_is_rolled_back() {
    let mut net = net_with_leader(5);
    join(&mut net, 6);
    // Only node 2 receives the change.
    for id in [3, 4, 5, 6] {
        net.cut.insert((1, id));
    }
    net.node(1)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 6))
        .unwrap();
    net.settle();
    assert_eq!(net.node(2).conf_state(), &conf(&[1, 2, 3, 4, 5], &[6]));
    // 1 and 2 are cut off.
    net.heal();
    net.isolate(1);
    net.isolate(2);
    net.isolate(6);
    // 3, 4 and 5 elect one of them, which writes over the change.
    let mut leader = None;
    for _ in 0..200 {
        net.tick_all(1);
        leader = (3..=5).find(|&id| net.nodes[&id].role() == Role::Leader);
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("3, 4 and 5 elect a leader");
    net.node(leader).propose(b"over".to_vec()).unwrap();
    net.settle();
    net.heal();
    net.tick_all(20);
    for id in 1..=5 {
        assert_eq!(
            net.node(id).conf_state(),
            &conf(&[1, 2, 3, 4, 5], &[]),
            "node {id} rolled back"
        );
        assert_eq!(net.node(id).conf_index(), 0);
    }
    assert!(net.payloads(2).contains(&b"over".to_vec()));
}

#[test]
fn the_configuration_survives_a_restart_and_a_compaction() {
    let mut net = net_with_leader(3);
    join(&mut net, 4);
    let added = net
        .node(1)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .unwrap();
    net.settle();
    net.node(1).propose(b"x".to_vec()).unwrap();
    net.settle();
    // Restart node 2 from its storage: the log's change is in effect.
    let restart = |raft: Raft<MemStorage>, id| {
        Raft::new(Config::new(id), raft.into_storage(), 7).expect("restart")
    };
    let raft = net.nodes.remove(&2).unwrap();
    let raft = restart(raft, 2);
    assert_eq!(raft.conf_state(), &conf(&[1, 2, 3], &[4]));
    assert_eq!(raft.conf_index(), added);
    net.nodes.insert(2, raft);
    // Compact past the change: the snapshot carries the configuration.
    let mut raft = net.nodes.remove(&3).unwrap();
    let applied = raft.applied_index();
    raft.storage_mut().compact(applied, vec![]).unwrap();
    let meta = raft.storage().snapshot().unwrap().metadata.clone();
    assert_eq!(meta.conf_state, conf(&[1, 2, 3], &[4]));
    assert_eq!(meta.conf_index, added);
    let raft = restart(raft, 3);
    assert_eq!(raft.conf_state(), &conf(&[1, 2, 3], &[4]));
    assert_eq!(raft.conf_index(), added);
}

#[test]
fn a_learner_catches_up_by_snapshot_and_learns_the_configuration_from_it() {
    let mut net = net_with_leader(3);
    join(&mut net, 4);
    net.node(1)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .unwrap();
    // 4 is unreachable while the log grows and is compacted.
    net.isolate(4);
    net.settle();
    for k in 0..5u8 {
        net.node(1).propose(vec![k]).unwrap();
        net.settle();
    }
    let applied = net.node(1).applied_index();
    net.node(1)
        .storage_mut()
        .compact(applied, b"state".to_vec())
        .unwrap();
    net.heal();
    net.tick_all(10);
    assert_eq!(net.installed[&4].len(), 1);
    let snapshot = &net.installed[&4][0];
    assert_eq!(snapshot.metadata.conf_state, conf(&[1, 2, 3], &[4]));
    assert_eq!(net.node(4).conf_state(), &conf(&[1, 2, 3], &[4]));
    assert!(net.node(4).commit_index() >= applied);
    // The learner is now promotable.
    net.node(1)
        .propose_conf_change(change(ConfChangeKind::PromoteLearner, 4))
        .unwrap();
    net.settle();
    assert_eq!(net.node(4).conf_state(), &conf(&[1, 2, 3, 4], &[]));
}

#[test]
fn a_node_missing_from_its_bootstrap_configuration_is_refused() {
    assert!(matches!(
        Raft::new(Config::new(9), MemStorage::new(vec![1, 2, 3]), 1),
        Err(continuum_raft::ConfigError::NotAVoter)
    ));
    // A blank one joins.
    assert!(Raft::new(Config::new(9), MemStorage::new(vec![]), 1).is_ok());
}

#[test]
fn configuration_entries_decode_only_in_canonical_consistent_form() {
    let entry = ConfEntry {
        change: change(ConfChangeKind::AddLearner, 4),
        conf_state: conf(&[1, 2, 3], &[4]),
    };
    let bytes = entry.encode();
    assert_eq!(ConfEntry::decode(&bytes), Ok(entry.clone()));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        ConfEntry::decode(&trailing),
        Err(DecodeError::TrailingBytes)
    );
    for cut in 0..bytes.len() {
        assert!(ConfEntry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    // The configuration must be what the change makes: 4 added as a
    // learner but listed as a voter is refused.
    let inconsistent = ConfEntry {
        change: change(ConfChangeKind::AddLearner, 4),
        conf_state: conf(&[1, 2, 3, 4], &[]),
    };
    assert_eq!(
        ConfEntry::decode(&inconsistent.encode()),
        Err(DecodeError::ConfState)
    );
    let mut bad_kind = bytes;
    bad_kind[0] = 9;
    assert_eq!(ConfEntry::decode(&bad_kind), Err(DecodeError::ConfState));
}

#[test]
fn a_learner_follows_a_new_leader_with_lease_reads_on() {
    let lease = |c: &mut Config| c.read_only = continuum_raft::ReadOnlyOption::LeaseBased;
    let mut net = Net::new(3, lease);
    // Booting nodes honour a lease they may have promised: wait it out.
    net.tick_all(40);
    let old = (1..=3)
        .find(|&id| net.nodes[&id].role() == Role::Leader)
        .expect("a leader");
    let new = if old == 1 { 2 } else { 1 };
    let mut config = Config::new(4);
    lease(&mut config);
    net.nodes.insert(
        4,
        Raft::new(config, MemStorage::new(vec![]), 104).expect("joiner"),
    );
    net.node(old)
        .propose_conf_change(change(ConfChangeKind::AddLearner, 4))
        .unwrap();
    // (a booting node also waits out a lease before following anyone)
    net.tick_all(30);
    assert_eq!(net.node(4).leader(), old);
    // 4 is cut off while 1 hands leadership to 2 (a higher term).
    net.isolate(4);
    net.node(old).transfer_leader(new).unwrap();
    net.settle();
    assert_eq!(net.node(new).role(), Role::Leader);
    let term = net.node(new).term();
    // Long after, 4 is reachable again: it must follow the new leader,
    // its promise to the old one having expired an election timeout ago.
    for _ in 0..100 {
        net.node(4).tick();
    }
    net.heal();
    net.node(new).propose(b"new term".to_vec()).unwrap();
    net.tick_all(30);
    assert_eq!(net.node(4).term(), term);
    assert_eq!(net.node(4).leader(), new);
    assert!(net.payloads(4).contains(&b"new term".to_vec()));
}

proptest::proptest! {
    /// Configuration entry data from the wire or a disk: decoding is total
    /// and accepts only what re-encodes to the same bytes.
    #[test]
    fn conf_entry_decoding_is_total_and_canonical(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
    ) {
        if let Ok(entry) = ConfEntry::decode(&bytes) {
            proptest::prop_assert_eq!(entry.encode(), bytes);
        }
    }
}
