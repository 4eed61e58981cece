//! What the clients did and saw: operations with real-time intervals and
//! results, the balances the run started from, and the transfers the
//! cluster says it applied. Saved as JSON so a failing run can be checked
//! again without the cluster.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// A bank account id (the ledger's `u128`).
pub type AccountId = u128;
/// A client-chosen transfer id; the ledger applies each id at most once.
pub type TransferId = u128;

/// What a client asked the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// Move `amount` from `from` to `to`, signed by `from`'s owner. A retry
    /// after a timeout reuses the id (and must reuse every field).
    Transfer {
        id: TransferId,
        from: AccountId,
        to: AccountId,
        amount: u64,
    },
    /// A linearizable read of one balance.
    ReadBalance { account: AccountId },
    /// A linearizable read of several balances answered from one state (one
    /// request, one read index). Only an atomic read may be recorded as one
    /// op: per-account queries issued one after another are separate
    /// `ReadBalance` ops.
    ReadAll { accounts: Vec<AccountId> },
}

/// What the cluster answered, as far as the client knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// Completed and took effect (a transfer: bank outcome `Ok`, or
    /// `Exists` for a retry of an id that had applied).
    Ok(Value),
    /// Completed and definitely had no effect.
    Fail(Fail),
    /// No answer (timeout, connection lost): the op may take effect at any
    /// time after its invocation, or never. Jepsen's `info`.
    Unknown,
}

/// The value returned with [`OpResult::Ok`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A transfer applied (now, or earlier under the same id).
    Transferred,
    /// Answer to [`Call::ReadBalance`].
    Balance(u64),
    /// Answer to [`Call::ReadAll`], in the order of its `accounts`.
    Balances(Vec<u64>),
}

/// Why an op definitely had no effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fail {
    /// Bank outcome `InsufficientFunds`: the transfer was ordered at a point
    /// where `from` held less than `amount`. An observation of the state,
    /// checked by the model.
    InsufficientFunds,
    /// Refused before it could take effect, saying nothing about the state
    /// (e.g. "not the leader" before proposing). `reason` is for reports.
    NotApplied { reason: String },
}

/// One client operation: invocation, completion, call and result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client thread that issued it (one op at a time per process).
    pub process: usize,
    /// When the request was sent, ns on the test's monotonic clock.
    pub invoke_ns: u64,
    /// When the answer arrived. Required for `Ok` and `Fail`; for
    /// `Unknown` it is when the client gave up, and is only reported.
    pub complete_ns: Option<u64>,
    pub call: Call,
    pub result: OpResult,
}

/// A transfer the cluster applied, as fetched after the run (the ledger's
/// `AppliedTransfer`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedTransfer {
    pub id: TransferId,
    pub from: AccountId,
    pub to: AccountId,
    pub amount: u64,
    /// Log index of the entry that applied it. Transfers of one entry share
    /// it; their order inside the entry is left free by the checker.
    pub index: u64,
}

/// Everything the checker needs, and what is saved for a re-check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Balance of every account the clients use when the first op was
    /// invoked. The supply is their sum; no other account may be touched.
    pub initial_balances: BTreeMap<AccountId, u64>,
    /// Ops in any order (the checker orders them by time).
    pub ops: Vec<Op>,
    /// Every transfer the cluster applied since the history began, fetched
    /// after the run; `None` when the test could not fetch it. Enables the
    /// exactly-once checks and the log-ordered linearizability search.
    pub applied: Option<Vec<AppliedTransfer>>,
}

/// A history file that could not be written or read.
#[derive(Debug)]
pub enum HistoryFileError {
    Io(std::io::Error),
    Json(serde_json::Error),
}

impl fmt::Display for HistoryFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryFileError::Io(e) => write!(f, "history file: {e}"),
            HistoryFileError::Json(e) => write!(f, "history file is not a valid history: {e}"),
        }
    }
}

impl std::error::Error for HistoryFileError {}

impl History {
    /// Writes the history as JSON (one file, re-checkable with [`History::load`]).
    pub fn save(&self, path: &Path) -> Result<(), HistoryFileError> {
        let json = serde_json::to_vec_pretty(self).map_err(HistoryFileError::Json)?;
        std::fs::write(path, json).map_err(HistoryFileError::Io)
    }

    /// Reads a history written by [`History::save`].
    pub fn load(path: &Path) -> Result<History, HistoryFileError> {
        let bytes = std::fs::read(path).map_err(HistoryFileError::Io)?;
        serde_json::from_slice(&bytes).map_err(HistoryFileError::Json)
    }

    /// The sum of the initial balances, `None` if it overflows `u64`.
    pub fn supply(&self) -> Option<u64> {
        self.initial_balances
            .values()
            .try_fold(0u64, |sum, b| sum.checked_add(*b))
    }
}

/// Records ops from several client threads against one clock.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

/// An op that has been sent and not yet answered; hand it back to
/// [`Recorder::complete`]. Dropping it loses the op, which would hide a
/// possible effect from the checker: complete it with `Unknown` instead.
#[must_use = "complete the invocation, with OpResult::Unknown on timeout"]
pub struct Invocation {
    process: usize,
    invoke_ns: u64,
    call: Call,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Call just before sending the request.
    pub fn invoke(&self, process: usize, call: Call) -> Invocation {
        Invocation {
            process,
            invoke_ns: self.now_ns(),
            call,
        }
    }

    /// Call as soon as the answer (or the timeout) is known.
    pub fn complete(&self, invocation: Invocation, result: OpResult) {
        let op = Op {
            process: invocation.process,
            invoke_ns: invocation.invoke_ns,
            complete_ns: Some(self.now_ns()),
            call: invocation.call,
            result,
        };
        // A poisoned lock only means another client thread panicked; the
        // ops it holds are still whole.
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    /// The recorded history, ops sorted by invocation time.
    pub fn into_history(
        self,
        initial_balances: BTreeMap<AccountId, u64>,
        applied: Option<Vec<AppliedTransfer>>,
    ) -> History {
        let mut ops = self.ops.into_inner().unwrap_or_else(|e| e.into_inner());
        ops.sort_by_key(|op| (op.invoke_ns, op.process));
        History {
            initial_balances,
            ops,
            applied,
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// `ns` as milliseconds with µs precision, for reports.
pub(crate) fn fmt_ms(ns: u64) -> String {
    format!("{}.{:06}ms", ns / 1_000_000, ns % 1_000_000)
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Transfer {
                id,
                from,
                to,
                amount,
            } => write!(f, "transfer {id:#x}: {amount} from account {from} to {to}"),
            Call::ReadBalance { account } => write!(f, "read account {account}"),
            Call::ReadAll { accounts } => {
                write!(f, "read accounts ")?;
                write_list(f, accounts)
            }
        }
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    write!(f, "[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            write!(f, ", ")?;
        }
        write!(f, "{item}")?;
    }
    write!(f, "]")
}

impl fmt::Display for OpResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpResult::Ok(Value::Transferred) => write!(f, "ok"),
            OpResult::Ok(Value::Balance(b)) => write!(f, "{b}"),
            OpResult::Ok(Value::Balances(bs)) => write_list(f, bs),
            OpResult::Fail(Fail::InsufficientFunds) => write!(f, "failed: insufficient funds"),
            OpResult::Fail(Fail::NotApplied { reason }) => write!(f, "failed: {reason}"),
            OpResult::Unknown => write!(f, "unknown (no answer)"),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = match self.complete_ns {
            Some(ns) if self.result != OpResult::Unknown => fmt_ms(ns),
            _ => "open".to_string(),
        };
        write!(
            f,
            "process {} [{} .. {}] {} => {}",
            self.process,
            fmt_ms(self.invoke_ns),
            end,
            self.call,
            self.result
        )
    }
}
