//! Snapshots: the whole ledger state as bytes, and a total, checksummed
//! restore.
//!
//! Layout (all integers little-endian; maps in ascending key order, so equal
//! states give equal bytes):
//!
//! | field | size |
//! |---|---|
//! | magic `CBSNAP02` | 8 |
//! | genesis config | 104 |
//! | applied index | 8 |
//! | log time ms | 8 |
//! | chain head | 32 |
//! | account count, accounts × (id 16, owner 32, flags 2, balance 8) | 8 + 58·n |
//! | decided-id count, decided × (id 16, from 16, to 16, amount 8, client 16, seq 8, expires_at 8, index 8, outcome 1) | 8 + 97·n |
//! | session count, sessions × (account 16, client 16, seq 8, id 16, to 16, amount 8, outcome 1, index 8) | 8 + 89·n |
//! | SHA-256 of everything above | 32 |
//!
//! `restore` checks the checksum first, then decodes with every count
//! bounded by the genesis limits *and* by the bytes present before anything is
//! allocated, requires strictly increasing keys, cross-references (a decided
//! id is inside its window and its outcome is a decision, the reserve is the
//! operator's) and re-checks conservation. Any violation is a
//! [`SnapshotError`], never a panic.
//!
//! Owner keys are *not* re-validated (canonical, torsion-free point): each
//! passed `OwnerKey::parse` when its account opened, and the checksum (plus
//! the storage's and Raft's SHA-256 of the snapshot) proves the bytes are
//! what a ledger wrote. Re-validating cost ~167 µs per account (100,000
//! accounts: 16.7 s, `tests/restore_speed.rs`), far over a restart budget
//! of 2 s at a million accounts. A stored key that does not even decompress
//! (a forged snapshot) makes that account's signatures fail, never panic.

use crate::codec::{DecodeError, Put, Reader};
use crate::command::{AccountFlags, Transfer};
use crate::dedup::DecidedTransfer;
use crate::ledger::{Account, GenesisConfig, Ledger, Limits};
use crate::outcome::Outcome;
use crate::session::Session;
use alloc::vec::Vec;
use core::fmt;
use sha2::{Digest, Sha256};

/// First bytes of every snapshot (format version 01).
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"CBSNAP02";
const ACCOUNT_LEN: usize = 58;
const TRANSFER_LEN: usize = 97;
const SESSION_LEN: usize = 89;
const CHECKSUM_LEN: usize = 32;

/// Why snapshot bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// Shorter than a checksum.
    TooShort,
    /// The trailing SHA-256 does not match the content.
    ChecksumMismatch,
    /// Wrong magic/version.
    BadMagic,
    /// A field did not decode.
    Decode(DecodeError),
    /// The embedded genesis config is unusable.
    InvalidConfig,
    /// A count exceeds its genesis limit.
    LimitExceeded,
    /// Map keys not strictly increasing (duplicate or unordered).
    UnorderedKeys,
    /// Records that contradict each other or the applied index.
    Inconsistent,
    /// Balances do not sum to the supply.
    SupplyMismatch,
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::TooShort => f.write_str("snapshot too short"),
            SnapshotError::ChecksumMismatch => f.write_str("snapshot checksum mismatch"),
            SnapshotError::BadMagic => f.write_str("not a version-02 ledger snapshot"),
            SnapshotError::Decode(e) => write!(f, "snapshot field: {e}"),
            SnapshotError::InvalidConfig => f.write_str("snapshot genesis config invalid"),
            SnapshotError::LimitExceeded => f.write_str("snapshot count exceeds a limit"),
            SnapshotError::UnorderedKeys => f.write_str("snapshot keys not strictly increasing"),
            SnapshotError::Inconsistent => f.write_str("snapshot records are inconsistent"),
            SnapshotError::SupplyMismatch => f.write_str("snapshot balances do not sum to supply"),
        }
    }
}

impl From<DecodeError> for SnapshotError {
    fn from(e: DecodeError) -> SnapshotError {
        SnapshotError::Decode(e)
    }
}

impl From<continuum_base::bytes::Truncated> for SnapshotError {
    fn from(t: continuum_base::bytes::Truncated) -> SnapshotError {
        SnapshotError::Decode(t.into())
    }
}

impl From<continuum_base::bytes::Trailing> for SnapshotError {
    fn from(t: continuum_base::bytes::Trailing) -> SnapshotError {
        SnapshotError::Decode(t.into())
    }
}

impl Ledger {
    /// The whole state as bytes (see module doc).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            8 + crate::ledger::GENESIS_CONFIG_LEN
                + 8
                + 8
                + 32
                + 24
                + CHECKSUM_LEN
                + self.accounts.len() * ACCOUNT_LEN
                + self.transfers.len() * TRANSFER_LEN
                + self.sessions.len() * SESSION_LEN,
        );
        out.put_bytes(SNAPSHOT_MAGIC);
        self.config.encode(&mut out);
        out.put_u64(self.applied_index);
        out.put_u64(self.log_time_ms);
        out.put_bytes(&self.chain_head);
        out.put_u64(self.accounts.len() as u64);
        for a in self.accounts.values() {
            out.put_u128(a.id);
            out.put_bytes(&a.owner);
            out.put_u16(a.flags.bits());
            out.put_u64(a.balance);
        }
        out.put_u64(self.transfers.len() as u64);
        for r in self.transfers.iter() {
            let t = &r.transfer;
            out.put_u128(t.id);
            out.put_u128(t.from);
            out.put_u128(t.to);
            out.put_u64(t.amount);
            out.put_u128(t.client);
            out.put_u64(t.seq);
            out.put_u64(t.expires_at);
            out.put_u64(r.index);
            out.put_u8(r.outcome.code());
        }
        out.put_u64(self.sessions.len() as u64);
        for (key, s) in self.sessions.iter() {
            out.put_u128(key.0);
            out.put_u128(key.1);
            out.put_u64(s.last_seq);
            out.put_u128(s.last_id);
            out.put_u128(s.last_to);
            out.put_u64(s.last_amount);
            out.put_u8(s.last_outcome.code());
            out.put_u64(s.last_index);
        }
        let checksum: [u8; 32] = Sha256::digest(&out).into();
        out.put_bytes(&checksum);
        out
    }

    /// Rebuilds a ledger from [`Ledger::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Ledger, SnapshotError> {
        if bytes.len() < CHECKSUM_LEN {
            return Err(SnapshotError::TooShort);
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let expected: [u8; 32] = Sha256::digest(body).into();
        if expected.as_slice() != checksum {
            return Err(SnapshotError::ChecksumMismatch);
        }
        Ledger::restore_body(body)
    }

    /// [`Ledger::restore`] of bytes the caller has already checked, whole,
    /// against a SHA-256 it trusts: the store's snapshot data hash at open,
    /// or InstallSnapshot's whole-snapshot hash before the switch. The
    /// trailer's own SHA-256 is not computed again (a second pass over a
    /// multi-megabyte snapshot was a fifth of a TCG restart, issue 12);
    /// every structural check still runs, so any bytes give a ledger or a
    /// [`SnapshotError`], never a panic.
    pub fn restore_vouched(bytes: &[u8]) -> Result<Ledger, SnapshotError> {
        if bytes.len() < CHECKSUM_LEN {
            return Err(SnapshotError::TooShort);
        }
        Ledger::restore_body(&bytes[..bytes.len() - CHECKSUM_LEN])
    }

    fn restore_body(body: &[u8]) -> Result<Ledger, SnapshotError> {
        let mut r = Reader::new(body);
        if &r.array::<8>()? != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let config = GenesisConfig {
            cluster_id: r.u128()?,
            operator_key: r.array()?,
            reserve_account: r.u128()?,
            supply: r.u64()?,
            limits: Limits {
                max_accounts: r.u64()?,
                max_transfers: r.u64()?,
                max_sessions: r.u64()?,
            },
            max_expiry_window_ms: r.u64()?,
        };
        // Genesis validates the config and yields the operator key.
        let mut ledger = Ledger::genesis(config).map_err(|_| SnapshotError::InvalidConfig)?;
        ledger.accounts.clear();
        ledger.applied_index = r.u64()?;
        ledger.log_time_ms = r.u64()?;
        ledger.chain_head = r.array()?;

        let n = bounded_count(&mut r, config.limits.max_accounts, ACCOUNT_LEN)?;
        let mut sum: u128 = 0;
        // Collected in order, then bulk-built: a sorted `collect` builds the
        // tree in one pass, faster than a million single inserts.
        let mut accounts = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let id = r.u128()?;
            // Not re-validated (see the module doc): the owner passed
            // `OwnerKey::parse` when the account opened.
            let owner: [u8; 32] = r.array()?;
            let flags = AccountFlags::from_bits(r.u16()?).ok_or(DecodeError::ReservedFlags)?;
            let balance = r.u64()?;
            sum += u128::from(balance);
            if accounts.last().is_some_and(|&(last, _)| last >= id) {
                return Err(SnapshotError::UnorderedKeys);
            }
            accounts.push((
                id,
                Account {
                    id,
                    owner,
                    flags,
                    balance,
                },
            ));
        }
        ledger.accounts = accounts.into_iter().collect();
        if sum != u128::from(config.supply) {
            return Err(SnapshotError::SupplyMismatch);
        }
        match ledger.accounts.get(&config.reserve_account) {
            Some(reserve) if reserve.owner == *ledger.operator.as_bytes() => {}
            _ => return Err(SnapshotError::Inconsistent),
        }

        let n = bounded_count(&mut r, config.limits.max_transfers, TRANSFER_LEN)?;
        let mut previous_id: Option<u128> = None;
        for _ in 0..n {
            let transfer = Transfer {
                id: r.u128()?,
                from: r.u128()?,
                to: r.u128()?,
                amount: r.u64()?,
                client: r.u128()?,
                seq: r.u64()?,
                expires_at: r.u64()?,
            };
            let index = r.u64()?;
            let outcome = Outcome::from_unit_code(r.u8()?).ok_or(SnapshotError::Inconsistent)?;
            if previous_id.is_some_and(|p| p >= transfer.id) {
                return Err(SnapshotError::UnorderedKeys);
            }
            previous_id = Some(transfer.id);
            let applied_ok = outcome != Outcome::Ok
                || (transfer.amount > 0
                    && transfer.from != transfer.to
                    && ledger.accounts.contains_key(&transfer.to));
            let consistent = index > 0
                && index <= ledger.applied_index
                && transfer.expires_at >= ledger.log_time_ms
                && crate::dedup::is_decision(outcome)
                && ledger.accounts.contains_key(&transfer.from)
                && applied_ok;
            if !consistent {
                return Err(SnapshotError::Inconsistent);
            }
            ledger.transfers.record(DecidedTransfer {
                transfer,
                index,
                outcome,
            });
        }

        let n = bounded_count(&mut r, config.limits.max_sessions, SESSION_LEN)?;
        let mut previous: Option<(u128, u128)> = None;
        for _ in 0..n {
            let key = (r.u128()?, r.u128()?);
            if previous.is_some_and(|p| p >= key) {
                return Err(SnapshotError::UnorderedKeys);
            }
            previous = Some(key);
            let session = Session {
                last_seq: r.u64()?,
                last_id: r.u128()?,
                last_to: r.u128()?,
                last_amount: r.u64()?,
                last_outcome: Outcome::from_unit_code(r.u8()?)
                    .ok_or(SnapshotError::Inconsistent)?,
                last_index: r.u64()?,
            };
            if session.last_index == 0 || session.last_index > ledger.applied_index {
                return Err(SnapshotError::Inconsistent);
            }
            ledger.sessions.record(key, session);
        }
        r.finish()?;
        debug_assert_eq!(ledger.sessions.len() as u64, n);
        ledger.assert_invariants();
        Ok(ledger)
    }
}

/// Reads a `u64` count, refusing it above `limit` or above what the remaining
/// bytes can hold at `record_len` each (so no allocation or loop is sized by
/// an unchecked number).
fn bounded_count(r: &mut Reader<'_>, limit: u64, record_len: usize) -> Result<u64, SnapshotError> {
    let n = r.u64()?;
    if n > limit {
        return Err(SnapshotError::LimitExceeded);
    }
    if n > (r.remaining() / record_len) as u64 {
        return Err(SnapshotError::Decode(DecodeError::Truncated));
    }
    Ok(n)
}
