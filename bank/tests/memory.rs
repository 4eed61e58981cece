//! The per-record heap costs that `Limits::for_heap` divides by are upper
//! bounds of what the tables really allocate (B-tree nodes and slack
//! included), measured with a counting global allocator. One test only:
//! the allocator counts every thread of this binary.

mod common;

use common::*;
use continuum_bank::{
    AccountFlags, CreateAccount, Entry, Ledger, Limits, Outcome, SignedCommand, Transfer,
    ACCOUNT_COST_BYTES, DECIDED_TRANSFER_COST_BYTES, SESSION_COST_BYTES,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N: u64 = 2_000;
/// Commands per entry (the signature is not checked on this path).
const BATCH: usize = 500;

fn unsigned(command: continuum_bank::Command) -> SignedCommand {
    SignedCommand {
        command,
        signature: [0; 64],
    }
}

/// Applies `commands` in batches without signature checks (`reapply_clean`); returns the live-heap growth.
fn grow(ledger: &mut Ledger, index: &mut u64, commands: Vec<SignedCommand>) -> isize {
    let entries: Vec<Vec<u8>> = commands
        .chunks(BATCH)
        .map(|c| Entry::new(c.to_vec()).unwrap().encode())
        .collect();
    drop(commands);
    let before = LIVE.load(Ordering::Relaxed);
    for bytes in &entries {
        *index += 1;
        let result = ledger.reapply_clean(*index, START_MS, bytes);
        assert!(result.outcomes.iter().all(|o| *o == Outcome::Ok));
    }
    LIVE.load(Ordering::Relaxed) - before
}

#[test]
fn record_costs_bound_what_the_tables_allocate() {
    let limits = Limits {
        max_accounts: N + 1,
        max_transfers: 2 * N,
        max_sessions: N + 1,
    };
    let mut ledger = Ledger::genesis(config(limits)).unwrap();
    let mut index = 0;
    let owner = key(1).verifying_key().to_bytes();
    let accounts = (0..N)
        .map(|i| {
            unsigned(continuum_bank::Command::CreateAccount(CreateAccount {
                id: 1_000 + u128::from(i),
                owner,
                flags: AccountFlags::empty(),
                expires_at: EXPIRES_AT,
            }))
        })
        .collect();
    let account_bytes = grow(&mut ledger, &mut index, accounts) as u64 / N;
    let transfer = |i: u64, client: u128| {
        unsigned(continuum_bank::Command::Transfer(Transfer {
            id: 10_000 + u128::from(i),
            from: RESERVE,
            to: 1_000,
            amount: 1,
            client,
            seq: i + 1,
            expires_at: EXPIRES_AT,
        }))
    };
    // One session: the growth is the id index alone.
    let same_client = (0..N).map(|i| transfer(i, 1)).collect();
    let decided_bytes = grow(&mut ledger, &mut index, same_client) as u64 / N;
    // A new session each: id index plus session table.
    let new_clients = (N..2 * N).map(|i| transfer(i, u128::from(i))).collect();
    let both = grow(&mut ledger, &mut index, new_clients) as u64 / N;
    let session_bytes = both.saturating_sub(decided_bytes);
    println!(
        "measured heap per record: account {account_bytes} B, decided id {decided_bytes} B, session {session_bytes} B"
    );
    assert!(
        account_bytes <= ACCOUNT_COST_BYTES,
        "account {account_bytes} B"
    );
    assert!(
        decided_bytes <= DECIDED_TRANSFER_COST_BYTES,
        "decided {decided_bytes} B"
    );
    assert!(
        session_bytes <= SESSION_COST_BYTES,
        "session {session_bytes} B"
    );
    assert_eq!(
        ledger.sizes(),
        (N as usize + 1, 2 * N as usize, N as usize + 1)
    );
}
