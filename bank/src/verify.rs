//! Ed25519 verification with one rule, whether a signature is checked alone
//! or inside a batch.
//!
//! ## The rule
//! A signature `(R, S)` by key `A` on message `M` is valid iff
//! `ed25519_dalek::VerifyingKey::verify_strict` accepts it: `S` canonical
//! (`S < ℓ`), `R` and `A` decompress and are not of small order, and the
//! *cofactorless* equation `[S]B = R + [H(R‖A‖M)]A` holds with `R`'s encoding
//! equal to the encoding of `[S]B − [H]A`.
//!
//! ## Why batching needs care
//! `ed25519_dalek::verify_batch` checks a random linear combination
//! `Σ zᵢ([Sᵢ]B − Rᵢ − [Hᵢ]Aᵢ) = 0` with 128-bit `zᵢ` derived from a Merlin
//! transcript of all inputs (deterministic: no OS RNG, so it runs in the
//! kernel and gives the same answer on every replica). It does *not* reject
//! small-order `R`/`A` nor non-canonical `R`, and if some error term `eᵢ` is a
//! torsion point (order 2, 4 or 8) the combination vanishes whenever
//! `zᵢ ≡ 0 (mod ord eᵢ)` — an attacker who grinds the transcript gets a
//! signature that the batch accepts but `verify_strict` rejects. Then the
//! outcome would depend on what else was in the batch. We close every gap:
//!
//! 1. Keys are [`OwnerKey`]s: validated once, when the account is created or
//!    at genesis — canonical encoding, not small order, **torsion-free**.
//! 2. Before batching, each signature is pre-checked ([`precheck`]): `S`
//!    canonical; `R` decompresses, is canonically encoded, is not of small
//!    order and is **torsion-free**. A signature failing the pre-check is
//!    rejected without further work; `verify_strict` would reject it too
//!    (with `A` and `B` torsion-free, `[S]B − [H]A` is torsion-free, so it can
//!    never equal an `R` with a torsion component; a non-canonical `R` encoding
//!    never equals the canonical encoding `verify_strict` compares against).
//! 3. Pre-checked signatures go to `verify_batch`. Now every `eᵢ` lies in the
//!    prime-order subgroup, so the batch accepts with some `eᵢ ≠ 0` only with
//!    probability ≤ 2⁻¹²⁸ per transcript: batch-accept ⇔ all strictly valid,
//!    up to that bound.
//! 4. If the batch fails, each pre-checked signature is verified alone with
//!    `verify_strict`, which finds exactly the bad ones.
//!
//! Below [`BATCH_THRESHOLD`] signatures, each is verified alone.

use alloc::vec::Vec;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, VerifyingKey};

/// Fewest signatures for which a batch is attempted (smaller sets are
/// verified one by one; the batch's setup does not pay off).
pub const BATCH_THRESHOLD: usize = 4;

/// An Ed25519 public key that passed [`OwnerKey::parse`]: canonical
/// encoding, on the curve, not of small order, torsion-free. Only such keys
/// own accounts, so the batch rule above holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerKey(VerifyingKey);

impl OwnerKey {
    /// Validates `bytes` as an owner key.
    pub fn parse(bytes: &[u8; 32]) -> Option<OwnerKey> {
        let point = canonical_point(bytes)?;
        if point.is_small_order() || !is_torsion_free_vartime(&point) {
            return None;
        }
        VerifyingKey::from_bytes(bytes).ok().map(OwnerKey)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// `verify_strict` of one signature.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// Decompresses `bytes` only if it is the canonical encoding of a point:
/// the y coordinate (low 255 bits) must be below p = 2²⁵⁵ − 19. (The other
/// non-canonical form, x = 0 with the sign bit set, only encodes the two
/// small-order points (0, ±1), which every caller rejects anyway.)
fn canonical_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let y_at_least_p =
        bytes[0] >= 0xed && bytes[1..31].iter().all(|b| *b == 0xff) && bytes[31] & 0x7f == 0x7f;
    if y_at_least_p {
        return None;
    }
    CompressedEdwardsY(*bytes).decompress()
}

/// `[ℓ]P == 0`, computed as `[ℓ−1]P == −P` so a reduced scalar suffices and
/// the variable-time double-scalar multiplication applies (inputs are public).
fn is_torsion_free_vartime(point: &EdwardsPoint) -> bool {
    let l_minus_one = -Scalar::ONE;
    EdwardsPoint::vartime_double_scalar_mul_basepoint(&l_minus_one, point, &Scalar::ZERO) == -point
}

/// Step 2 of the module rule: cheap necessary conditions of `verify_strict`
/// that `verify_batch` does not check itself.
pub fn precheck(signature: &[u8; 64]) -> bool {
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..]);
    if Option::<Scalar>::from(Scalar::from_canonical_bytes(s)).is_none() {
        return false;
    }
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    match canonical_point(&r) {
        Some(point) => !point.is_small_order() && is_torsion_free_vartime(&point),
        None => false,
    }
}

/// One signature to check.
pub struct VerifyItem<'a> {
    pub key: OwnerKey,
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// Verifies every item by the module rule; `result[i]` is item `i`'s
/// validity, identical to `items[i].key.verify(..)` (see module doc).
/// With `batch` false (or fewer than [`BATCH_THRESHOLD`] items) each item is
/// verified alone; the answer is the same either way.
pub fn verify_all(items: &[VerifyItem<'_>], batch: bool) -> Vec<bool> {
    if !batch || items.len() < BATCH_THRESHOLD {
        return items
            .iter()
            .map(|i| i.key.verify(i.message, i.signature))
            .collect();
    }
    let mut valid: Vec<bool> = items.iter().map(|i| precheck(i.signature)).collect();
    let candidates: Vec<usize> = (0..items.len()).filter(|&i| valid[i]).collect();
    let messages: Vec<&[u8]> = candidates.iter().map(|&i| items[i].message).collect();
    let signatures: Vec<Signature> = candidates
        .iter()
        .map(|&i| Signature::from_bytes(items[i].signature))
        .collect();
    let keys: Vec<VerifyingKey> = candidates.iter().map(|&i| items[i].key.0).collect();
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_err() {
        for &i in &candidates {
            valid[i] = items[i].key.verify(items[i].message, items[i].signature);
        }
    }
    valid
}
