//! Scenario tests: hand-written histories with a known answer, here for
//! linearizability, in `tests/invariants.rs` for the invariants and input
//! validation, in `tests/reporting.rs` for reports, budgets and files.
//! Random histories from real executions are in `tests/generated.rs`.

mod generated;
mod invariants;
mod reporting;

use super::*;
use std::collections::BTreeMap;

const A: AccountId = 1;
const B: AccountId = 2;
const C: AccountId = 3;

fn history(balances: &[(AccountId, u64)], ops: Vec<Op>) -> History {
    History {
        initial_balances: balances.iter().copied().collect(),
        ops,
        applied: None,
    }
}

fn op(process: usize, invoke: u64, complete: u64, call: Call, result: OpResult) -> Op {
    Op {
        process,
        invoke_ns: invoke,
        complete_ns: Some(complete),
        call,
        result,
    }
}

fn open(process: usize, invoke: u64, call: Call) -> Op {
    Op {
        process,
        invoke_ns: invoke,
        complete_ns: None,
        call,
        result: OpResult::Unknown,
    }
}

fn xfer(id: TransferId, from: AccountId, to: AccountId, amount: u64) -> Call {
    Call::Transfer {
        id,
        from,
        to,
        amount,
    }
}

fn read(account: AccountId) -> Call {
    Call::ReadBalance { account }
}

fn read_all(accounts: &[AccountId]) -> Call {
    Call::ReadAll {
        accounts: accounts.to_vec(),
    }
}

fn ok() -> OpResult {
    OpResult::Ok(Value::Transferred)
}

fn bal(v: u64) -> OpResult {
    OpResult::Ok(Value::Balance(v))
}

fn bals(vs: &[u64]) -> OpResult {
    OpResult::Ok(Value::Balances(vs.to_vec()))
}

fn insufficient() -> OpResult {
    OpResult::Fail(Fail::InsufficientFunds)
}

fn refused() -> OpResult {
    OpResult::Fail(Fail::NotApplied {
        reason: "not the leader".into(),
    })
}

fn applied(
    id: TransferId,
    from: AccountId,
    to: AccountId,
    amount: u64,
    index: u64,
) -> AppliedTransfer {
    AppliedTransfer {
        id,
        from,
        to,
        amount,
        index,
    }
}

fn plain() -> Options {
    Options {
        follow_log: false,
        ..Options::default()
    }
}

fn verdict(h: &History, options: &Options) -> Verdict {
    check_linearizability(h, options).expect("valid history")
}

fn counterexample(v: &Verdict) -> &Counterexample {
    match v {
        Verdict::NotLinearizable { counterexample, .. } => counterexample,
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn violations(h: &History) -> Vec<Violation> {
    check_invariants(h).expect("valid history")
}

// ---- linearizable histories ------------------------------------------------

#[test]
fn empty_history_is_linearizable() {
    let h = history(&[(A, 10)], vec![]);
    assert!(verdict(&h, &plain()).is_linearizable());
    assert!(check(&h, &Options::default()).unwrap().is_valid());
}

#[test]
fn sequential_history_is_linearizable() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), ok()),
            op(1, 20, 30, read(A), bal(70)),
            op(0, 40, 50, xfer(2, A, B, 80), insufficient()),
            op(1, 60, 70, read_all(&[A, B]), bals(&[70, 30])),
            op(0, 80, 90, xfer(3, B, A, 30), ok()),
            op(1, 100, 110, read(B), bal(0)),
        ],
    );
    let v = verdict(&h, &plain());
    match &v {
        Verdict::Linearizable { witness, .. } => assert_eq!(witness, &[0, 1, 2, 3, 4, 5]),
        other => panic!("{other:?}"),
    }
    assert!(violations(&h).is_empty());
}

#[test]
fn concurrent_ops_may_take_effect_in_either_order() {
    // Two transfers overlap; reads during the overlap see either, or both.
    let h = history(
        &[(A, 100), (B, 0), (C, 0)],
        vec![
            op(0, 0, 100, xfer(1, A, B, 10), ok()),
            op(1, 0, 100, xfer(2, A, C, 20), ok()),
            op(2, 10, 20, read(A), bal(80)), // only #2 applied
            op(3, 30, 40, read(B), bal(10)), // now #1 too
            op(2, 50, 60, read_all(&[A, B, C]), bals(&[70, 10, 20])),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

#[test]
fn read_concurrent_with_transfer_may_see_it() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 50, xfer(1, A, B, 30), ok()),
            op(1, 10, 20, read(B), bal(30)),
            op(1, 30, 40, read(B), bal(30)),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

#[test]
fn touching_intervals_count_as_concurrent() {
    // The read completes at the instant the transfer is invoked: lenient.
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, read(B), bal(30)),
            op(1, 10, 20, xfer(1, A, B, 30), ok()),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

#[test]
fn insufficient_funds_after_a_concurrent_drain_is_linearizable() {
    let h = history(
        &[(A, 50), (B, 0), (C, 0)],
        vec![
            op(0, 0, 100, xfer(1, A, B, 40), ok()),
            op(1, 10, 90, xfer(2, A, C, 40), insufficient()),
            op(2, 110, 120, read_all(&[A, B, C]), bals(&[10, 40, 0])),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

#[test]
fn refused_ops_and_unanswered_reads_are_ignored() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), refused()),
            open(1, 0, read(A)),
            op(2, 0, 10, read(B), refused()),
            op(0, 20, 30, read(A), bal(100)),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

// ---- classic violations ----------------------------------------------------

#[test]
fn stale_read_after_an_acknowledged_transfer_is_caught() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), ok()),
            op(1, 20, 30, read(A), bal(100)),
        ],
    );
    let v = verdict(&h, &plain());
    let cx = counterexample(&v);
    assert_eq!(cx.stuck, Some(1), "{cx}");
    assert_eq!(cx.linearized, vec![0]);
    assert_eq!(cx.balances, BTreeMap::from([(A, 70), (B, 30)]));
    assert_eq!(cx.prefix_end_ns, Some(30));
}

#[test]
fn double_spend_is_caught() {
    // Funds for one of two concurrent transfers; both acknowledged.
    let mut h = history(
        &[(A, 50), (B, 0), (C, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 40), ok()),
            op(1, 0, 10, xfer(2, A, C, 40), ok()),
        ],
    );
    let v = verdict(&h, &plain());
    let cx = counterexample(&v);
    assert!(cx.stuck == Some(0) || cx.stuck == Some(1), "{cx}");
    assert_eq!(cx.linearized.len(), 1);
    // With the cluster's log applying both, the replay overdraws A too.
    h.applied = Some(vec![applied(1, A, B, 40, 5), applied(2, A, C, 40, 6)]);
    assert_eq!(
        violations(&h),
        vec![Violation::LogOverdraft {
            id: 2,
            index: 6,
            account: A
        }]
    );
    assert!(verdict(&h, &Options::default()).is_violation());
}

#[test]
fn double_spend_inside_one_entry_is_caught_by_the_replay() {
    let mut h = history(
        &[(A, 50), (B, 0), (C, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 40), ok()),
            op(1, 0, 10, xfer(2, A, C, 40), ok()),
        ],
    );
    h.applied = Some(vec![applied(1, A, B, 40, 5), applied(2, A, C, 40, 5)]);
    assert!(matches!(
        violations(&h)[..],
        [Violation::LogOverdraft { account: A, .. }]
    ));
}

#[test]
fn read_of_a_transfer_not_yet_invoked_is_caught() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, read(B), bal(30)),
            op(1, 20, 30, xfer(1, A, B, 30), ok()),
        ],
    );
    let v = verdict(&h, &plain());
    assert_eq!(counterexample(&v).stuck, Some(0));
    // The same with the transfer unanswered: it still cannot act early.
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, read(B), bal(30)),
            open(1, 20, xfer(1, A, B, 30)),
        ],
    );
    assert!(verdict(&h, &plain()).is_violation());
}

#[test]
fn insufficient_funds_with_funds_available_is_caught() {
    let h = history(
        &[(A, 50), (B, 0)],
        vec![op(0, 0, 10, xfer(1, A, B, 20), insufficient())],
    );
    assert!(verdict(&h, &plain()).is_violation());
}

#[test]
fn reads_going_back_in_time_are_caught() {
    // Two reads of one process see the transfer, then not.
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 100, xfer(1, A, B, 30), ok()),
            op(1, 10, 20, read(B), bal(30)),
            op(1, 30, 40, read(B), bal(0)),
        ],
    );
    let v = verdict(&h, &plain());
    assert_eq!(counterexample(&v).stuck, Some(2));
}

#[test]
fn a_value_no_state_explains_is_caught() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), ok()),
            op(1, 0, 10, read(B), bal(20)),
        ],
    );
    assert!(verdict(&h, &plain()).is_violation());
}

// ---- unanswered (open) transfers -------------------------------------------

#[test]
fn unknown_transfer_that_applied_is_linearizable() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            open(0, 0, xfer(1, A, B, 30)),
            op(1, 50, 60, read(B), bal(30)),
            op(1, 70, 80, read(A), bal(70)),
        ],
    );
    let v = verdict(&h, &plain());
    match v {
        Verdict::Linearizable { witness, stats } => {
            assert_eq!(witness, vec![0, 1, 2]);
            assert_eq!(stats.open_ops, 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_transfer_that_did_not_apply_is_linearizable() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            open(0, 0, xfer(1, A, B, 30)),
            op(1, 50, 60, read_all(&[A, B]), bals(&[100, 0])),
        ],
    );
    match verdict(&h, &plain()) {
        Verdict::Linearizable { witness, .. } => assert_eq!(witness, vec![1]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_transfer_may_apply_long_after_it_was_sent() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            open(0, 0, xfer(1, A, B, 30)),
            op(1, 50, 60, read(B), bal(0)),
            op(1, 1_000, 1_010, read(B), bal(30)),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

#[test]
fn unknown_transfer_cannot_be_undone() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            open(0, 0, xfer(1, A, B, 30)),
            op(1, 50, 60, read(B), bal(30)),
            op(1, 70, 80, read(B), bal(0)),
        ],
    );
    assert!(verdict(&h, &plain()).is_violation());
}

#[test]
fn retry_of_an_unknown_transfer_applies_once() {
    let ops = |seen: u64| {
        vec![
            open(0, 0, xfer(7, A, B, 30)),
            op(0, 100, 110, xfer(7, A, B, 30), ok()), // retry: Ok or Exists
            op(1, 200, 210, read(B), bal(seen)),
        ]
    };
    let once = history(&[(A, 100), (B, 0)], ops(30));
    assert!(verdict(&once, &plain()).is_linearizable());
    let twice = history(&[(A, 100), (B, 0)], ops(60));
    assert!(verdict(&twice, &plain()).is_violation());
}

#[test]
fn retry_that_exists_even_without_funds_is_linearizable() {
    // The first attempt applied and drained A; the retry answers Exists
    // (reported Ok) although A could no longer pay.
    let h = history(
        &[(A, 30), (B, 0)],
        vec![
            open(0, 0, xfer(7, A, B, 30)),
            op(1, 50, 60, read(A), bal(0)),
            op(0, 100, 110, xfer(7, A, B, 30), ok()),
        ],
    );
    assert!(verdict(&h, &plain()).is_linearizable());
}

// ---- log mode ----------------------------------------------------------------

#[test]
fn log_mode_requires_the_logs_order() {
    // #0 completed before #1 was invoked, but the log applied #1 first.
    let mut h = history(
        &[(A, 100), (B, 0), (C, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 10), ok()),
            op(1, 20, 30, xfer(2, A, C, 10), ok()),
        ],
    );
    h.applied = Some(vec![applied(1, A, B, 10, 9), applied(2, A, C, 10, 4)]);
    assert!(violations(&h).is_empty());
    assert!(verdict(&h, &plain()).is_linearizable());
    let v = verdict(&h, &Options::default());
    let cx = counterexample(&v);
    assert!(cx.followed_log);
    assert_eq!(cx.stuck, Some(0), "{cx}");
}

#[test]
fn log_mode_leaves_order_free_inside_one_entry() {
    // One entry: B pays C with money A pays B in the same entry.
    let mut h = history(
        &[(A, 100), (B, 0), (C, 0)],
        vec![
            op(0, 0, 50, xfer(1, B, C, 10), ok()),
            op(1, 0, 50, xfer(2, A, B, 10), ok()),
            op(2, 60, 70, read_all(&[A, B, C]), bals(&[90, 0, 10])),
        ],
    );
    h.applied = Some(vec![applied(1, B, C, 10, 3), applied(2, A, B, 10, 3)]);
    assert!(violations(&h).is_empty());
    assert!(verdict(&h, &Options::default()).is_linearizable());
}

#[test]
fn log_mode_resolves_unknown_transfers() {
    let ops = vec![
        open(0, 0, xfer(1, A, B, 30)),
        open(1, 0, xfer(2, A, C, 30)),
        op(2, 100, 110, read(A), bal(70)),
    ];
    // Either could explain the read without the log.
    let mut h = history(&[(A, 100), (B, 0), (C, 0)], ops);
    assert!(verdict(&h, &plain()).is_linearizable());
    // The log says #1 applied: fine. It says neither did: the read is wrong.
    h.applied = Some(vec![applied(2, A, C, 30, 1)]);
    assert!(verdict(&h, &Options::default()).is_linearizable());
    h.applied = Some(vec![]);
    assert!(verdict(&h, &Options::default()).is_violation());
}

#[test]
fn log_mode_requires_the_whole_log_to_apply() {
    // Both unanswered transfers applied per the log, but A could only pay one.
    let mut h = history(
        &[(A, 10), (B, 0), (C, 0)],
        vec![open(0, 0, xfer(1, A, B, 10)), open(1, 0, xfer(2, A, C, 10))],
    );
    h.applied = Some(vec![applied(1, A, B, 10, 1), applied(2, A, C, 10, 2)]);
    let v = verdict(&h, &Options::default());
    let cx = counterexample(&v);
    assert_eq!(cx.stuck, None);
    assert_eq!(cx.unapplied_log, vec![(2, 2)]);
    assert!(cx
        .to_string()
        .contains("could not take effect in log order"));
    assert!(verdict(&h, &plain()).is_linearizable());
}

#[test]
fn log_mode_rejects_an_acknowledged_transfer_missing_from_the_log() {
    let mut h = history(
        &[(A, 100), (B, 0)],
        vec![op(0, 0, 10, xfer(1, A, B, 30), ok())],
    );
    h.applied = Some(vec![]);
    assert_eq!(
        counterexample(&verdict(&h, &Options::default())).stuck,
        Some(0)
    );
}
