//! How long `Ledger::restore` takes for a large snapshot (the restart-time
//! budget is 2 s under TCG for the whole node). A measurement, not a timed
//! assertion: `cargo test -p continuum-bank --test restore_speed -- --ignored
//! --nocapture` prints it. The snapshot is built byte for byte after the
//! format in `snapshot.rs` (1,000,000 accounts sharing one owner key), so
//! building it costs no signature or key checks.

mod common;

use common::*;
use continuum_bank::{Ledger, Limits, SNAPSHOT_MAGIC};
use sha2::{Digest, Sha256};
use std::time::Instant;

fn large_snapshot(accounts: u64) -> Vec<u8> {
    let genesis = config(Limits {
        max_accounts: accounts + 1,
        max_transfers: 16,
        max_sessions: 16,
    });
    let mut out = Vec::new();
    out.extend_from_slice(SNAPSHOT_MAGIC);
    genesis.encode(&mut out);
    out.extend_from_slice(&1u64.to_le_bytes()); // applied index
    out.extend_from_slice(&0u64.to_le_bytes()); // log time
    out.extend_from_slice(&[9; 32]); // chain head
    out.extend_from_slice(&(accounts + 1).to_le_bytes());
    let owner = key(3).verifying_key().to_bytes();
    let per = SUPPLY / accounts;
    let reserve_balance = SUPPLY - per * accounts;
    let mut push = |id: u128, owner: &[u8; 32], balance: u64| {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(owner);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&balance.to_le_bytes());
    };
    push(RESERVE, &genesis.operator_key, reserve_balance);
    for i in 0..accounts {
        push(RESERVE + 1 + u128::from(i), &owner, per);
    }
    out.extend_from_slice(&0u64.to_le_bytes()); // decided ids
    out.extend_from_slice(&0u64.to_le_bytes()); // sessions
    let checksum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&checksum);
    out
}

fn measure(accounts: u64) {
    let bytes = large_snapshot(accounts);
    let started = Instant::now();
    let ledger = Ledger::restore(&bytes).expect("a well-formed snapshot restores");
    let took = started.elapsed();
    assert_eq!(ledger.sizes().0 as u64, accounts + 1);
    assert_eq!(
        ledger.snapshot(),
        bytes,
        "restore then snapshot is the identity"
    );
    println!(
        "restore of {accounts} accounts ({} bytes): {:.3} s",
        bytes.len(),
        took.as_secs_f64()
    );
}

#[test]
fn restore_of_a_small_built_snapshot_round_trips() {
    measure(1_000);
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn restore_time_for_a_million_accounts() {
    measure(1_000_000);
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn restore_time_for_a_hundred_thousand_accounts() {
    measure(100_000);
}
