//! The ledger state and the `apply` loop the node drives.
//!
//! `apply(index, entry)` decodes the entry, verifies every signature (batched,
//! see `verify.rs`), executes the commands in order (`execute.rs`), extends
//! the receipt chain and then asserts the ledger invariants. The caller (the
//! node) must feed committed entries in log order with strictly increasing
//! indices; gaps are allowed (Raft entries that are not bank commands).

use crate::codec::Put;
use crate::command::{AccountFlags, Command};
use crate::dedup::{DecidedTransfer, IdIndex};
use crate::entry::Entry;
use crate::outcome::Outcome;
use crate::receipt::{self, ReceiptChainHash};
use crate::session::SessionTable;
use crate::verdicts::VerdictMemo;
use crate::verify::{self, OwnerKey, VerifyItem};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

/// Memory bounds, fixed at genesis and part of the replicated state (every
/// replica must refuse at the same point). Derive them from a heap budget
/// with [`Limits::for_heap`]; the per-record costs it divides by are
/// measured (allocator-counted, B-tree slack included) by
/// `tests/memory.rs`, which fails if a record outgrows its constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most accounts ([`ACCOUNT_COST_BYTES`] each). Beyond it account
    /// creation gets `AccountsFull`; accounts are never deleted.
    pub max_accounts: u64,
    /// Most transfer ids inside the dedup window at once
    /// ([`DECIDED_TRANSFER_COST_BYTES`] each): every decided id is kept
    /// until its `expires_at` passes in log time (`dedup.rs`), so the need
    /// is (decisions per second × window). When full, new transfers get
    /// `TransfersFull` until ids expire; nothing live is evicted.
    pub max_transfers: u64,
    /// Most client sessions, LRU-evicted (`session.rs`;
    /// [`SESSION_COST_BYTES`] each). Sessions only order a client's
    /// requests; exactly-once does not depend on them.
    pub max_sessions: u64,
}

/// Heap bytes one account costs in the ledger's tables (measured upper
/// bound, see `tests/memory.rs`).
pub const ACCOUNT_COST_BYTES: u64 = 160;
/// Heap bytes one decided transfer id costs (id map + expiry index).
pub const DECIDED_TRANSFER_COST_BYTES: u64 = 320;
/// Heap bytes one client session costs (session map + age index).
pub const SESSION_COST_BYTES: u64 = 320;
/// Heap budget of [`Limits::default`], in MiB.
pub const DEFAULT_LEDGER_HEAP_MIB: u64 = 64;
/// Default genesis [`GenesisConfig::max_expiry_window_ms`]: 10 minutes.
pub const DEFAULT_MAX_EXPIRY_WINDOW_MS: u64 = 10 * 60 * 1000;

impl Limits {
    /// Limits for a node heap of `heap_mib` MiB: 2/5 of it for accounts,
    /// 1/4 for the dedup window's ids, 1/20 for sessions; the remaining 30 %
    /// is left for the Raft log cache, network buffers and the snapshot
    /// being written (whose size is about a third of the tables'). Every
    /// replica must use the same `heap_mib` (the limits decide outcomes), so
    /// it is a cluster-wide genesis value, not each node's own heap size.
    /// `for_heap(512)` allows 1,342,177 accounts.
    pub const fn for_heap(heap_mib: u64) -> Limits {
        let heap = heap_mib.saturating_mul(1 << 20);
        Limits {
            max_accounts: at_least_one(heap / 5 * 2 / ACCOUNT_COST_BYTES),
            max_transfers: at_least_one(heap / 4 / DECIDED_TRANSFER_COST_BYTES),
            max_sessions: at_least_one(heap / 20 / SESSION_COST_BYTES),
        }
    }

    /// Heap bytes the ledger's tables use when every limit is reached.
    pub const fn full_table_bytes(&self) -> u64 {
        self.max_accounts * ACCOUNT_COST_BYTES
            + self.max_transfers * DECIDED_TRANSFER_COST_BYTES
            + self.max_sessions * SESSION_COST_BYTES
    }
}

const fn at_least_one(n: u64) -> u64 {
    if n == 0 {
        1
    } else {
        n
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::for_heap(DEFAULT_LEDGER_HEAP_MIB)
    }
}

/// Everything the cluster configuration says about the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenesisConfig {
    /// Bound into every signed message (no cross-cluster replay).
    pub cluster_id: u128,
    /// Signs account creation; owns the reserve account.
    pub operator_key: [u8; 32],
    /// Account that holds the whole supply at genesis.
    pub reserve_account: u128,
    /// Total money; conserved for ever.
    pub supply: u64,
    /// Table sizes; a full table decides outcomes (`AccountsFull`, `TransfersFull`).
    pub limits: Limits,
    /// Longest validity a command may ask for: `expires_at` at most this
    /// many milliseconds beyond the entry's log time, else `ExpiryTooFar`.
    /// It bounds how long an id must be remembered, so with the decision
    /// rate it sizes `limits.max_transfers`. Default
    /// [`DEFAULT_MAX_EXPIRY_WINDOW_MS`] (10 min); shorten it for a busier
    /// cluster, lengthen it for clients that retry for longer.
    pub max_expiry_window_ms: u64,
}

/// Length of [`GenesisConfig::encode`].
pub const GENESIS_CONFIG_LEN: usize = 16 + 32 + 16 + 8 + 3 * 8 + 8;

impl GenesisConfig {
    /// Fixed-width encoding (genesis chain head, snapshots).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u128(self.cluster_id);
        out.put_bytes(&self.operator_key);
        out.put_u128(self.reserve_account);
        out.put_u64(self.supply);
        out.put_u64(self.limits.max_accounts);
        out.put_u64(self.limits.max_transfers);
        out.put_u64(self.limits.max_sessions);
        out.put_u64(self.max_expiry_window_ms);
    }
}

/// Why a genesis configuration is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenesisError {
    /// The operator key is not a valid, torsion-free Ed25519 point.
    InvalidOperatorKey,
    /// A limit is zero (the reserve account and one session must fit).
    ZeroLimit,
    /// `max_expiry_window_ms` is zero: no command could ever apply.
    ZeroExpiryWindow,
}

impl fmt::Display for GenesisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenesisError::InvalidOperatorKey => f.write_str("invalid operator key"),
            GenesisError::ZeroLimit => f.write_str("a ledger limit is zero"),
            GenesisError::ZeroExpiryWindow => f.write_str("the maximum expiry window is zero"),
        }
    }
}

/// One account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's id.
    pub id: u128,
    /// The owner key, compressed: it passed [`OwnerKey::parse`] when the
    /// account opened. Kept as 32 bytes rather than a decompressed point
    /// (192 bytes) so a million accounts fit in a few hundred MiB; it is
    /// decompressed again when a signature is checked ([`Account::owner_key`]).
    pub owner: [u8; 32],
    /// What the account may do.
    pub flags: AccountFlags,
    /// Units it holds.
    pub balance: u64,
}

impl Account {
    /// The owner key, ready to verify with (`None`: the stored bytes do
    /// not decompress, which only a forged snapshot could cause; nothing
    /// verifies under such an account).
    pub fn owner_key(&self) -> Option<OwnerKey> {
        OwnerKey::from_stored(&self.owner)
    }
}

/// What one `apply` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyResult {
    /// Log index of the applied entry.
    pub index: u64,
    /// One outcome per command in entry order, or a single
    /// `Outcome::Malformed` when the entry did not decode.
    pub outcomes: Vec<Outcome>,
    /// Receipt chain head after this entry.
    pub chain_head: ReceiptChainHash,
}

/// Whether signatures are checked: always, except when re-applying an
/// entry this replica applied before with no `BadSignature` outcome
/// ([`Ledger::reapply_clean`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checking {
    Verify,
    AssumeValid,
}

/// The replicated ledger state machine. Equality compares the replicated
/// state only (not the local `batch_verify` knob).
#[derive(Clone, Debug)]
pub struct Ledger {
    pub(crate) config: GenesisConfig,
    pub(crate) operator: OwnerKey,
    pub(crate) accounts: BTreeMap<u128, Account>,
    pub(crate) transfers: IdIndex,
    pub(crate) sessions: SessionTable,
    pub(crate) applied_index: u64,
    /// Log time: the largest entry HLC (milliseconds) applied so far. It
    /// never goes back, whatever the stamps of later entries say, so an id
    /// forgotten at log time `t` can never meet a log time below `t` again.
    pub(crate) log_time_ms: u64,
    pub(crate) chain_head: ReceiptChainHash,
    /// Local performance knob, not replicated state (outcomes do not depend
    /// on it): verify an entry's signatures as one batch. Default true.
    pub(crate) batch_verify: bool,
}

impl PartialEq for Ledger {
    fn eq(&self, other: &Ledger) -> bool {
        self.config == other.config
            && self.operator == other.operator
            && self.accounts == other.accounts
            && self.transfers == other.transfers
            && self.sessions == other.sessions
            && self.applied_index == other.applied_index
            && self.log_time_ms == other.log_time_ms
            && self.chain_head == other.chain_head
    }
}

impl Eq for Ledger {}

impl Ledger {
    /// The ledger before any entry: the whole supply in the reserve account,
    /// owned by the operator key. Applied index 0.
    pub fn genesis(config: GenesisConfig) -> Result<Ledger, GenesisError> {
        let operator =
            OwnerKey::parse(&config.operator_key).ok_or(GenesisError::InvalidOperatorKey)?;
        let l = config.limits;
        if l.max_accounts == 0 || l.max_transfers == 0 || l.max_sessions == 0 {
            return Err(GenesisError::ZeroLimit);
        }
        if config.max_expiry_window_ms == 0 {
            return Err(GenesisError::ZeroExpiryWindow);
        }
        let mut accounts = BTreeMap::new();
        accounts.insert(
            config.reserve_account,
            Account {
                id: config.reserve_account,
                owner: config.operator_key,
                flags: AccountFlags::empty(),
                balance: config.supply,
            },
        );
        let mut encoded = Vec::with_capacity(GENESIS_CONFIG_LEN);
        config.encode(&mut encoded);
        let ledger = Ledger {
            config,
            operator,
            accounts,
            transfers: IdIndex::new(l.max_transfers),
            sessions: SessionTable::new(l.max_sessions),
            applied_index: 0,
            log_time_ms: 0,
            chain_head: receipt::genesis_head(&encoded),
            batch_verify: true,
        };
        ledger.assert_invariants();
        Ok(ledger)
    }

    /// Decodes, verifies and executes one committed log entry whose HLC (as
    /// stamped by the leader that proposed it, in milliseconds) is
    /// `entry_hlc_ms`. The log time becomes `max(log time, entry_hlc_ms)`;
    /// ids whose `expires_at` is now past are forgotten first (`dedup.rs`).
    ///
    /// Never panics on any `entry_bytes`: a malformed entry is the outcome
    /// `Malformed` (recorded in the receipt chain). Panics if `index` is not
    /// above the applied index (a caller bug: the log is applied out of
    /// order) or if a ledger invariant breaks (see `assert_invariants`).
    pub fn apply(&mut self, index: u64, entry_hlc_ms: u64, entry_bytes: &[u8]) -> ApplyResult {
        self.apply_checked(index, entry_hlc_ms, entry_bytes, Checking::Verify, None)
    }

    /// [`Ledger::apply`], taking signature verdicts from `memo` where it
    /// holds them (and consuming them); the outcome is the same as
    /// `apply`'s whatever the memo holds (`verdicts.rs`).
    pub fn apply_with_memo(
        &mut self,
        index: u64,
        entry_hlc_ms: u64,
        entry_bytes: &[u8],
        memo: &mut VerdictMemo,
    ) -> ApplyResult {
        self.apply_checked(
            index,
            entry_hlc_ms,
            entry_bytes,
            Checking::Verify,
            Some(memo),
        )
    }

    /// Re-applies an entry this replica applied before, from its own disk,
    /// when that apply had **no `BadSignature` outcome**: every signature
    /// check it made came out valid, and a verdict is a pure function of
    /// the bytes (`verify.rs`), so the checks are skipped and the outcomes
    /// and chain head are exactly the first apply's. The node uses it for
    /// the tail of its log at restart up to the clean mark its records
    /// carry (node `disk_log.rs`). For any other entry, use
    /// [`Ledger::apply_with_memo`]: skipping a check that would fail
    /// changes the outcome.
    pub fn reapply_clean(
        &mut self,
        index: u64,
        entry_hlc_ms: u64,
        entry_bytes: &[u8],
    ) -> ApplyResult {
        self.apply_checked(
            index,
            entry_hlc_ms,
            entry_bytes,
            Checking::AssumeValid,
            None,
        )
    }

    /// Verifies, ahead of apply, the signatures of a log entry not yet
    /// applied, and remembers the verdicts in `memo` for
    /// [`Ledger::apply_with_memo`]. Signers are resolved against the ledger
    /// now plus the entry's own account creations; a transfer whose account
    /// is created by an entry not yet applied is skipped (apply verifies
    /// it). Returns how many signatures were verified (memo hits cost
    /// none). Never panics on any bytes.
    pub fn preverify_into(&self, entry_bytes: &[u8], memo: &mut VerdictMemo) -> usize {
        match Entry::decode(entry_bytes) {
            Ok(entry) => self.preverify(&entry, Some(memo), false).1,
            Err(_) => 0,
        }
    }

    pub(crate) fn apply_checked(
        &mut self,
        index: u64,
        entry_hlc_ms: u64,
        entry_bytes: &[u8],
        checking: Checking,
        memo: Option<&mut VerdictMemo>,
    ) -> ApplyResult {
        assert!(
            index > self.applied_index,
            "applied index must strictly increase: {} after {}",
            index,
            self.applied_index
        );
        self.log_time_ms = self.log_time_ms.max(entry_hlc_ms);
        self.transfers.forget_expired(self.log_time_ms);
        let outcomes = match Entry::decode(entry_bytes) {
            Err(e) => alloc::vec![Outcome::Malformed(e)],
            Ok(entry) => {
                let verdicts = match checking {
                    Checking::Verify => self.preverify(&entry, memo, true).0,
                    Checking::AssumeValid => alloc::vec![None; entry.commands().len()],
                };
                entry
                    .commands()
                    .iter()
                    .zip(verdicts)
                    .map(|(c, v)| self.execute(index, c, v, checking))
                    .collect()
            }
        };
        self.applied_index = index;
        self.chain_head = receipt::extend(
            &self.chain_head,
            index,
            self.log_time_ms,
            entry_bytes,
            &outcomes,
        );
        self.assert_invariants();
        ApplyResult {
            index,
            outcomes,
            chain_head: self.chain_head,
        }
    }

    /// Verifies all signatures of `entry` at once (see `verify.rs`). The
    /// signer of each command is resolved against the state at entry start
    /// plus accounts that earlier commands of the same entry would create;
    /// `execute` re-checks that the signer it finds is the key verified here
    /// and otherwise verifies alone, so the outcome equals sequential
    /// one-by-one verification. With a memo, verdicts it holds are used
    /// (and consumed when `consume`); new ones are remembered otherwise.
    /// Also returns how many signatures were verified.
    fn preverify(
        &self,
        entry: &Entry,
        memo: Option<&mut VerdictMemo>,
        consume: bool,
    ) -> (Vec<Option<Verdict>>, usize) {
        let mut pending_owners: BTreeMap<u128, OwnerKey> = BTreeMap::new();
        let mut messages = Vec::with_capacity(entry.commands().len());
        let mut signers = Vec::with_capacity(entry.commands().len());
        for signed in entry.commands() {
            let signer = match &signed.command {
                Command::CreateAccount(c) => {
                    if !self.accounts.contains_key(&c.id) && !pending_owners.contains_key(&c.id) {
                        if let Some(owner) = OwnerKey::parse(&c.owner) {
                            pending_owners.insert(c.id, owner);
                        }
                    }
                    Some(self.operator)
                }
                Command::Transfer(t) => self
                    .accounts
                    .get(&t.from)
                    .and_then(Account::owner_key)
                    .or_else(|| pending_owners.get(&t.from).copied()),
            };
            signers.push(signer);
            messages.push(signed.command.signing_message(self.config.cluster_id));
        }
        let mut slots = Vec::with_capacity(signers.len());
        let mut items = Vec::with_capacity(signers.len());
        for (i, signer) in signers.iter().enumerate() {
            if let Some(key) = signer {
                slots.push(i);
                items.push(VerifyItem {
                    key: *key,
                    message: messages[i].as_bytes(),
                    signature: &entry.commands()[i].signature,
                });
            }
        }
        let (valid, verified) = match memo {
            None => (verify::verify_all(&items, self.batch_verify), items.len()),
            Some(memo) if consume => {
                let before = memo.misses();
                let valid = memo.verify_and_consume(&items, self.batch_verify);
                (valid, (memo.misses() - before) as usize)
            }
            Some(memo) => memo.verify_and_remember(&items, self.batch_verify),
        };
        let mut verdicts = alloc::vec![None; signers.len()];
        for ((slot, item), ok) in slots.into_iter().zip(items.iter()).zip(valid) {
            verdicts[slot] = Some(Verdict {
                key: *item.key.as_bytes(),
                valid: ok,
            });
        }
        (verdicts, verified)
    }

    /// Production invariants, checked after every apply (TigerBeetle style:
    /// halt loudly rather than continue with corrupt money).
    pub fn assert_invariants(&self) {
        let mut sum: u128 = 0;
        for (id, a) in &self.accounts {
            assert_eq!(*id, a.id, "account keyed under a different id");
            // Balances are u64, so "no negative balance" is structural; the
            // u128 sum cannot overflow for < 2^64 accounts.
            sum += u128::from(a.balance);
        }
        assert_eq!(
            sum,
            u128::from(self.config.supply),
            "conservation violated: balances do not sum to the supply"
        );
        assert!(self.accounts.len() as u64 <= self.config.limits.max_accounts);
        self.transfers.assert_consistent(self.log_time_ms);
        assert!(self.sessions.len() as u64 <= self.config.limits.max_sessions);
    }

    /// Turns batch signature verification on or off for this replica. It
    /// changes speed only, never an outcome (`verify.rs`), so replicas may
    /// differ here. Not part of snapshots; restored ledgers batch.
    pub fn set_batch_verification(&mut self, batch: bool) {
        self.batch_verify = batch;
    }

    /// Balance of `account`, if it exists.
    pub fn balance(&self, account: u128) -> Option<u64> {
        self.accounts.get(&account).map(|a| a.balance)
    }

    /// The account record, if it exists.
    pub fn account(&self, account: u128) -> Option<&Account> {
        self.accounts.get(&account)
    }

    /// `Some` if transfer `id` was decided (applied or rejected) and is
    /// still inside its dedup window, with the deciding entry's index and
    /// outcome. `None` means "not decided within the window": never
    /// submitted, not yet applied, refused without a decision (bad
    /// signature, `TransfersFull`, ...), or expired from the dedup window —
    /// a transfer whose `expires_at` is below [`Ledger::log_time_ms`] can
    /// never apply any more.
    pub fn transfer_outcome(&self, id: u128) -> Option<&DecidedTransfer> {
        self.transfers.get(&id)
    }

    /// The log time: the largest entry HLC applied, in milliseconds.
    pub fn log_time_ms(&self) -> u64 {
        self.log_time_ms
    }

    /// Last `(seq, transfer id, outcome)` of a client session.
    pub fn session_outcome(&self, account: u128, client: u128) -> Option<(u64, u128, Outcome)> {
        self.sessions
            .get(&(account, client))
            .map(|s| (s.last_seq, s.last_id, s.last_outcome))
    }

    /// `(applied index, receipt chain head)`.
    pub fn chain_head(&self) -> (u64, ReceiptChainHash) {
        (self.applied_index, self.chain_head)
    }

    /// Log index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The genesis this ledger started from.
    pub fn config(&self) -> &GenesisConfig {
        &self.config
    }

    /// Number of accounts, decided transfer ids inside the window, and
    /// sessions.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.accounts.len(),
            self.transfers.len(),
            self.sessions.len(),
        )
    }
}

/// The result of pre-verifying one command's signature against `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub key: [u8; 32],
    pub valid: bool,
}
