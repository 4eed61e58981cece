//! `cargo bench -p continuum-bank`: transfers applied per second.
//!
//! * unverified: `Ledger::reapply_clean` (the restart replay of entries
//!   known clean) — decode, execute, sessions, receipt chain, invariant
//!   check; no signature work.
//! * single: one signed transfer per entry, `verify_strict` each.
//! * batched: signed transfers in entries of 64 / 512, batch verification.
//!
//! Setup: 1024 accounts owned by 64 keys, each funded; every transfer moves
//! 1 unit between accounts with its own session seq.

use continuum_bank::{
    AccountFlags, CreateAccount, Entry, GenesisConfig, Ledger, Limits, SignedCommand, Transfer,
    DEFAULT_MAX_EXPIRY_WINDOW_MS,
};
use ed25519_dalek::SigningKey;
use std::time::Instant;

const CLUSTER: u128 = 7;
const ACCOUNTS: u128 = 1024;
const KEYS: usize = 64;

fn key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    SigningKey::from_bytes(&seed)
}

struct Setup {
    ledger: Ledger,
    keys: Vec<SigningKey>,
    next_index: u64,
}

/// Every entry of the benchmark applies at this log time; commands expire
/// well inside the default window.
const LOG_TIME_MS: u64 = 1_000;
const EXPIRES_AT: u64 = LOG_TIME_MS + 60_000;

fn setup() -> Setup {
    let operator = key(usize::MAX - 1);
    let keys: Vec<SigningKey> = (0..KEYS).map(key).collect();
    let mut ledger = Ledger::genesis(GenesisConfig {
        cluster_id: CLUSTER,
        operator_key: operator.verifying_key().to_bytes(),
        reserve_account: 0,
        supply: u64::MAX / 2,
        limits: Limits::default(),
        max_expiry_window_ms: DEFAULT_MAX_EXPIRY_WINDOW_MS,
    })
    .expect("genesis");
    let mut index = 1;
    let mut cmds = Vec::new();
    for a in 1..=ACCOUNTS {
        let owner = keys[(a as usize) % KEYS].verifying_key().to_bytes();
        cmds.push(
            CreateAccount {
                id: a,
                owner,
                flags: AccountFlags::empty(),
                expires_at: EXPIRES_AT,
            }
            .sign(&operator, CLUSTER),
        );
        let fund = Transfer {
            id: u128::MAX - a,
            from: 0,
            to: a,
            amount: 1 << 40,
            client: 0,
            seq: a as u64,
            expires_at: EXPIRES_AT,
        };
        cmds.push(fund.sign(&operator, CLUSTER));
    }
    for chunk in cmds.chunks(512) {
        let r = ledger.apply(
            index,
            LOG_TIME_MS,
            &Entry::new(chunk.to_vec()).unwrap().encode(),
        );
        assert!(r.outcomes.iter().all(|o| o.is_ok()));
        index += 1;
    }
    Setup {
        ledger,
        keys,
        next_index: index,
    }
}

/// `n` transfers with ids from `first_id`, signed by the debit owner (or
/// left unsigned when `sign` is false).
fn transfers(keys: &[SigningKey], first_id: u128, n: usize, sign: bool) -> Vec<SignedCommand> {
    (0..n)
        .map(|i| {
            let from = 1 + (i as u128 % ACCOUNTS);
            let to = 1 + ((i as u128 * 7 + 3) % ACCOUNTS);
            let to = if to == from { 1 + (to % ACCOUNTS) } else { to };
            let t = Transfer {
                id: first_id + i as u128,
                from,
                to,
                amount: 1,
                client: 1,
                seq: first_id as u64 + i as u64,
                expires_at: EXPIRES_AT,
            };
            if sign {
                t.sign(&keys[(from as usize) % KEYS], CLUSTER)
            } else {
                SignedCommand {
                    command: continuum_bank::Command::Transfer(t),
                    signature: [0; 64],
                }
            }
        })
        .collect()
}

fn run(name: &str, s: &mut Setup, cmds: &[SignedCommand], batch: usize, verified: bool) {
    let entries: Vec<Vec<u8>> = cmds
        .chunks(batch)
        .map(|c| Entry::new(c.to_vec()).unwrap().encode())
        .collect();
    let start = Instant::now();
    let mut ok = 0usize;
    for e in &entries {
        let r = if verified {
            s.ledger.apply(s.next_index, LOG_TIME_MS, e)
        } else {
            s.ledger.reapply_clean(s.next_index, LOG_TIME_MS, e)
        };
        ok += r.outcomes.iter().filter(|o| o.is_ok()).count();
        s.next_index += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(ok, cmds.len(), "{name}: every transfer must apply");
    println!(
        "{name:<28} batch {batch:>4}: {:>6} transfers in {:>7.3} s = {:>9.0} transfers/s ({:.2} µs each)",
        cmds.len(),
        secs,
        cmds.len() as f64 / secs,
        secs * 1e6 / cmds.len() as f64
    );
}

/// Per-signature cost of the two halves of the batch rule.
fn signature_costs(keys: &[SigningKey]) {
    use ed25519_dalek::Signer;
    let n = 2000;
    let msgs: Vec<[u8; 8]> = (0..n as u64).map(|i| i.to_le_bytes()).collect();
    let sigs: Vec<[u8; 64]> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| keys[i % KEYS].sign(m).to_bytes())
        .collect();
    let owners: Vec<continuum_bank::OwnerKey> = keys
        .iter()
        .map(|k| continuum_bank::OwnerKey::parse(&k.verifying_key().to_bytes()).unwrap())
        .collect();
    let start = Instant::now();
    for (i, (m, s)) in msgs.iter().zip(&sigs).enumerate() {
        assert!(owners[i % KEYS].verify(m, s));
    }
    let strict = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let start = Instant::now();
    for s in &sigs {
        assert!(continuum_bank::verify::precheck(s));
    }
    let pre = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("per signature: verify_strict {strict:.1} µs, batch pre-check (R torsion check) {pre:.1} µs");
}

fn main() {
    let mut s = setup();
    signature_costs(&s.keys);
    let mut next_id = 1u128;
    let mut take = |n: usize, sign: bool, keys: &[SigningKey]| {
        let v = transfers(keys, next_id, n, sign);
        next_id += n as u128;
        v
    };
    let keys = s.keys.clone();
    let unsigned = take(131_072, false, &keys);
    run("unverified (in-memory)", &mut s, &unsigned, 512, false);
    let single = take(4096, true, &keys);
    run("verified, one per entry", &mut s, &single, 1, true);
    let b64 = take(8192, true, &keys);
    run("verified, batched", &mut s, &b64, 64, true);
    let b512 = take(8192, true, &keys);
    run("verified, batched", &mut s, &b512, 512, true);
    s.ledger.set_batch_verification(false);
    let u64s = take(8192, true, &keys);
    run("verified, batching off", &mut s, &u64s, 64, true);
    let (accounts, applied, sessions) = s.ledger.sizes();
    println!("state: {accounts} accounts, {applied} applied transfer ids, {sessions} sessions");
}
