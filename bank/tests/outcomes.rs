//! One scenario per outcome, plus the exactly-once and session rules.

mod common;

use common::*;
use continuum_bank::{AccountFlags, CreateAccount, DecodeError, Limits, Outcome, Transfer};

/// Reserve (owned by the operator, key 0) funds account 10 (key 1) and
/// account 11 (key 2) exists empty.
fn funded() -> Bank {
    let mut bank = Bank::new();
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    assert_eq!(bank.open(11, 2), Outcome::Ok);
    let t = transfer(100, RESERVE, 10, 500, 7, 1).sign(&operator(), CLUSTER);
    assert_eq!(bank.one(t), Outcome::Ok);
    bank
}

#[test]
fn genesis_puts_supply_in_reserve() {
    let bank = Bank::new();
    assert_eq!(bank.ledger.balance(RESERVE), Some(SUPPLY));
    assert_eq!(bank.ledger.chain_head().0, 0);
    let account = bank.ledger.account(RESERVE).expect("reserve exists");
    assert_eq!(&account.owner, &operator().verifying_key().to_bytes());
}

#[test]
fn ok_moves_money_and_records_id() {
    let mut bank = funded();
    let t = transfer(200, 10, 11, 120, 1, 1);
    assert_eq!(bank.one(t.sign(&key(1), CLUSTER)), Outcome::Ok);
    assert_eq!(bank.ledger.balance(10), Some(380));
    assert_eq!(bank.ledger.balance(11), Some(120));
    let applied = bank.ledger.transfer_outcome(200).expect("recorded");
    assert_eq!(applied.transfer, t);
    assert_eq!(applied.index, bank.next_index - 1);
}

#[test]
fn exists_returns_without_moving_money_again() {
    let mut bank = funded();
    let t = transfer(200, 10, 11, 120, 1, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(t), Outcome::Ok);
    assert_eq!(bank.one(t), Outcome::Exists);
    // Even under a new session seq the id stays applied once.
    let again = transfer(200, 10, 11, 120, 1, 9).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(again), Outcome::ExistsWithDifferentFields);
    assert_eq!(bank.ledger.balance(11), Some(120));
}

#[test]
fn exists_with_different_fields() {
    let mut bank = funded();
    assert_eq!(
        bank.one(transfer(200, 10, 11, 120, 1, 1).sign(&key(1), CLUSTER)),
        Outcome::Ok
    );
    let other = transfer(200, 10, 11, 121, 1, 2).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(other), Outcome::ExistsWithDifferentFields);
    assert_eq!(bank.ledger.balance(11), Some(120));
}

#[test]
fn insufficient_funds_changes_nothing() {
    let mut bank = funded();
    let t = transfer(200, 10, 11, 501, 1, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(t), Outcome::InsufficientFunds);
    assert_eq!(bank.ledger.balance(10), Some(500));
    // A rejection is a decision: the id is remembered with it.
    let decided = bank.ledger.transfer_outcome(200).expect("decided");
    assert_eq!(decided.outcome, Outcome::InsufficientFunds);
    assert!(!decided.applied());
}

#[test]
fn no_such_debit_and_credit_account() {
    let mut bank = funded();
    let t = transfer(200, 99, 11, 1, 1, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(t), Outcome::NoSuchDebitAccount);
    let t = transfer(201, 10, 99, 1, 1, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(t), Outcome::NoSuchCreditAccount);
}

#[test]
fn same_account_and_zero_amount() {
    let mut bank = funded();
    assert_eq!(
        bank.one(transfer(200, 10, 10, 1, 1, 1).sign(&key(1), CLUSTER)),
        Outcome::SameAccount
    );
    assert_eq!(
        bank.one(transfer(201, 10, 11, 0, 1, 2).sign(&key(1), CLUSTER)),
        Outcome::ZeroAmount
    );
}

#[test]
fn bad_signature_wrong_key_wrong_cluster_or_flipped_bit() {
    let mut bank = funded();
    // Signed by the credited account's owner instead of the debited one.
    assert_eq!(
        bank.one(transfer(200, 10, 11, 1, 1, 1).sign(&key(2), CLUSTER)),
        Outcome::BadSignature
    );
    // Signed for another cluster.
    assert_eq!(
        bank.one(transfer(201, 10, 11, 1, 1, 1).sign(&key(1), CLUSTER + 1)),
        Outcome::BadSignature
    );
    let mut t = transfer(202, 10, 11, 1, 1, 1).sign(&key(1), CLUSTER);
    t.signature[5] ^= 1;
    assert_eq!(bank.one(t), Outcome::BadSignature);
    // Account creation signed by someone other than the operator.
    let c = CreateAccount {
        id: 50,
        owner: key(3).verifying_key().to_bytes(),
        flags: AccountFlags::empty(),
        expires_at: EXPIRES_AT,
    };
    assert_eq!(bank.one(c.sign(&key(3), CLUSTER)), Outcome::BadSignature);
    assert!(bank.ledger.account(50).is_none());
    // A forgery does not burn the id or the session: the real one applies.
    assert_eq!(
        bank.one(transfer(200, 10, 11, 1, 1, 1).sign(&key(1), CLUSTER)),
        Outcome::Ok
    );
}

#[test]
fn session_replays_saved_outcome_and_rejects_duplicate_or_stale_seq() {
    let mut bank = funded();
    let poor = transfer(200, 10, 11, 10_000, 1, 5).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(poor), Outcome::InsufficientFunds);
    // Top up so a re-execution would now succeed: the retry must still get
    // the saved first outcome (Raft §6.3), proving it is not re-run.
    let topup = transfer(101, RESERVE, 10, 20_000, 7, 2).sign(&operator(), CLUSTER);
    assert_eq!(bank.one(topup), Outcome::Ok);
    assert_eq!(bank.one(poor), Outcome::InsufficientFunds);
    assert_eq!(bank.ledger.balance(11), Some(0));
    assert_eq!(
        bank.ledger.session_outcome(10, 1),
        Some((5, 200, Outcome::InsufficientFunds))
    );
    // Same seq, different transfer.
    let dup = transfer(201, 10, 11, 1, 1, 5).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(dup), Outcome::DuplicateSessionSeq);
    // Older seq.
    let stale = transfer(202, 10, 11, 1, 1, 4).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(stale), Outcome::StaleSessionSeq);
    // Another client of the same account has its own session.
    assert_eq!(
        bank.one(transfer(203, 10, 11, 1, 2, 1).sign(&key(1), CLUSTER)),
        Outcome::Ok
    );
}

#[test]
fn debit_forbidden_on_credit_only_account() {
    let mut bank = funded();
    let c = CreateAccount {
        id: 60,
        owner: key(4).verifying_key().to_bytes(),
        flags: AccountFlags::CREDIT_ONLY,
        expires_at: EXPIRES_AT,
    };
    assert_eq!(bank.one(c.sign(&operator(), CLUSTER)), Outcome::Ok);
    assert_eq!(
        bank.one(transfer(200, 10, 60, 5, 1, 1).sign(&key(1), CLUSTER)),
        Outcome::Ok
    );
    assert_eq!(
        bank.one(transfer(201, 60, 10, 5, 1, 1).sign(&key(4), CLUSTER)),
        Outcome::DebitForbidden
    );
    assert_eq!(bank.ledger.balance(60), Some(5));
}

#[test]
fn create_account_exists_and_exists_with_different_fields() {
    let mut bank = funded();
    assert_eq!(bank.open(10, 1), Outcome::Exists);
    assert_eq!(bank.open(10, 2), Outcome::ExistsWithDifferentFields);
    let c = CreateAccount {
        id: 10,
        owner: key(1).verifying_key().to_bytes(),
        flags: AccountFlags::CREDIT_ONLY,
        expires_at: EXPIRES_AT,
    };
    assert_eq!(
        bank.one(c.sign(&operator(), CLUSTER)),
        Outcome::ExistsWithDifferentFields
    );
}

#[test]
fn invalid_owner_keys_are_refused() {
    let mut bank = Bank::new();
    // Identity point (small order), a non-canonical encoding (y = p), and a
    // point of order 8.
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let torsion = curve25519_dalek::constants::EIGHT_TORSION[1]
        .compress()
        .to_bytes();
    let mixed = (curve25519_dalek::constants::ED25519_BASEPOINT_POINT
        + curve25519_dalek::constants::EIGHT_TORSION[2])
        .compress()
        .to_bytes();
    for (i, owner) in [identity, p, torsion, mixed].into_iter().enumerate() {
        let c = CreateAccount {
            id: 70 + i as u128,
            owner,
            flags: AccountFlags::empty(),
            expires_at: EXPIRES_AT,
        };
        assert_eq!(
            bank.one(c.sign(&operator(), CLUSTER)),
            Outcome::InvalidOwnerKey,
            "key {i}"
        );
    }
}

#[test]
fn accounts_full_and_transfers_full() {
    let limits = Limits {
        max_accounts: 3,
        max_transfers: 1,
        max_sessions: 4,
    };
    let mut bank = Bank::with_limits(limits);
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    assert_eq!(bank.open(11, 2), Outcome::Ok);
    assert_eq!(bank.open(12, 3), Outcome::AccountsFull);
    assert_eq!(
        bank.one(transfer(100, RESERVE, 10, 5, 1, 1).sign(&operator(), CLUSTER)),
        Outcome::Ok
    );
    assert_eq!(
        bank.one(transfer(101, RESERVE, 10, 5, 1, 2).sign(&operator(), CLUSTER)),
        Outcome::TransfersFull
    );
    assert_eq!(bank.ledger.balance(10), Some(5));
}

#[test]
fn malformed_entry_is_an_outcome_in_the_chain() {
    let mut bank = funded();
    let before = bank.ledger.chain_head();
    let outcomes = bank.apply_bytes(&[2, 0, 0]);
    assert_eq!(outcomes, vec![Outcome::Malformed(DecodeError::EmptyBatch)]);
    let after = bank.ledger.chain_head();
    assert_eq!(after.0, before.0 + 1);
    assert_ne!(after.1, before.1);
    assert_eq!(
        bank.apply_bytes(&[]),
        vec![Outcome::Malformed(DecodeError::Truncated)]
    );
}

#[test]
fn session_eviction_is_lru_by_applied_index() {
    let limits = Limits {
        max_accounts: 8,
        max_transfers: 64,
        max_sessions: 2,
    };
    let mut bank = Bank::with_limits(limits);
    let op = operator();
    assert_eq!(
        bank.one(transfer(1, RESERVE, RESERVE + 1, 1, 1, 1).sign(&op, CLUSTER)),
        Outcome::NoSuchCreditAccount
    );
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    assert_eq!(
        bank.one(transfer(2, RESERVE, 10, 1, 2, 1).sign(&op, CLUSTER)),
        Outcome::Ok
    );
    // Touch client 1 again so client 2 is the least recently used.
    assert_eq!(
        bank.one(transfer(3, RESERVE, 10, 1, 1, 2).sign(&op, CLUSTER)),
        Outcome::Ok
    );
    assert_eq!(
        bank.one(transfer(4, RESERVE, 10, 1, 3, 1).sign(&op, CLUSTER)),
        Outcome::Ok
    );
    assert!(
        bank.ledger.session_outcome(RESERVE, 2).is_none(),
        "LRU session evicted"
    );
    assert!(bank.ledger.session_outcome(RESERVE, 1).is_some());
    assert!(bank.ledger.session_outcome(RESERVE, 3).is_some());
    // Eviction does not weaken exactly-once: the id index still answers.
    assert_eq!(
        bank.one(transfer(2, RESERVE, 10, 1, 2, 1).sign(&op, CLUSTER)),
        Outcome::Exists
    );
    assert_eq!(bank.ledger.balance(10), Some(3));
}

#[test]
#[should_panic(expected = "applied index must strictly increase")]
fn applied_index_must_increase() {
    let mut bank = funded();
    let index = bank.ledger.applied_index();
    bank.ledger.apply(index, bank.now_ms, &[]);
}

#[test]
fn display_of_every_outcome_is_distinct() {
    let all: Vec<Outcome> = (0..=u8::MAX).filter_map(Outcome::from_unit_code).collect();
    assert_eq!(all.len(), 18);
    for o in &all {
        assert_eq!(Outcome::from_unit_code(o.code()), Some(*o));
    }
    let mut texts: Vec<String> = all.iter().map(|o| o.to_string()).collect();
    texts.push(Outcome::Malformed(DecodeError::Truncated).to_string());
    let n = texts.len();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), n);
}

/// A retry re-signed with a later expiry (the CLI re-running a transfer) is
/// the same transfer: `Exists`, and no money moves again. Before, the new
/// `expires_at` made it `ExistsWithDifferentFields`.
#[test]
fn a_retry_with_a_new_expiry_is_the_same_transfer() {
    let mut bank = funded();
    let first = transfer(200, 10, 11, 120, 1, 1);
    assert_eq!(bank.one(first.sign(&key(1), CLUSTER)), Outcome::Ok);
    let retry = Transfer {
        expires_at: first.expires_at - 1,
        ..first
    };
    assert_ne!(retry, first);
    assert_eq!(bank.one(retry.sign(&key(1), CLUSTER)), Outcome::Exists);
    assert_eq!(bank.ledger.balance(11), Some(120));
}
