//! The common datagram header shared by peer and client messages, the size
//! limits every decoder enforces, and the codec error types.

use core::fmt;

/// A cluster member's node id (`continuum_base`: one type everywhere).
pub use continuum_base::NodeId;
/// Identifies one cluster; a message for another cluster is refused before
/// any other check so two clusters on one LAN never mix.
pub type ClusterId = u64;

/// First four bytes of every datagram.
pub const MAGIC: [u8; 4] = *b"CTNM";
/// The only wire version this build speaks; anything else is refused.
/// Version 2: the peer header names the receiver's boot epoch.
pub const VERSION: u8 = 2;
/// Size of the common header (magic, version, kind, length, cluster, sender).
pub const HEADER_BYTES: usize = 24;
/// Upper bound on one datagram: the UDP payload of a 1500-byte Ethernet
/// frame (1500 - 20 IPv4 - 8 UDP). Staying under it means no IP fragmentation
/// (smoltcp is built without it) and one Ethernet frame per message.
pub const MAX_DATAGRAM_BYTES: usize = 1472;
/// Largest payload of a peer message whatever the authenticator: the datagram
/// limit minus the peer header and the largest MAC (a 64-byte signature).
/// Raft batches are chunked to fit this.
pub const MAX_PEER_PAYLOAD_BYTES: usize =
    MAX_DATAGRAM_BYTES - crate::peer::PEER_HEADER_BYTES - crate::peer::MAX_MAC_BYTES;
/// Largest payload of a client message (request or reply).
pub const MAX_CLIENT_PAYLOAD_BYTES: usize = MAX_DATAGRAM_BYTES - HEADER_BYTES;

/// What a datagram carries; decides which header and payload follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// Peer: a node envelope (Raft message, forward, chain check, ...),
    /// opaque to this crate.
    PeerNode = 1,
    /// Peer: liveness probe carrying a nonce (tests, diagnostics).
    PeerPing = 2,
    /// Peer: answer to a ping, echoing its nonce.
    PeerPong = 3,
    /// Client to node: a request (see [`crate::client`]).
    ClientRequest = 0x10,
    /// Node to client: a reply (see [`crate::client`]).
    ClientReply = 0x11,
}

impl Kind {
    /// Parses a kind byte; unknown values are `None`.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::PeerNode),
            2 => Some(Kind::PeerPing),
            3 => Some(Kind::PeerPong),
            0x10 => Some(Kind::ClientRequest),
            0x11 => Some(Kind::ClientReply),
            _ => None,
        }
    }

    /// Whether this kind travels with the peer header and an authenticator.
    pub fn is_peer(self) -> bool {
        matches!(self, Kind::PeerNode | Kind::PeerPing | Kind::PeerPong)
    }
}

/// The decoded common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the datagram is.
    pub kind: Kind,
    /// Length of the payload that follows the kind-specific header.
    pub payload_len: u16,
    /// The sender's cluster.
    pub cluster_id: ClusterId,
    /// Sending node (peer messages) or client id (client messages).
    pub sender: u64,
}

impl Header {
    /// Appends the 24 header bytes to `out`.
    pub fn encode_into(&self, out: &mut alloc::vec::Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.payload_len.to_be_bytes());
        out.extend_from_slice(&self.cluster_id.to_be_bytes());
        out.extend_from_slice(&self.sender.to_be_bytes());
    }

    /// Decodes the common header at the start of `bytes` (the rest is left to
    /// the kind-specific decoder).
    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        if bytes.len() > MAX_DATAGRAM_BYTES {
            return Err(DecodeError::TooLong { len: bytes.len() });
        }
        let mut r = Reader::new(bytes);
        let magic = r.array::<4>()?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind_byte = r.u8()?;
        let kind = Kind::from_byte(kind_byte).ok_or(DecodeError::UnknownKind(kind_byte))?;
        let payload_len = r.u16()?;
        let cluster_id = r.u64()?;
        let sender = r.u64()?;
        Ok(Header {
            kind,
            payload_len,
            cluster_id,
            sender,
        })
    }
}

/// Why bytes were refused by a decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the structure did.
    Truncated,
    /// The datagram is longer than [`MAX_DATAGRAM_BYTES`].
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Not a Continuum datagram.
    BadMagic,
    /// A wire version this node does not speak.
    UnsupportedVersion(u8),
    /// A kind byte no message has.
    UnknownKind(u8),
    /// A kind arrived where another family was expected (e.g. a client
    /// request handed to the peer decoder).
    UnexpectedKind(Kind),
    /// An authentication scheme byte no scheme has.
    UnknownScheme(u8),
    /// A client request op byte no op has.
    UnknownOp(u8),
    /// A reply status byte no status has.
    UnknownStatus(u8),
    /// A reply error byte no error has.
    UnknownErrorCode(u8),
    /// The payload length field disagrees with the bytes present.
    LengthMismatch {
        /// The length the header declares.
        declared: usize,
        /// The bytes present.
        actual: usize,
    },
    /// The payload is longer than the per-family maximum.
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The family's maximum.
        max: usize,
    },
    /// Bytes left over after a complete structure.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Sequence numbers start at 1; 0 never appears on the wire.
    ZeroSequence,
    /// A node id field holds 0, which is never a valid node.
    ZeroNodeId,
    /// A submit request with no bank entry bytes.
    EmptyEntry,
    /// A membership request with no signed membership command.
    EmptyMembershipCommand,
    /// A query request not padded with zeros to exactly
    /// [`crate::client::QUERY_REQUEST_BYTES`] (see `client.rs`: no reply
    /// may be longer than its request).
    QueryPadding,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "datagram truncated"),
            DecodeError::TooLong { len } => {
                write!(f, "datagram of {len} bytes exceeds {MAX_DATAGRAM_BYTES}")
            }
            DecodeError::BadMagic => write!(f, "bad magic"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported wire version {v}"),
            DecodeError::UnknownKind(k) => write!(f, "unknown message kind {k:#04x}"),
            DecodeError::UnexpectedKind(k) => write!(f, "unexpected message kind {k:?}"),
            DecodeError::UnknownScheme(s) => write!(f, "unknown authenticator scheme {s}"),
            DecodeError::UnknownOp(o) => write!(f, "unknown client request op {o}"),
            DecodeError::UnknownStatus(s) => write!(f, "unknown client reply status {s}"),
            DecodeError::UnknownErrorCode(c) => write!(f, "unknown client error code {c}"),
            DecodeError::LengthMismatch { declared, actual } => {
                write!(
                    f,
                    "declared payload length {declared}, found {actual} bytes"
                )
            }
            DecodeError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds {max}")
            }
            DecodeError::TrailingBytes { extra } => write!(f, "{extra} trailing bytes"),
            DecodeError::ZeroSequence => write!(f, "sequence number 0"),
            DecodeError::ZeroNodeId => write!(f, "node id 0"),
            DecodeError::EmptyEntry => write!(f, "submit request without bank entry bytes"),
            DecodeError::EmptyMembershipCommand => {
                write!(f, "membership request without a signed command")
            }
            DecodeError::QueryPadding => write!(
                f,
                "query request not zero-padded to {} bytes",
                crate::client::QUERY_REQUEST_BYTES
            ),
        }
    }
}

/// Why a message could not be encoded (a caller bug or an oversize payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload does not fit one datagram.
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The most that fits.
        max: usize,
    },
    /// A node id of 0 was given where a node is required.
    ZeroNodeId,
    /// A submit request with no bank entry bytes.
    EmptyEntry,
    /// A membership request with no signed membership command.
    EmptyMembershipCommand,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds {max}")
            }
            EncodeError::ZeroNodeId => write!(f, "node id 0 is not a node"),
            EncodeError::EmptyEntry => write!(f, "submit request without bank entry bytes"),
            EncodeError::EmptyMembershipCommand => {
                write!(f, "membership request without a signed command")
            }
        }
    }
}

/// The workspace's total byte reader in network byte order (`continuum_base::bytes`).
pub(crate) type Reader<'a> = continuum_base::bytes::BeReader<'a>;

impl From<continuum_base::bytes::Truncated> for DecodeError {
    fn from(_: continuum_base::bytes::Truncated) -> DecodeError {
        DecodeError::Truncated
    }
}

impl From<continuum_base::bytes::Trailing> for DecodeError {
    fn from(t: continuum_base::bytes::Trailing) -> DecodeError {
        DecodeError::TrailingBytes { extra: t.extra }
    }
}
