//! Expiring transfer ids: `Expired`, `ExpiryTooFar`, the id index that
//! remembers every decision until its expiry and then forgets it, bounded
//! memory over a long history, and the replay attack of issue #12.

mod common;

use common::*;
use continuum_bank::{AccountFlags, CreateAccount, Ledger, Limits, Outcome, Transfer};

fn at(t: Transfer, expires_at: u64) -> Transfer {
    Transfer { expires_at, ..t }
}

/// Accounts 10 (key 1, 500) and 11 (key 2, empty).
fn funded() -> Bank {
    let mut bank = Bank::new();
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    assert_eq!(bank.open(11, 2), Outcome::Ok);
    let t = transfer(100, RESERVE, 10, 500, 1, 1).sign(&operator(), CLUSTER);
    assert_eq!(bank.one(t), Outcome::Ok);
    bank
}

#[test]
fn applied_after_expires_at_is_expired_and_changes_nothing() {
    let mut bank = funded();
    let t = at(transfer(200, 10, 11, 5, 1, 1), START_MS + 10);
    bank.now_ms = START_MS + 11;
    assert_eq!(bank.one(t.sign(&key(1), CLUSTER)), Outcome::Expired);
    assert_eq!(bank.ledger.balance(11), Some(0));
    assert!(bank.ledger.transfer_outcome(200).is_none());
    // expires_at equal to the log time still applies.
    let t = at(transfer(201, 10, 11, 5, 1, 2), START_MS + 11);
    assert_eq!(bank.one(t.sign(&key(1), CLUSTER)), Outcome::Ok);
    // Account creation expires the same way.
    let c = CreateAccount {
        id: 12,
        owner: key(3).verifying_key().to_bytes(),
        flags: AccountFlags::empty(),
        expires_at: START_MS,
    };
    assert_eq!(bank.one(c.sign(&operator(), CLUSTER)), Outcome::Expired);
    assert!(bank.ledger.account(12).is_none());
}

#[test]
fn window_longer_than_genesis_maximum_is_expiry_too_far() {
    let mut bank = funded();
    let far = at(transfer(200, 10, 11, 5, 1, 1), START_MS + WINDOW_MS + 1);
    assert_eq!(bank.one(far.sign(&key(1), CLUSTER)), Outcome::ExpiryTooFar);
    assert_eq!(bank.ledger.balance(11), Some(0));
    let edge = at(transfer(201, 10, 11, 5, 1, 2), START_MS + WINDOW_MS);
    assert_eq!(bank.one(edge.sign(&key(1), CLUSTER)), Outcome::Ok);
    let c = CreateAccount {
        id: 12,
        owner: key(3).verifying_key().to_bytes(),
        flags: AccountFlags::empty(),
        expires_at: u64::MAX,
    };
    assert_eq!(
        bank.one(c.sign(&operator(), CLUSTER)),
        Outcome::ExpiryTooFar
    );
}

#[test]
fn log_time_never_goes_back() {
    let mut bank = funded();
    bank.now_ms = START_MS + 1_000;
    let t = at(transfer(200, 10, 11, 5, 1, 1), START_MS + 1_000);
    assert_eq!(bank.one(t.sign(&key(1), CLUSTER)), Outcome::Ok);
    // A later entry stamped earlier (a new leader with a slower clock) does
    // not move the log time back, so what was expired stays expired.
    bank.now_ms = START_MS;
    let late = at(transfer(201, 10, 11, 5, 1, 2), START_MS + 500);
    assert_eq!(bank.one(late.sign(&key(1), CLUSTER)), Outcome::Expired);
    assert_eq!(bank.ledger.log_time_ms(), START_MS + 1_000);
}

#[test]
fn a_retried_rejection_gets_its_first_answer_and_ids_expire() {
    let mut bank = funded();
    let poor = transfer(200, 10, 11, 501, 1, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(poor), Outcome::InsufficientFunds);
    assert_eq!(bank.ledger.sizes().1, 2);
    // Same bytes again: the first answer, even with money now there.
    let top_up = transfer(101, RESERVE, 10, 100, 1, 2).sign(&operator(), CLUSTER);
    assert_eq!(bank.one(top_up), Outcome::Ok);
    assert_eq!(bank.one(poor), Outcome::InsufficientFunds);
    // Past every expiry, the index is empty and the replay is Expired.
    bank.now_ms = EXPIRES_AT + 1;
    assert_eq!(bank.one(poor), Outcome::Expired);
    assert_eq!(bank.ledger.sizes().1, 0);
    assert!(bank.ledger.transfer_outcome(200).is_none());
    assert_eq!(bank.ledger.balance(11), Some(0));
}

/// Issue #12: V's transfer is rejected for insufficient funds, V is paid,
/// an attacker evicts V's session by churning the session table with
/// zero-amount transfers under fresh client ids, then replays V's captured
/// command. On `main` it applied (`Ok`); it must never apply.
#[test]
fn replayed_rejected_transfer_never_applies_after_session_churn() {
    let limits = Limits {
        max_accounts: 8,
        max_transfers: 1024,
        max_sessions: 4,
    };
    let mut bank = Bank::with_limits(limits);
    const V: u128 = 10;
    const MALLORY: u128 = 11;
    const SHOP: u128 = 12;
    assert_eq!(bank.open(V, 1), Outcome::Ok);
    assert_eq!(bank.open(MALLORY, 2), Outcome::Ok);
    assert_eq!(bank.open(SHOP, 3), Outcome::Ok);
    let captured = transfer(500, V, SHOP, 300, 77, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(captured), Outcome::InsufficientFunds);
    let pay_v = transfer(501, RESERVE, V, 1_000, 1, 1).sign(&operator(), CLUSTER);
    assert_eq!(bank.one(pay_v), Outcome::Ok);
    for client in 0..16u128 {
        let churn = transfer(600 + client, MALLORY, SHOP, 0, 1_000 + client, 1);
        assert_eq!(bank.one(churn.sign(&key(2), CLUSTER)), Outcome::ZeroAmount);
    }
    assert!(
        bank.ledger.session_outcome(V, 77).is_none(),
        "the churn evicted V's session"
    );
    // The replay, alone and inside a batch, and again after time passes.
    assert_eq!(bank.one(captured), Outcome::InsufficientFunds);
    let noise = transfer(700, MALLORY, SHOP, 0, 2_000, 1).sign(&key(2), CLUSTER);
    assert_eq!(
        bank.apply(vec![noise, captured]),
        vec![Outcome::ZeroAmount, Outcome::InsufficientFunds]
    );
    bank.now_ms = EXPIRES_AT;
    assert_eq!(bank.one(captured), Outcome::InsufficientFunds);
    bank.now_ms = EXPIRES_AT + 1;
    assert_eq!(bank.one(captured), Outcome::Expired);
    // Through a snapshot too.
    let mut restored = Ledger::restore(&bank.ledger.snapshot()).expect("restores");
    let bytes = continuum_bank::Entry::single(captured).encode();
    let result = restored.apply(bank.next_index, EXPIRES_AT + 2, &bytes);
    assert_eq!(result.outcomes, vec![Outcome::Expired]);
    assert_eq!(bank.ledger.balance(V), Some(1_000));
    assert_eq!(bank.ledger.balance(SHOP), Some(0));
}

/// Far more transfers than `max_transfers` over a long log: the window
/// never fills because ids expire, and the index stays within its bound.
#[test]
fn memory_is_bounded_by_rate_times_window() {
    let limits = Limits {
        max_accounts: 8,
        max_transfers: 64,
        max_sessions: 8,
    };
    let mut bank = Bank::with_limits(limits);
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    // Rate: 4 transfers per entry, one entry per 1,000 ms; expiry 10 s:
    // at most ~44 ids live at once, below 64.
    let mut batch = Vec::new();
    for i in 0..320u128 {
        let t = Transfer {
            expires_at: bank.now_ms + 10_000,
            ..transfer(1_000 + i, RESERVE, 10, 1, 1, i as u64 + 1)
        };
        batch.push(t.sign(&operator(), CLUSTER));
        if batch.len() == 4 {
            let outcomes = bank.apply(std::mem::take(&mut batch));
            assert!(outcomes.iter().all(|o| *o == Outcome::Ok), "{outcomes:?}");
            assert!(bank.ledger.sizes().1 <= 64);
            bank.now_ms += 1_000;
        }
    }
    assert_eq!(bank.ledger.balance(10), Some(320));
    assert!(bank.ledger.sizes().1 <= 44, "{}", bank.ledger.sizes().1);
}

#[test]
fn a_full_window_refuses_new_ids_until_they_expire() {
    let limits = Limits {
        max_accounts: 8,
        max_transfers: 2,
        max_sessions: 8,
    };
    let mut bank = Bank::with_limits(limits);
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    let t = |id: u128, seq: u64, expires_at: u64| {
        at(transfer(id, RESERVE, 10, 1, 1, seq), expires_at).sign(&operator(), CLUSTER)
    };
    assert_eq!(bank.one(t(1, 1, START_MS + 10)), Outcome::Ok);
    assert_eq!(bank.one(t(2, 2, START_MS + 20)), Outcome::Ok);
    let third = t(3, 3, START_MS + 100);
    assert_eq!(bank.one(third), Outcome::TransfersFull);
    // Not remembered: the same bytes apply once an id has expired.
    bank.now_ms = START_MS + 11;
    assert_eq!(bank.one(third), Outcome::Ok);
    assert_eq!(bank.ledger.balance(10), Some(3));
}

#[test]
fn snapshot_keeps_decisions_and_log_time() {
    let mut bank = funded();
    let poor = transfer(200, 10, 11, 501, 1, 1).sign(&key(1), CLUSTER);
    assert_eq!(bank.one(poor), Outcome::InsufficientFunds);
    bank.now_ms = START_MS + 7;
    assert_eq!(
        bank.one(transfer(201, 10, 11, 1, 1, 2).sign(&key(1), CLUSTER)),
        Outcome::Ok
    );
    let snap = bank.ledger.snapshot();
    let restored = Ledger::restore(&snap).expect("restores");
    assert_eq!(restored, bank.ledger);
    assert_eq!(restored.log_time_ms(), START_MS + 7);
    assert_eq!(
        restored.transfer_outcome(200).map(|d| d.outcome),
        Some(Outcome::InsufficientFunds)
    );
    assert_eq!(restored.snapshot(), snap);
}

#[test]
fn limits_from_a_heap_budget() {
    let big = Limits::for_heap(512);
    assert!(big.max_accounts >= 1_000_000, "{big:?}");
    // The tables at their limits leave 30 % of the heap to everything else.
    assert!(big.full_table_bytes() <= 512 * (1 << 20) * 7 / 10);
    let tiny = Limits::for_heap(0);
    assert!(tiny.max_accounts >= 1 && tiny.max_transfers >= 1 && tiny.max_sessions >= 1);
}
