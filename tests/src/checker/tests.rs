//! Scenario tests: hand-written histories with a known answer. Random
//! histories from real executions are in `tests/generated.rs`.

mod generated;

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

// ---- invariants ----------------------------------------------------------------

#[test]
fn conservation_violation_in_a_full_read() {
    let h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, read_all(&[A, B]), bals(&[100, 0])),
            op(0, 20, 30, read_all(&[B, A]), bals(&[30, 100])),
            op(0, 40, 50, read_all(&[A]), bals(&[100])),
        ],
    );
    assert_eq!(
        violations(&h),
        vec![Violation::Conservation {
            op: 1,
            sum: 130,
            supply: 100
        }]
    );
}

#[test]
fn partial_read_above_the_supply_breaks_conservation() {
    let h = history(
        &[(A, 60), (B, 40), (C, 0)],
        vec![op(0, 0, 10, read_all(&[A, B]), bals(&[60, 41]))],
    );
    assert!(matches!(
        violations(&h)[..],
        [Violation::Conservation {
            op: 0,
            sum: 101,
            ..
        }]
    ));
}

#[test]
fn balance_above_the_supply_is_impossible() {
    let h = history(&[(A, 60), (B, 40)], vec![op(0, 0, 10, read(A), bal(101))]);
    assert_eq!(
        violations(&h),
        vec![Violation::ImpossibleBalance {
            op: 0,
            account: A,
            balance: 101,
            supply: 100
        }]
    );
    assert!(verdict(&h, &plain()).is_violation());
}

#[test]
fn transfer_applied_twice() {
    let mut h = history(
        &[(A, 100), (B, 0)],
        vec![op(0, 0, 10, xfer(1, A, B, 30), ok())],
    );
    h.applied = Some(vec![applied(1, A, B, 30, 3), applied(1, A, B, 30, 8)]);
    assert_eq!(
        violations(&h),
        vec![Violation::AppliedTwice {
            id: 1,
            indices: vec![3, 8]
        }]
    );
}

#[test]
fn acknowledged_but_not_applied() {
    let mut h = history(
        &[(A, 100), (B, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), ok()),
            open(1, 0, xfer(2, A, B, 30)),
        ],
    );
    h.applied = Some(vec![]);
    assert_eq!(
        violations(&h),
        vec![Violation::AckedNotApplied { op: 0, id: 1 }]
    );
}

#[test]
fn failed_transfer_must_not_apply() {
    let mut h = history(
        &[(A, 10), (B, 0), (C, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), insufficient()),
            op(0, 20, 30, xfer(2, A, C, 5), refused()),
        ],
    );
    h.applied = Some(vec![applied(2, A, C, 5, 4)]);
    assert_eq!(
        violations(&h),
        vec![Violation::FailedButApplied {
            op: 1,
            id: 2,
            index: 4
        }]
    );
    // A failure followed by a successful retry of the same id is fine.
    h.ops.push(op(0, 40, 50, xfer(2, A, C, 5), ok()));
    assert!(violations(&h).is_empty());
}

#[test]
fn phantom_and_altered_transfers() {
    let mut h = history(
        &[(A, 100), (B, 0)],
        vec![op(0, 0, 10, xfer(1, A, B, 30), ok())],
    );
    h.applied = Some(vec![applied(1, A, B, 31, 3), applied(9, B, A, 1, 4)]);
    assert_eq!(
        violations(&h),
        vec![
            Violation::AppliedFieldsDiffer { op: 0, id: 1 },
            Violation::PhantomTransfer { id: 9, index: 4 },
        ]
    );
}

#[test]
fn log_naming_an_unknown_account() {
    let mut h = history(&[(A, 100), (B, 0)], vec![]);
    h.applied = Some(vec![applied(9, A, 77, 1, 4)]);
    assert!(violations(&h).contains(&Violation::LogUnknownAccount {
        id: 9,
        index: 4,
        account: 77
    }));
}

// ---- input validation ----------------------------------------------------------

#[test]
fn malformed_histories_are_rejected_with_the_op() {
    let base = |ops| history(&[(A, 100), (B, 0)], ops);
    let cases = [
        (
            base(vec![op(0, 0, 10, read(C), bal(0))]),
            HistoryError::UnknownAccount { op: 0, account: C },
        ),
        (
            base(vec![Op {
                complete_ns: None,
                ..op(0, 0, 10, read(A), bal(0))
            }]),
            HistoryError::MissingCompletion { op: 0 },
        ),
        (
            base(vec![op(0, 10, 5, read(A), bal(0))]),
            HistoryError::CompletesBeforeInvoke { op: 0 },
        ),
        (
            base(vec![op(0, 0, 10, read(A), ok())]),
            HistoryError::ResultDoesNotMatchCall { op: 0 },
        ),
        (
            base(vec![op(0, 0, 10, read(A), insufficient())]),
            HistoryError::ResultDoesNotMatchCall { op: 0 },
        ),
        (
            base(vec![op(0, 0, 10, xfer(1, A, B, 5), bal(3))]),
            HistoryError::ResultDoesNotMatchCall { op: 0 },
        ),
        (
            base(vec![op(0, 0, 10, xfer(1, A, A, 5), ok())]),
            HistoryError::SameAccount { op: 0 },
        ),
        (
            base(vec![op(0, 0, 10, xfer(1, A, B, 0), ok())]),
            HistoryError::ZeroAmount { op: 0 },
        ),
        (
            base(vec![op(0, 0, 10, read_all(&[A, B]), bals(&[1]))]),
            HistoryError::ReadLength {
                op: 0,
                accounts: 2,
                values: 1,
            },
        ),
        (
            base(vec![op(0, 0, 10, read_all(&[A, A]), bals(&[1, 1]))]),
            HistoryError::DuplicateReadAccount { op: 0, account: A },
        ),
        (
            base(vec![op(0, 0, 10, read_all(&[]), bals(&[]))]),
            HistoryError::EmptyRead { op: 0 },
        ),
        (
            base(vec![
                op(0, 0, 10, xfer(1, A, B, 5), ok()),
                op(0, 20, 30, xfer(1, A, B, 6), ok()),
            ]),
            HistoryError::TransferIdReused {
                id: 1,
                first: 0,
                op: 1,
            },
        ),
        (history(&[], vec![]), HistoryError::NoAccounts),
        (
            history(&[(A, u64::MAX), (B, 1)], vec![]),
            HistoryError::SupplyOverflow,
        ),
    ];
    for (h, expected) in cases {
        assert_eq!(check(&h, &Options::default()).unwrap_err(), expected);
        assert!(!expected.to_string().is_empty());
    }
}

// ---- reports, budgets, files ---------------------------------------------------

#[test]
fn report_names_the_stuck_op_and_its_concurrent_ops() {
    let h = history(
        &[(A, 100), (B, 0), (C, 0)],
        vec![
            op(0, 0, 10, xfer(1, A, B, 30), ok()),
            op(1, 20, 60, read(A), bal(100)),
            op(2, 30, 40, xfer(2, A, C, 5), ok()),
            op(0, 100, 110, read(C), bal(5)),
        ],
    );
    let report = check(&h, &plain()).unwrap();
    assert!(!report.is_valid());
    let cx = counterexample(&report.linearizability);
    assert_eq!(cx.stuck, Some(1));
    assert_eq!(cx.concurrent, vec![2]);
    assert_eq!(cx.prefix_end_ns, Some(60));
    let text = report.to_string();
    assert!(text.contains("invariants: ok"), "{text}");
    assert!(
        text.contains("#1 process 1 [0.000020ms .. 0.000060ms] read account 1 => 100"),
        "{text}"
    );
    assert!(text.contains("ops concurrent with #1 (1):"), "{text}");
    assert!(text.contains("shortest failing prefix"), "{text}");
}

#[test]
fn bisection_finds_the_first_failing_op_in_a_long_history() {
    // 200 good transfer/read pairs, then a stale read, then more good ops.
    let mut ops = Vec::new();
    let mut a = 10_000u64;
    let mut t = 0;
    for i in 0..300u64 {
        ops.push(op(0, t, t + 5, xfer(i as u128, A, B, 1), ok()));
        a -= 1;
        let value = if i == 200 { a + 1 } else { a };
        ops.push(op(1, t + 10, t + 15, read(A), bal(value)));
        t += 20;
    }
    let h = history(&[(A, 10_000), (B, 0)], ops);
    let v = verdict(&h, &plain());
    let cx = counterexample(&v);
    assert_eq!(cx.stuck, Some(401));
    assert_eq!(cx.prefix_end_ns, Some(200 * 20 + 15));
    assert_eq!(cx.linearized.len(), 401);
    // Without bisection the search reports the same op.
    let quick = Options {
        minimize: false,
        ..plain()
    };
    let v = verdict(&h, &quick);
    assert_eq!(counterexample(&v).prefix_end_ns, None);
    assert_eq!(counterexample(&v).stuck, Some(401));
}

#[test]
fn exhausted_budget_gives_unknown_not_a_verdict() {
    // Many unanswered transfers and a read no subset explains: the search
    // must try every subset, far past a small budget.
    let mut ops: Vec<Op> = (0..40)
        .map(|i| open(i, 0, xfer(i as u128, A, B, 1 << (i % 20))))
        .collect();
    ops.push(op(99, 10, 20, read(B), bal(3 << 20)));
    let h = history(&[(A, u64::MAX / 2), (B, 0)], ops);
    let options = Options {
        budget: Budget {
            max_steps: 10_000,
            ..Budget::default()
        },
        ..plain()
    };
    match verdict(&h, &options) {
        Verdict::Unknown { exhausted, stats } => {
            assert_eq!(exhausted, Exhausted::Steps);
            assert!(stats.steps > 10_000);
        }
        other => panic!("{other:?}"),
    }
    let options = Options {
        budget: Budget {
            max_configurations: 1_000,
            ..Budget::default()
        },
        ..plain()
    };
    assert!(matches!(
        verdict(&h, &options),
        Verdict::Unknown {
            exhausted: Exhausted::Configurations,
            ..
        }
    ));
}

#[test]
fn history_file_round_trip() {
    let mut h = history(
        &[(u128::MAX - 1, 100), (1 << 100, 0)],
        vec![
            op(0, 0, 10, xfer(u128::MAX, u128::MAX - 1, 1 << 100, 30), ok()),
            open(1, 5, xfer(3, u128::MAX - 1, 1 << 100, 1)),
            op(2, 20, 30, read(1 << 100), bal(30)),
            op(2, 40, 50, read_all(&[1 << 100]), refused()),
            op(
                2,
                60,
                70,
                xfer(4, 1 << 100, u128::MAX - 1, 99),
                insufficient(),
            ),
        ],
    );
    h.applied = Some(vec![applied(u128::MAX, u128::MAX - 1, 1 << 100, 30, 2)]);
    let dir = std::env::temp_dir().join(format!("continuum-checker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.json");
    h.save(&path).unwrap();
    let loaded = History::load(&path).unwrap();
    assert_eq!(loaded, h);
    assert!(check(&loaded, &Options::default()).unwrap().is_valid());

    std::fs::write(&path, b"{\"ops\": 3}").unwrap();
    assert!(matches!(
        History::load(&path),
        Err(HistoryFileError::Json(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(History::load(&path), Err(HistoryFileError::Io(_))));
}

#[test]
fn recorder_collects_ops_from_threads() {
    let recorder = Recorder::new();
    std::thread::scope(|s| {
        for process in 0..4 {
            let recorder = &recorder;
            s.spawn(move || {
                for _ in 0..25 {
                    let inv = recorder.invoke(process, read(A));
                    recorder.complete(inv, bal(100));
                }
            });
        }
    });
    let h = recorder.into_history(BTreeMap::from([(A, 100)]), None);
    assert_eq!(h.ops.len(), 100);
    assert!(h.ops.windows(2).all(|w| w[0].invoke_ns <= w[1].invoke_ns));
    assert!(h
        .ops
        .iter()
        .all(|o| o.complete_ns.is_some_and(|c| c >= o.invoke_ns)));
    assert!(check(&h, &Options::default()).unwrap().is_valid());
}
