//! Admission control: the node that takes a client's `Submit` verifies
//! every signature in it before the command may enter the replicated log.
//!
//! The log is permanent and replicated to every node's disk, so anything
//! admitted costs the whole cluster for ever: without this filter anyone on
//! the client network could fill every disk with forged transfers (the bank
//! would reject them at apply, but only after they were stored). Admission
//! is an early filter, not the authority: every replica still verifies
//! every signature when it applies the entry (`continuum_bank::Ledger`), so
//! a node that admits wrongly cannot change an outcome.
//!
//! Signers are resolved against this node's *applied* ledger, the way the
//! bank resolves them at apply: account creation is signed by the operator
//! key; a transfer by the owner key of its debited account — an account in
//! the ledger, or one created by an earlier command of the same entry.
//! Owner keys never change and accounts are never deleted, so a key found
//! in a lagging replica's ledger is the key the log will check against. A
//! transfer whose account this node has not applied yet is
//! [`Admission::Unresolved`]: a follower forwards it to the leader marked
//! unchecked and the leader decides; a leader that cannot resolve it either
//! refuses it. A leader that refuses an unchecked forward on its merits (a
//! signature does not verify, or a signer is unresolved there too) answers
//! the origin with `Body::ForwardRefused`, and the origin answers its client
//! `BadSignature` or `BadRequest`, as the leader would have directly.
//!
//! Verification is the costly part (~526 µs per Ed25519 signature in a TCG
//! guest, PLATFORM.md), so the node spends at most
//! [`ADMISSION_SIGNATURES_PER_PASS`] verifications between two
//! `Node::drive` calls (one pass of the kernel's network loop): ~17 ms of
//! TCG time at worst. Past the budget a client gets `Busy` and an unchecked
//! forward is dropped (its origin answers `Timeout`); the kernel stops
//! reading client datagrams once the budget is spent, so they wait in the
//! socket for the next pass instead.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use continuum_bank::verify::VerifyItem;
use continuum_bank::{Command, Entry, Ledger, OwnerKey, SigningMessage, VerdictMemo};

/// Most signatures verified at admission per pass of the driving loop
/// (between two `Node::drive` calls). 32 × ~526 µs ≈ 17 ms in a TCG guest,
/// ~2 ms natively; one client datagram carries at most 8 commands
/// (`MAX_ENTRY_BYTES` / the smallest signed command), so a pass always
/// admits at least four full requests.
pub const ADMISSION_SIGNATURES_PER_PASS: usize = 32;

/// What admission decided about one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Every signer resolved and every signature verifies.
    Valid,
    /// Some signer resolved and its signature does not verify.
    BadSignature,
    /// Every resolved signature verifies, but some transfer's debited
    /// account is not in this node's applied ledger.
    Unresolved,
}

/// Checks every signature of `entry` against `ledger` (see module doc).
/// Returns the decision and the number of signatures it verified. Verdicts
/// are remembered in `memo`, so the entry's apply on this node does not
/// verify them again.
pub fn admit(
    ledger: &Ledger,
    operator: OwnerKey,
    entry: &Entry,
    memo: &mut VerdictMemo,
) -> (Admission, usize) {
    let cluster_id = ledger.config().cluster_id;
    let mut created: BTreeMap<u128, OwnerKey> = BTreeMap::new();
    let mut unresolved = false;
    let mut signed: Vec<(OwnerKey, SigningMessage, &[u8; 64])> = Vec::new();
    for command in entry.commands() {
        let signer = match &command.command {
            Command::CreateAccount(create) => {
                if ledger.account(create.id).is_none() && !created.contains_key(&create.id) {
                    if let Some(owner) = OwnerKey::parse(&create.owner) {
                        created.insert(create.id, owner);
                    }
                }
                Some(operator)
            }
            Command::Transfer(transfer) => ledger
                .account(transfer.from)
                .and_then(|account| account.owner_key())
                .or_else(|| created.get(&transfer.from).copied()),
        };
        match signer {
            Some(key) => signed.push((
                key,
                command.command.signing_message(cluster_id),
                &command.signature,
            )),
            None => unresolved = true,
        }
    }
    let items: Vec<VerifyItem<'_>> = signed
        .iter()
        .map(|(key, message, signature)| VerifyItem {
            key: *key,
            message: message.as_bytes(),
            signature,
        })
        .collect();
    let (valid, verified) = memo.verify_and_remember(&items, true);
    let admission = if !valid.into_iter().all(|ok| ok) {
        Admission::BadSignature
    } else if unresolved {
        Admission::Unresolved
    } else {
        Admission::Valid
    };
    (admission, verified)
}

/// How many signatures [`admit`] would verify for `entry` at most: one per
/// command (an upper bound, known before any work).
pub fn signatures_in(entry: &Entry) -> usize {
    entry.commands().len()
}
