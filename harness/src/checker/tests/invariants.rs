//! Invariant checks and input validation.

use super::*;

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
