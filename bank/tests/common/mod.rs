//! Shared test fixtures: a deterministic key pool (signing is the expensive
//! part of every test, so keys are derived once from fixed seeds) and a small
//! driver that turns commands into entries and applies them.
#![allow(dead_code)]

use continuum_bank::{
    AccountFlags, CreateAccount, Entry, GenesisConfig, Ledger, Limits, Outcome, SignedCommand,
    Transfer,
};
use ed25519_dalek::SigningKey;

pub const CLUSTER: u128 = 0xC0FFEE;
pub const RESERVE: u128 = 1;
pub const SUPPLY: u64 = 1_000_000;
/// Genesis expiry window of the test ledgers.
pub const WINDOW_MS: u64 = 600_000;
/// Log time the test bank applies at unless a test moves it.
pub const START_MS: u64 = 1_000;
/// `expires_at` of the helpers' commands: inside the window at `START_MS`.
pub const EXPIRES_AT: u64 = START_MS + WINDOW_MS / 2;

/// Deterministic key number `n` (n = 0 is the operator).
pub fn key(n: u8) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[0] = n;
    seed[31] = 0xA5;
    SigningKey::from_bytes(&seed)
}

pub fn operator() -> SigningKey {
    key(0)
}

pub fn config(limits: Limits) -> GenesisConfig {
    GenesisConfig {
        cluster_id: CLUSTER,
        operator_key: operator().verifying_key().to_bytes(),
        reserve_account: RESERVE,
        supply: SUPPLY,
        limits,
        max_expiry_window_ms: WINDOW_MS,
    }
}

/// A ledger plus the next log index and the log time (entry HLC ms) to use.
pub struct Bank {
    pub ledger: Ledger,
    pub next_index: u64,
    pub now_ms: u64,
}

impl Bank {
    pub fn new() -> Bank {
        Bank::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Bank {
        Bank {
            ledger: Ledger::genesis(config(limits)).expect("valid genesis"),
            next_index: 1,
            now_ms: START_MS,
        }
    }

    /// Applies `commands` as one entry.
    pub fn apply(&mut self, commands: Vec<SignedCommand>) -> Vec<Outcome> {
        let bytes = Entry::new(commands).expect("valid batch").encode();
        self.apply_bytes(&bytes)
    }

    pub fn apply_bytes(&mut self, bytes: &[u8]) -> Vec<Outcome> {
        let index = self.next_index;
        self.next_index += 1;
        self.ledger.apply(index, self.now_ms, bytes).outcomes
    }

    pub fn one(&mut self, command: SignedCommand) -> Outcome {
        let outcomes = self.apply(vec![command]);
        assert_eq!(outcomes.len(), 1);
        outcomes[0]
    }

    /// Creates account `id` owned by key `owner`, signed by the operator.
    pub fn open(&mut self, id: u128, owner: u8) -> Outcome {
        self.one(create(id, owner))
    }
}

pub fn create(id: u128, owner: u8) -> SignedCommand {
    CreateAccount {
        id,
        owner: key(owner).verifying_key().to_bytes(),
        flags: AccountFlags::empty(),
        expires_at: EXPIRES_AT,
    }
    .sign(&operator(), CLUSTER)
}

pub fn transfer(id: u128, from: u128, to: u128, amount: u64, client: u128, seq: u64) -> Transfer {
    Transfer {
        id,
        from,
        to,
        amount,
        client,
        seq,
        expires_at: EXPIRES_AT,
    }
}

/// Sum of the balances of `ids` (accounts that exist).
pub fn total(ledger: &Ledger, ids: &[u128]) -> u64 {
    ids.iter().filter_map(|id| ledger.balance(*id)).sum()
}
