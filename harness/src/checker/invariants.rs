//! Checks that need no search: conservation and possible values in reads,
//! and exactly-once against the applied log the test fetched.
//!
//! Each is cheap (one pass, `O(ops + log)`), names the ops involved, and
//! does not depend on the linearizability verdict: a history can pass the
//! search (every read explained) and still lose an acknowledged transfer
//! that no read happened to look at.

use super::history::{AccountId, Call, History, OpResult, TransferId, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A broken bank invariant. `op` fields index `History::ops`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A read of several accounts whose balances sum past the supply, or, for
    /// a read of every account, to anything but the supply.
    Conservation { op: usize, sum: u128, supply: u64 },
    /// One balance larger than the whole supply.
    ImpossibleBalance {
        op: usize,
        account: AccountId,
        balance: u64,
        supply: u64,
    },
    /// Acknowledged (`Ok`), but not in the applied log.
    AckedNotApplied { op: usize, id: TransferId },
    /// Every op with this id failed, yet the log applied it.
    FailedButApplied {
        op: usize,
        id: TransferId,
        index: u64,
    },
    /// The applied log holds one id at several log indices.
    AppliedTwice { id: TransferId, indices: Vec<u64> },
    /// Applied, but no client asked for it.
    PhantomTransfer { id: TransferId, index: u64 },
    /// Applied with other fields than the client sent.
    AppliedFieldsDiffer { op: usize, id: TransferId },
    /// Replaying the applied log in index order from the initial balances
    /// debits an account by more than it can hold, even with every credit
    /// of the same entry applied first.
    LogOverdraft {
        id: TransferId,
        index: u64,
        account: AccountId,
    },
    /// The applied log names an account the history does not know.
    LogUnknownAccount {
        id: TransferId,
        index: u64,
        account: AccountId,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Conservation { op, sum, supply } => write!(
                f,
                "conservation: op #{op} read balances summing to {sum}, supply is {supply}"
            ),
            Violation::ImpossibleBalance {
                op,
                account,
                balance,
                supply,
            } => write!(
                f,
                "impossible balance: op #{op} read {balance} in account {account}, supply is {supply}"
            ),
            Violation::AckedNotApplied { op, id } => write!(
                f,
                "lost transfer: op #{op} was acknowledged but transfer {id:#x} was never applied"
            ),
            Violation::FailedButApplied { op, id, index } => write!(
                f,
                "failed transfer applied: op #{op} failed but transfer {id:#x} applied at index {index}"
            ),
            Violation::AppliedTwice { id, indices } => {
                write!(f, "transfer {id:#x} applied more than once, at indices {indices:?}")
            }
            Violation::PhantomTransfer { id, index } => write!(
                f,
                "phantom transfer {id:#x} applied at index {index}: no client asked for it"
            ),
            Violation::AppliedFieldsDiffer { op, id } => write!(
                f,
                "transfer {id:#x} applied with other fields than op #{op} sent"
            ),
            Violation::LogOverdraft { id, index, account } => write!(
                f,
                "overdraft: transfer {id:#x} at index {index} debits account {account} past zero \
                 (replaying the applied log from the initial balances)"
            ),
            Violation::LogUnknownAccount { id, index, account } => write!(
                f,
                "transfer {id:#x} at index {index} touches account {account}, unknown to the history"
            ),
        }
    }
}

/// All violations, in op order then log order. `supply` from `validate`.
pub(crate) fn check(history: &History, supply: u64) -> Vec<Violation> {
    let mut violations = reads(history, supply);
    if let Some(applied) = &history.applied {
        violations.extend(exactly_once(history, applied));
        violations.extend(replay(history, applied));
    }
    violations
}

fn reads(history: &History, supply: u64) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (op, o) in history.ops.iter().enumerate() {
        let values: Vec<(AccountId, u64)> = match (&o.call, &o.result) {
            (Call::ReadBalance { account }, OpResult::Ok(Value::Balance(b))) => {
                vec![(*account, *b)]
            }
            (Call::ReadAll { accounts }, OpResult::Ok(Value::Balances(bs))) => {
                accounts.iter().copied().zip(bs.iter().copied()).collect()
            }
            _ => continue,
        };
        for (account, balance) in &values {
            if *balance > supply {
                violations.push(Violation::ImpossibleBalance {
                    op,
                    account: *account,
                    balance: *balance,
                    supply,
                });
            }
        }
        if values.len() > 1 {
            let sum: u128 = values.iter().map(|(_, b)| u128::from(*b)).sum();
            let covers_all = values.len() == history.initial_balances.len();
            if sum > u128::from(supply) || (covers_all && sum != u128::from(supply)) {
                violations.push(Violation::Conservation { op, sum, supply });
            }
        }
    }
    violations
}

fn exactly_once(history: &History, applied: &[super::history::AppliedTransfer]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut log: BTreeMap<TransferId, Vec<&super::history::AppliedTransfer>> = BTreeMap::new();
    for entry in applied {
        log.entry(entry.id).or_default().push(entry);
    }
    // Per id: its ops (validate() made their fields equal).
    let mut ops: BTreeMap<TransferId, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        if let Call::Transfer { id, .. } = op.call {
            ops.entry(id).or_default().push(i);
        }
    }
    for (id, entries) in &log {
        if entries.len() > 1 {
            violations.push(Violation::AppliedTwice {
                id: *id,
                indices: entries.iter().map(|e| e.index).collect(),
            });
        }
        let Some(op_list) = ops.get(id) else {
            for entry in entries {
                violations.push(Violation::PhantomTransfer {
                    id: *id,
                    index: entry.index,
                });
            }
            continue;
        };
        let first = op_list[0];
        if let Call::Transfer {
            from, to, amount, ..
        } = history.ops[first].call
        {
            if entries
                .iter()
                .any(|e| (e.from, e.to, e.amount) != (from, to, amount))
            {
                violations.push(Violation::AppliedFieldsDiffer { op: first, id: *id });
            }
        }
        let all_failed = op_list
            .iter()
            .all(|i| matches!(history.ops[*i].result, OpResult::Fail(_)));
        if all_failed {
            violations.push(Violation::FailedButApplied {
                op: first,
                id: *id,
                index: entries[0].index,
            });
        }
    }
    for (id, op_list) in &ops {
        if log.contains_key(id) {
            continue;
        }
        if let Some(op) = op_list
            .iter()
            .find(|i| matches!(history.ops[**i].result, OpResult::Ok(_)))
        {
            violations.push(Violation::AckedNotApplied { op: *op, id: *id });
        }
    }
    violations
}

/// Replays the log entry by entry (transfers of one index as a group whose
/// inner order is unknown): a group must not take any account below zero
/// even when all its credits land before its debits.
fn replay(history: &History, applied: &[super::history::AppliedTransfer]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut balances: BTreeMap<AccountId, i128> = history
        .initial_balances
        .iter()
        .map(|(a, b)| (*a, i128::from(*b)))
        .collect();
    let mut order: Vec<&super::history::AppliedTransfer> = applied.iter().collect();
    order.sort_by_key(|e| e.index);
    for group in order.chunk_by(|a, b| a.index == b.index) {
        let mut known = Vec::new();
        for entry in group {
            let unknown = [entry.from, entry.to]
                .into_iter()
                .find(|a| !balances.contains_key(a));
            match unknown {
                Some(account) => violations.push(Violation::LogUnknownAccount {
                    id: entry.id,
                    index: entry.index,
                    account,
                }),
                None => known.push(*entry),
            }
        }
        for entry in &known {
            *balances.entry(entry.from).or_default() -= i128::from(entry.amount);
            *balances.entry(entry.to).or_default() += i128::from(entry.amount);
        }
        for entry in &known {
            if balances[&entry.from] < 0 {
                violations.push(Violation::LogOverdraft {
                    id: entry.id,
                    index: entry.index,
                    account: entry.from,
                });
                // Report each overdrawn account once per group.
                balances.insert(entry.from, 0);
            }
        }
    }
    violations
}
