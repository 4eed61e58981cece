//! The sequential bank the history is checked against, and the translation
//! of a [`History`] into the ops the search linearizes.
//!
//! The model keeps only what the test observes of the ledger: balances, and
//! for a transfer id used by several ops (a retry after a timeout) whether
//! it has applied. A transfer applies iff its id has not applied and `from`
//! holds at least `amount` (then `Ok`), and otherwise changes nothing
//! (`Exists`, reported as `Ok`, for an applied id; `InsufficientFunds`
//! else). Reads return balances. The outcomes the test never produces
//! (bad signature, unknown account, ...) are rejected as invalid input.
//!
//! Translation: ops that can have had no effect and saw nothing are
//! dropped (failed reads, reads without an answer, transfers refused with
//! [`Fail::NotApplied`]). A transfer without an answer becomes an *open*
//! op: it may be linearized at any point after its invocation, only with
//! its effect; "never took effect" is represented by never linearizing it,
//! which dominates linearizing it as a no-op.
//!
//! With the applied log ([`History::applied`]) the model also follows the
//! cluster's apply order: applied transfers take effect in log-index order
//! (any order inside one entry), a transfer absent from the log never takes
//! effect, and the whole log must have taken effect at the end.

use super::history::{AccountId, Call, Fail, History, OpResult, TransferId, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A history the checker cannot interpret (a test bug, not a cluster bug).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    NoAccounts,
    SupplyOverflow,
    /// `op` (index in `History::ops`) names an account without an initial
    /// balance.
    UnknownAccount {
        op: usize,
        account: AccountId,
    },
    SameAccount {
        op: usize,
    },
    ZeroAmount {
        op: usize,
    },
    EmptyRead {
        op: usize,
    },
    DuplicateReadAccount {
        op: usize,
        account: AccountId,
    },
    /// An `Ok` or `Fail` op without `complete_ns`.
    MissingCompletion {
        op: usize,
    },
    CompletesBeforeInvoke {
        op: usize,
    },
    /// E.g. a balance returned for a transfer, or insufficient funds for a read.
    ResultDoesNotMatchCall {
        op: usize,
    },
    ReadLength {
        op: usize,
        accounts: usize,
        values: usize,
    },
    /// Two transfer ops share an id but not their fields.
    TransferIdReused {
        id: TransferId,
        first: usize,
        op: usize,
    },
    /// More ops than the search can index.
    TooManyOps(usize),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::NoAccounts => write!(f, "history has no initial balances"),
            HistoryError::SupplyOverflow => write!(f, "initial balances sum past u64::MAX"),
            HistoryError::UnknownAccount { op, account } => {
                write!(
                    f,
                    "op #{op} uses account {account}, which has no initial balance"
                )
            }
            HistoryError::SameAccount { op } => write!(f, "op #{op} transfers to its own account"),
            HistoryError::ZeroAmount { op } => write!(f, "op #{op} transfers 0"),
            HistoryError::EmptyRead { op } => write!(f, "op #{op} reads no account"),
            HistoryError::DuplicateReadAccount { op, account } => {
                write!(f, "op #{op} reads account {account} twice")
            }
            HistoryError::MissingCompletion { op } => {
                write!(f, "op #{op} has a result but no completion time")
            }
            HistoryError::CompletesBeforeInvoke { op } => {
                write!(f, "op #{op} completes before it is invoked")
            }
            HistoryError::ResultDoesNotMatchCall { op } => {
                write!(f, "op #{op} has a result of the wrong kind for its call")
            }
            HistoryError::ReadLength {
                op,
                accounts,
                values,
            } => write!(
                f,
                "op #{op} reads {accounts} accounts but returned {values} balances"
            ),
            HistoryError::TransferIdReused { id, first, op } => write!(
                f,
                "ops #{first} and #{op} use transfer id {id:#x} with different fields"
            ),
            HistoryError::TooManyOps(n) => write!(f, "{n} ops: more than the checker indexes"),
        }
    }
}

impl std::error::Error for HistoryError {}

/// Checks that every op is interpretable; returns the supply.
pub(crate) fn validate(history: &History) -> Result<u64, HistoryError> {
    if history.initial_balances.is_empty() {
        return Err(HistoryError::NoAccounts);
    }
    let supply = history.supply().ok_or(HistoryError::SupplyOverflow)?;
    if history.ops.len() >= u32::MAX as usize {
        return Err(HistoryError::TooManyOps(history.ops.len()));
    }
    let known = |op: usize, account: &AccountId| {
        if history.initial_balances.contains_key(account) {
            Ok(())
        } else {
            Err(HistoryError::UnknownAccount {
                op,
                account: *account,
            })
        }
    };
    let mut transfers: BTreeMap<TransferId, (usize, &Call)> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        match (&op.result, op.complete_ns) {
            (OpResult::Unknown, _) => {}
            (_, None) => return Err(HistoryError::MissingCompletion { op: i }),
            (_, Some(c)) if c < op.invoke_ns => {
                return Err(HistoryError::CompletesBeforeInvoke { op: i })
            }
            _ => {}
        }
        let mismatch = Err(HistoryError::ResultDoesNotMatchCall { op: i });
        match &op.call {
            Call::Transfer {
                id,
                from,
                to,
                amount,
            } => {
                known(i, from)?;
                known(i, to)?;
                if from == to {
                    return Err(HistoryError::SameAccount { op: i });
                }
                if *amount == 0 {
                    return Err(HistoryError::ZeroAmount { op: i });
                }
                if !matches!(
                    op.result,
                    OpResult::Ok(Value::Transferred) | OpResult::Fail(_) | OpResult::Unknown
                ) {
                    return mismatch;
                }
                if let Some((first, call)) = transfers.insert(*id, (i, &op.call)) {
                    if *call != op.call {
                        return Err(HistoryError::TransferIdReused {
                            id: *id,
                            first,
                            op: i,
                        });
                    }
                    transfers.insert(*id, (first, call));
                }
            }
            Call::ReadBalance { account } => {
                known(i, account)?;
                if !matches!(
                    op.result,
                    OpResult::Ok(Value::Balance(_))
                        | OpResult::Fail(Fail::NotApplied { .. })
                        | OpResult::Unknown
                ) {
                    return mismatch;
                }
            }
            Call::ReadAll { accounts } => {
                if accounts.is_empty() {
                    return Err(HistoryError::EmptyRead { op: i });
                }
                let mut seen = BTreeSet::new();
                for account in accounts {
                    known(i, account)?;
                    if !seen.insert(account) {
                        return Err(HistoryError::DuplicateReadAccount {
                            op: i,
                            account: *account,
                        });
                    }
                }
                match &op.result {
                    OpResult::Ok(Value::Balances(values)) if values.len() != accounts.len() => {
                        return Err(HistoryError::ReadLength {
                            op: i,
                            accounts: accounts.len(),
                            values: values.len(),
                        })
                    }
                    OpResult::Ok(Value::Balances(_))
                    | OpResult::Fail(Fail::NotApplied { .. })
                    | OpResult::Unknown => {}
                    _ => return mismatch,
                }
            }
        }
    }
    Ok(supply)
}

/// What a transfer op's result says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `Ok`: applied now, or its id had applied (`Exists`).
    Applied,
    /// Ordered where `from` held less than `amount`.
    InsufficientFunds,
    /// No answer: applies when linearized.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
        expect: Expect,
        /// Bit in [`State::retried`] when several ops share this id.
        retry_bit: Option<u32>,
        /// Log mode: positions `[start, end)` of this id's log entry (the
        /// transfers of its index); `None` when the log lacks it.
        log_group: Option<(u32, u32)>,
    },
    /// Dense account index and the balance read.
    Read { values: Vec<(usize, u64)> },
}

/// One op as the search sees it.
#[derive(Clone, Debug)]
pub(crate) struct ModelOp {
    /// Index in `History::ops`.
    pub source: usize,
    pub invoke: u64,
    /// `None`: open (may be linearized any time after `invoke`, or never).
    pub complete: Option<u64>,
    pub action: Action,
}

/// Model state: hashed with the linearized set for memoization.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct State {
    /// By dense account index.
    pub balances: Vec<u64>,
    /// Bitset: which retried ids have applied.
    pub retried: Vec<u64>,
    /// Log mode: how many log entries have taken effect.
    pub log_applied: u32,
}

/// The model's answer for one op in one state.
pub(crate) enum Step {
    /// The op cannot take effect here with the result it had.
    Invalid,
    /// It can, and leaves the state as it is.
    Same,
    /// It can, and leads to this state.
    Next(State),
}

/// How the applied log constrains the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogUse {
    /// Ignore it: plain linearizability.
    Ignore,
    /// Follow its order; with `complete`, require all of it to take effect.
    Follow { complete: bool },
}

/// A history ready for the search.
pub(crate) struct Prepared {
    /// Dense index -> account id.
    pub accounts: Vec<AccountId>,
    pub initial: State,
    pub ops: Vec<ModelOp>,
    /// Log mode: (index, id) in the order the search follows.
    pub log: Vec<(u64, TransferId)>,
    /// Log entries the final state must have applied (0 if not required).
    pub required_log: u32,
    /// Whether the search follows the applied log.
    pub log_mode: bool,
}

impl Prepared {
    /// Builds the search input. `history` must have passed [`validate`].
    /// `cut_ns` keeps only what was known at that time: later invocations
    /// are dropped, later answers become unknown.
    pub fn new(history: &History, log: LogUse, cut_ns: Option<u64>) -> Prepared {
        let accounts: Vec<AccountId> = history.initial_balances.keys().copied().collect();
        let index: BTreeMap<AccountId, usize> =
            accounts.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        let dense = |account: &AccountId| index[account];
        let visible = |t: u64| cut_ns.is_none_or(|cut| t <= cut);

        // Ops with what the cut leaves of their results.
        let mut kept: Vec<(usize, Option<u64>, &Call, OpResult)> = Vec::new();
        for (i, op) in history.ops.iter().enumerate() {
            if !visible(op.invoke_ns) {
                continue;
            }
            let answered = op.result != OpResult::Unknown && op.complete_ns.is_some_and(visible);
            let result = if answered {
                op.result.clone()
            } else {
                OpResult::Unknown
            };
            let complete = if answered { op.complete_ns } else { None };
            kept.push((i, complete, &op.call, result));
        }

        // The log restricted to ids of visible transfers, one entry per id,
        // in index order, cut at the first id not (yet) invoked.
        let kept_ids: BTreeSet<TransferId> = kept
            .iter()
            .filter_map(|(_, _, call, _)| match call {
                Call::Transfer { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let (log_mode, complete_log) = match log {
            LogUse::Follow { complete } if history.applied.is_some() => (true, complete),
            _ => (false, false),
        };
        let mut groups: BTreeMap<TransferId, (u32, u32)> = BTreeMap::new();
        let mut log_len = 0u32;
        let mut log = Vec::new();
        if log_mode {
            let history_ids: BTreeSet<TransferId> = history
                .ops
                .iter()
                .filter_map(|op| match op.call {
                    Call::Transfer { id, .. } => Some(id),
                    _ => None,
                })
                .collect();
            let mut entries: Vec<(u64, TransferId)> = Vec::new();
            let mut seen = BTreeSet::new();
            for applied in history.applied.iter().flatten() {
                if history_ids.contains(&applied.id) && seen.insert(applied.id) {
                    entries.push((applied.index, applied.id));
                }
            }
            entries.sort_by_key(|(index, _)| *index);
            let cut = entries
                .iter()
                .position(|(_, id)| !kept_ids.contains(id))
                .unwrap_or(entries.len());
            entries.truncate(cut);
            let mut start = 0usize;
            while start < entries.len() {
                let end = start
                    + entries[start..]
                        .iter()
                        .take_while(|(index, _)| *index == entries[start].0)
                        .count();
                for (_, id) in &entries[start..end] {
                    groups.insert(*id, (start as u32, end as u32));
                }
                start = end;
            }
            log_len = entries.len() as u32;
            log = entries;
        }

        // Translate; drop what had no effect and saw nothing.
        let mut ops = Vec::new();
        let mut ids: Vec<Option<TransferId>> = Vec::new();
        for (source, complete, call, result) in kept {
            let invoke = history.ops[source].invoke_ns;
            let action = match (call, &result) {
                (_, OpResult::Fail(Fail::NotApplied { .. })) => continue,
                (Call::ReadBalance { .. } | Call::ReadAll { .. }, OpResult::Unknown) => continue,
                (Call::ReadBalance { account }, OpResult::Ok(Value::Balance(v))) => Action::Read {
                    values: vec![(dense(account), *v)],
                },
                (Call::ReadAll { accounts }, OpResult::Ok(Value::Balances(vs))) => Action::Read {
                    values: accounts.iter().map(dense).zip(vs.iter().copied()).collect(),
                },
                (
                    Call::Transfer {
                        id,
                        from,
                        to,
                        amount,
                    },
                    result,
                ) => {
                    let expect = match result {
                        OpResult::Ok(_) => Expect::Applied,
                        OpResult::Fail(_) => Expect::InsufficientFunds,
                        OpResult::Unknown => Expect::Unknown,
                    };
                    let log_group = groups.get(id).copied();
                    if log_mode && expect == Expect::Unknown && log_group.is_none() {
                        // Cannot take effect, and nothing was seen.
                        continue;
                    }
                    ids.push(Some(*id));
                    ops.push(ModelOp {
                        source,
                        invoke,
                        complete,
                        action: Action::Transfer {
                            from: dense(from),
                            to: dense(to),
                            amount: *amount,
                            expect,
                            retry_bit: None,
                            log_group,
                        },
                    });
                    continue;
                }
                // validate() rules out every other pairing.
                _ => continue,
            };
            ids.push(None);
            ops.push(ModelOp {
                source,
                invoke,
                complete,
                action,
            });
        }

        // Ids shared by several ops get a bit in the state.
        let mut count: BTreeMap<TransferId, usize> = BTreeMap::new();
        for id in ids.iter().flatten() {
            *count.entry(*id).or_default() += 1;
        }
        let mut bits: BTreeMap<TransferId, u32> = BTreeMap::new();
        for (id, n) in &count {
            if *n > 1 {
                let bit = bits.len() as u32;
                bits.insert(*id, bit);
            }
        }
        for (op, id) in ops.iter_mut().zip(&ids) {
            if let (Action::Transfer { retry_bit, .. }, Some(id)) = (&mut op.action, id) {
                *retry_bit = bits.get(id).copied();
            }
        }

        let initial = State {
            balances: history.initial_balances.values().copied().collect(),
            retried: vec![0; bits.len().div_ceil(64)],
            log_applied: 0,
        };
        Prepared {
            accounts,
            initial,
            ops,
            log,
            required_log: if complete_log { log_len } else { 0 },
            log_mode,
        }
    }

    /// Runs `op` on `state`.
    pub fn step(&self, state: &State, op: &ModelOp) -> Step {
        match &op.action {
            Action::Read { values } => {
                if values.iter().all(|(a, v)| state.balances[*a] == *v) {
                    Step::Same
                } else {
                    Step::Invalid
                }
            }
            Action::Transfer {
                from,
                to,
                amount,
                expect,
                retry_bit,
                log_group,
            } => {
                let applied_before =
                    retry_bit.is_some_and(|b| state.retried[b as usize / 64] >> (b % 64) & 1 == 1);
                match expect {
                    Expect::Applied if applied_before => Step::Same,
                    Expect::InsufficientFunds => {
                        if applied_before || state.balances[*from] >= *amount {
                            Step::Invalid
                        } else {
                            Step::Same
                        }
                    }
                    // An open op linearized as a no-op is dominated by
                    // leaving it open: only its effect is worth trying.
                    Expect::Unknown if applied_before => Step::Invalid,
                    Expect::Applied | Expect::Unknown => {
                        self.apply(state, *from, *to, *amount, *retry_bit, *log_group)
                    }
                }
            }
        }
    }

    fn apply(
        &self,
        state: &State,
        from: usize,
        to: usize,
        amount: u64,
        retry_bit: Option<u32>,
        log_group: Option<(u32, u32)>,
    ) -> Step {
        if state.balances[from] < amount {
            return Step::Invalid;
        }
        if self.log_mode {
            match log_group {
                Some((start, end)) if (start..end).contains(&state.log_applied) => {}
                _ => return Step::Invalid,
            }
        }
        let Some(credited) = state.balances[to].checked_add(amount) else {
            return Step::Invalid;
        };
        let mut next = state.clone();
        next.balances[from] -= amount;
        next.balances[to] = credited;
        if let Some(b) = retry_bit {
            next.retried[b as usize / 64] |= 1 << (b % 64);
        }
        if self.log_mode {
            next.log_applied += 1;
        }
        Step::Next(next)
    }

    /// Whether a state may end the linearization (all completed ops done).
    pub fn is_final(&self, state: &State) -> bool {
        state.log_applied >= self.required_log
    }

    /// Balances of `state` by account id, for reports.
    pub fn balances(&self, state: &State) -> BTreeMap<AccountId, u64> {
        self.accounts
            .iter()
            .copied()
            .zip(state.balances.iter().copied())
            .collect()
    }
}
