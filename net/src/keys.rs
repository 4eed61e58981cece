//! Pairwise link keys derived from the members' Ed25519 identities.
//!
//! Each node already has an Ed25519 key pair and every member's public key is
//! in the cluster config. Two nodes derive a shared secret without any
//! handshake: the Ed25519 keys are mapped to X25519 (the signing scalar, and
//! the public Edwards point to its birationally-equivalent Montgomery form,
//! RFC 7748 §4.1), and a Diffie-Hellman product a·B = b·A gives both ends the
//! same 32 bytes. An HKDF-style extract/expand with HMAC-SHA256 (RFC 5869)
//! then binds the key to the cluster id, the direction (from, to) and both
//! public keys, so a key is never valid for another cluster, the reverse
//! direction or another pair.
//!
//! Properties and limits: the keys are static (no forward secrecy: a stolen
//! node key reveals its past link keys), which matches the threat model of a
//! fabric that may forge, replay and drop but where node keys stay secret.
//! Freshness comes from the boot epoch and sequence numbers, not the keys.

use core::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::header::{ClusterId, NodeId};
use crate::hmac::HmacKey;

/// HKDF salt: names the protocol and version so keys never collide with
/// another use of the same identity keys.
const KDF_SALT: &[u8] = b"continuum-net/peer-link-key/v1";

/// The two directional keys of one link as seen from the local node.
#[derive(Clone)]
pub struct LinkKeys {
    /// Authenticates messages we send to the peer.
    pub send: HmacKey,
    /// Verifies messages the peer sends to us.
    pub recv: HmacKey,
}

/// Why link keys could not be derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The peer's public key has small order (it would give a predictable
    /// shared secret); the cluster config is wrong or malicious.
    WeakPeerKey(NodeId),
    /// A node id of 0, or the local node listed as its own peer.
    InvalidNodeId(NodeId),
    /// The same node id appears twice in the membership.
    DuplicateMember(NodeId),
    /// More members than [`crate::MAX_CLUSTER_MEMBERS`].
    TooManyMembers {
        /// How many were listed.
        count: usize,
    },
    /// The local node is not in the membership list.
    NotAMember(NodeId),
    /// The membership lists another public key for the local node.
    OwnKeyMismatch,
    /// A boot epoch of 0, which the wire reserves for "not known yet".
    ZeroEpoch,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::WeakPeerKey(id) => write!(f, "node {id} has a weak (small-order) public key"),
            KeyError::InvalidNodeId(id) => write!(f, "invalid node id {id}"),
            KeyError::DuplicateMember(id) => write!(f, "node {id} listed twice"),
            KeyError::TooManyMembers { count } => write!(
                f,
                "{count} members exceed the limit of {}",
                crate::peer_auth::MAX_CLUSTER_MEMBERS
            ),
            KeyError::NotAMember(id) => write!(f, "local node {id} is not a member"),
            KeyError::OwnKeyMismatch => {
                write!(f, "membership lists another key for the local node")
            }
            KeyError::ZeroEpoch => write!(f, "boot epoch 0 is reserved (\"not known yet\")"),
        }
    }
}

/// Derives the send and receive keys between `me` and `peer`.
pub fn derive_link_keys(
    cluster_id: ClusterId,
    me: NodeId,
    my_key: &SigningKey,
    peer: NodeId,
    peer_key: &VerifyingKey,
) -> Result<LinkKeys, KeyError> {
    if me == 0 || peer == 0 || me == peer {
        return Err(KeyError::InvalidNodeId(peer));
    }
    if peer_key.is_weak() {
        return Err(KeyError::WeakPeerKey(peer));
    }
    let shared = peer_key.to_montgomery() * my_key.to_scalar();
    let shared = shared.to_bytes();
    // A prime-order peer key never gives the identity; refuse it regardless.
    if shared == [0u8; 32] {
        return Err(KeyError::WeakPeerKey(peer));
    }
    // RFC 5869 extract: PRK = HMAC(salt, IKM).
    let prk = HmacKey::new(KDF_SALT).mac(&[&shared]);
    let prk = HmacKey::new(&prk);
    let my_public = my_key.verifying_key();
    let expand = |from: NodeId, from_key: &VerifyingKey, to: NodeId, to_key: &VerifyingKey| {
        // RFC 5869 expand, first block: T(1) = HMAC(PRK, info || 0x01).
        let key = prk.mac(&[
            b"link",
            &cluster_id.to_be_bytes(),
            &from.to_be_bytes(),
            &to.to_be_bytes(),
            from_key.as_bytes(),
            to_key.as_bytes(),
            &[1u8],
        ]);
        HmacKey::new(&key)
    };
    Ok(LinkKeys {
        send: expand(me, &my_public, peer, peer_key),
        recv: expand(peer, peer_key, me, &my_public),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn both_ends_derive_matching_directional_keys() {
        let (a, b) = (key(1), key(2));
        let ab = derive_link_keys(7, 1, &a, 2, &b.verifying_key()).unwrap();
        let ba = derive_link_keys(7, 2, &b, 1, &a.verifying_key()).unwrap();
        let msg: &[&[u8]] = &[b"hello"];
        assert_eq!(ab.send.mac(msg), ba.recv.mac(msg));
        assert_eq!(ba.send.mac(msg), ab.recv.mac(msg));
        // Directions differ, so a reflected message does not verify.
        assert_ne!(ab.send.mac(msg), ab.recv.mac(msg));
    }

    #[test]
    fn keys_are_bound_to_cluster_and_pair() {
        let (a, b, c) = (key(1), key(2), key(3));
        let msg: &[&[u8]] = &[b"hello"];
        let base = derive_link_keys(7, 1, &a, 2, &b.verifying_key()).unwrap();
        let other_cluster = derive_link_keys(8, 1, &a, 2, &b.verifying_key()).unwrap();
        let other_peer = derive_link_keys(7, 1, &a, 3, &c.verifying_key()).unwrap();
        let other_ids = derive_link_keys(7, 1, &a, 4, &b.verifying_key()).unwrap();
        for other in [&other_cluster, &other_peer, &other_ids] {
            assert_ne!(base.send.mac(msg), other.send.mac(msg));
        }
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        let a = key(1);
        // The identity point (small order) encoded in compressed Edwards form.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert_eq!(
            derive_link_keys(7, 1, &a, 2, &weak).err(),
            Some(KeyError::WeakPeerKey(2))
        );
        assert_eq!(
            derive_link_keys(7, 1, &a, 1, &a.verifying_key()).err(),
            Some(KeyError::InvalidNodeId(1))
        );
    }
}
