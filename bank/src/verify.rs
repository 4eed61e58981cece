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
//! `ed25519_dalek::verify_batch` (feature `batch`) checks a random linear combination
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
//! 3. Pre-checked signatures go into one batch equation — the one
//!    `verify_batch` checks, computed here (`batch_equation_holds`) so the
//!    points decoded by the pre-check are reused and the terms of signatures
//!    by the same key are merged into one point (many transfers from one
//!    account cost one multiscalar term). Its 128-bit `zᵢ` come from SHA-512
//!    over all inputs: deterministic, no RNG, kernel-safe. Now every `eᵢ`
//!    lies in the prime-order subgroup, so the batch accepts with some
//!    `eᵢ ≠ 0` only with probability ≤ 2⁻¹²⁸ per transcript: batch-accept ⇔
//!    all strictly valid, up to that bound.
//! 4. If the batch fails, each pre-checked signature is verified alone with
//!    `verify_strict`, which finds exactly the bad ones.
//!
//! Below [`BATCH_THRESHOLD`] signatures, each is verified alone.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};

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

    /// Rebuilds a key from an account's stored owner bytes: decompression
    /// only, no torsion check. The bytes passed [`OwnerKey::parse`] when
    /// the account opened; a ledger restored from a snapshot does not
    /// re-check them (the snapshot's SHA-256 proves they are what a ledger
    /// wrote). `None` only for bytes no honest ledger stores: such an
    /// account's signatures never verify, on every replica alike.
    pub(crate) fn from_stored(bytes: &[u8; 32]) -> Option<OwnerKey> {
        VerifyingKey::from_bytes(bytes).ok().map(OwnerKey)
    }

    /// The compressed key.
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

/// Step 2 of the module rule: necessary conditions of `verify_strict` that
/// a batch equation does not check itself.
pub fn precheck(signature: &[u8; 64]) -> bool {
    decode_checked(signature).is_some()
}

/// `(R, S)` of a signature that passes [`precheck`].
fn decode_checked(signature: &[u8; 64]) -> Option<(EdwardsPoint, Scalar)> {
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s))?;
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let r = canonical_point(&r)?;
    (!r.is_small_order() && is_torsion_free_vartime(&r)).then_some((r, s))
}

/// One signature to check.
pub struct VerifyItem<'a> {
    /// Who must have signed.
    pub key: OwnerKey,
    /// What was signed.
    pub message: &'a [u8],
    /// The signature (`R ‖ S`).
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
    let mut valid = alloc::vec![false; items.len()];
    let mut candidates = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some((r, s)) = decode_checked(item.signature) {
            valid[i] = true;
            candidates.push(Candidate { item, r, s });
        }
    }
    if !batch_equation_holds(&candidates) {
        for (i, item) in items.iter().enumerate() {
            if valid[i] {
                valid[i] = item.key.verify(item.message, item.signature);
            }
        }
    }
    valid
}

/// A pre-checked signature with its decoded `R` and `S`.
struct Candidate<'a, 'b> {
    item: &'a VerifyItem<'b>,
    r: EdwardsPoint,
    s: Scalar,
}

/// Domain tag of the batch coefficients' transcript.
const BATCH_DOMAIN: &[u8] = b"continuum-bank/batch-verify/1";

/// Step 3: the randomised batch equation
/// `[−Σ zᵢSᵢ]B + Σ [zᵢ]Rᵢ + Σⱼ [Σ_{i: Aᵢ=Aⱼ} zᵢHᵢ]Aⱼ = 0`
/// (the equation of `ed25519_dalek::verify_batch`, with each distinct key's
/// terms merged and the `R` points reused from the pre-check). The 128-bit
/// `zᵢ` come from SHA-512 over every input (deterministic, identical on all
/// replicas, unpredictable to whoever chose the signatures).
fn batch_equation_holds(candidates: &[Candidate<'_, '_>]) -> bool {
    let mut transcript = Sha512::new();
    transcript.update(BATCH_DOMAIN);
    let mut hrams = Vec::with_capacity(candidates.len());
    for c in candidates {
        let mut h = Sha512::new();
        h.update(&c.item.signature[..32]);
        h.update(c.item.key.as_bytes());
        h.update(c.item.message);
        let digest: [u8; 64] = h.finalize().into();
        transcript.update(digest);
        transcript.update(&c.item.signature[32..]);
        hrams.push(Scalar::from_bytes_mod_order_wide(&digest));
    }
    let seed: [u8; 64] = transcript.finalize().into();

    let mut basepoint_scalar = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(candidates.len() + 1);
    let mut points = Vec::with_capacity(candidates.len() + 1);
    let mut key_scalars: BTreeMap<[u8; 32], (EdwardsPoint, Scalar)> = BTreeMap::new();
    for (i, (c, hram)) in candidates.iter().zip(&hrams).enumerate() {
        let mut h = Sha512::new();
        h.update(seed);
        h.update((i as u64).to_le_bytes());
        let digest: [u8; 64] = h.finalize().into();
        let mut z = [0u8; 32];
        z[..16].copy_from_slice(&digest[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        basepoint_scalar -= z * c.s;
        scalars.push(z);
        points.push(c.r);
        let entry = key_scalars
            .entry(*c.item.key.as_bytes())
            .or_insert((c.item.key.0.to_edwards(), Scalar::ZERO));
        entry.1 += z * hram;
    }
    scalars.push(basepoint_scalar);
    points.push(ED25519_BASEPOINT_POINT);
    for (point, scalar) in key_scalars.into_values() {
        scalars.push(scalar);
        points.push(point);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    /// The batch equation itself must accept valid batches (otherwise every
    /// batch silently falls back to one-by-one verification) and reject a
    /// batch with one bad signature; same-key terms are merged.
    #[test]
    fn batch_equation_accepts_valid_and_rejects_one_bad() {
        let keys: Vec<SigningKey> = (1u8..=3)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let owners: Vec<OwnerKey> = keys
            .iter()
            .map(|k| OwnerKey::parse(&k.verifying_key().to_bytes()).unwrap())
            .collect();
        let messages: Vec<Vec<u8>> = (0u8..6).map(|i| alloc::vec![i; 33]).collect();
        let mut signatures: Vec<[u8; 64]> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 3].sign(m).to_bytes())
            .collect();
        let candidates = |sigs: &[[u8; 64]]| -> bool {
            let items: Vec<VerifyItem> = messages
                .iter()
                .enumerate()
                .map(|(i, m)| VerifyItem {
                    key: owners[i % 3],
                    message: m,
                    signature: &sigs[i],
                })
                .collect();
            let cands: Vec<Candidate> = items
                .iter()
                .map(|item| {
                    let (r, s) = decode_checked(item.signature).unwrap();
                    Candidate { item, r, s }
                })
                .collect();
            batch_equation_holds(&cands)
        };
        assert!(candidates(&signatures));
        // A valid signature on another message: still well-formed, wrong here.
        signatures[4] = keys[1].sign(b"another message").to_bytes();
        assert!(!candidates(&signatures));
    }
}
