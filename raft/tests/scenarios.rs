//! Protocol scenarios: elections, pre-vote, check-quorum, replication,
//! backtracking, the hash chain, restarts and the Ready contract.

mod harness;

use continuum_raft::*;
use harness::{log_with_terms, Net};

#[test]
fn single_node_elects_itself_and_commits() {
    let mut net = Net::new(1, |_| {});
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    net.node(1).propose(b"x".to_vec()).expect("leader accepts");
    net.settle();
    assert_eq!(net.payloads(1), vec![b"x".to_vec()]);
}

#[test]
fn three_nodes_elect_one_leader_and_replicate_batches() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(2).leader(), 1);
    assert_eq!(net.node(1).term(), 1);
    let range = net
        .node(1)
        .propose_batch((0..10u8).map(|i| vec![i]))
        .expect("batch");
    assert_eq!(range, 2..=11, "index 1 is the leader's no-op");
    net.settle();
    for id in 1..=3 {
        assert_eq!(
            net.payloads(id),
            (0..10u8).map(|i| vec![i]).collect::<Vec<_>>()
        );
        assert_eq!(net.node(id).commit_index(), 11);
    }
    // Batching: the ten proposals went to each follower in one append.
    let appends_with_entries = net
        .delivered
        .iter()
        .filter(|m| matches!(&m.body, MessageBody::Append { entries, .. } if entries.len() == 10))
        .count();
    assert_eq!(appends_with_entries, 2);
    // Proposals on a follower are refused with a leader hint.
    assert_eq!(
        net.node(2).propose(vec![1]),
        Err(ProposeError::NotLeader { leader: 1 })
    );
}

#[test]
fn pre_vote_keeps_an_isolated_node_from_raising_its_term() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    net.isolate(3);
    for _ in 0..200 {
        net.node(3).tick();
        net.settle();
    }
    assert_eq!(
        net.node(3).term(),
        1,
        "pre-vote never succeeded, so the term stayed"
    );
    net.heal();
    net.tick_all(40);
    assert_eq!(
        net.node(1).role(),
        Role::Leader,
        "rejoining did not disrupt the leader"
    );
    assert_eq!(net.node(1).term(), 1);
}

#[test]
fn without_pre_vote_an_isolated_node_inflates_its_term() {
    let mut net = Net::new(3, |c| c.pre_vote = false);
    net.campaign(1);
    net.isolate(3);
    for _ in 0..200 {
        net.node(3).tick();
        net.settle();
    }
    assert!(
        net.node(3).term() > 3,
        "plain Raft keeps campaigning: {}",
        net.node(3).term()
    );
}

#[test]
fn check_quorum_makes_a_cut_off_leader_step_down() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    net.isolate(1);
    for _ in 0..40 {
        net.node(1).tick();
        net.settle();
    }
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(net.node(1).leader(), NO_NODE);
}

#[test]
fn stale_leader_learns_the_new_term_and_steps_down() {
    let mut net = Net::new(3, |c| c.check_quorum = false);
    net.campaign(1);
    net.isolate(1);
    net.campaign(2);
    assert_eq!(net.node(2).role(), Role::Leader);
    assert_eq!(net.node(2).term(), 2);
    assert_eq!(
        net.node(1).role(),
        Role::Leader,
        "still believes it leads term 1"
    );
    net.heal();
    // Its heartbeat carries term 1 < 2: rejected with the higher term.
    for _ in 0..10 {
        net.node(1).tick();
    }
    net.settle();
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(net.node(1).term(), 2);
}

#[test]
fn conflicting_suffix_is_replaced_with_few_round_trips() {
    let voters = [1, 2, 3];
    // Leader-to-be (1) and 2: 5 entries of term 1 then 40 of term 3.
    let mut good: Vec<u64> = vec![1; 5];
    good.extend(vec![3; 40]);
    // 3: the same 5, then 60 uncommitted entries of term 2.
    let mut stale: Vec<u64> = vec![1; 5];
    stale.extend(vec![2; 60]);
    let storages = vec![
        log_with_terms(&voters, &good, 3),
        log_with_terms(&voters, &good, 3),
        log_with_terms(&voters, &stale, 3),
    ];
    let mut net = Net::with_storages(storages, |c| c.max_entries_per_msg = 8);
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    let rejections = net
        .delivered
        .iter()
        .filter(|m| {
            m.from == 3 && matches!(m.body, MessageBody::AppendResponse { reject: true, .. })
        })
        .count();
    assert!(
        rejections <= 2,
        "conflict-term hints jump over whole terms: {rejections} rejections"
    );
    let last = net.node(1).last_index();
    assert_eq!(net.node(3).last_index(), last);
    for index in 1..=last {
        assert_eq!(
            net.node(3).log_chain_hash(index),
            net.node(1).log_chain_hash(index)
        );
    }
    assert_eq!(
        net.node(3).storage().term(6),
        Ok(3),
        "term-2 suffix was truncated"
    );
}

#[test]
fn follower_rejects_entries_with_a_wrong_chain_hash() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    let before = net.node(2).last_index();
    let prev_hash = net.node(2).log_chain_hash(before).expect("hash");
    let mut entry = Entry::new(
        &prev_hash,
        before + 1,
        1,
        EntryKind::Normal,
        b"honest".to_vec(),
    );
    entry.data = b"forged".to_vec();
    let forged = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_log_index: before,
            prev_log_term: 1,
            leader_commit: 0,
            entries: vec![entry],
        },
    };
    net.node(2).step(forged).expect("step");
    assert_eq!(net.node(2).stats().chain_hash_mismatches, 1);
    assert_eq!(net.node(2).last_index(), before, "nothing appended");
    let ready = net.node(2).ready();
    assert!(ready.messages.is_empty(), "no ack for a broken chain");
    net.node(2).advance();
}

#[test]
fn restart_keeps_votes_and_log() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    net.node(1).propose(b"kept".to_vec()).expect("propose");
    net.settle();
    let raft = net.nodes.remove(&2).expect("node 2");
    let storage = raft.into_storage();
    let restarted = Raft::new(Config::new(2), storage, 9).expect("restart");
    assert_eq!(restarted.term(), 1);
    assert_eq!(restarted.hard_state().vote, 1);
    assert_eq!(restarted.last_index(), 2);
    assert_eq!(restarted.commit_index(), 2);
}

#[test]
#[should_panic(expected = "persist Ready::entries before advance")]
fn advance_without_persisting_halts() {
    let mut net = Net::new(1, |_| {});
    net.campaign(1);
    net.node(1).propose(b"x".to_vec()).expect("propose");
    let _ready = net.node(1).ready();
    net.node(1).advance();
}

#[test]
#[should_panic(expected = "between ready() and advance()")]
fn input_between_ready_and_advance_halts() {
    let mut net = Net::new(1, |_| {});
    let _ready = net.node(1).ready();
    net.node(1).tick();
}

/// Raft Figure 8 / §5.4.2: a leader must not commit an entry of an earlier
/// term by counting replicas, because a candidate with a newer last term can
/// still be elected and overwrite it.
#[test]
fn old_term_entries_are_not_committed_by_counting_replicas() {
    let voters = [1, 2, 3, 4, 5];
    let storages = vec![
        log_with_terms(&voters, &[1, 2], 3),
        log_with_terms(&voters, &[1, 2], 3),
        log_with_terms(&voters, &[1], 3),
        log_with_terms(&voters, &[1], 3),
        log_with_terms(&voters, &[1, 3], 3),
    ];
    let mut net = Net::with_storages(storages, |c| {
        c.check_quorum = false;
        c.max_entries_per_msg = 1;
    });
    net.isolate(5);
    // The new leader's no-op (term 4) never arrives anywhere.
    net.rewrite = Some(|message| {
        if let MessageBody::Append { entries, .. } = &mut message.body {
            entries.retain(|e| e.term != 4);
        }
    });
    net.campaign(1);
    assert_eq!((net.node(1).role(), net.node(1).term()), (Role::Leader, 4));
    for _ in 0..3 {
        net.node(1).tick();
    }
    net.settle();
    for id in 2..=4 {
        assert_eq!(
            net.node(1).progress(id).map(|p| p.matched),
            Some(2),
            "follower {id} holds the term-2 entry"
        );
    }
    assert_eq!(
        net.node(1).commit_index(),
        0,
        "index 2 is on a majority but from term 2: not committed"
    );
    // Figure 8 (d): node 5, with a term-3 entry at index 2, wins term 5 and
    // overwrites index 2 everywhere; legal only because it never committed.
    net.rewrite = None;
    net.heal();
    net.isolate(1);
    // The first pre-vote (for term 4) loses to voters already in term 4 and
    // teaches node 5 the term; the second wins.
    for _ in 0..3 {
        if net.node(5).role() != Role::Leader {
            net.campaign(5);
        }
    }
    assert_eq!(net.node(5).role(), Role::Leader);
    net.node(5).propose(b"after".to_vec()).expect("propose");
    net.settle();
    for id in 2..=5 {
        assert_eq!(net.node(id).log_term(2), Some(3));
        assert_eq!(net.payloads(id).last(), Some(&b"after".to_vec()));
    }
}
