//! Histories generated from real sequential executions: ops are executed
//! one by one on an independent ledger (their linearization points), then
//! given random intervals around those points, random processes, timeouts,
//! lost requests and retries. Such a history is linearizable by
//! construction; the checker must say so, and must say "not linearizable"
//! once a value no execution can produce is planted in it.

use super::super::*;
use continuum_raft::SplitMix64;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
struct Shape {
    accounts: usize,
    processes: usize,
    ops: usize,
    /// Transfers whose answer is lost (they still take effect).
    unknown_pct: u64,
    /// Transfers that never reach the log and get no answer.
    lost_pct: u64,
    /// Transfers that retry an earlier unanswered id.
    retry_pct: u64,
}

/// Time between consecutive linearization points.
const SPACING: u64 = 1_000;

/// A linearizable history with its applied log.
fn generate(seed: u64, shape: Shape) -> History {
    let mut rng = SplitMix64::new(seed);
    // Large ids exercise the u128 paths.
    let accounts: Vec<AccountId> = (0..shape.accounts as u128)
        .map(|i| (1 << 100) + i)
        .collect();
    let initial: Vec<u64> = accounts.iter().map(|_| rng.gen_range(0, 101)).collect();
    let mut ledger = initial.clone();
    let mut applied_ids: BTreeSet<TransferId> = BTreeSet::new();
    let mut log = Vec::new();
    let mut unanswered: Vec<(TransferId, usize, usize, u64)> = Vec::new();
    let mut next_id: TransferId = 1 << 64;

    // (process or None for a timed-out client, linearization point, call, result)
    let mut executed: Vec<(Option<usize>, u64, Call, OpResult)> = Vec::new();
    for k in 0..shape.ops {
        let point = (k as u64 + 1) * SPACING;
        let process = rng.gen_range(0, shape.processes as u64) as usize;
        let roll = rng.gen_range(0, 100);
        if roll < 50 {
            let (id, from, to, amount) = if !unanswered.is_empty() && rng.chance(shape.retry_pct) {
                unanswered.swap_remove(rng.gen_range(0, unanswered.len() as u64) as usize)
            } else {
                let from = rng.gen_range(0, shape.accounts as u64) as usize;
                let to = (from + 1 + rng.gen_range(0, shape.accounts as u64 - 1) as usize)
                    % shape.accounts;
                next_id += 1;
                (next_id, from, to, 1 + rng.gen_range(0, 60))
            };
            let call = Call::Transfer {
                id,
                from: accounts[from],
                to: accounts[to],
                amount,
            };
            if rng.chance(shape.lost_pct) {
                unanswered.push((id, from, to, amount));
                executed.push((None, point, call, OpResult::Unknown));
                continue;
            }
            let result = if applied_ids.contains(&id) {
                OpResult::Ok(Value::Transferred)
            } else if ledger[from] >= amount {
                ledger[from] -= amount;
                ledger[to] += amount;
                applied_ids.insert(id);
                log.push(AppliedTransfer {
                    id,
                    from: accounts[from],
                    to: accounts[to],
                    amount,
                    index: k as u64 + 1,
                });
                OpResult::Ok(Value::Transferred)
            } else {
                OpResult::Fail(Fail::InsufficientFunds)
            };
            if rng.chance(shape.unknown_pct) {
                unanswered.push((id, from, to, amount));
                executed.push((None, point, call, OpResult::Unknown));
            } else {
                executed.push((Some(process), point, call, result));
            }
        } else if roll < 85 {
            let a = rng.gen_range(0, shape.accounts as u64) as usize;
            let call = Call::ReadBalance {
                account: accounts[a],
            };
            executed.push((
                Some(process),
                point,
                call,
                OpResult::Ok(Value::Balance(ledger[a])),
            ));
        } else {
            let call = Call::ReadAll {
                accounts: accounts.clone(),
            };
            let result = OpResult::Ok(Value::Balances(ledger.clone()));
            executed.push((Some(process), point, call, result));
        }
    }

    // Intervals: each process runs one op at a time around its points; a
    // timed-out op gets a client of its own, sent up to 20 points earlier.
    let mut by_process: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, (process, ..)) in executed.iter().enumerate() {
        if let Some(p) = process {
            by_process.entry(*p).or_default().push(i);
        }
    }
    let mut intervals = vec![(0u64, None); executed.len()];
    for list in by_process.values() {
        let mut free_from = 0u64;
        for (n, &i) in list.iter().enumerate() {
            let point = executed[i].1;
            let next_point = list.get(n + 1).map_or(u64::MAX, |j| executed[*j].1);
            let invoke = point
                .saturating_sub(rng.gen_range(0, 3 * SPACING))
                .max(free_from);
            let room = (next_point - point - 1).min(3 * SPACING);
            let complete = point + rng.gen_range(0, room + 1);
            intervals[i] = (invoke, Some(complete));
            free_from = complete + 1;
        }
    }
    let mut timed_out_clients = 0;
    let ops = executed
        .into_iter()
        .zip(intervals)
        .map(
            |((process, point, call, result), (invoke, complete))| match process {
                Some(p) => Op {
                    process: p,
                    invoke_ns: invoke,
                    complete_ns: complete,
                    call,
                    result,
                },
                None => {
                    timed_out_clients += 1;
                    Op {
                        process: shape.processes + timed_out_clients,
                        invoke_ns: point.saturating_sub(rng.gen_range(0, 20 * SPACING)),
                        complete_ns: None,
                        call,
                        result,
                    }
                }
            },
        )
        .collect();
    History {
        initial_balances: accounts.iter().copied().zip(initial).collect(),
        ops,
        applied: Some(log),
    }
}

/// Checks a witness independently of the checker's model: real-time order
/// respected, every answered op with an effect or observation present,
/// each result the one a plain sequential ledger gives.
fn assert_valid_witness(h: &History, witness: &[usize]) {
    let mut position = vec![None; h.ops.len()];
    for (pos, i) in witness.iter().enumerate() {
        assert!(position[*i].is_none(), "op #{i} twice in the witness");
        position[*i] = Some(pos);
    }
    for (i, op) in h.ops.iter().enumerate() {
        let needed = !matches!(
            op.result,
            OpResult::Unknown | OpResult::Fail(Fail::NotApplied { .. })
        );
        assert!(!needed || position[i].is_some(), "op #{i} missing");
    }
    for (pos, i) in witness.iter().enumerate() {
        for j in &witness[pos + 1..] {
            let (a, b) = (&h.ops[*i], &h.ops[*j]);
            if let Some(b_done) = b.complete_ns.filter(|_| b.result != OpResult::Unknown) {
                assert!(
                    b_done >= a.invoke_ns,
                    "#{j} completed before #{i} was invoked yet comes after it"
                );
            }
        }
    }
    let mut ledger = h.initial_balances.clone();
    let mut applied = BTreeSet::new();
    for i in witness {
        let op = &h.ops[*i];
        match &op.call {
            Call::Transfer {
                id,
                from,
                to,
                amount,
            } => {
                let outcome = if applied.contains(id) {
                    OpResult::Ok(Value::Transferred)
                } else if ledger[from] >= *amount {
                    *ledger.get_mut(from).unwrap() -= amount;
                    *ledger.get_mut(to).unwrap() += amount;
                    applied.insert(*id);
                    OpResult::Ok(Value::Transferred)
                } else {
                    OpResult::Fail(Fail::InsufficientFunds)
                };
                if op.result != OpResult::Unknown {
                    assert_eq!(op.result, outcome, "op #{i}");
                } else {
                    assert!(applied.contains(id), "open op #{i} placed without effect");
                }
            }
            Call::ReadBalance { account } => {
                assert_eq!(op.result, OpResult::Ok(Value::Balance(ledger[account])))
            }
            Call::ReadAll { accounts } => {
                let values = accounts.iter().map(|a| ledger[a]).collect();
                assert_eq!(op.result, OpResult::Ok(Value::Balances(values)))
            }
        }
    }
}

fn plain() -> Options {
    Options {
        follow_log: false,
        ..Options::default()
    }
}

fn shape_strategy() -> impl Strategy<Value = (u64, Shape)> {
    (
        any::<u64>(),
        2usize..5,
        1usize..6,
        1usize..80,
        0u64..15,
        0u64..10,
        0u64..40,
    )
        .prop_map(
            |(seed, accounts, processes, ops, unknown_pct, lost_pct, retry_pct)| {
                (
                    seed,
                    Shape {
                        accounts,
                        processes,
                        ops,
                        unknown_pct,
                        lost_pct,
                        retry_pct,
                    },
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn executions_are_linearizable((seed, shape) in shape_strategy()) {
        let h = generate(seed, shape);
        prop_assert_eq!(check_invariants(&h).unwrap(), vec![]);
        for options in [Options::default(), plain()] {
            match check_linearizability(&h, &options).unwrap() {
                Verdict::Linearizable { witness, .. } => assert_valid_witness(&h, &witness),
                other => prop_assert!(false, "{:?}\n{:#?}", other, h),
            }
        }
    }

    #[test]
    fn a_planted_impossible_read_is_caught(
        (seed, shape) in shape_strategy(),
        pick in any::<prop::sample::Index>(),
        slot in any::<prop::sample::Index>(),
    ) {
        let mut h = generate(seed, shape);
        let reads: Vec<usize> = (0..h.ops.len())
            .filter(|i| matches!(h.ops[*i].result, OpResult::Ok(Value::Balance(_) | Value::Balances(_))))
            .collect();
        prop_assume!(!reads.is_empty());
        let supply = h.supply().unwrap();
        let victim = reads[pick.index(reads.len())];
        match &mut h.ops[victim].result {
            OpResult::Ok(Value::Balance(b)) => *b = supply + 1,
            OpResult::Ok(Value::Balances(bs)) => {
                let n = bs.len();
                bs[slot.index(n)] = supply + 1;
            }
            _ => unreachable!(),
        }
        prop_assert!(!check_invariants(&h).unwrap().is_empty());
        for options in [Options::default(), plain()] {
            let v = check_linearizability(&h, &options).unwrap();
            match &v {
                Verdict::NotLinearizable { counterexample, .. } => {
                    prop_assert_eq!(counterexample.stuck, Some(victim), "{}", counterexample)
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn an_acknowledged_transfer_dropped_from_the_log_is_caught(
        (seed, shape) in shape_strategy(),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut h = generate(seed, shape);
        let log = h.applied.as_mut().unwrap();
        let acked: Vec<usize> = (0..log.len())
            .filter(|e| h.ops.iter().any(|op| {
                matches!(op.call, Call::Transfer { id, .. } if id == log[*e].id)
                    && op.result == OpResult::Ok(Value::Transferred)
            }))
            .collect();
        prop_assume!(!acked.is_empty());
        let removed = log.remove(acked[pick.index(acked.len())]);
        let violations = check_invariants(&h).unwrap();
        prop_assert!(
            violations.iter().any(|v| matches!(v, Violation::AckedNotApplied { id, .. } if *id == removed.id)),
            "{:?}", violations
        );
        prop_assert!(check_linearizability(&h, &Options::default()).unwrap().is_violation());
    }
}

/// Prints how long a 2,000-op, 5-process history takes (run with
/// `--nocapture`); figures go in the module doc.
#[test]
fn timing() {
    let cases = [
        ("all answered", 0, 0, 0),
        ("2% unanswered", 2, 0, 20),
        ("5% unanswered + 2% lost", 5, 2, 20),
    ];
    for (name, unknown_pct, lost_pct, retry_pct) in cases {
        let shape = Shape {
            accounts: 5,
            processes: 5,
            ops: 2_000,
            unknown_pct,
            lost_pct,
            retry_pct,
        };
        let h = generate(0x5eed, shape);
        // Plain mode can blow up on many unanswered ops: bound it here.
        let plain_bounded = Options {
            budget: Budget {
                max_time: Duration::from_secs(10),
                ..Budget::default()
            },
            ..plain()
        };
        for (mode, options) in [("log mode", Options::default()), ("plain", plain_bounded)] {
            let start = Instant::now();
            let v = check_linearizability(&h, &options).unwrap();
            let elapsed = start.elapsed();
            let stats = v.stats();
            println!(
                "checker timing: 2000 ops, 5 processes, {name}, {mode}: {elapsed:?} \
                 ({} ops searched, {} open, {} steps, {} configurations) -> {}",
                stats.ops,
                stats.open_ops,
                stats.steps,
                stats.configurations,
                match &v {
                    Verdict::Linearizable { .. } => "linearizable".to_string(),
                    Verdict::NotLinearizable { .. } => "NOT linearizable".to_string(),
                    Verdict::Unknown { exhausted, .. } => format!("unknown ({exhausted:?})"),
                }
            );
            assert!(
                !v.is_violation(),
                "a real execution judged not linearizable"
            );
            if mode == "log mode" {
                assert!(v.is_linearizable(), "log mode must decide: {v:?}");
            }
        }
    }
}

#[test]
fn report_on_a_generated_failure_explains_the_op() {
    let shape = Shape {
        accounts: 3,
        processes: 5,
        ops: 300,
        unknown_pct: 5,
        lost_pct: 2,
        retry_pct: 20,
    };
    let mut h = generate(7, shape);
    let victim = (150..300)
        .find(|i| matches!(h.ops[*i].result, OpResult::Ok(Value::Balance(_))))
        .expect("a read among 150 ops");
    let supply = h.supply().unwrap();
    h.ops[victim].result = OpResult::Ok(Value::Balance(supply + 1));
    for options in [Options::default(), plain()] {
        let report = check(&h, &options).unwrap();
        let text = report.to_string();
        assert!(text.contains("impossible balance"), "{text}");
        assert!(
            text.contains(&format!("read {} in account", supply + 1)),
            "{text}"
        );
        match &report.linearizability {
            Verdict::NotLinearizable { counterexample, .. } => {
                assert_eq!(counterexample.stuck, Some(victim));
                assert_eq!(counterexample.prefix_end_ns, h.ops[victim].complete_ns);
            }
            other => panic!("{other:?}"),
        }
    }
}
