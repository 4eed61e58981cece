//! Linearizability verdicts and the failure report.
//!
//! A failed search is narrowed by bisection over completion times: the
//! history *cut* at time `t` keeps the ops invoked by `t`, turns answers
//! that came later into "unknown", and does not require the applied log to
//! be complete. Cutting later only adds constraints, so the earliest
//! failing cut is found in `log2(completions)` searches; the report then
//! shows that prefix's furthest linearization, the op it could not place,
//! and the ops concurrent with it.

use super::history::{fmt_ms, AccountId, History, OpResult, TransferId};
use super::model::{Action, Expect, LogUse, Prepared, State};
use super::wgl::{search, Budget, Deepest, Exhausted, Outcome, Search, SearchStats};
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::time::Instant;

/// The outcome of the linearizability search.
#[derive(Clone, Debug)]
pub enum Verdict {
    Linearizable {
        /// Indices in `History::ops` in a valid linearization order (ops
        /// without effect or observation, and open ops that never took
        /// effect, are absent).
        witness: Vec<usize>,
        stats: SearchStats,
    },
    NotLinearizable {
        counterexample: Box<Counterexample>,
        stats: SearchStats,
    },
    /// The budget ran out first: neither proven nor refuted.
    Unknown {
        exhausted: Exhausted,
        stats: SearchStats,
    },
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable { .. })
    }

    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::NotLinearizable { .. })
    }

    pub fn stats(&self) -> &SearchStats {
        match self {
            Verdict::Linearizable { stats, .. }
            | Verdict::NotLinearizable { stats, .. }
            | Verdict::Unknown { stats, .. } => stats,
        }
    }
}

/// Why a history is not linearizable, in terms of its ops (indices in
/// `History::ops`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// Whether the search followed the applied log's order.
    pub followed_log: bool,
    /// End of the shortest failing prefix found (a completion time), `None`
    /// when only the whole history fails (the applied log cannot complete).
    pub prefix_end_ns: Option<u64>,
    /// The op that could not be placed; `None` when every completed op was
    /// placed but the applied log could not take effect in full.
    pub stuck: Option<usize>,
    /// Ops of the prefix whose intervals overlap `stuck`'s.
    pub concurrent: Vec<usize>,
    /// The longest linearization found before getting stuck, in order.
    pub linearized: Vec<usize>,
    /// The model's balances after `linearized`.
    pub balances: BTreeMap<AccountId, u64>,
    /// Log mode, `stuck == None`: the log entries (index, id) that never took effect.
    pub unapplied_log: Vec<(u64, TransferId)>,
    text: String,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Ops of the linearization shown before the stuck op.
const SHOWN_LINEARIZED: usize = 12;
/// Concurrent ops listed before "... and N more".
const SHOWN_CONCURRENT: usize = 40;

/// Runs the search on the whole history and, on failure, builds the report.
pub(crate) fn verdict(history: &History, log: LogUse, budget: &Budget, minimize: bool) -> Verdict {
    let full = Prepared::new(history, log, None);
    let run = search(&full, budget);
    let stats = run.stats;
    match run.outcome {
        Outcome::Linearizable(order) => Verdict::Linearizable {
            witness: order.iter().map(|op| full.ops[*op].source).collect(),
            stats,
        },
        Outcome::GaveUp(exhausted) => Verdict::Unknown { exhausted, stats },
        Outcome::NotLinearizable => {
            let (prepared, deepest, cut) = if minimize {
                shortest_failing_prefix(history, log, budget, &full).unwrap_or((
                    full,
                    run.deepest,
                    None,
                ))
            } else {
                (full, run.deepest, None)
            };
            let counterexample = describe(history, &prepared, deepest, cut, stats);
            Verdict::NotLinearizable {
                counterexample: Box::new(counterexample),
                stats,
            }
        }
    }
}

type Failure = (Prepared, Option<Deepest>, Option<u64>);

/// Bisects over completion times for the earliest cut that fails, within
/// one more `budget.max_time` in all. `None` when no cut fails (only the
/// complete-log requirement does) or the budget ran out before any failing
/// cut was found; a budget spent midway keeps the shortest found so far.
fn shortest_failing_prefix(
    history: &History,
    log: LogUse,
    budget: &Budget,
    full: &Prepared,
) -> Option<Failure> {
    let cut_log = match log {
        LogUse::Ignore => LogUse::Ignore,
        LogUse::Follow { .. } => LogUse::Follow { complete: false },
    };
    let mut times: Vec<u64> = full.ops.iter().filter_map(|op| op.complete).collect();
    times.sort_unstable();
    times.dedup();
    // All bisection searches share one time budget.
    let deadline = Instant::now() + budget.max_time;
    let fails = |t: u64| -> Option<Option<Failure>> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let prepared = Prepared::new(history, cut_log, Some(t));
        let budget = Budget {
            max_time: left,
            ..*budget
        };
        let Search {
            outcome, deepest, ..
        } = search(&prepared, &budget);
        match outcome {
            Outcome::NotLinearizable => Some(Some((prepared, deepest, Some(t)))),
            Outcome::Linearizable(_) => Some(None),
            Outcome::GaveUp(_) => None,
        }
    };
    let last = times.len().checked_sub(1)?;
    let mut best = fails(times[last])??;
    let (mut lo, mut hi) = (0, last);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match fails(times[mid]) {
            Some(Some(failure)) => {
                best = failure;
                hi = mid;
            }
            Some(None) => lo = mid + 1,
            None => break,
        }
    }
    Some(best)
}

/// Why the model refuses `op` in `state`, in one line.
fn explain(prepared: &Prepared, op: usize, state: &State) -> String {
    let account = |a: usize| prepared.accounts[a];
    match &prepared.ops[op].action {
        Action::Read { values } => {
            let mut parts = Vec::new();
            for (a, v) in values {
                if state.balances[*a] != *v {
                    parts.push(format!(
                        "read {} in account {}, the model has {}",
                        v,
                        account(*a),
                        state.balances[*a]
                    ));
                }
            }
            parts.join("; ")
        }
        Action::Transfer {
            from,
            amount,
            expect,
            log_group,
            ..
        } => {
            let balance = state.balances[*from];
            match expect {
                Expect::InsufficientFunds => format!(
                    "failed for insufficient funds, but the model has {balance} in account {}",
                    account(*from)
                ),
                _ if balance < *amount => format!(
                    "the model has only {balance} in account {} to pay {amount}",
                    account(*from)
                ),
                _ if prepared.log_mode && log_group.is_none() => {
                    "acknowledged, but not in the applied log".to_string()
                }
                _ => format!(
                    "its log entry is not next: {} of the applied log's entries have taken effect",
                    state.log_applied
                ),
            }
        }
    }
}

fn describe(
    history: &History,
    prepared: &Prepared,
    deepest: Option<Deepest>,
    cut: Option<u64>,
    stats: SearchStats,
) -> Counterexample {
    let followed_log = prepared.log_mode;
    let (order, stuck_model, state) = match deepest {
        Some(d) => (d.order, d.stuck, d.state),
        None => (Vec::new(), None, prepared.initial.clone()),
    };
    let linearized: Vec<usize> = order.iter().map(|op| prepared.ops[*op].source).collect();
    let stuck = stuck_model.map(|op| prepared.ops[op].source);
    let balances = prepared.balances(&state);
    let unapplied_log = if stuck.is_none() {
        prepared.log[state.log_applied as usize..].to_vec()
    } else {
        Vec::new()
    };

    // Ops of the cut history overlapping the stuck op's interval.
    let mut concurrent = Vec::new();
    if let Some(s) = stuck_model {
        let s_op = &prepared.ops[s];
        let s_end = s_op.complete.unwrap_or(u64::MAX);
        for (i, op) in prepared.ops.iter().enumerate() {
            if i != s && op.invoke <= s_end && op.complete.is_none_or(|c| c >= s_op.invoke) {
                concurrent.push(op.source);
            }
        }
        concurrent.sort_unstable();
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "not linearizable{} ({} ops searched, {} of them open; {} steps, {} configurations)",
        if followed_log {
            " in the applied log's order"
        } else {
            ""
        },
        stats.ops,
        stats.open_ops,
        stats.steps,
        stats.configurations
    );
    let show = |i: usize| format!("#{i} {}", history.ops[i]);
    match cut {
        Some(t) => {
            let _ = write!(
                text,
                "shortest failing prefix: ops invoked by {}",
                fmt_ms(t)
            );
            if let Some(end) = prepared.ops.iter().find(|op| op.complete == Some(t)) {
                let _ = write!(text, " (ends with the completion of #{})", end.source);
            }
            let _ = writeln!(text);
        }
        None => {
            let _ = writeln!(text, "no shorter prefix fails: the whole history is needed");
        }
    }
    let _ = writeln!(
        text,
        "longest linearization found: {} ops{}",
        linearized.len(),
        if linearized.len() > SHOWN_LINEARIZED {
            format!(", the last {SHOWN_LINEARIZED}:")
        } else {
            ":".to_string()
        }
    );
    for i in &linearized[linearized.len().saturating_sub(SHOWN_LINEARIZED)..] {
        let _ = writeln!(text, "  {}", show(*i));
    }
    let _ = write!(text, "model balances then:");
    for (account, balance) in &balances {
        let _ = write!(text, " {account}={balance}");
    }
    let _ = writeln!(text);
    match stuck {
        Some(s) => {
            let _ = writeln!(
                text,
                "no order of the remaining ops lets this one take effect before it completes:"
            );
            let _ = writeln!(text, "  {}", show(s));
            if let Some(op) = stuck_model {
                let _ = writeln!(text, "  ({})", explain(prepared, op, &state));
            }
            let _ = writeln!(text, "ops concurrent with #{s} ({}):", concurrent.len());
            for i in concurrent.iter().take(SHOWN_CONCURRENT) {
                let open = history.ops[*i].result == OpResult::Unknown;
                let mark = match (open, linearized.contains(i)) {
                    (false, true) => "placed       ",
                    (false, false) => "not placed   ",
                    (true, true) => "took effect  ",
                    (true, false) => "no effect    ",
                };
                let _ = writeln!(text, "  {mark}{}", show(*i));
            }
            if concurrent.len() > SHOWN_CONCURRENT {
                let _ = writeln!(
                    text,
                    "  ... and {} more",
                    concurrent.len() - SHOWN_CONCURRENT
                );
            }
        }
        None => {
            let _ = writeln!(
                text,
                "every completed op was placed, but these applied transfers could not take \
                 effect in log order:"
            );
            for (index, id) in unapplied_log.iter().take(SHOWN_CONCURRENT) {
                let _ = writeln!(text, "  index {index}: transfer {id:#x}");
            }
        }
    }
    Counterexample {
        followed_log,
        prefix_end_ns: cut,
        stuck,
        concurrent,
        linearized,
        balances,
        unapplied_log,
        text,
    }
}
