//! Targets shared by the cargo-fuzz harnesses in `bank/fuzz/` and the
//! proptests in `cargo test`, so CI exercises the same functions.

use crate::entry::Entry;
use crate::ledger::{GenesisConfig, Ledger, Limits};
use crate::{AccountFlags, Command, CreateAccount, Outcome, SignedCommand, Transfer};
use ed25519_dalek::SigningKey;

/// Decodes arbitrary bytes as an entry and as a single signed command;
/// whatever decodes must re-encode to exactly the input bytes (one
/// canonical encoding). Panics on any violation.
pub fn decode_roundtrip(bytes: &[u8]) {
    if let Ok(entry) = Entry::decode(bytes) {
        assert_eq!(entry.encode(), bytes, "entry encoding is not canonical");
    }
    if let Ok(cmd) = SignedCommand::decode(bytes) {
        assert_eq!(cmd.encode(), bytes, "command encoding is not canonical");
        let _ = Command::kind(&cmd.command);
    }
}

/// Expiry window of the fuzz ledger.
pub const FUZZ_WINDOW_MS: u64 = 600_000;
/// Log time of entry `index` in the fuzz targets: one second per entry, so
/// the scripted `expires_at` values cover live, expired and too-far.
pub fn fuzz_log_time_ms(index: u64) -> u64 {
    index * 1000
}

/// A small fixed ledger for fuzzing `apply`: operator key from a fixed seed.
pub fn fuzz_ledger() -> Ledger {
    let operator = SigningKey::from_bytes(&[7u8; 32]);
    Ledger::genesis(GenesisConfig {
        cluster_id: 1,
        operator_key: operator.verifying_key().to_bytes(),
        reserve_account: 1,
        supply: 1_000_000,
        limits: Limits {
            max_accounts: 64,
            max_transfers: 64,
            max_sessions: 8,
        },
        max_expiry_window_ms: FUZZ_WINDOW_MS,
    })
    .expect("fixed fuzz genesis is valid")
}

/// Applies each chunk of `data` (split on a length byte) as an entry to
/// `ledger`; apply must never panic and the invariants (asserted inside
/// `apply`) must hold. Also checks snapshot → restore → snapshot is exact.
pub fn apply_arbitrary(ledger: &mut Ledger, data: &[u8]) {
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (entry, next) = tail.split_at(n);
        let index = ledger.applied_index() + 1;
        let result = ledger.apply(index, fuzz_log_time_ms(index), entry);
        assert_eq!(result.index, index);
        assert!(!result.outcomes.is_empty());
        rest = next;
    }
    let snap = ledger.snapshot();
    let restored = Ledger::restore(&snap).expect("own snapshot restores");
    assert_eq!(&restored, ledger);
    assert_eq!(restored.snapshot(), snap);
}

/// Interprets `data` as a script of *well-signed* operations (6 bytes each)
/// over a fixed pool of keys, so fuzzing reaches the execution paths behind
/// the signature check: creates (sometimes by a non-operator), transfers
/// (sometimes signed by the wrong key or with a corrupted signature),
/// replays of earlier commands, live/expired/too-far expiries, and entry
/// boundaries. Applies the entries to
/// two replicas (one with batch verification off) and checks: every
/// transfer is `Ok` at most once, both replicas agree byte for byte, and
/// the snapshot round-trips. Conservation is asserted inside `apply`.
pub fn apply_script(data: &[u8]) {
    let keys: alloc::vec::Vec<SigningKey> = (0u8..5)
        .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
        .collect();
    let operator = SigningKey::from_bytes(&[7u8; 32]);
    let mut a = fuzz_ledger();
    let mut b = fuzz_ledger();
    b.set_batch_verification(false);
    let account = |slot: u8| if slot == 0 { 1 } else { 10 + u128::from(slot) };
    let owner_of = |slot: u8| {
        if slot == 0 {
            &operator
        } else {
            &keys[usize::from(slot % 4)]
        }
    };

    // Setup: accounts 1..=4 with their intended owners, funded from the reserve.
    let mut entries: alloc::vec::Vec<alloc::vec::Vec<SignedCommand>> = alloc::vec::Vec::new();
    let mut setup = alloc::vec::Vec::new();
    for slot in 1..=4u8 {
        let owner = owner_of(slot).verifying_key().to_bytes();
        let create = CreateAccount {
            id: account(slot),
            owner,
            flags: AccountFlags::empty(),
            expires_at: 60_000,
        };
        setup.push(create.sign(&operator, 1));
        let fund = Transfer {
            id: 1000 + u128::from(slot),
            from: 1,
            to: account(slot),
            amount: 1000,
            client: 9,
            seq: u64::from(slot),
            expires_at: 60_000,
        };
        setup.push(fund.sign(&operator, 1));
    }
    entries.push(setup);

    let mut history: alloc::vec::Vec<SignedCommand> = alloc::vec::Vec::new();
    let mut current: alloc::vec::Vec<SignedCommand> = alloc::vec::Vec::new();
    for op in data.chunks_exact(6) {
        let [kind, x, y, z, w, v] = [op[0], op[1], op[2], op[3], op[4], op[5]];
        let signed = match kind % 5 {
            0 => {
                let flags = AccountFlags::from_bits(u16::from(z & 1)).unwrap_or_default();
                let create = CreateAccount {
                    id: account(x % 8),
                    owner: owner_of(y % 8).verifying_key().to_bytes(),
                    flags,
                    expires_at: u64::from(v) * 4_000,
                };
                Some(create.sign(
                    if w % 8 == 0 {
                        owner_of(y % 8)
                    } else {
                        &operator
                    },
                    1,
                ))
            }
            1 | 2 => {
                let (from, to) = (x % 9, y % 9);
                let t = Transfer {
                    id: u128::from(z % 32),
                    from: account(from),
                    to: account(to),
                    amount: u64::from(w) * u64::from(1 + (v & 3)),
                    client: u128::from((v >> 2) & 3),
                    seq: u64::from(kind >> 3),
                    // Live, expired or too far, depending on the entry.
                    expires_at: u64::from(x) * 4_000,
                };
                let signer = if v & 0x80 != 0 {
                    owner_of(from + 1)
                } else {
                    owner_of(from)
                };
                let mut signed = t.sign(signer, 1);
                if v & 0x40 != 0 {
                    signed.signature[usize::from(w % 64)] ^= 1;
                }
                Some(signed)
            }
            3 if !history.is_empty() => Some(history[usize::from(x) % history.len()]),
            _ => None,
        };
        match signed {
            Some(cmd) if current.len() < crate::MAX_COMMANDS_PER_BATCH => {
                history.push(cmd);
                current.push(cmd);
            }
            _ if !current.is_empty() => entries.push(core::mem::take(&mut current)),
            _ => {}
        }
    }
    if !current.is_empty() {
        entries.push(current);
    }

    let mut ok_ids = alloc::collections::BTreeSet::new();
    for (i, commands) in entries.into_iter().enumerate() {
        let bytes = Entry::new(commands.clone())
            .expect("bounded batch")
            .encode();
        let index = i as u64 + 1;
        let ra = a.apply(index, fuzz_log_time_ms(index), &bytes);
        let rb = b.apply(index, fuzz_log_time_ms(index), &bytes);
        assert_eq!(ra, rb, "replicas disagree (batching on vs off)");
        for (cmd, outcome) in commands.iter().zip(&ra.outcomes) {
            // An id may be reused once its window is over (a different
            // transfer: `expires_at` differs); the same transfer never
            // applies twice.
            if let (Command::Transfer(t), Outcome::Ok) = (&cmd.command, outcome) {
                let fields = (t.id, t.from, t.to, t.amount, t.client, t.seq, t.expires_at);
                assert!(ok_ids.insert(fields), "a transfer applied twice");
            }
        }
    }
    let snap = a.snapshot();
    assert_eq!(snap, b.snapshot());
    let restored = Ledger::restore(&snap).expect("own snapshot restores");
    assert_eq!(restored.snapshot(), snap);
}

/// Restores arbitrary bytes as a snapshot: never panics, and whatever
/// restores is canonical (its own snapshot is exactly the input) and
/// satisfies the ledger invariants. Panics on any violation.
pub fn restore_snapshot(bytes: &[u8]) {
    if let Ok(ledger) = Ledger::restore(bytes) {
        ledger.assert_invariants();
        assert_eq!(
            ledger.snapshot(),
            bytes,
            "snapshot encoding is not canonical"
        );
    }
}
