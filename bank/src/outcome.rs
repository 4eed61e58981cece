//! The outcome of applying one command. Every outcome is deterministic (a
//! function of the ledger state and the command bytes), is returned to the
//! client, and is hashed into the receipt chain by its stable code.

use crate::codec::DecodeError;
use alloc::vec::Vec;
use core::fmt;

/// What happened to one command (or, for [`Outcome::Malformed`], to a whole
/// entry that did not decode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Applied: the account exists now / the money moved.
    Ok,
    /// Same id and same fields as a command that already applied with `Ok`;
    /// nothing changed (idempotent retry).
    Exists,
    /// The id is taken by an applied command with different fields.
    ExistsWithDifferentFields,
    /// The debited account's balance is below the amount.
    InsufficientFunds,
    /// The debited (`from`) account does not exist, so no key can authorise it.
    NoSuchDebitAccount,
    /// The credited (`to`) account does not exist.
    NoSuchCreditAccount,
    /// `from == to`.
    SameAccount,
    /// `amount == 0`.
    ZeroAmount,
    /// The signature is not a strictly valid Ed25519 signature of the command
    /// by the required key (debit owner, or operator for account creation).
    BadSignature,
    /// Crediting would overflow `u64`. Unreachable while conservation holds
    /// (every balance ≤ supply ≤ u64::MAX) but checked instead of assumed.
    Overflow,
    /// The session already used this seq for a different transfer.
    DuplicateSessionSeq,
    /// The seq is below the session's last seq (an old, superseded request).
    StaleSessionSeq,
    /// The debited account has the `CREDIT_ONLY` flag.
    DebitForbidden,
    /// The new owner key is not a valid, torsion-free Ed25519 point.
    InvalidOwnerKey,
    /// `Limits::max_accounts` accounts exist.
    AccountsFull,
    /// `Limits::max_transfers` decided transfer ids are inside the dedup
    /// window. A refusal, not a decision: the id is not remembered, and the
    /// client may submit the same bytes again once the window has room.
    TransfersFull,
    /// The entry's log time is past the command's `expires_at`: it can never
    /// apply any more (by rule, so its id need not be remembered).
    Expired,
    /// `expires_at` lies more than the genesis `max_expiry_window_ms` beyond
    /// the entry's log time. A refusal, not a decision (the id is not
    /// remembered): sign with a shorter window.
    ExpiryTooFar,
    /// The entry did not decode; no command in it was applied.
    Malformed(DecodeError),
}

impl Outcome {
    /// Stable code hashed into the receipt chain (plus a reason byte for
    /// `Malformed`).
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Exists => 1,
            Outcome::ExistsWithDifferentFields => 2,
            Outcome::InsufficientFunds => 3,
            Outcome::NoSuchDebitAccount => 4,
            Outcome::NoSuchCreditAccount => 5,
            Outcome::SameAccount => 6,
            Outcome::ZeroAmount => 7,
            Outcome::BadSignature => 8,
            Outcome::Overflow => 9,
            Outcome::DuplicateSessionSeq => 10,
            Outcome::StaleSessionSeq => 11,
            Outcome::DebitForbidden => 12,
            Outcome::InvalidOwnerKey => 13,
            Outcome::AccountsFull => 14,
            Outcome::TransfersFull => 15,
            Outcome::Malformed(_) => 16,
            Outcome::Expired => 17,
            Outcome::ExpiryTooFar => 18,
        }
    }

    /// Appends the receipt encoding: `code (1)`, and for `Malformed` the
    /// decode error's code (1).
    pub fn encode_into(self, out: &mut Vec<u8>) {
        out.push(self.code());
        if let Outcome::Malformed(e) = self {
            out.push(e.code());
        }
    }

    /// Decodes a run of [`Outcome::encode_into`] encodings (a submit
    /// answer: one per command of the entry).
    pub fn decode_all(mut bytes: &[u8]) -> Result<Vec<Outcome>, OutcomeDecodeError> {
        let malformed = Outcome::Malformed(DecodeError::Truncated).code();
        let mut outcomes = Vec::new();
        while let Some((&code, rest)) = bytes.split_first() {
            bytes = rest;
            if code == malformed {
                let (&reason, rest) = bytes
                    .split_first()
                    .ok_or(OutcomeDecodeError::MissingReason)?;
                bytes = rest;
                let reason = DecodeError::from_code(reason)
                    .ok_or(OutcomeDecodeError::UnknownReason(reason))?;
                outcomes.push(Outcome::Malformed(reason));
            } else {
                outcomes.push(
                    Outcome::from_unit_code(code).ok_or(OutcomeDecodeError::UnknownCode(code))?,
                );
            }
        }
        Ok(outcomes)
    }

    /// Inverse of [`Outcome::code`] for the unit outcomes (snapshots store
    /// session and id-index outcomes, which are never `Malformed`).
    pub fn from_unit_code(code: u8) -> Option<Outcome> {
        match code {
            17 => return Some(Outcome::Expired),
            18 => return Some(Outcome::ExpiryTooFar),
            _ => {}
        }
        const UNIT: [Outcome; 16] = [
            Outcome::Ok,
            Outcome::Exists,
            Outcome::ExistsWithDifferentFields,
            Outcome::InsufficientFunds,
            Outcome::NoSuchDebitAccount,
            Outcome::NoSuchCreditAccount,
            Outcome::SameAccount,
            Outcome::ZeroAmount,
            Outcome::BadSignature,
            Outcome::Overflow,
            Outcome::DuplicateSessionSeq,
            Outcome::StaleSessionSeq,
            Outcome::DebitForbidden,
            Outcome::InvalidOwnerKey,
            Outcome::AccountsFull,
            Outcome::TransfersFull,
        ];
        UNIT.get(usize::from(code)).copied()
    }

    /// Whether the command took effect.
    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

/// Why outcome bytes did not decode ([`Outcome::decode_all`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeDecodeError {
    /// A code no outcome has.
    UnknownCode(u8),
    /// A `Malformed` outcome without its reason byte.
    MissingReason,
    /// A `Malformed` outcome whose reason no decode error has.
    UnknownReason(u8),
}

impl fmt::Display for OutcomeDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutcomeDecodeError::UnknownCode(c) => write!(f, "unknown outcome code {c}"),
            OutcomeDecodeError::MissingReason => {
                f.write_str("malformed-entry outcome without its reason byte")
            }
            OutcomeDecodeError::UnknownReason(c) => write!(f, "unknown decode-error code {c}"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Exists => f.write_str("exists: already applied with the same fields"),
            Outcome::ExistsWithDifferentFields => {
                f.write_str("exists with different fields: id already used")
            }
            Outcome::InsufficientFunds => f.write_str("insufficient funds"),
            Outcome::NoSuchDebitAccount => f.write_str("no such debit account"),
            Outcome::NoSuchCreditAccount => f.write_str("no such credit account"),
            Outcome::SameAccount => f.write_str("debit and credit account are the same"),
            Outcome::ZeroAmount => f.write_str("amount is zero"),
            Outcome::BadSignature => f.write_str("bad signature"),
            Outcome::Overflow => f.write_str("balance overflow"),
            Outcome::DuplicateSessionSeq => {
                f.write_str("session seq already used by a different transfer")
            }
            Outcome::StaleSessionSeq => f.write_str("session seq below the session's last seq"),
            Outcome::DebitForbidden => f.write_str("account is credit-only"),
            Outcome::InvalidOwnerKey => f.write_str("invalid owner key"),
            Outcome::AccountsFull => f.write_str("account table full"),
            Outcome::TransfersFull => f.write_str("transfer id index (dedup window) full"),
            Outcome::Expired => f.write_str("expired: the log time is past the signed expires_at"),
            Outcome::ExpiryTooFar => {
                f.write_str("expires_at is further ahead than the cluster's maximum window")
            }
            Outcome::Malformed(e) => write!(f, "malformed entry: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn outcome_bytes_round_trip_and_junk_is_an_error() {
        let outcomes = [
            Outcome::Ok,
            Outcome::InsufficientFunds,
            Outcome::Malformed(DecodeError::TrailingBytes),
            Outcome::TransfersFull,
        ];
        let mut bytes = Vec::new();
        for o in outcomes {
            o.encode_into(&mut bytes);
        }
        assert_eq!(Outcome::decode_all(&bytes).unwrap(), outcomes);
        assert!(Outcome::decode_all(&[200]) == Err(OutcomeDecodeError::UnknownCode(200)));
        assert!(Outcome::decode_all(&[16]) == Err(OutcomeDecodeError::MissingReason));
        assert!(Outcome::decode_all(&[16, 99]) == Err(OutcomeDecodeError::UnknownReason(99)));
        assert_eq!(Outcome::decode_all(&[]).unwrap(), vec![]);
    }
}
