//! The simulator's checker must be able to fail: feed it deliberately
//! broken histories and expect each property to be reported.

mod sim;

use continuum_raft::{Entry, EntryKind, GENESIS_CHAIN_HASH};
use sim::checker::{Checker, Violation};

fn chain(term: u64, payloads: &[&[u8]]) -> Vec<Entry> {
    let mut prev = GENESIS_CHAIN_HASH;
    payloads
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let entry = Entry::new(&prev, i as u64 + 1, term, EntryKind::Normal, data.to_vec());
            prev = entry.chain_hash;
            entry
        })
        .collect()
}

#[test]
fn two_leaders_in_one_term_are_caught() {
    let mut checker = Checker::new();
    checker.on_leader(1, 5).expect("first leader");
    checker.on_leader(1, 5).expect("same leader again");
    assert_eq!(
        checker.on_leader(2, 5),
        Err(Violation::TwoLeaders {
            term: 5,
            first: 1,
            second: 2
        })
    );
}

#[test]
fn divergent_applies_are_caught() {
    let mut checker = Checker::new();
    let a = chain(1, &[b"pay alice"]);
    let b = chain(1, &[b"pay bob"]);
    checker.on_apply(1, 1, &a[0]).expect("first apply");
    assert_eq!(
        checker.on_apply(2, 1, &b[0]),
        Err(Violation::ApplyMismatch { node: 2, index: 1 })
    );
    let c = chain(1, &[b"x", b"y"]);
    assert_eq!(
        checker.on_apply(3, 1, &c[1]),
        Err(Violation::ApplyGap {
            node: 3,
            expected: 1,
            got: 2
        })
    );
}

#[test]
fn log_mismatch_and_bad_chains_are_caught() {
    let mut checker = Checker::new();
    let a = chain(2, &[b"a1", b"a2"]);
    checker
        .on_persist(1, None, None, &a, |_| Some(GENESIS_CHAIN_HASH))
        .expect("good chain");
    // Same (index, term), different content: Log Matching broken.
    let b = chain(2, &[b"a1", b"other"]);
    assert_eq!(
        checker.on_persist(2, None, None, &b, |_| Some(GENESIS_CHAIN_HASH)),
        Err(Violation::LogMismatch {
            node: 2,
            index: 2,
            term: 2
        })
    );
    // An entry whose hash does not cover its content.
    let mut forged = chain(3, &[b"z"]);
    forged[0].data = b"tampered".to_vec();
    assert_eq!(
        checker.on_persist(3, None, None, &forged, |_| Some(GENESIS_CHAIN_HASH)),
        Err(Violation::BadChain { node: 3, index: 1 })
    );
    // A leader truncating its own log.
    assert_eq!(
        checker.on_persist(1, Some(2), Some(1), &a, |_| Some(GENESIS_CHAIN_HASH)),
        Err(Violation::LeaderOverwrote {
            node: 1,
            term: 2,
            index: 1
        })
    );
}

#[test]
fn incomplete_leaders_lost_commits_and_stale_reads_are_caught() {
    let mut checker = Checker::new();
    let log = chain(1, &[b"committed"]);
    checker.on_apply(1, 1, &log[0]).expect("apply");
    // A leader of term 2 without the entry committed in term 1.
    assert_eq!(
        checker.check_leader_complete(3, 2, |_| None),
        Err(Violation::LeaderIncomplete {
            node: 3,
            term: 2,
            index: 1
        })
    );
    checker
        .check_leader_complete(3, 2, |_| Some(log[0].chain_hash))
        .expect("complete leader");
    // Only one of three nodes still stores it.
    let three = [continuum_raft::ConfState::with_voters(vec![1, 2, 3])];
    assert_eq!(
        checker.check_durable(&three, |node, _, _| node == 1),
        Err(Violation::CommittedLost {
            index: 1,
            holders: 1
        })
    );
    checker
        .check_durable(&three, |node, _, _| node <= 2)
        .expect("quorum holds it");
    // Every majority of {1, 2, 3, 4} (three nodes) meets {1, 2}: durable
    // there, as in {1, 2, 3}; {1} alone is not, in either.
    let four = continuum_raft::ConfState::with_voters(vec![1, 2, 3, 4]);
    checker
        .check_durable(&[four.clone(), three[0].clone()], |node, _, _| node <= 2)
        .expect("every electing majority meets the holders");
    assert!(checker
        .check_durable(&[four], |node, _, _| node == 1)
        .is_err());
    let five = continuum_raft::ConfState::with_voters(vec![1, 2, 3, 4, 5]);
    assert!(
        checker
            .check_durable(&[three[0].clone(), five], |node, _, _| node <= 2)
            .is_err(),
        "each configuration must hold it"
    );
    // A leader's commit needs a majority of its own voters.
    assert!(checker
        .check_commit_quorum(1, 2, 1, &[1, 2, 3, 4], 2)
        .is_err());
    checker
        .check_commit_quorum(1, 2, 1, &[1, 2, 3, 4], 3)
        .expect("three of four");
    // A read issued after index 1 committed must not return index 0.
    checker.on_read_issued(2, 77);
    assert_eq!(
        checker.on_read_done(2, 77, 0),
        Err(Violation::StaleRead {
            node: 2,
            ctx: 77,
            index: 0,
            required: 1
        })
    );
}
