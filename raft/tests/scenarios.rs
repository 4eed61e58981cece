//! Scenario tests of individual protocol features on a synchronous network
//! (every message delivered at once unless the link is cut), in the style
//! of raft-rs's `Network` harness.

use continuum_raft::{
    Config, Entry, EntryKind, HardState, MemStorage, Message, MessageBody, NodeId, ProposeError,
    Raft, ReadOnlyOption, ReadState, Role, Storage, GENESIS_CHAIN_HASH, NO_NODE,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

struct Net {
    nodes: BTreeMap<NodeId, Raft<MemStorage>>,
    cut: BTreeSet<(NodeId, NodeId)>,
    applied: BTreeMap<NodeId, Vec<Entry>>,
    reads: BTreeMap<NodeId, Vec<ReadState>>,
    /// Every message delivered, for assertions.
    delivered: Vec<Message>,
    /// Rewrites messages in flight (e.g. strips entries), when set.
    rewrite: Option<fn(&mut Message)>,
}

impl Net {
    fn new(n: u64, configure: impl Fn(&mut Config)) -> Net {
        let ids: Vec<NodeId> = (1..=n).collect();
        Net::with_storages(
            ids.iter().map(|_| MemStorage::new(ids.clone())).collect(),
            configure,
        )
    }

    fn with_storages(storages: Vec<MemStorage>, configure: impl Fn(&mut Config)) -> Net {
        let mut nodes = BTreeMap::new();
        for (i, storage) in storages.into_iter().enumerate() {
            let id = i as u64 + 1;
            let mut config = Config::new(id);
            configure(&mut config);
            nodes.insert(id, Raft::new(config, storage, 100 + id).expect("config"));
        }
        Net {
            nodes,
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
            delivered: Vec::new(),
            rewrite: None,
        }
    }

    fn node(&mut self, id: NodeId) -> &mut Raft<MemStorage> {
        self.nodes.get_mut(&id).expect("node")
    }

    fn isolate(&mut self, id: NodeId) {
        for &other in self.nodes.keys() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    /// Runs Ready processing and delivery until nothing moves.
    fn settle(&mut self) {
        let mut queue: VecDeque<Message> = VecDeque::new();
        for _ in 0..10_000 {
            let mut moved = false;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                let raft = self.nodes.get_mut(&id).expect("node");
                while raft.has_ready() {
                    moved = true;
                    let ready = raft.ready();
                    raft.storage_mut().append(&ready.entries);
                    if let Some(hs) = ready.hard_state {
                        raft.storage_mut().set_hard_state(hs);
                    }
                    queue.extend(ready.messages);
                    self.applied
                        .entry(id)
                        .or_default()
                        .extend(ready.committed_entries);
                    self.reads.entry(id).or_default().extend(ready.read_states);
                    raft.advance();
                }
            }
            while let Some(mut message) = queue.pop_front() {
                moved = true;
                if let Some(rewrite) = self.rewrite {
                    rewrite(&mut message);
                }
                if self.cut.contains(&(message.from, message.to)) {
                    continue;
                }
                self.delivered.push(message.clone());
                self.node(message.to).step(message).expect("step");
            }
            if !moved {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Ticks only `id` until it has started an election, then settles.
    fn campaign(&mut self, id: NodeId) {
        for _ in 0..100 {
            self.node(id).tick();
            if self.node(id).role() != Role::Follower {
                break;
            }
        }
        self.settle();
    }

    fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for raft in self.nodes.values_mut() {
                raft.tick();
            }
            self.settle();
        }
    }

    fn payloads(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied
            .get(&id)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.kind == EntryKind::Normal)
                    .map(|e| e.data.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

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
fn lease_reads_answer_without_a_round_trip() {
    let mut net = Net::new(3, |c| c.read_only = ReadOnlyOption::LeaseBased);
    net.campaign(1);
    net.isolate(1);
    net.node(1).read_index(5).expect("read");
    net.settle();
    assert_eq!(net.reads[&1], vec![ReadState { index: 1, ctx: 5 }]);
    let mut bad = Config::new(1);
    bad.read_only = ReadOnlyOption::LeaseBased;
    bad.check_quorum = false;
    assert!(bad.validate().is_err(), "lease reads need check-quorum");
}

fn log_with_terms(voters: &[NodeId], terms: &[u64], hard_term: u64) -> MemStorage {
    let mut storage = MemStorage::new(voters.to_vec());
    let mut prev = GENESIS_CHAIN_HASH;
    let mut entries = Vec::new();
    for (i, &term) in terms.iter().enumerate() {
        let entry = Entry::new(
            &prev,
            i as u64 + 1,
            term,
            EntryKind::Normal,
            vec![i as u8, term as u8],
        );
        prev = entry.chain_hash;
        entries.push(entry);
    }
    storage.append(&entries);
    storage.set_hard_state(HardState {
        term: hard_term,
        vote: NO_NODE,
        commit: 0,
    });
    storage
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
    let stranger = Message {
        from: 9,
        to: 2,
        term: 1,
        body: MessageBody::TimeoutNow,
    };
    assert_eq!(
        net.node(2).step(stranger),
        Err(continuum_raft::StepError::UnknownSender)
    );
}
