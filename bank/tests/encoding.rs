//! Canonical encodings and total decoders: commands, entries, snapshots.
//! The fuzz targets' functions (`continuum_bank::fuzzing`) run here too.

mod common;

use common::*;
use continuum_bank::fuzzing::{
    apply_arbitrary, apply_script, decode_roundtrip, fuzz_ledger, restore_snapshot,
};
use continuum_bank::{
    AccountFlags, Command, CreateAccount, DecodeError, Entry, Ledger, Outcome, SignedCommand,
    SnapshotError, Transfer, CREATE_ACCOUNT_BODY_LEN, MAX_COMMANDS_PER_BATCH, MAX_ENTRY_BYTES,
    TRANSFER_BODY_LEN,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn transfer_strategy() -> impl Strategy<Value = Transfer> {
    (
        any::<u128>(),
        any::<u128>(),
        any::<u128>(),
        any::<u64>(),
        any::<u128>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(id, from, to, amount, client, seq, expires_at)| Transfer {
            id,
            from,
            to,
            amount,
            client,
            seq,
            expires_at,
        })
}

fn command_strategy() -> impl Strategy<Value = SignedCommand> {
    let create = (
        any::<u128>(),
        any::<[u8; 32]>(),
        prop::bool::ANY,
        any::<u64>(),
    )
        .prop_map(|(id, owner, f, expires_at)| {
            let flags = if f {
                AccountFlags::CREDIT_ONLY
            } else {
                AccountFlags::empty()
            };
            Command::CreateAccount(CreateAccount {
                id,
                owner,
                flags,
                expires_at,
            })
        });
    let command = prop_oneof![create, transfer_strategy().prop_map(Command::Transfer)];
    (command, prop::collection::vec(any::<u8>(), 64)).prop_map(|(command, sig)| SignedCommand {
        command,
        signature: sig.try_into().unwrap(),
    })
}

#[test]
fn layout_sizes_match_the_readme() {
    let t = transfer(1, 2, 3, 4, 5, 6).sign(&key(1), CLUSTER);
    assert_eq!(t.encode().len(), 1 + TRANSFER_BODY_LEN + 64);
    assert_eq!(TRANSFER_BODY_LEN, 88);
    let c = create(7, 1);
    assert_eq!(c.encode().len(), 1 + CREATE_ACCOUNT_BODY_LEN + 64);
    assert_eq!(CREATE_ACCOUNT_BODY_LEN, 58);
    let entry = Entry::new(vec![t, c]).unwrap().encode();
    assert_eq!(entry.len(), 3 + 153 + 123);
    assert_eq!(&entry[..3], &[2, 2, 0]);
    // Field order: kind, then id little-endian.
    assert_eq!(entry[3], 2);
    assert_eq!(entry[4], 1);
}

#[test]
fn decode_errors_are_specific() {
    let t = transfer(1, 2, 3, 4, 5, 6).sign(&key(1), CLUSTER);
    let good = Entry::single(t).encode();
    assert_eq!(Entry::decode(&good).unwrap().commands(), &[t]);
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(Entry::decode(&trailing), Err(DecodeError::TrailingBytes));
    assert_eq!(
        Entry::decode(&good[..good.len() - 1]),
        Err(DecodeError::Truncated)
    );
    let mut version = good.clone();
    version[0] = 1;
    assert_eq!(
        Entry::decode(&version),
        Err(DecodeError::UnsupportedVersion)
    );
    let mut kind = good.clone();
    kind[3] = 9;
    assert_eq!(Entry::decode(&kind), Err(DecodeError::UnknownCommandKind));
    assert_eq!(Entry::decode(&[2, 0, 0]), Err(DecodeError::EmptyBatch));
    let too_many = (MAX_COMMANDS_PER_BATCH as u16 + 1).to_le_bytes();
    assert_eq!(
        Entry::decode(&[2, too_many[0], too_many[1]]),
        Err(DecodeError::BatchTooLarge)
    );
    // A huge count with few bytes is refused before allocating.
    assert_eq!(Entry::decode(&[2, 0, 2]), Err(DecodeError::Truncated));
    assert_eq!(
        Entry::decode(&vec![1u8; MAX_ENTRY_BYTES + 1]),
        Err(DecodeError::EntryTooLarge)
    );
    let mut flags = Entry::single(create(5, 1)).encode();
    let flag_offset = 3 + 1 + 16 + 32;
    flags[flag_offset] = 0x02;
    assert_eq!(Entry::decode(&flags), Err(DecodeError::ReservedFlags));
    assert!(Entry::new(vec![]).is_err());
    assert!(Entry::new(vec![t; MAX_COMMANDS_PER_BATCH + 1]).is_err());
    assert!(Entry::new(vec![t; MAX_COMMANDS_PER_BATCH]).is_ok());
}

#[test]
fn snapshot_rejects_corruption_and_truncation() {
    let mut bank = Bank::new();
    assert_eq!(bank.open(10, 1), Outcome::Ok);
    let t = transfer(5, RESERVE, 10, 9, 1, 1).sign(&operator(), CLUSTER);
    assert_eq!(bank.one(t), Outcome::Ok);
    let snap = bank.ledger.snapshot();
    let restored = Ledger::restore(&snap).unwrap();
    assert_eq!(restored, bank.ledger);
    for i in [0, 10, snap.len() / 2, snap.len() - 1] {
        let mut bad = snap.clone();
        bad[i] ^= 0x40;
        assert_eq!(Ledger::restore(&bad), Err(SnapshotError::ChecksumMismatch));
    }
    assert_eq!(
        Ledger::restore(&snap[..40]),
        Err(SnapshotError::ChecksumMismatch)
    );
    assert_eq!(Ledger::restore(&snap[..10]), Err(SnapshotError::TooShort));
    assert_eq!(Ledger::restore(&[]), Err(SnapshotError::TooShort));
    // Content errors behind a valid checksum: money created out of thin air.
    let mut body = snap[..snap.len() - 32].to_vec();
    // magic, genesis, applied index, log time, chain head, count, then the
    // reserve account (id 1 sorts first): id, owner, flags, balance.
    let reserve_balance_at = 8 + 104 + 8 + 8 + 32 + 8 + 16 + 32 + 2;
    body[reserve_balance_at] ^= 1;
    let checksum: [u8; 32] = Sha256::digest(&body).into();
    body.extend_from_slice(&checksum);
    assert_eq!(Ledger::restore(&body), Err(SnapshotError::SupplyMismatch));
}

/// A small ledger's snapshot, built once (signing is slow in debug builds).
fn base_snapshot() -> &'static [u8] {
    static SNAPSHOT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut bank = Bank::new();
        assert_eq!(bank.open(10, 1), Outcome::Ok);
        let t = transfer(5, RESERVE, 10, 9, 1, 1).sign(&operator(), CLUSTER);
        assert_eq!(bank.one(t), Outcome::Ok);
        bank.ledger.snapshot()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn commands_round_trip(cmds in prop::collection::vec(command_strategy(), 1..8)) {
        for c in &cmds {
            prop_assert_eq!(SignedCommand::decode(&c.encode()), Ok(*c));
        }
        let entry = Entry::new(cmds).unwrap();
        let bytes = entry.encode();
        prop_assert_eq!(Entry::decode(&bytes), Ok(entry));
        decode_roundtrip(&bytes);
    }

    #[test]
    fn arbitrary_bytes_decode_totally(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_roundtrip(&bytes);
    }

    #[test]
    fn mutated_entries_decode_totally(cmds in prop::collection::vec(command_strategy(), 1..4),
                                      flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
                                      cut in any::<prop::sample::Index>()) {
        let mut bytes = Entry::new(cmds).unwrap().encode();
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_roundtrip(&bytes);
    }

    #[test]
    fn snapshot_bytes_restore_totally(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3)) {
        let snap = base_snapshot();
        // Re-checksum after mutating so the content decoder itself is exercised.
        let mut body = snap[..snap.len() - 32].to_vec();
        for (at, v) in flips {
            let i = at.index(body.len());
            body[i] = v;
        }
        let mut unchecked = body.clone();
        unchecked.extend_from_slice(&[0; 32]);
        let checksum: [u8; 32] = Sha256::digest(&body).into();
        body.extend_from_slice(&checksum);
        // A vouched restore skips only the trailer: same verdict, no panic.
        prop_assert_eq!(
            Ledger::restore_vouched(&unchecked).ok(),
            Ledger::restore(&body).ok()
        );
        // The snapshot_restore fuzz target's body.
        restore_snapshot(&body);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The fuzz target for `apply` over arbitrary bytes.
    #[test]
    fn apply_over_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut ledger = fuzz_ledger();
        apply_arbitrary(&mut ledger, &data);
    }

    /// The fuzz target for well-signed operation scripts (few cases: every
    /// op is signed, ~10 ms each in a debug build).
    #[test]
    fn apply_over_signed_scripts(data in prop::collection::vec(any::<u8>(), 0..60)) {
        apply_script(&data);
    }
}
