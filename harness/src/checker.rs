//! # The history checker of the Jepsen-style bank test
//!
//! Client threads submit transfers and read balances while a nemesis
//! injects faults; each op is recorded with its invocation and completion
//! times and its result ([`History`], built with a [`Recorder`]). After the
//! run the test fetches the transfers the cluster applied
//! ([`History::applied`]) and calls [`check`]:
//!
//! ```text
//! let history = recorder.into_history(initial_balances, Some(applied));
//! let report = checker::check(&history, &Options::default())?;
//! if !report.is_valid() {
//!     history.save(&dir.join("history.json"))?;   // History::load to re-check
//!     panic!("{report}");
//! }
//! ```
//!
//! ## What is checked
//! * **Invariants** ([`Violation`], one pass each): every multi-account read
//!   sums to at most the supply, and a read of every account to exactly the
//!   supply; no balance exceeds the supply (balances are `u64`, so "never
//!   negative" shows up as an impossible read); every acknowledged transfer
//!   is in the applied log, no id is applied twice, a transfer whose every
//!   op failed is not applied, nothing is applied that no client asked for
//!   or with other fields; replaying the log from the initial balances
//!   overdraws no account.
//! * **Linearizability** ([`Verdict`]): is there a total order of the ops,
//!   consistent with real time (an op that completed before another was
//!   invoked comes first), in which each op's result is what a sequential
//!   bank would return (`model.rs`: transfers apply iff funded, `Exists`
//!   for a retried id, reads return balances)? An op without an answer may
//!   take effect anywhere after its invocation, or never. This catches stale
//!   reads, double spends, lost and phantom effects that the invariants
//!   cannot see because they are about *when*, not *whether*.
//!
//! ## Why WGL here, and not stateright
//! The question is "does this one recorded history have a linearization",
//! over a few thousand ops with timeouts among them; stateright explores
//! the states of a model we write, which is the simulator's job. Wing &
//! Gong's search with Lowe's just-in-time linearization and Porcupine's
//! memoization of (linearized-set bitset, model state) is the standard
//! tool for recorded histories (Knossos, Porcupine), needs no dependency,
//! and handles ops that stay open for ever (`wgl.rs`).
//!
//! Cost: a configuration is a set of linearized ops plus a state. On a
//! history where at most `c` ops overlap, the reachable linearized sets
//! number `O(n · 2^c)`, and for completed transfers the balances follow
//! from the set (money moves commute), so the memoized search is
//! `O(n · 2^c)` steps, each `O(n/64 + accounts)`. Open ops are the
//! exponential part: each one that never takes effect stays a candidate,
//! so `k` of them overlapping a point of contention can cost `2^k`. No
//! partitioning helps (transfers couple accounts), so two remedies apply:
//! a [`Budget`] bounds steps, time and memory and yields
//! [`Verdict::Unknown`] instead of running on; and with the applied log
//! the search follows the cluster's apply order (*log mode*, the default
//! when the log is present): an unanswered transfer that did not apply is
//! dropped, one that did is placed exactly at its log position, and the
//! log must be fully applied by the end. Raft linearizes writes in log
//! order, so a correct cluster always passes in log mode; a failure there
//! means the clients saw an order the log does not have.
//!
//! A failing history is reported by its shortest failing prefix (bisection
//! over completion times, `report.rs`): the op that could not be placed,
//! the ops concurrent with it, the longest linearization found and the
//! model balances after it.
//!
//! ## Measured
//! `cargo test -p continuum-harness --lib checker::tests::generated::timing -- --nocapture`
//! (debug build, as `cargo test` runs it, on the shared 2-core build
//! machine; two runs): 2,000 ops of 5 processes over 5 accounts, generated
//! from a real sequential execution with random overlapping intervals.
//!
//! | unanswered transfers             | log mode  | plain                        |
//! |----------------------------------|-----------|------------------------------|
//! | none                             | 29–40 ms  | 18–28 ms                     |
//! | 2 % (20–28 open ops)             | 23–28 ms  | 36–44 ms                     |
//! | 5 %, and 2 % lost (51–84 open)   | 24–28 ms  | unknown: 10 s budget spent   |
//!
//! Each decided case takes 2.5 k–60 k steps and 2–3 k configurations; the
//! last plain case explores 360 k configurations in 10 s without an answer,
//! which is the `2^k` above and why log mode is the default.

mod history;
mod invariants;
mod model;
mod report;
#[cfg(test)]
mod tests;
mod wgl;

pub use history::{
    AccountId, AppliedTransfer, Call, Fail, History, HistoryFileError, Invocation, Op, OpResult,
    Recorder, TransferId, Value,
};
pub use invariants::Violation;
pub use model::HistoryError;
pub use report::{Counterexample, Verdict};
pub use wgl::{Budget, Exhausted, SearchStats};

use model::LogUse;
use std::fmt;

/// How to run the linearizability search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub budget: Budget,
    /// Follow the applied log's order when the history has one (see the
    /// module doc); `false` checks plain linearizability.
    pub follow_log: bool,
    /// On failure, bisect for the shortest failing prefix (up to
    /// `log2(ops) + 1` more searches, sharing one more `budget.max_time`).
    pub minimize: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Budget::default(),
            follow_log: true,
            minimize: true,
        }
    }
}

/// Everything the checker found.
#[derive(Clone, Debug)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub linearizability: Verdict,
}

impl Report {
    /// No violation and a linearization found.
    pub fn is_valid(&self) -> bool {
        self.violations.is_empty() && self.linearizability.is_linearizable()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.violations.is_empty() {
            writeln!(f, "invariants: ok")?;
        } else {
            writeln!(f, "invariants: {} violations", self.violations.len())?;
            for v in &self.violations {
                writeln!(f, "  {v}")?;
            }
        }
        match &self.linearizability {
            Verdict::Linearizable { stats, .. } => writeln!(
                f,
                "linearizable ({} ops, {} open; {} steps, {} configurations, {:?})",
                stats.ops, stats.open_ops, stats.steps, stats.configurations, stats.elapsed
            ),
            Verdict::NotLinearizable { counterexample, .. } => write!(f, "{counterexample}"),
            Verdict::Unknown { exhausted, stats } => writeln!(
                f,
                "linearizability unknown: {exhausted:?} budget exhausted after {} steps, \
                 {} configurations, {:?}",
                stats.steps, stats.configurations, stats.elapsed
            ),
        }
    }
}

/// Checks the invariants and linearizability of `history`.
pub fn check(history: &History, options: &Options) -> Result<Report, HistoryError> {
    Ok(Report {
        violations: check_invariants(history)?,
        linearizability: check_linearizability(history, options)?,
    })
}

/// The invariant checks alone.
pub fn check_invariants(history: &History) -> Result<Vec<Violation>, HistoryError> {
    let supply = model::validate(history)?;
    Ok(invariants::check(history, supply))
}

/// The linearizability search alone.
pub fn check_linearizability(
    history: &History,
    options: &Options,
) -> Result<Verdict, HistoryError> {
    model::validate(history)?;
    let log = if options.follow_log {
        LogUse::Follow { complete: true }
    } else {
        LogUse::Ignore
    };
    Ok(report::verdict(
        history,
        log,
        &options.budget,
        options.minimize,
    ))
}
