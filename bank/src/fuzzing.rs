//! Targets shared by the cargo-fuzz harnesses in `bank/fuzz/` and the
//! proptests in `cargo test`, so CI exercises the same functions.

use crate::entry::Entry;
use crate::ledger::{GenesisConfig, Ledger, Limits};
use crate::{Command, SignedCommand};

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

/// A small fixed ledger for fuzzing `apply`: operator key from a fixed seed.
pub fn fuzz_ledger() -> Ledger {
    let operator = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
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
        let result = ledger.apply(index, entry);
        assert_eq!(result.index, index);
        assert!(!result.outcomes.is_empty());
        rest = next;
    }
    let snap = ledger.snapshot();
    let restored = Ledger::restore(&snap).expect("own snapshot restores");
    assert_eq!(&restored, ledger);
    assert_eq!(restored.snapshot(), snap);
}
