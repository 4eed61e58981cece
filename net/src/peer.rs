//! Peer (node-to-node) datagram structure, before authentication.
//!
//! ```text
//!  0..24   common header (kind = PeerNode | PeerPing | PeerPong, sender = node)
//! 24       authenticator scheme (1 = HMAC-SHA256, 2 = Ed25519)
//! 25..33   receiver node id
//! 33..41   receiver boot epoch as the sender knows it (0: not known yet)
//! 41..49   sender boot epoch
//! 49..57   sequence number (>= 1) of this (sender, receiver, epoch) stream
//! 57..     payload (header's payload length bytes)
//!  ..end   MAC over bytes 0..end-of-payload (32 or 64 bytes by scheme)
//! ```
//!
//! The receiver id is inside the authenticated bytes so a message meant for
//! one node cannot be replayed to another (this matters for Ed25519, whose
//! signature every member can verify). The receiver epoch is too, so a
//! message recorded before the receiver restarted names an epoch the
//! restarted receiver no longer has (see [`crate::peer_auth`]).
//! [`PeerFrame::decode`] checks structure only; [`crate::PeerAuth::open`]
//! checks the MAC and freshness.

use alloc::vec::Vec;

use crate::header::{
    ClusterId, DecodeError, EncodeError, Header, Kind, NodeId, Reader, HEADER_BYTES,
    MAX_PEER_PAYLOAD_BYTES,
};

/// Size of the common header plus the peer header.
pub const PEER_HEADER_BYTES: usize = HEADER_BYTES + 1 + 8 + 8 + 8 + 8;
/// The largest MAC on the wire (an Ed25519 signature, 64 bytes).
pub const MAX_MAC_BYTES: usize = 64;
/// Payload length of a ping or pong (the nonce).
const NONCE_BYTES: usize = 8;

/// How peer messages are authenticated; one scheme per cluster (config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AuthScheme {
    /// HMAC-SHA256 with pairwise keys derived from the Ed25519 identities
    /// (see [`crate::keys`]). The default: ~100× cheaper than a verify.
    HmacSha256 = 1,
    /// An Ed25519 signature by the sender's identity key on every message.
    Ed25519 = 2,
}

impl AuthScheme {
    /// Parses a scheme byte; unknown values are `None`.
    pub fn from_byte(byte: u8) -> Option<AuthScheme> {
        match byte {
            1 => Some(AuthScheme::HmacSha256),
            2 => Some(AuthScheme::Ed25519),
            _ => None,
        }
    }

    /// Length of this scheme's MAC on the wire.
    pub fn mac_len(self) -> usize {
        match self {
            AuthScheme::HmacSha256 => crate::hmac::MAC_BYTES,
            AuthScheme::Ed25519 => ed25519_dalek::SIGNATURE_LENGTH,
        }
    }
}

/// What a peer message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerBody<'a> {
    /// An encoded node envelope (`continuum_node::Envelope`: a Raft
    /// message, a forwarded write, a chain check, ...), opaque to this crate.
    Node(&'a [u8]),
    /// Liveness probe, and the bootstrap message: the one kind a receiver
    /// accepts although it names a receiver epoch other than the current
    /// one (see [`PeerBody::is_bootstrap`]).
    Ping {
        /// Echoed by the pong.
        nonce: u64,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
}

impl<'a> PeerBody<'a> {
    /// The header kind of this body.
    pub fn kind(&self) -> Kind {
        match self {
            PeerBody::Node(_) => Kind::PeerNode,
            PeerBody::Ping { .. } => Kind::PeerPing,
            PeerBody::Pong { .. } => Kind::PeerPong,
        }
    }

    /// Whether a receiver accepts this body with a stale or unknown
    /// receiver epoch. Only a ping: it carries nothing but a nonce, and its
    /// effects are that the receiver learns the sender's epoch and answers
    /// with a pong of the same size, sealed for that epoch. A replayed ping
    /// can therefore teach at most an epoch the sender really had (epochs
    /// only grow, so it is overtaken by the sender's next message); Raft
    /// and pong bodies (a pong's nonce could match a ping of the new boot)
    /// always need the receiver's current epoch.
    pub fn is_bootstrap(&self) -> bool {
        matches!(self, PeerBody::Ping { .. })
    }

    fn payload_len(&self) -> usize {
        match self {
            PeerBody::Node(bytes) => bytes.len(),
            PeerBody::Ping { .. } | PeerBody::Pong { .. } => NONCE_BYTES,
        }
    }

    fn write_payload(&self, out: &mut Vec<u8>) {
        match self {
            PeerBody::Node(bytes) => out.extend_from_slice(bytes),
            PeerBody::Ping { nonce } | PeerBody::Pong { nonce } => {
                out.extend_from_slice(&nonce.to_be_bytes())
            }
        }
    }

    fn decode(kind: Kind, payload: &'a [u8]) -> Result<PeerBody<'a>, DecodeError> {
        let mut r = Reader::new(payload);
        let body = match kind {
            Kind::PeerNode => PeerBody::Node(r.rest()),
            Kind::PeerPing => PeerBody::Ping { nonce: r.u64()? },
            Kind::PeerPong => PeerBody::Pong { nonce: r.u64()? },
            other => return Err(DecodeError::UnexpectedKind(other)),
        };
        r.finish()?;
        Ok(body)
    }
}

/// A structurally valid peer datagram whose MAC has not been checked yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerFrame<'a> {
    /// The sender's cluster.
    pub cluster_id: ClusterId,
    /// The sending node.
    pub sender: NodeId,
    /// The node it is for.
    pub receiver: NodeId,
    /// The receiver's boot epoch as the sender knew it (0: not known).
    pub receiver_epoch: u64,
    /// The sender's boot epoch.
    pub epoch: u64,
    /// The sender's sequence number in that epoch (from 1).
    pub seq: u64,
    /// How the MAC was made.
    pub scheme: AuthScheme,
    /// What it carries.
    pub body: PeerBody<'a>,
    /// The bytes the MAC covers (headers and payload).
    pub authenticated: &'a [u8],
    /// The MAC as received.
    pub mac: &'a [u8],
}

/// The fields of a peer message that precede the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerFields {
    pub cluster_id: ClusterId,
    pub sender: NodeId,
    pub receiver: NodeId,
    pub receiver_epoch: u64,
    pub epoch: u64,
    pub seq: u64,
    pub scheme: AuthScheme,
}

/// Appends headers and payload (everything the MAC covers) to `out`.
pub(crate) fn encode_authenticated_part(
    fields: &PeerFields,
    body: &PeerBody<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if fields.sender == 0 || fields.receiver == 0 {
        return Err(EncodeError::ZeroNodeId);
    }
    assert!(fields.seq != 0, "peer sequence numbers start at 1");
    let len = body.payload_len();
    if len > MAX_PEER_PAYLOAD_BYTES {
        return Err(EncodeError::PayloadTooLarge {
            len,
            max: MAX_PEER_PAYLOAD_BYTES,
        });
    }
    let payload_len = u16::try_from(len).map_err(|_| EncodeError::PayloadTooLarge {
        len,
        max: MAX_PEER_PAYLOAD_BYTES,
    })?;
    out.reserve(PEER_HEADER_BYTES + len + fields.scheme.mac_len());
    Header {
        kind: body.kind(),
        payload_len,
        cluster_id: fields.cluster_id,
        sender: fields.sender,
    }
    .encode_into(out);
    out.push(fields.scheme as u8);
    out.extend_from_slice(&fields.receiver.to_be_bytes());
    out.extend_from_slice(&fields.receiver_epoch.to_be_bytes());
    out.extend_from_slice(&fields.epoch.to_be_bytes());
    out.extend_from_slice(&fields.seq.to_be_bytes());
    body.write_payload(out);
    Ok(())
}

impl<'a> PeerFrame<'a> {
    /// Decodes the structure of a peer datagram (total: never panics).
    pub fn decode(bytes: &'a [u8]) -> Result<PeerFrame<'a>, DecodeError> {
        let header = Header::decode(bytes)?;
        if !header.kind.is_peer() {
            return Err(DecodeError::UnexpectedKind(header.kind));
        }
        let mut r = Reader::new(bytes);
        r.take(HEADER_BYTES)?;
        let scheme_byte = r.u8()?;
        let scheme =
            AuthScheme::from_byte(scheme_byte).ok_or(DecodeError::UnknownScheme(scheme_byte))?;
        let receiver = r.u64()?;
        let receiver_epoch = r.u64()?;
        let epoch = r.u64()?;
        let seq = r.u64()?;
        let declared = usize::from(header.payload_len);
        if declared > MAX_PEER_PAYLOAD_BYTES {
            return Err(DecodeError::PayloadTooLarge {
                len: declared,
                max: MAX_PEER_PAYLOAD_BYTES,
            });
        }
        let actual = bytes
            .len()
            .saturating_sub(PEER_HEADER_BYTES + scheme.mac_len());
        if bytes.len() < PEER_HEADER_BYTES + scheme.mac_len() || declared != actual {
            return Err(DecodeError::LengthMismatch { declared, actual });
        }
        let payload = r.take(declared)?;
        let mac = r.take(scheme.mac_len())?;
        r.finish()?;
        if header.sender == 0 || receiver == 0 {
            return Err(DecodeError::ZeroNodeId);
        }
        if seq == 0 {
            return Err(DecodeError::ZeroSequence);
        }
        let body = PeerBody::decode(header.kind, payload)?;
        Ok(PeerFrame {
            cluster_id: header.cluster_id,
            sender: header.sender,
            receiver,
            receiver_epoch,
            epoch,
            seq,
            scheme,
            body,
            authenticated: &bytes[..PEER_HEADER_BYTES + declared],
            mac,
        })
    }

    /// Re-encodes the frame with its MAC as received (the inverse of
    /// `decode`; used to check that every frame has one encoding).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        encode_authenticated_part(&self.fields(), &self.body, &mut out)?;
        out.extend_from_slice(self.mac);
        Ok(out)
    }

    pub(crate) fn fields(&self) -> PeerFields {
        PeerFields {
            cluster_id: self.cluster_id,
            sender: self.sender,
            receiver: self.receiver,
            receiver_epoch: self.receiver_epoch,
            epoch: self.epoch,
            seq: self.seq,
            scheme: self.scheme,
        }
    }
}
