//! Failure reports, budgets, history files and the recorder.

use super::*;
use std::collections::BTreeMap;

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
