//! The linearizability search: Wing & Gong's backtracking over a list of
//! call/return events, with Lowe's just-in-time linearization and
//! memoization of (linearized set, model state), as in Porcupine's
//! `checkSingle`.
//!
//! The events are one doubly linked list sorted by time (a call before a
//! return at the same instant, so ops that touch are taken as concurrent:
//! the lenient reading, which never invents a violation). An op is
//! *linearized* by running it on the model and lifting its call and return
//! out of the list; the candidates at any point are the calls before the
//! first remaining return. Reaching a return means that op had to be
//! linearized already: backtrack (pop the last linearized op, put its events
//! back, try the next candidate). A configuration (linearized set, state)
//! seen before is not explored again, which is what makes the search
//! polynomial on histories of bounded concurrency.
//!
//! Open ops (no answer) have no return event: nothing forces them, so a
//! search never needs to linearize one to succeed. Candidates are tried in
//! two passes, completed ops first and open ops second, so a history that
//! is explained without an open op taking effect is found without touching
//! them; an open op is tried when a completed one cannot be placed.

use super::model::{Prepared, State, Step};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Limits on one search; past any of them the verdict is "unknown".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Search steps (one candidate tried or one backtrack each).
    pub max_steps: u64,
    /// Wall-clock time.
    pub max_time: Duration,
    /// Memoized configurations; each holds the linearized bitset and a
    /// state, ~430 bytes for 2,000 ops over 5 accounts.
    pub max_configurations: usize,
}

impl Default for Budget {
    /// 100 M steps, 60 s, 2 M configurations (~0.9 GB at 2,000 ops): a
    /// linearizable 2,000-op history needs a few thousand of each.
    fn default() -> Self {
        Budget {
            max_steps: 100_000_000,
            max_time: Duration::from_secs(60),
            max_configurations: 2_000_000,
        }
    }
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    Steps,
    Time,
    Configurations,
}

/// How much work one search did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Ops the search had to place (after dropping those without effect or observation).
    pub ops: usize,
    /// Of which open (no answer).
    pub open_ops: usize,
    pub steps: u64,
    pub configurations: usize,
    pub elapsed: Duration,
}

pub(crate) enum Outcome {
    /// A witness: model op indices in linearization order.
    Linearizable(Vec<usize>),
    NotLinearizable,
    GaveUp(Exhausted),
}

/// The configuration with the most completed ops linearized at which the
/// search found no way on.
pub(crate) struct Deepest {
    /// Model op indices, in linearization order.
    pub order: Vec<usize>,
    /// The completed op whose return was reached before it could be
    /// linearized; `None` when every completed op was placed but the
    /// applied log could not be completed.
    pub stuck: Option<usize>,
    pub state: State,
}

pub(crate) struct Search {
    pub outcome: Outcome,
    pub stats: SearchStats,
    pub deepest: Option<Deepest>,
}

const HEAD: usize = 0;
const NIL: usize = usize::MAX;

/// The event list (dancing links: removals are undone in reverse order).
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
    op: Vec<usize>,
    is_call: Vec<bool>,
    call_node: Vec<usize>,
    return_node: Vec<usize>,
}

impl Events {
    fn new(prepared: &Prepared) -> Events {
        let n = prepared.ops.len();
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
        for (i, op) in prepared.ops.iter().enumerate() {
            events.push((op.invoke, false, i));
            if let Some(complete) = op.complete {
                events.push((complete, true, i));
            }
        }
        // (time, is_return, op): calls sort before returns at equal times.
        events.sort_unstable();
        let nodes = events.len() + 1;
        let mut list = Events {
            next: vec![NIL; nodes],
            prev: vec![NIL; nodes],
            op: vec![0; nodes],
            is_call: vec![false; nodes],
            call_node: vec![NIL; n],
            return_node: vec![NIL; n],
        };
        for (k, (_, is_return, op)) in events.into_iter().enumerate() {
            let node = k + 1;
            list.prev[node] = node - 1;
            list.next[node - 1] = node;
            list.op[node] = op;
            list.is_call[node] = !is_return;
            if is_return {
                list.return_node[op] = node;
            } else {
                list.call_node[op] = node;
            }
        }
        list
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if self.return_node[op] != NIL {
            self.unlink(self.return_node[op]);
        }
    }

    fn unlift(&mut self, op: usize) {
        if self.return_node[op] != NIL {
            self.relink(self.return_node[op]);
        }
        self.relink(self.call_node[op]);
    }

    fn is_open(&self, op: usize) -> bool {
        self.return_node[op] == NIL
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Completed,
    Open,
}

/// Searches for a linearization of `prepared` within `budget`.
pub(crate) fn search(prepared: &Prepared, budget: &Budget) -> Search {
    let started = Instant::now();
    let n = prepared.ops.len();
    let mut events = Events::new(prepared);
    let mut stats = SearchStats {
        ops: n,
        open_ops: (0..n).filter(|op| events.is_open(*op)).count(),
        ..SearchStats::default()
    };
    let completed_total = n - stats.open_ops;
    let mut remaining = completed_total;
    let mut state = prepared.initial.clone();
    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut memo: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut deepest: Option<Deepest> = None;
    let mut deepest_done = 0usize;
    let mut pass = Pass::Completed;
    let mut cursor = events.next[HEAD];

    let finish = |outcome, mut stats: SearchStats, memo: &HashSet<_>, deepest| {
        stats.configurations = memo.len();
        stats.elapsed = started.elapsed();
        Search {
            outcome,
            stats,
            deepest,
        }
    };

    if remaining == 0 && prepared.is_final(&state) {
        return finish(Outcome::Linearizable(Vec::new()), stats, &memo, None);
    }
    loop {
        stats.steps += 1;
        let exhausted = if stats.steps > budget.max_steps {
            Some(Exhausted::Steps)
        } else if memo.len() > budget.max_configurations {
            Some(Exhausted::Configurations)
        } else if stats.steps.is_multiple_of(4096) && started.elapsed() > budget.max_time {
            Some(Exhausted::Time)
        } else {
            None
        };
        if let Some(why) = exhausted {
            return finish(Outcome::GaveUp(why), stats, &memo, deepest);
        }

        let dead_end = if cursor == NIL || !events.is_call[cursor] {
            // A return (its op was not placed in time) or the end of the list.
            if pass == Pass::Completed {
                pass = Pass::Open;
                cursor = events.next[HEAD];
                continue;
            }
            true
        } else {
            false
        };

        if dead_end {
            let done = completed_total - remaining;
            if deepest.is_none() || done > deepest_done {
                deepest_done = done;
                deepest = Some(Deepest {
                    order: stack.iter().map(|(op, _)| *op).collect(),
                    stuck: (cursor != NIL).then(|| events.op[cursor]),
                    state: state.clone(),
                });
            }
            let Some((op, previous)) = stack.pop() else {
                return finish(Outcome::NotLinearizable, stats, &memo, deepest);
            };
            state = previous;
            linearized[op / 64] &= !(1 << (op % 64));
            events.unlift(op);
            if events.is_open(op) {
                pass = Pass::Open;
            } else {
                pass = Pass::Completed;
                remaining += 1;
            }
            cursor = events.next[events.call_node[op]];
            continue;
        }

        let op = events.op[cursor];
        let open = events.is_open(op);
        if open != (pass == Pass::Open) {
            cursor = events.next[cursor];
            continue;
        }
        let next_state = match prepared.step(&state, &prepared.ops[op]) {
            Step::Invalid => None,
            Step::Same => Some(state.clone()),
            Step::Next(s) => Some(s),
        };
        if let Some(next_state) = next_state {
            linearized[op / 64] |= 1 << (op % 64);
            if memo.insert((linearized.clone(), next_state.clone())) {
                stack.push((op, std::mem::replace(&mut state, next_state)));
                events.lift(op);
                if !open {
                    remaining -= 1;
                }
                if remaining == 0 && prepared.is_final(&state) {
                    let order = stack.iter().map(|(op, _)| *op).collect();
                    return finish(Outcome::Linearizable(order), stats, &memo, deepest);
                }
                pass = Pass::Completed;
                cursor = events.next[HEAD];
                continue;
            }
            linearized[op / 64] &= !(1 << (op % 64));
        }
        cursor = events.next[cursor];
    }
}
