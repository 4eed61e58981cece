//! Sealing and opening peer messages: authenticator, freshness, counters.
//!
//! [`PeerAuth`] is the one object a node keeps for its peers. `seal` numbers
//! and authenticates an outgoing message; `open` runs every check in a fixed
//! order and counts each refusal by cause, so `/status` can show them:
//!
//! 1. structure ([`PeerFrame::decode`])            → `Malformed`
//! 2. cluster id                                   → `WrongCluster`
//! 3. receiver is this node                        → `Misdirected`
//! 4. sender is a known peer                       → `UnknownSender`
//! 5. scheme is the cluster's scheme               → `WrongScheme`
//! 6. MAC (constant-time compare / strict verify)  → `Forged`
//! 7. the receiver epoch it names is ours, unless
//!    the body is the bootstrap ping               → `StaleReceiverEpoch`
//! 8. freshness in the sender's replay window      → `Replayed` / `TooOld` / `StaleEpoch`
//!
//! Only a message that passed 6 and 7 can touch the replay window (it
//! commits after 8), so forged traffic cannot advance or reset a window.
//! Anything sealed for an earlier boot of this node is refused at 7 whatever
//! its sequence number, so the counter names the cause.
//! Checks 1–5 are cheap and come first so garbage costs no cryptography.
//!
//! # Why the receiver's epoch is in every message
//!
//! Replay windows live in RAM. The sender's epoch (durable, growing) stops
//! a receiver from taking a stream of an earlier sender boot, but when the
//! *receiver* restarts its windows are empty, and without more a datagram
//! recorded before the restart would pass check 8 once more. So every
//! sealed message also names the epoch of the receiver as the sender knows
//! it: the highest epoch among the receiver's own authenticated, fresh
//! messages (the sender's replay window for that peer tracks exactly
//! that; 0 before the first). A receiver refuses anything naming another
//! epoch than its current one, and every datagram of an earlier boot of the
//! receiver names an earlier epoch.
//!
//! A restarted node is unknown to its peers, and they to it, until one
//! message gets through in each direction. That is the ping
//! ([`PeerBody::is_bootstrap`]): accepted whatever receiver epoch it names,
//! it teaches the receiver the sender's epoch, and the pong it is answered
//! with (sealed for that epoch) teaches the sender the receiver's. The
//! kernel pings every peer at boot and every `PING_INTERVAL_MS` (1 s)
//! after, so after either side restarts both directions carry Raft again
//! within one ping interval plus a round trip.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::header::{ClusterId, DecodeError, EncodeError, NodeId};
use crate::keys::{derive_link_keys, KeyError, LinkKeys};
use crate::peer::{encode_authenticated_part, AuthScheme, PeerBody, PeerFields, PeerFrame};
use crate::replay::{ReplayError, ReplayWindow};

/// Most members a cluster may have; bounds the per-peer state.
pub const MAX_CLUSTER_MEMBERS: usize = 64;

/// High bit of every epoch taken from a durable counter
/// ([`persisted_boot_epoch`]): such epochs sort above every wall-clock
/// epoch (milliseconds since 1970 stay below 2⁶³ for ~292 million years),
/// so a node that once booted without a disk is not locked out by its own
/// older clock-based epoch when it boots with one.
pub const PERSISTED_EPOCH_BIT: u64 = 1 << 63;

/// The boot epoch of a node whose disk holds a counter that every boot
/// bumps and flushes before any peer message is sealed (the WAL generation
/// of `continuum-storage`, bumped by each open): strictly above every epoch
/// of an earlier boot on the same disk, whatever the wall clock says.
pub fn persisted_boot_epoch(durable_boot_counter: u64) -> u64 {
    PERSISTED_EPOCH_BIT | durable_boot_counter
}

/// What a node needs to talk to its peers.
pub struct PeerConfig<'a> {
    /// The cluster every datagram names.
    pub cluster_id: ClusterId,
    /// This node's id (>= 1).
    pub me: NodeId,
    /// This boot's epoch: strictly above every epoch this node used before,
    /// and durable before the first `seal` (see the crate docs).
    pub epoch: u64,
    /// How datagrams are authenticated.
    pub scheme: AuthScheme,
    /// This node's identity key.
    pub signing_key: &'a SigningKey,
    /// Every member (including this node) and its public key.
    pub members: &'a [(NodeId, VerifyingKey)],
}

/// An authenticated, fresh peer message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerMessage<'a> {
    /// The sending node.
    pub from: NodeId,
    /// The sender's boot epoch.
    pub epoch: u64,
    /// Its sequence number in that epoch.
    pub seq: u64,
    /// What it carries.
    pub body: PeerBody<'a>,
}

/// Why a peer datagram was refused. Each variant has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerReject {
    /// Not a well-formed peer datagram.
    Malformed(DecodeError),
    /// For another cluster.
    WrongCluster {
        /// The cluster it names.
        got: ClusterId,
    },
    /// Addressed to another node.
    Misdirected {
        /// The node it names.
        receiver: NodeId,
    },
    /// From a node that is not a member.
    UnknownSender {
        /// The sender it names.
        sender: NodeId,
    },
    /// Authenticated with a scheme this cluster does not use.
    WrongScheme {
        /// The scheme it names.
        got: AuthScheme,
    },
    /// The MAC does not verify: forged or corrupted.
    Forged {
        /// The sender it claims.
        sender: NodeId,
    },
    /// Accepted before (same epoch and sequence number).
    Replayed {
        /// The sender.
        sender: NodeId,
        /// Its epoch.
        epoch: u64,
        /// Its sequence number.
        seq: u64,
    },
    /// Older than the replay window: cannot tell, so refused.
    TooOld {
        /// The sender.
        sender: NodeId,
        /// Its epoch.
        epoch: u64,
        /// Its sequence number.
        seq: u64,
    },
    /// From an epoch of the sender below one already seen.
    StaleEpoch {
        /// The sender.
        sender: NodeId,
        /// Its epoch already seen.
        current: u64,
        /// The datagram's.
        got: u64,
    },
    /// Authentic and fresh, but sealed for another boot of this node
    /// (`got` is the receiver epoch it names; 0: the sender had not heard
    /// from this boot yet), and not a bootstrap ping.
    StaleReceiverEpoch {
        /// The sender.
        sender: NodeId,
        /// This node's epoch.
        current: u64,
        /// The receiver epoch the datagram names.
        got: u64,
    },
}

impl fmt::Display for PeerReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerReject::Malformed(e) => write!(f, "malformed peer datagram: {e}"),
            PeerReject::WrongCluster { got } => write!(f, "datagram for cluster {got}"),
            PeerReject::Misdirected { receiver } => {
                write!(f, "datagram addressed to node {receiver}")
            }
            PeerReject::UnknownSender { sender } => write!(f, "unknown sender {sender}"),
            PeerReject::WrongScheme { got } => write!(f, "authenticator {got:?} not in use"),
            PeerReject::Forged { sender } => write!(f, "bad authenticator claiming node {sender}"),
            PeerReject::Replayed { sender, epoch, seq } => {
                write!(f, "replay of node {sender} epoch {epoch} seq {seq}")
            }
            PeerReject::TooOld { sender, epoch, seq } => {
                write!(
                    f,
                    "node {sender} epoch {epoch} seq {seq} is older than the window"
                )
            }
            PeerReject::StaleEpoch {
                sender,
                current,
                got,
            } => {
                write!(f, "node {sender} epoch {got} below current {current}")
            }
            PeerReject::StaleReceiverEpoch {
                sender,
                current,
                got,
            } => write!(
                f,
                "node {sender} sealed for our epoch {got}, not the current {current}"
            ),
        }
    }
}

/// Counts of accepted and refused peer datagrams, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectCounters {
    /// Authentic and fresh.
    pub accepted: u64,
    /// [`PeerReject::Malformed`].
    pub malformed: u64,
    /// [`PeerReject::WrongCluster`].
    pub wrong_cluster: u64,
    /// [`PeerReject::Misdirected`].
    pub misdirected: u64,
    /// [`PeerReject::UnknownSender`].
    pub unknown_sender: u64,
    /// [`PeerReject::WrongScheme`].
    pub wrong_scheme: u64,
    /// [`PeerReject::Forged`].
    pub forged: u64,
    /// [`PeerReject::Replayed`].
    pub replayed: u64,
    /// [`PeerReject::TooOld`].
    pub too_old: u64,
    /// [`PeerReject::StaleEpoch`].
    pub stale_epoch: u64,
    /// [`PeerReject::StaleReceiverEpoch`].
    pub stale_receiver_epoch: u64,
}

impl RejectCounters {
    fn count(&mut self, reject: &PeerReject) {
        let counter = match reject {
            PeerReject::Malformed(_) => &mut self.malformed,
            PeerReject::WrongCluster { .. } => &mut self.wrong_cluster,
            PeerReject::Misdirected { .. } => &mut self.misdirected,
            PeerReject::UnknownSender { .. } => &mut self.unknown_sender,
            PeerReject::WrongScheme { .. } => &mut self.wrong_scheme,
            PeerReject::Forged { .. } => &mut self.forged,
            PeerReject::Replayed { .. } => &mut self.replayed,
            PeerReject::TooOld { .. } => &mut self.too_old,
            PeerReject::StaleEpoch { .. } => &mut self.stale_epoch,
            PeerReject::StaleReceiverEpoch { .. } => &mut self.stale_receiver_epoch,
        };
        *counter = counter.saturating_add(1);
    }
}

/// State kept for one peer.
#[derive(Clone)]
struct Peer {
    public_key: VerifyingKey,
    /// Present when the scheme is HMAC-SHA256.
    link_keys: Option<LinkKeys>,
    /// Next sequence number we send to this peer in our epoch.
    next_seq: u64,
    /// Freshness of what this peer sends us; its epoch is the peer's
    /// epoch as we know it, which `seal` names in every message to it.
    window: ReplayWindow,
}

/// A fresh peer: link keys derived (HMAC) or the key checked (Ed25519).
fn new_peer(
    cluster_id: ClusterId,
    me: NodeId,
    signing_key: &SigningKey,
    scheme: AuthScheme,
    id: NodeId,
    public_key: &VerifyingKey,
) -> Result<Peer, KeyError> {
    let link_keys = match scheme {
        AuthScheme::HmacSha256 => Some(derive_link_keys(
            cluster_id,
            me,
            signing_key,
            id,
            public_key,
        )?),
        AuthScheme::Ed25519 => {
            if public_key.is_weak() {
                return Err(KeyError::WeakPeerKey(id));
            }
            None
        }
    };
    Ok(Peer {
        public_key: *public_key,
        link_keys,
        next_seq: 1,
        window: ReplayWindow::new(),
    })
}

/// A node's peer-message authenticator (see the module docs).
pub struct PeerAuth {
    cluster_id: ClusterId,
    me: NodeId,
    epoch: u64,
    scheme: AuthScheme,
    signing_key: SigningKey,
    peers: BTreeMap<NodeId, Peer>,
    counters: RejectCounters,
}

impl PeerAuth {
    /// Validates the membership and derives link keys for every peer.
    pub fn new(config: PeerConfig<'_>) -> Result<PeerAuth, KeyError> {
        if config.members.len() > MAX_CLUSTER_MEMBERS {
            return Err(KeyError::TooManyMembers {
                count: config.members.len(),
            });
        }
        if config.me == 0 {
            return Err(KeyError::InvalidNodeId(0));
        }
        if config.epoch == 0 {
            // 0 is "not known yet" in the receiver-epoch field.
            return Err(KeyError::ZeroEpoch);
        }
        let own_public = config.signing_key.verifying_key();
        let mut peers = BTreeMap::new();
        let mut found_self = false;
        for (id, public_key) in config.members {
            if *id == 0 {
                return Err(KeyError::InvalidNodeId(0));
            }
            if *id == config.me {
                if found_self {
                    return Err(KeyError::DuplicateMember(*id));
                }
                if *public_key != own_public {
                    return Err(KeyError::OwnKeyMismatch);
                }
                found_self = true;
                continue;
            }
            if peers.contains_key(id) {
                return Err(KeyError::DuplicateMember(*id));
            }
            let peer = new_peer(
                config.cluster_id,
                config.me,
                config.signing_key,
                config.scheme,
                *id,
                public_key,
            )?;
            peers.insert(*id, peer);
        }
        if !found_self {
            return Err(KeyError::NotAMember(config.me));
        }
        Ok(PeerAuth {
            cluster_id: config.cluster_id,
            me: config.me,
            epoch: config.epoch,
            scheme: config.scheme,
            signing_key: config.signing_key.clone(),
            peers,
            counters: RejectCounters::default(),
        })
    }

    /// This node's id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Makes `members` the peers (membership changes through the log,
    /// `docs/membership.md`): a member not listed any more is dropped (its
    /// datagrams are `UnknownSender` from now on), a new one gets its link
    /// keys, one whose key is unchanged keeps its sequence numbers and
    /// replay window, one whose key changed starts afresh. This node's own
    /// entry, if listed, must carry its own key. All or nothing: on `Err`
    /// the peers are as before. Returns whether anything changed.
    pub fn set_members(&mut self, members: &[(NodeId, VerifyingKey)]) -> Result<bool, KeyError> {
        if members.len() > MAX_CLUSTER_MEMBERS {
            return Err(KeyError::TooManyMembers {
                count: members.len(),
            });
        }
        let own_public = self.signing_key.verifying_key();
        let mut next = BTreeMap::new();
        for (id, public_key) in members {
            if *id == 0 {
                return Err(KeyError::InvalidNodeId(0));
            }
            if *id == self.me {
                if *public_key != own_public {
                    return Err(KeyError::OwnKeyMismatch);
                }
                continue;
            }
            if next.contains_key(id) {
                return Err(KeyError::DuplicateMember(*id));
            }
            let peer = match self.peers.get(id) {
                Some(known) if known.public_key == *public_key => known.clone(),
                _ => new_peer(
                    self.cluster_id,
                    self.me,
                    &self.signing_key,
                    self.scheme,
                    *id,
                    public_key,
                )?,
            };
            next.insert(*id, peer);
        }
        let changed = next.len() != self.peers.len()
            || next
                .iter()
                .zip(&self.peers)
                .any(|((a, pa), (b, pb))| a != b || pa.public_key != pb.public_key);
        self.peers = next;
        Ok(changed)
    }

    /// This node's boot epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The peers' ids in ascending order.
    pub fn peer_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.keys().copied()
    }

    /// The replay state of `peer` (its current epoch, which is also the
    /// receiver epoch `seal` names to it, and its highest sequence number),
    /// for status pages; `None` if `peer` is not a member.
    pub fn peer_window(&self, peer: NodeId) -> Option<ReplayWindow> {
        self.peers.get(&peer).map(|p| p.window)
    }

    /// Accepted/refused counts since construction.
    pub fn counters(&self) -> RejectCounters {
        self.counters
    }

    /// Numbers, encodes and authenticates `body` for peer `to`, appending one
    /// datagram to `out` (cleared first).
    pub fn seal(
        &mut self,
        to: NodeId,
        body: &PeerBody<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let peer = self.peers.get_mut(&to).ok_or(SealError::UnknownPeer(to))?;
        // 2^64 - 1 messages to one peer in one boot cannot happen in practice;
        // refusing is still better than wrapping into reused numbers.
        let seq = peer.next_seq;
        let next = seq.checked_add(1).ok_or(SealError::SequenceExhausted)?;
        let fields = PeerFields {
            cluster_id: self.cluster_id,
            sender: self.me,
            receiver: to,
            receiver_epoch: peer.window.epoch(),
            epoch: self.epoch,
            seq,
            scheme: self.scheme,
        };
        out.clear();
        encode_authenticated_part(&fields, body, out).map_err(SealError::Encode)?;
        match (&peer.link_keys, self.scheme) {
            (Some(keys), AuthScheme::HmacSha256) => {
                let mac = keys.send.mac(&[out]);
                out.extend_from_slice(&mac);
            }
            (_, AuthScheme::Ed25519) => {
                let signature = self.signing_key.sign(out);
                out.extend_from_slice(&signature.to_bytes());
            }
            (None, AuthScheme::HmacSha256) => {
                unreachable!("HMAC scheme peers always have link keys")
            }
        }
        peer.next_seq = next;
        Ok(())
    }

    /// Checks a received datagram (see the module docs for the order) and
    /// returns the message if it is authentic and fresh. Every outcome is
    /// counted.
    pub fn open<'a>(&mut self, datagram: &'a [u8]) -> Result<PeerMessage<'a>, PeerReject> {
        let result = self.check(datagram);
        match &result {
            Ok(_) => self.counters.accepted = self.counters.accepted.saturating_add(1),
            Err(reject) => self.counters.count(reject),
        }
        result
    }

    fn check<'a>(&mut self, datagram: &'a [u8]) -> Result<PeerMessage<'a>, PeerReject> {
        let frame = PeerFrame::decode(datagram).map_err(PeerReject::Malformed)?;
        if frame.cluster_id != self.cluster_id {
            return Err(PeerReject::WrongCluster {
                got: frame.cluster_id,
            });
        }
        if frame.receiver != self.me {
            return Err(PeerReject::Misdirected {
                receiver: frame.receiver,
            });
        }
        let sender = frame.sender;
        let peer = self
            .peers
            .get_mut(&sender)
            .ok_or(PeerReject::UnknownSender { sender })?;
        if frame.scheme != self.scheme {
            return Err(PeerReject::WrongScheme { got: frame.scheme });
        }
        let authentic = match (&peer.link_keys, frame.scheme) {
            (Some(keys), AuthScheme::HmacSha256) => {
                keys.recv.verify(&[frame.authenticated], frame.mac)
            }
            (_, AuthScheme::Ed25519) => match Signature::from_slice(frame.mac) {
                Ok(signature) => peer
                    .public_key
                    .verify_strict(frame.authenticated, &signature)
                    .is_ok(),
                Err(_) => false,
            },
            (None, AuthScheme::HmacSha256) => false,
        };
        if !authentic {
            return Err(PeerReject::Forged { sender });
        }
        if frame.receiver_epoch != self.epoch && !frame.body.is_bootstrap() {
            return Err(PeerReject::StaleReceiverEpoch {
                sender,
                current: self.epoch,
                got: frame.receiver_epoch,
            });
        }
        let (epoch, seq) = (frame.epoch, frame.seq);
        peer.window.check(epoch, seq).map_err(|e| match e {
            ReplayError::Replayed => PeerReject::Replayed { sender, epoch, seq },
            ReplayError::TooOld => PeerReject::TooOld { sender, epoch, seq },
            ReplayError::StaleEpoch { current, got } => PeerReject::StaleEpoch {
                sender,
                current,
                got,
            },
        })?;
        peer.window.commit(epoch, seq);
        Ok(PeerMessage {
            from: sender,
            epoch,
            seq,
            body: frame.body,
        })
    }
}

/// Why a message could not be sealed (local errors, never the network's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Not a member.
    UnknownPeer(NodeId),
    /// This epoch's sequence numbers are used up (restart for a new epoch).
    SequenceExhausted,
    /// The message does not encode.
    Encode(EncodeError),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::UnknownPeer(id) => write!(f, "node {id} is not a peer"),
            SealError::SequenceExhausted => write!(f, "sequence numbers exhausted for this epoch"),
            SealError::Encode(e) => write!(f, "cannot encode: {e}"),
        }
    }
}
