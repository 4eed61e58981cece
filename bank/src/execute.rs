//! Executing one authenticated-or-not command against the ledger, in the
//! order of checks that defines each outcome.
//!
//! Create account (signed by the operator):
//! 1. signature → `BadSignature`;
//! 2. id taken → `Exists` (same owner and flags) or `ExistsWithDifferentFields`;
//! 3. owner key invalid → `InvalidOwnerKey`; table full → `AccountsFull`;
//! 4. `Ok`: the account opens with balance 0.
//!
//! Transfer (signed by the owner of `from`):
//! 1. `from` unknown → `NoSuchDebitAccount` (no key to check against);
//!    signature → `BadSignature`. Unauthenticated commands change nothing and
//!    are not remembered, so a forger cannot burn someone's id or session.
//! 2. id already applied → `Exists` (all fields equal: the first outcome was
//!    `Ok`) or `ExistsWithDifferentFields`. This index is permanent.
//! 3. session `(from, client)`: seq equal to the last one → the saved outcome
//!    again if the transfer is the same, else `DuplicateSessionSeq`; seq
//!    below → `StaleSessionSeq`.
//! 4. `ZeroAmount`, `SameAccount`, `NoSuchCreditAccount`, `DebitForbidden`,
//!    `TransfersFull`, `InsufficientFunds`, `Overflow`, else `Ok`: the money
//!    moves and the id is recorded. Every outcome of step 4 is saved in the
//!    session.

use crate::command::{AccountFlags, Command, CreateAccount, SignedCommand, Transfer};
use crate::ledger::{Account, AppliedTransfer, Checking, Ledger, Verdict};
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
                let operator = self.operator;
                if !self.signature_ok(operator, signed, verdict, checking) {
                    return Outcome::BadSignature;
                }
                self.create_account(c)
            }
            Command::Transfer(t) => {
                let Some(owner) = self.accounts.get(&t.from).map(|a| a.owner) else {
                    return Outcome::NoSuchDebitAccount;
                };
                if !self.signature_ok(owner, signed, verdict, checking) {
                    return Outcome::BadSignature;
                }
                self.transfer(index, t)
            }
        }
    }

    /// Uses the pre-verified verdict if it was computed for this very key,
    /// else verifies now (`verify_strict`).
    fn signature_ok(
        &self,
        signer: OwnerKey,
        signed: &SignedCommand,
        verdict: Option<Verdict>,
        checking: Checking,
    ) -> bool {
        if checking != Checking::Verify {
            return true;
        }
        match verdict {
            Some(v) if v.key == *signer.as_bytes() => v.valid,
            _ => signer.verify(
                signed
                    .command
                    .signing_message(self.config.cluster_id)
                    .as_bytes(),
                &signed.signature,
            ),
        }
    }

    fn create_account(&mut self, c: &CreateAccount) -> Outcome {
        if let Some(existing) = self.accounts.get(&c.id) {
            return if existing.owner.as_bytes() == &c.owner && existing.flags == c.flags {
                Outcome::Exists
            } else {
                Outcome::ExistsWithDifferentFields
            };
        }
        let Some(owner) = OwnerKey::parse(&c.owner) else {
            return Outcome::InvalidOwnerKey;
        };
        if self.accounts.len() as u64 >= self.config.limits.max_accounts {
            return Outcome::AccountsFull;
        }
        self.accounts.insert(
            c.id,
            Account {
                id: c.id,
                owner,
                flags: c.flags,
                balance: 0,
            },
        );
        Outcome::Ok
    }

    fn transfer(&mut self, index: u64, t: &Transfer) -> Outcome {
        if let Some(applied) = self.transfers.get(&t.id) {
            return if applied.transfer == *t {
                Outcome::Exists
            } else {
                Outcome::ExistsWithDifferentFields
            };
        }
        let session_key = (t.from, t.client);
        if let Some(s) = self.sessions.get(&session_key) {
            if t.seq == s.last_seq {
                return if s.last_id == t.id && s.last_to == t.to && s.last_amount == t.amount {
                    s.last_outcome
                } else {
                    Outcome::DuplicateSessionSeq
                };
            }
            if t.seq < s.last_seq {
                return Outcome::StaleSessionSeq;
            }
        }
        let outcome = self.move_money(t);
        if outcome == Outcome::Ok {
            let previous = self.transfers.insert(
                t.id,
                AppliedTransfer {
                    transfer: *t,
                    index,
                },
            );
            assert!(previous.is_none(), "transfer id applied twice");
        }
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

    /// Step 4: validation and the balance update (checked arithmetic).
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
        if self.transfers.len() as u64 >= self.config.limits.max_transfers {
            return Outcome::TransfersFull;
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
