//! Property tests over random command logs: forged signatures, replays,
//! conflicting spends of the same money by different clients, garbage
//! entries. Checked: conservation, balances equal the replay of the `Ok`
//! outcomes (so no money moves twice or without the owner's signature),
//! exactly-once per transfer id, determinism (two ledgers agree byte for
//! byte, receipt chain and snapshot included), batch ≡ one-by-one outcomes,
//! and snapshot/restore mid-way equivalence.
//!
//! Signing costs ~8 ms in a debug build, so logs are short and signatures are
//! cached per (key, command). `BANK_PROPTEST_CASES=N` runs more cases.

mod common;

use common::*;
use continuum_bank::{
    AccountFlags, Command, CreateAccount, Entry, Ledger, Outcome, SignedCommand, Transfer,
    VerdictMemo,
};
use ed25519_dalek::Signer;
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const ACCOUNTS: u8 = 5;

fn account_id(slot: u8) -> u128 {
    if slot == 0 {
        RESERVE
    } else {
        10 + u128::from(slot)
    }
}

/// The key the generator *intends* to own an account slot.
fn intended_owner(slot: u8) -> u8 {
    if slot == 0 {
        0
    } else {
        1 + (slot % 4)
    }
}

#[derive(Clone, Copy, Debug)]
enum Sig {
    Owner,
    OtherKey(u8),
    Flipped(u8),
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        slot: u8,
        owner: u8,
        credit_only: bool,
        sig: Sig,
    },
    Transfer {
        id: u8,
        from: u8,
        to: u8,
        amount: u16,
        client: u8,
        seq: u8,
        sig: Sig,
    },
    Replay(usize),
}

fn sig_strategy() -> impl Strategy<Value = Sig> {
    prop_oneof![
        6 => Just(Sig::Owner),
        1 => (0u8..5).prop_map(Sig::OtherKey),
        1 => any::<u8>().prop_map(Sig::Flipped),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u8..=ACCOUNTS, 1u8..5, prop::bool::weighted(0.15), sig_strategy()).prop_map(
            |(slot, owner, credit_only, sig)| Op::Create { slot, owner, credit_only, sig }
        ),
        6 => (0u8..20, 0u8..=ACCOUNTS, 0u8..=ACCOUNTS, 0u16..250, 0u8..3, 0u8..6, sig_strategy())
            .prop_map(|(id, from, to, amount, client, seq, sig)| Op::Transfer {
                id, from, to, amount, client, seq, sig
            }),
        2 => any::<usize>().prop_map(Op::Replay),
    ]
}

/// An entry: a batch of ops, or garbage bytes.
#[derive(Clone, Debug)]
enum EntryPlan {
    Batch(Vec<Op>),
    Garbage(Vec<u8>),
}

fn log_strategy() -> impl Strategy<Value = Vec<EntryPlan>> {
    let entry = prop_oneof![
        8 => prop::collection::vec(op_strategy(), 1..6).prop_map(EntryPlan::Batch),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(EntryPlan::Garbage),
    ];
    prop::collection::vec(entry, 1..8)
}

/// Signatures already computed, by (key number, signed message).
type SignatureCache = HashMap<(u8, Vec<u8>), [u8; 64]>;

thread_local! {
    static SIGNATURES: RefCell<SignatureCache> = RefCell::new(HashMap::new());
}

fn sign_cached(signer: u8, command: Command) -> SignedCommand {
    let message = command.signing_message(CLUSTER).as_bytes().to_vec();
    let signature = SIGNATURES.with(|cache| {
        *cache
            .borrow_mut()
            .entry((signer, message.clone()))
            .or_insert_with(|| key(signer).sign(&message).to_bytes())
    });
    SignedCommand { command, signature }
}

/// A built command plus the key that signed it (None: corrupted signature).
#[derive(Clone, Copy, Debug)]
struct Built {
    signed: SignedCommand,
    signer: Option<u8>,
}

fn build(op: &Op, history: &[Built]) -> Built {
    let (command, intended) = match *op {
        Op::Replay(k) if !history.is_empty() => return history[k % history.len()],
        Op::Replay(_) => (Command::Transfer(transfer(0, 0, 0, 0, 0, 0)), 0),
        Op::Create {
            slot,
            owner,
            credit_only,
            sig: _,
        } => {
            let flags = if credit_only {
                AccountFlags::CREDIT_ONLY
            } else {
                AccountFlags::empty()
            };
            let owner = if owner == 4 {
                intended_owner(slot) % 4 + 1
            } else {
                intended_owner(slot)
            };
            let c = CreateAccount {
                id: account_id(slot),
                owner: key(owner).verifying_key().to_bytes(),
                flags,
                expires_at: EXPIRES_AT,
            };
            (Command::CreateAccount(c), 0)
        }
        Op::Transfer {
            id,
            from,
            to,
            amount,
            client,
            seq,
            sig: _,
        } => {
            let t = Transfer {
                id: u128::from(id),
                from: account_id(from),
                to: account_id(to),
                amount: u64::from(amount),
                client: u128::from(client),
                seq: u64::from(seq),
                expires_at: EXPIRES_AT,
            };
            (Command::Transfer(t), intended_owner(from))
        }
    };
    let sig = match op {
        Op::Create { sig, .. } | Op::Transfer { sig, .. } => *sig,
        Op::Replay(_) => Sig::Owner,
    };
    match sig {
        Sig::Owner => Built {
            signed: sign_cached(intended, command),
            signer: Some(intended),
        },
        Sig::OtherKey(k) => {
            let k = if k == intended { (k + 1) % 5 } else { k };
            Built {
                signed: sign_cached(k, command),
                signer: Some(k),
            }
        }
        Sig::Flipped(bit) => {
            let mut signed = sign_cached(intended, command);
            signed.signature[usize::from(bit % 64)] ^= 1 << (bit % 8);
            Built {
                signed,
                signer: None,
            }
        }
    }
}

/// Builds the log: per entry its bytes and the commands (with signers) in it.
fn build_log(plan: &[EntryPlan]) -> Vec<(Vec<u8>, Vec<Built>)> {
    // Setup entry: every account created by its intended owner and funded,
    // so random transfers mostly reach the interesting checks.
    let mut setup = Vec::new();
    for slot in 1..=ACCOUNTS {
        let owner = intended_owner(slot);
        let c = CreateAccount {
            id: account_id(slot),
            owner: key(owner).verifying_key().to_bytes(),
            flags: AccountFlags::empty(),
            expires_at: EXPIRES_AT,
        };
        setup.push(Built {
            signed: sign_cached(0, Command::CreateAccount(c)),
            signer: Some(0),
        });
        let t = transfer(
            1000 + u128::from(slot),
            RESERVE,
            account_id(slot),
            300,
            99,
            u64::from(slot),
        );
        setup.push(Built {
            signed: sign_cached(0, Command::Transfer(t)),
            signer: Some(0),
        });
    }
    let bytes = Entry::new(setup.iter().map(|b| b.signed).collect())
        .unwrap()
        .encode();
    let mut history: Vec<Built> = setup.clone();
    let mut log = vec![(bytes, setup)];
    for entry in plan {
        match entry {
            EntryPlan::Garbage(bytes) => log.push((bytes.clone(), Vec::new())),
            EntryPlan::Batch(ops) => {
                let built: Vec<Built> = ops.iter().map(|op| build(op, &history)).collect();
                history.extend(built.iter().copied());
                let bytes = Entry::new(built.iter().map(|b| b.signed).collect())
                    .unwrap()
                    .encode();
                log.push((bytes, built));
            }
        }
    }
    log
}

fn all_ids() -> Vec<u128> {
    (0..=ACCOUNTS).map(account_id).collect()
}

/// Applies the log, checking the model after every entry; returns the
/// outcomes of every command in order.
fn run_checked(ledger: &mut Ledger, log: &[(Vec<u8>, Vec<Built>)]) -> Vec<Outcome> {
    let mut model_balance: BTreeMap<u128, u64> = BTreeMap::from([(RESERVE, SUPPLY)]);
    let mut model_owner: BTreeMap<u128, u8> = BTreeMap::from([(RESERVE, 0)]);
    let mut applied_ids: BTreeSet<u128> = BTreeSet::new();
    let mut all = Vec::new();
    for (i, (bytes, built)) in log.iter().enumerate() {
        let result = ledger.apply(i as u64 + 1, START_MS, bytes);
        if built.is_empty() {
            all.extend(result.outcomes.iter().copied());
        } else {
            assert_eq!(result.outcomes.len(), built.len());
        }
        for (b, outcome) in built.iter().zip(&result.outcomes) {
            let authorised = |owner: Option<&u8>| b.signer.is_some() && owner == b.signer.as_ref();
            match (&b.signed.command, outcome) {
                (Command::CreateAccount(c), Outcome::Ok) => {
                    assert_eq!(b.signer, Some(0), "only the operator creates accounts");
                    let owner = (0..5)
                        .find(|k| key(*k).verifying_key().to_bytes() == c.owner)
                        .unwrap();
                    assert!(
                        model_owner.insert(c.id, owner).is_none(),
                        "account created twice"
                    );
                    model_balance.insert(c.id, 0);
                }
                (Command::Transfer(t), Outcome::Ok) => {
                    assert!(
                        authorised(model_owner.get(&t.from)),
                        "unauthorised transfer applied"
                    );
                    assert!(applied_ids.insert(t.id), "transfer id applied twice");
                    *model_balance.get_mut(&t.from).unwrap() -= t.amount;
                    *model_balance.get_mut(&t.to).unwrap() += t.amount;
                }
                (Command::Transfer(t), Outcome::Exists) => {
                    assert!(authorised(model_owner.get(&t.from)));
                    assert!(applied_ids.contains(&t.id));
                }
                (_, Outcome::BadSignature) => {}
                (_, o) => assert!(!o.is_ok()),
            }
            all.push(*outcome);
        }
        for id in all_ids() {
            assert_eq!(
                ledger.balance(id),
                model_balance.get(&id).copied(),
                "account {id}"
            );
        }
        assert_eq!(total(ledger, &all_ids()), SUPPLY);
    }
    all
}

fn cases() -> u32 {
    std::env::var("BANK_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_logs_keep_every_invariant(plan in log_strategy(), cut in any::<prop::sample::Index>()) {
        let log = build_log(&plan);
        let mut a = Bank::new().ledger;
        let outcomes_a = run_checked(&mut a, &log);

        // Determinism: a second replica agrees byte for byte, even with
        // batch verification switched off (a local speed knob).
        let mut b = Bank::new().ledger;
        b.set_batch_verification(false);
        let mut outcomes_b = Vec::new();
        let cut = cut.index(log.len() + 1);
        let mut snapshot_at_cut = (cut == 0).then(|| b.snapshot());
        for (i, (bytes, _)) in log.iter().enumerate() {
            outcomes_b.extend(b.apply(i as u64 + 1, START_MS, bytes).outcomes);
            if i + 1 == cut {
                snapshot_at_cut = Some(b.snapshot());
            }
        }
        prop_assert_eq!(&outcomes_a, &outcomes_b);
        prop_assert_eq!(a.chain_head(), b.chain_head());
        prop_assert_eq!(a.snapshot(), b.snapshot());

        // Snapshot at the cut, restore, apply the rest: same end state.
        let mut c = Ledger::restore(&snapshot_at_cut.unwrap()).expect("restore");
        for (i, (bytes, _)) in log.iter().enumerate().skip(cut) {
            c.apply(i as u64 + 1, START_MS, bytes);
        }
        prop_assert_eq!(c.chain_head(), a.chain_head());
        prop_assert_eq!(c.snapshot(), a.snapshot());

        // A replica that verifies ahead (a few entries before they apply,
        // as a follower does in the background) and applies with the memo:
        // same outcomes and chain head, whatever the memo held.
        let mut e = Bank::new().ledger;
        let mut memo = VerdictMemo::new();
        let mut outcomes_e = Vec::new();
        let ahead = 1 + cut % 4;
        for (i, (bytes, _)) in log.iter().enumerate() {
            for (later, _) in log.iter().skip(i).take(ahead) {
                e.preverify_into(later, &mut memo);
            }
            outcomes_e.extend(e.apply_with_memo(i as u64 + 1, START_MS, bytes, &mut memo).outcomes);
        }
        prop_assert_eq!(&outcomes_a, &outcomes_e);
        prop_assert_eq!(a.chain_head(), e.chain_head());
        prop_assert!(memo.hits() > 0 || log.iter().all(|(_, b)| b.is_empty()));

        // A restart's replay (node `disk_log.rs`, the clean mark): entries
        // up to the first with a `BadSignature` outcome are re-applied
        // without checks, the rest verified: same outcomes and chain head
        // as the first apply. Unchecked past that entry they would differ.
        let mut r = Bank::new().ledger;
        let mut f = Bank::new().ledger;
        let mut unchecked = Bank::new().ledger;
        let mut clean = true;
        for (i, (bytes, _)) in log.iter().enumerate() {
            let index = i as u64 + 1;
            let first = r.apply(index, START_MS, bytes).outcomes;
            let bad = first.contains(&Outcome::BadSignature);
            clean &= !bad;
            let replayed = if clean {
                f.reapply_clean(index, START_MS, bytes).outcomes
            } else {
                f.apply(index, START_MS, bytes).outcomes
            };
            prop_assert_eq!(&first, &replayed);
            let blind = unchecked.reapply_clean(index, START_MS, bytes).outcomes;
            if bad {
                prop_assert_ne!(&first, &blind, "unchecked replay hides a forgery");
            }
        }
        prop_assert_eq!(f.chain_head(), a.chain_head());

        // Batched vs one command per entry: same outcomes and balances.
        let mut d = Bank::new();
        let mut outcomes_d = Vec::new();
        for (bytes, built) in &log {
            if built.is_empty() {
                outcomes_d.extend(d.apply_bytes(bytes));
            } else {
                for b in built {
                    outcomes_d.push(d.one(b.signed));
                }
            }
        }
        prop_assert_eq!(&outcomes_a, &outcomes_d);
        for id in all_ids() {
            prop_assert_eq!(a.balance(id), d.ledger.balance(id));
        }
    }

    /// Many clients race to spend the same funded account: the total spent
    /// never exceeds what it held, whatever the interleaving.
    #[test]
    fn conflicting_spends_never_overdraw(amounts in prop::collection::vec(1u64..200, 4..10)) {
        let mut bank = Bank::new();
        prop_assert_eq!(bank.open(10, 1), Outcome::Ok);
        prop_assert_eq!(bank.open(11, 2), Outcome::Ok);
        let fund = transfer(1, RESERVE, 10, 300, 0, 1).sign(&operator(), CLUSTER);
        prop_assert_eq!(bank.one(fund), Outcome::Ok);
        let spends: Vec<SignedCommand> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| sign_cached(1, Command::Transfer(transfer(100 + i as u128, 10, 11, *a, i as u128, 1))))
            .collect();
        let outcomes = bank.apply(spends.clone());
        let spent: u64 = amounts.iter().zip(&outcomes).filter(|(_, o)| o.is_ok()).map(|(a, _)| *a).sum();
        prop_assert!(spent <= 300);
        prop_assert_eq!(bank.ledger.balance(11), Some(spent));
        prop_assert_eq!(bank.ledger.balance(10), Some(300 - spent));
        // Every rejected spend was rejected for lack of funds, and retries change nothing.
        prop_assert!(outcomes.iter().all(|o| *o == Outcome::Ok || *o == Outcome::InsufficientFunds));
        let retry = bank.apply(spends);
        prop_assert_eq!(bank.ledger.balance(11), Some(spent));
        for (first, again) in outcomes.iter().zip(&retry) {
            let expected = if first.is_ok() { Outcome::Exists } else { *first };
            prop_assert_eq!(*again, expected);
        }
    }
}
