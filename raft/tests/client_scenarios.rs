//! Client-facing scenarios: leadership transfer, ReadIndex and lease
//! reads, proposal limits.

mod harness;

use continuum_raft::*;
use harness::Net;

#[test]
fn leadership_transfer_hands_over_and_blocks_proposals_meanwhile() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    net.isolate(3);
    net.node(1).propose(b"a".to_vec()).expect("propose");
    net.settle();
    net.heal();
    net.node(1).transfer_leader(3).expect("transfer");
    assert_eq!(
        net.node(1).propose(vec![1]),
        Err(ProposeError::TransferInProgress)
    );
    net.settle();
    assert_eq!(
        net.node(3).role(),
        Role::Leader,
        "3 was caught up, then got TimeoutNow"
    );
    assert_eq!(net.node(1).role(), Role::Follower);
    assert!(net
        .delivered
        .iter()
        .any(|m| m.body == MessageBody::TimeoutNow));
    net.node(3)
        .propose(b"b".to_vec())
        .expect("new leader accepts");
    net.settle();
    for id in 1..=3 {
        assert_eq!(net.payloads(id), vec![b"a".to_vec(), b"b".to_vec()]);
    }
}

#[test]
fn read_index_waits_for_a_quorum_and_reports_the_commit_index() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    net.node(1).propose(b"a".to_vec()).expect("propose");
    net.settle();
    let commit = net.node(1).commit_index();
    // Leader read: needs a heartbeat round; with both followers cut, it waits.
    net.isolate(1);
    net.node(1).read_index(7).expect("read");
    net.settle();
    assert!(
        net.reads.get(&1).is_none_or(|r| r.is_empty()),
        "no quorum, no read"
    );
    net.heal();
    net.node(1).read_index(8).expect("read");
    net.settle();
    let reads = &net.reads[&1];
    assert_eq!(
        reads,
        &vec![
            ReadState {
                index: commit,
                ctx: 7
            },
            ReadState {
                index: commit,
                ctx: 8
            }
        ]
    );
    // Follower read is forwarded to the leader.
    net.node(2).read_index(9).expect("forward");
    net.settle();
    assert_eq!(
        net.reads[&2],
        vec![ReadState {
            index: commit,
            ctx: 9
        }]
    );
}

#[test]
fn lease_reads_answer_locally_only_while_the_lease_lasts() {
    let mut net = Net::new(3, |c| c.read_only = ReadOnlyOption::LeaseBased);
    // Freshly booted nodes refuse votes for an election timeout (they may
    // have promised a lease before a crash), so let everyone tick.
    let mut leader = None;
    for _ in 0..100 {
        net.tick_all(1);
        leader = (1..=3).find(|&id| net.node(id).role() == Role::Leader);
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("a leader is elected");
    // A heartbeat round renews the lease.
    for _ in 0..5 {
        net.node(leader).tick();
    }
    net.settle();
    let commit = net.node(leader).commit_index();
    net.isolate(leader);
    net.node(leader).read_index(5).expect("read");
    net.settle();
    assert_eq!(
        net.reads[&leader],
        vec![ReadState {
            index: commit,
            ctx: 5
        }],
        "served from the lease"
    );
    // Without acks the lease runs out after lease_ticks (11 by default);
    // reads then need a quorum round, which cannot complete while cut off.
    for _ in 0..11 {
        net.node(leader).tick();
    }
    net.settle();
    assert_eq!(
        net.node(leader).role(),
        Role::Leader,
        "check-quorum has not fired yet"
    );
    net.node(leader).read_index(6).expect("read");
    net.settle();
    assert_eq!(
        net.reads[&leader].len(),
        1,
        "lease expired: no local answer"
    );
    let mut bad = Config::new(1);
    bad.read_only = ReadOnlyOption::LeaseBased;
    bad.check_quorum = false;
    assert_eq!(bad.validate(), Err(ConfigError::LeaseWithoutCheckQuorum));
    bad.check_quorum = true;
    bad.max_clock_drift_pct = 300;
    assert_eq!(bad.validate(), Err(ConfigError::LeaseTooShort));
}

#[test]
fn uncommitted_proposals_are_bounded() {
    let mut net = Net::new(3, |c| c.max_uncommitted_entries = 10);
    net.campaign(1);
    net.isolate(1);
    let mut accepted = 0;
    while net.node(1).propose(vec![0]).is_ok() {
        accepted += 1;
        net.settle();
    }
    assert_eq!(accepted, 10, "the no-op was committed before the cut");
    assert_eq!(
        net.node(1).propose(vec![0]),
        Err(ProposeError::TooManyUncommitted)
    );
    let big = vec![0u8; continuum_raft::MAX_ENTRY_DATA_BYTES + 1];
    assert_eq!(net.node(1).propose(big), Err(ProposeError::EntryTooLarge));
}

#[test]
fn transfer_to_a_lagging_node_catches_it_up_first_and_aborts_when_unreachable() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    net.isolate(3);
    for i in 0..5u8 {
        net.node(1).propose(vec![i]).expect("propose");
        net.settle();
    }
    // 3 is cut off: the transfer cannot finish and is abandoned after an
    // election timeout, after which proposals are accepted again.
    net.node(1).transfer_leader(3).expect("transfer");
    net.settle();
    assert_eq!(
        net.node(1).propose(vec![9]),
        Err(ProposeError::TransferInProgress)
    );
    for _ in 0..20 {
        net.node(1).tick();
        net.node(2).tick();
        net.settle();
    }
    assert_eq!(net.node(1).role(), Role::Leader);
    net.node(1).propose(vec![9]).expect("transfer abandoned");
    net.settle();
    // Reachable again: the lagging node is caught up, then takes over.
    net.heal();
    net.node(1).transfer_leader(3).expect("transfer");
    net.settle();
    assert_eq!(net.node(3).role(), Role::Leader);
    assert_eq!(net.node(3).last_index(), net.node(1).last_index());
    assert_eq!(
        net.node(2).transfer_leader(1),
        Err(continuum_raft::TransferError::NotLeader),
        "only the leader transfers"
    );
}

#[test]
fn reads_before_the_first_commit_of_a_term_wait_for_it() {
    let mut net = Net::new(3, |_| {});
    net.cut.insert((1, 3));
    net.cut.insert((3, 1));
    // Node 2 votes, but the new leader's no-op does not reach it for now.
    net.rewrite = Some(|message| {
        if let MessageBody::Append { entries, .. } = &mut message.body {
            entries.clear();
        }
    });
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).commit_index(), 0, "no-op not replicated yet");
    net.node(1).read_index(4).expect("queued");
    net.settle();
    assert!(
        net.reads.get(&1).is_none_or(|r| r.is_empty()),
        "must wait for a commit in its term"
    );
    net.rewrite = None;
    for _ in 0..6 {
        net.node(1).tick();
    }
    net.settle();
    assert_eq!(net.node(1).commit_index(), 1);
    assert_eq!(net.reads[&1], vec![ReadState { index: 1, ctx: 4 }]);
}

#[test]
fn follower_without_a_leader_refuses_reads_and_misaddressed_messages_are_refused() {
    let mut net = Net::new(3, |_| {});
    assert_eq!(
        net.node(2).read_index(1),
        Err(continuum_raft::ReadIndexError::NoLeader)
    );
    let stray = Message {
        from: 1,
        to: 3,
        term: 1,
        body: MessageBody::TimeoutNow,
    };
    assert_eq!(
        net.node(2).step(stray),
        Err(continuum_raft::StepError::WrongRecipient)
    );
    // A node outside this node's configuration is accepted (the
    // configuration may be behind the leader's, see membership.rs); one
    // claiming to be this very node is not.
    let from_itself = Message {
        from: 2,
        to: 2,
        term: 1,
        body: MessageBody::TimeoutNow,
    };
    assert_eq!(
        net.node(2).step(from_itself),
        Err(continuum_raft::StepError::UnknownSender)
    );
}

#[test]
fn reads_between_two_readies_share_one_heartbeat_round() {
    let mut net = Net::new(3, |_| {});
    net.campaign(1);
    let before = net.delivered.len();
    for ctx in 10..15 {
        net.node(1).read_index(ctx).expect("read");
    }
    net.settle();
    let heartbeats = net.delivered[before..]
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Heartbeat { .. }))
        .count();
    assert_eq!(
        heartbeats, 2,
        "one round to the two followers for five reads"
    );
    let ctxs: Vec<u64> = net.reads[&1].iter().map(|r| r.ctx).collect();
    assert_eq!(ctxs, vec![10, 11, 12, 13, 14]);
}

/// Issue 13, bug 3: with lease reads, a follower that acked the leader
/// within the election timeout must not move to a higher term from *any*
/// message while the lease lasts. Before the fix a stale PreVoteResponse
/// (rejecting this node's own earlier pre-vote) made it a follower of the
/// higher term with no known leader, and the next vote request of that
/// term was granted at once: a new leader could commit while the old one
/// still served lease reads.
#[test]
fn a_follower_in_a_lease_ignores_every_higher_term_message_but_a_transfer_vote() {
    let mut config = Config::new(2);
    config.read_only = ReadOnlyOption::LeaseBased;
    let storage = MemStorage::new((1..=5).collect());
    let mut node = Raft::new(config, storage, 9).expect("config");
    let message = |from, term, body| Message {
        from,
        to: 2,
        term,
        body,
    };
    let heartbeat = |read_seq| MessageBody::Heartbeat {
        commit: 0,
        read_seq,
    };
    // Past the boot rule, hearing from leader 1 every few ticks.
    for round in 1..=6 {
        node.step(message(1, 1, heartbeat(round))).expect("step");
        for _ in 0..4 {
            node.tick();
        }
    }
    node.step(message(1, 1, heartbeat(7))).expect("step");
    assert_eq!((node.term(), node.leader()), (1, 1));
    let stale = MessageBody::PreVoteResponse { reject: true };
    node.step(message(3, 2, stale)).expect("step");
    assert_eq!(
        (node.term(), node.leader()),
        (1, 1),
        "a higher-term message inside the lease moved the follower off its leader"
    );
    let vote = |leader_transfer| MessageBody::Vote {
        last_log_index: 0,
        last_log_term: 0,
        leader_transfer,
    };
    node.step(message(4, 2, vote(false))).expect("step");
    let granted = |node: &mut Raft<MemStorage>| {
        node.ready()
            .messages
            .iter()
            .any(|m| m.body == MessageBody::VoteResponse { reject: false })
    };
    assert!(!granted(&mut node), "voted for 4 inside the lease");
    node.advance();
    assert_eq!(node.term(), 1);
    // The leader's own transfer is the one exception.
    node.step(message(4, 3, vote(true))).expect("step");
    assert!(granted(&mut node), "a leader-transfer vote is granted");
    node.advance();
    assert_eq!(node.term(), 3);
}
