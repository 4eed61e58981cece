//! Batch verification must give exactly the per-signature `verify_strict`
//! answer, including on adversarial signatures that plain batch verification
//! accepts (torsion components, small-order R, non-canonical S).

mod common;

use common::*;
use continuum_bank::verify::{precheck, verify_all, OwnerKey, VerifyItem};
use continuum_bank::{Command, Outcome};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, SigningKey};
use sha2::{Digest, Sha512};

/// An Ed25519 "signature" whose nonce point is `[r]B + T` for a torsion
/// point `T`, with `S` computed so that `[S]B = R' − T + [H(R'‖A‖M)]A`: the
/// error term is exactly `−T`. `verify_strict` rejects it; an unguarded
/// random-linear-combination batch accepts it whenever `z ≡ 0 mod ord(T)`.
fn torsion_signature(key: &SigningKey, message: &[u8], torsion: usize, nonce: u8) -> [u8; 64] {
    let h = Sha512::digest(key.to_bytes());
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&h[..32]);
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let r = Scalar::from_bytes_mod_order([nonce.wrapping_add(3); 32]);
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[torsion]).compress();
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(key.verifying_key().as_bytes());
    hasher.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn owner(n: u8) -> OwnerKey {
    OwnerKey::parse(&key(n).verifying_key().to_bytes()).expect("valid key")
}

fn message(i: u8) -> Vec<u8> {
    vec![i; 40]
}

#[test]
fn torsion_signatures_fool_plain_batch_but_not_ours() {
    let signer = key(1);
    let mut plain_batch_accepted = 0;
    for nonce in 0..24u8 {
        let msgs: Vec<Vec<u8>> = (0..4)
            .map(|i| message(nonce.wrapping_mul(5).wrapping_add(i)))
            .collect();
        let mut sigs: Vec<[u8; 64]> = msgs
            .iter()
            .map(|m| {
                use ed25519_dalek::Signer;
                signer.sign(m).to_bytes()
            })
            .collect();
        // Order-2 torsion point (index 4) makes the plain batch accept ~1/2 the time.
        sigs[2] = torsion_signature(&signer, &msgs[2], 4, nonce);
        let vk = signer.verifying_key();
        assert!(vk
            .verify_strict(&msgs[2], &Signature::from_bytes(&sigs[2]))
            .is_err());
        let plain = ed25519_dalek::verify_batch(
            &msgs.iter().map(|m| m.as_slice()).collect::<Vec<_>>(),
            &sigs.iter().map(Signature::from_bytes).collect::<Vec<_>>(),
            &[vk; 4],
        );
        if plain.is_ok() {
            plain_batch_accepted += 1;
        }
        let items: Vec<VerifyItem> = (0..4)
            .map(|i| VerifyItem {
                key: owner(1),
                message: &msgs[i],
                signature: &sigs[i],
            })
            .collect();
        assert_eq!(verify_all(&items, true), vec![true, true, false, true]);
        assert_eq!(verify_all(&items, false), vec![true, true, false, true]);
        assert!(!precheck(&sigs[2]));
    }
    assert!(
        plain_batch_accepted > 0,
        "the hazard this test guards against did not show"
    );
}

#[test]
fn small_order_r_and_non_canonical_s_are_rejected_alike() {
    use ed25519_dalek::Signer;
    let signer = key(2);
    let msg = message(9);
    let good = signer.sign(&msg).to_bytes();
    // S + ℓ: same scalar, non-canonical encoding.
    let mut high_s = good;
    let s = Scalar::from_canonical_bytes(good[32..].try_into().unwrap()).unwrap();
    let l_bytes: [u8; 32] = {
        let mut b = [0u8; 32];
        b[..16].copy_from_slice(&0x14def9dea2f79cd65812631a5cf5d3edu128.to_le_bytes());
        b[31] = 0x10;
        b
    };
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s.as_bytes()[i]) + u16::from(l_bytes[i]) + carry;
        high_s[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    // R = identity (small order), S = 0.
    let mut small_r = [0u8; 64];
    small_r[0] = 1;
    let bad = [high_s, small_r];
    for sig in &bad {
        assert!(!owner(2).verify(&msg, sig));
        assert!(!precheck(sig));
    }
    let sigs = [good, high_s, good, small_r, good];
    let items: Vec<VerifyItem> = sigs
        .iter()
        .map(|sig| VerifyItem {
            key: owner(2),
            message: &msg,
            signature: sig,
        })
        .collect();
    assert_eq!(
        verify_all(&items, true),
        vec![true, false, true, false, true]
    );
}

#[test]
fn forged_transfer_in_a_batch_gets_the_same_outcome_as_alone() {
    let signer = key(1);
    let setup = |bank: &mut Bank| {
        assert_eq!(bank.open(10, 1), Outcome::Ok);
        assert_eq!(bank.open(11, 2), Outcome::Ok);
        let fund = transfer(1, RESERVE, 10, 1000, 9, 1).sign(&operator(), CLUSTER);
        assert_eq!(bank.one(fund), Outcome::Ok);
    };
    let mut commands = Vec::new();
    for i in 0..8u64 {
        let mut c = transfer(100 + u128::from(i), 10, 11, 10, 1, i + 1).sign(&signer, CLUSTER);
        if i == 3 {
            let msg = Command::Transfer(transfer(103, 10, 11, 10, 1, 4)).signing_message(CLUSTER);
            c.signature = torsion_signature(&signer, msg.as_bytes(), 4, 1);
        }
        if i == 5 {
            c.signature[40] ^= 0x80;
        }
        commands.push(c);
    }
    let mut batched = Bank::new();
    setup(&mut batched);
    let batch_outcomes = batched.apply(commands.clone());
    let mut alone = Bank::new();
    setup(&mut alone);
    let alone_outcomes: Vec<Outcome> = commands.iter().map(|c| alone.one(*c)).collect();
    assert_eq!(batch_outcomes, alone_outcomes);
    assert_eq!(batch_outcomes[3], Outcome::BadSignature);
    assert_eq!(batch_outcomes[5], Outcome::BadSignature);
    assert_eq!(batch_outcomes.iter().filter(|o| o.is_ok()).count(), 6);
    assert_eq!(batched.ledger.balance(11), alone.ledger.balance(11));
}

#[test]
fn account_created_earlier_in_the_same_batch_can_be_debited() {
    let mut bank = Bank::new();
    let mut cmds = vec![create(10, 1), create(11, 2)];
    cmds.push(transfer(1, RESERVE, 10, 50, 1, 1).sign(&operator(), CLUSTER));
    cmds.push(transfer(2, 10, 11, 20, 1, 1).sign(&key(1), CLUSTER));
    // A second create of id 12 with another owner after a failed first one:
    // the signer of transfer 3 is whoever really owns 12 at that point.
    let mut bad_create = create(12, 3);
    bad_create.signature[0] ^= 1;
    cmds.push(bad_create);
    cmds.push(create(12, 4));
    cmds.push(transfer(3, 11, 12, 5, 1, 1).sign(&key(2), CLUSTER));
    cmds.push(transfer(4, 12, 11, 1, 1, 1).sign(&key(4), CLUSTER));
    let outcomes = bank.apply(cmds);
    assert_eq!(
        outcomes,
        vec![
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Ok,
            Outcome::BadSignature,
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Ok
        ]
    );
    assert_eq!(bank.ledger.balance(12), Some(4));
}
