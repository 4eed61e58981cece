//! Executing one authenticated-or-not command against the ledger, in the
//! order of checks that defines each outcome.
//!
//! Create account (signed by the operator):
//! 1. signature → `BadSignature`;
//! 2. expiry (below) → `Expired` / `ExpiryTooFar`;
//! 3. id taken → `Exists` (same owner and flags) or `ExistsWithDifferentFields`;
//! 4. owner key invalid → `InvalidOwnerKey`; table full → `AccountsFull`;
//! 5. `Ok`: the account opens with balance 0.
//!
//! Transfer (signed by the owner of `from`):
//! 1. `from` unknown → `NoSuchDebitAccount` (no key to check against);
//!    signature → `BadSignature`. Unauthenticated commands change nothing and
//!    are not remembered, so a forger cannot burn someone's id or session.
//! 2. expiry: the log time is past `expires_at` → `Expired`; `expires_at`
//!    more than the genesis window ahead of the log time → `ExpiryTooFar`.
//!    Neither is remembered (`dedup.rs` says why that is safe).
//! 3. id decided inside its window → `Exists` (same fields, applied), the
//!    first rejection again (same fields, rejected), or
//!    `ExistsWithDifferentFields`. "Same fields" leaves out `expires_at`,
//!    as account creation does: a client that re-signs a retry with a new
//!    expiry (the CLI's re-run of a transfer) is told it already applied.
//! 4. the id index is full → `TransfersFull` (a refusal, not remembered).
//! 5. session `(from, client)`: seq equal to the last one →
//!    `DuplicateSessionSeq`, below it → `StaleSessionSeq` (a retry of the
//!    session's last transfer itself was answered in step 3).
//! 6. `ZeroAmount`, `SameAccount`, `NoSuchCreditAccount`, `DebitForbidden`,
//!    `InsufficientFunds`, `Overflow`, else `Ok`: the money moves.
//!
//! Every outcome of steps 5 and 6 is a *decision*: the id is recorded in the
//! id index with it (so the same signed bytes never get a second chance,
//! whatever happens to sessions), and steps 6's outcomes also in the session.

use crate::command::{AccountFlags, Command, CreateAccount, SignedCommand, Transfer};
use crate::dedup::DecidedTransfer;
use crate::ledger::{Account, Checking, Ledger, Verdict};
use crate::outcome::Outcome;
use crate::session::Session;
use crate::verify::OwnerKey;

impl Ledger {
    pub(crate) fn execute(
        &mut self,
        index: u64,
        signed: &SignedCommand,
        verdict: Option<Verdict>,
        checking: Checking,
    ) -> Outcome {
        match &signed.command {
            Command::CreateAccount(c) => {
                let operator = *self.operator.as_bytes();
                if !self.signature_ok(&operator, signed, verdict, checking) {
                    return Outcome::BadSignature;
                }
                if let Some(refused) = self.expiry_refusal(c.expires_at) {
                    return refused;
                }
                self.create_account(c)
            }
            Command::Transfer(t) => {
                let Some(owner) = self.accounts.get(&t.from).map(|a| a.owner) else {
                    return Outcome::NoSuchDebitAccount;
                };
                if !self.signature_ok(&owner, signed, verdict, checking) {
                    return Outcome::BadSignature;
                }
                if let Some(refused) = self.expiry_refusal(t.expires_at) {
                    return refused;
                }
                self.transfer(index, t)
            }
        }
    }

    /// Step 2: `Expired` once the log time is past `expires_at`,
    /// `ExpiryTooFar` if it asks for more than the genesis window.
    fn expiry_refusal(&self, expires_at: u64) -> Option<Outcome> {
        if expires_at < self.log_time_ms {
            Some(Outcome::Expired)
        } else if expires_at - self.log_time_ms > self.config.max_expiry_window_ms {
            Some(Outcome::ExpiryTooFar)
        } else {
            None
        }
    }

    /// Uses the pre-verified verdict if it was computed for this very key,
    /// else verifies now (`verify_strict`). `signer` is a validated owner key.
    fn signature_ok(
        &self,
        signer: &[u8; 32],
        signed: &SignedCommand,
        verdict: Option<Verdict>,
        checking: Checking,
    ) -> bool {
        if checking != Checking::Verify {
            return true;
        }
        match verdict {
            Some(v) if v.key == *signer => v.valid,
            _ => OwnerKey::from_stored(signer).is_some_and(|key| {
                key.verify(
                    signed
                        .command
                        .signing_message(self.config.cluster_id)
                        .as_bytes(),
                    &signed.signature,
                )
            }),
        }
    }

    fn create_account(&mut self, c: &CreateAccount) -> Outcome {
        if let Some(existing) = self.accounts.get(&c.id) {
            return if existing.owner == c.owner && existing.flags == c.flags {
                Outcome::Exists
            } else {
                Outcome::ExistsWithDifferentFields
            };
        }
        if OwnerKey::parse(&c.owner).is_none() {
            return Outcome::InvalidOwnerKey;
        }
        if self.accounts.len() as u64 >= self.config.limits.max_accounts {
            return Outcome::AccountsFull;
        }
        self.accounts.insert(
            c.id,
            Account {
                id: c.id,
                owner: c.owner,
                flags: c.flags,
                balance: 0,
            },
        );
        Outcome::Ok
    }

    fn transfer(&mut self, index: u64, t: &Transfer) -> Outcome {
        if let Some(decided) = self.transfers.get(&t.id) {
            return if !decided.transfer.same_fields(t) {
                Outcome::ExistsWithDifferentFields
            } else if decided.applied() {
                Outcome::Exists
            } else {
                decided.outcome
            };
        }
        if self.transfers.is_full() {
            return Outcome::TransfersFull;
        }
        let session_key = (t.from, t.client);
        let session_refusal = self.sessions.get(&session_key).and_then(|s| {
            if t.seq == s.last_seq {
                Some(Outcome::DuplicateSessionSeq)
            } else if t.seq < s.last_seq {
                Some(Outcome::StaleSessionSeq)
            } else {
                None
            }
        });
        let outcome = match session_refusal {
            Some(refusal) => refusal,
            None => {
                let outcome = self.move_money(t);
                self.sessions.record(
                    session_key,
                    Session {
                        last_seq: t.seq,
                        last_id: t.id,
                        last_to: t.to,
                        last_amount: t.amount,
                        last_outcome: outcome,
                        last_index: index,
                    },
                );
                outcome
            }
        };
        self.transfers.record(DecidedTransfer {
            transfer: *t,
            index,
            outcome,
        });
        outcome
    }

    /// Step 6: validation and the balance update (checked arithmetic).
    fn move_money(&mut self, t: &Transfer) -> Outcome {
        if t.amount == 0 {
            return Outcome::ZeroAmount;
        }
        if t.from == t.to {
            return Outcome::SameAccount;
        }
        let Some(to_balance) = self.accounts.get(&t.to).map(|a| a.balance) else {
            return Outcome::NoSuchCreditAccount;
        };
        let from = self.accounts.get(&t.from).copied();
        let Some(from) = from else {
            // Resolved in `execute` before the signature check.
            return Outcome::NoSuchDebitAccount;
        };
        if from.flags.contains(AccountFlags::CREDIT_ONLY) {
            return Outcome::DebitForbidden;
        }
        let Some(new_from) = from.balance.checked_sub(t.amount) else {
            return Outcome::InsufficientFunds;
        };
        let Some(new_to) = to_balance.checked_add(t.amount) else {
            return Outcome::Overflow;
        };
        if let Some(a) = self.accounts.get_mut(&t.from) {
            a.balance = new_from;
        }
        if let Some(a) = self.accounts.get_mut(&t.to) {
            a.balance = new_to;
        }
        Outcome::Ok
    }
}
