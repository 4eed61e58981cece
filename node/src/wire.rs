//! The node's two small formats: what rides in a peer datagram (an
//! [`Envelope`]) and what a log entry carries in front of the bank entry
//! (an [`EntryHeader`]).
//!
//! Envelope (inside the authenticated `PeerBody::Node` payload of `net`):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | kind: 1 Raft message, 2 forwarded write (admitted), 3 chain check, 4 forwarded write (signer not resolved by the sender), 5 unchecked forward refused |
//! | 8 | sender's Lamport clock (big-endian) |
//! | 8 | sender's HLC timestamp (big-endian) |
//! | rest | body |
//!
//! Bodies: Raft = `continuum_raft::Message::encode`; forward (kinds 2 and 4)
//! = `origin u64 | request tag u64 | bank entry`; chain check = `applied index u64 | receipt
//! chain head [32]`; forward refused = `request tag u64 | reason u8` (1 bad
//! signature, 2 signer unresolved at the leader too).
//!
//! Entry data (`continuum_raft::Entry::data` of a normal entry):
//! `origin node u64 | request tag u64 | HLC u64 | bank entry`. `origin`
//! and `request_tag` let the node that took the client's request answer it when it
//! applies the entry; the HLC is the leader's timestamp at proposal.
//! Decoding is total: short or malformed bytes are an error, never a panic.

use alloc::vec::Vec;
use continuum_base::bytes::{BeReader, Truncated};
use continuum_raft::{Message, NodeId};

/// Bytes in front of an envelope body.
pub const ENVELOPE_HEADER_BYTES: usize = 17;
/// Bytes in front of the bank entry in a Raft log entry.
pub const ENTRY_HEADER_BYTES: usize = 24;

/// Why bytes did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the fixed fields need.
    Truncated,
    /// An unknown envelope kind byte.
    UnknownKind(u8),
    /// A body with bytes left over or an empty bank entry.
    BadBody,
    /// The Raft message inside did not decode.
    Raft(continuum_raft::DecodeError),
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WireError::Truncated => f.write_str("truncated"),
            WireError::UnknownKind(kind) => write!(f, "unknown envelope kind {kind}"),
            WireError::BadBody => f.write_str("malformed body"),
            WireError::Raft(e) => write!(f, "raft message: {e:?}"),
        }
    }
}

/// What one peer datagram carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A Raft protocol message.
    Raft(Message),
    /// A client write taken by a follower, for the leader to propose.
    /// `admitted`: the follower verified every signature against keys it
    /// knows (envelope kind 2); otherwise some signer's account was not yet
    /// applied there and the leader checks the entry itself (kind 4).
    Forward {
        /// The follower that took the request (it answers the client).
        origin: NodeId,
        /// Its request tag for the write.
        request_tag: u64,
        /// The encoded bank entry.
        entry: Vec<u8>,
        /// Whether the follower verified every signature.
        admitted: bool,
    },
    /// The sender's receipt-chain head at an applied index (divergence check).
    ChainCheck {
        /// The applied index of the checkpoint.
        index: u64,
        /// The receipt-chain head there.
        head: [u8; 32],
    },
    /// The leader's answer to an unchecked forward (kind 4) it refused on
    /// its merits, so the origin can tell its client: `request_tag` is the origin's
    /// request tag from the forward.
    ForwardRefused {
        /// The origin's request tag from the forward.
        request_tag: u64,
        /// Why it was refused.
        reason: ForwardRefusal,
    },
}

/// Why a leader refused an unchecked forward (the verdicts that do not
/// change on a retry to the same leader; a forward dropped for load or
/// leadership is not answered and its client times out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ForwardRefusal {
    /// A signer resolved and its signature does not verify.
    BadSignature = 1,
    /// The leader cannot resolve a signer either.
    Unresolved = 2,
}

/// A peer datagram's payload: clocks plus a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender's Lamport clock at sending.
    pub lamport: u64,
    /// The sender's packed HLC at sending.
    pub hlc: u64,
    /// What the datagram carries.
    pub body: Body,
}

impl From<Truncated> for WireError {
    fn from(_: Truncated) -> WireError {
        WireError::Truncated
    }
}

impl Envelope {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let kind = match self.body {
            Body::Raft(_) => 1,
            Body::Forward { admitted: true, .. } => 2,
            Body::ChainCheck { .. } => 3,
            Body::Forward {
                admitted: false, ..
            } => 4,
            Body::ForwardRefused { .. } => 5,
        };
        out.push(kind);
        out.extend_from_slice(&self.lamport.to_be_bytes());
        out.extend_from_slice(&self.hlc.to_be_bytes());
        match &self.body {
            Body::Raft(message) => message.encode(out),
            Body::Forward {
                origin,
                request_tag,
                entry,
                ..
            } => {
                out.extend_from_slice(&origin.to_be_bytes());
                out.extend_from_slice(&request_tag.to_be_bytes());
                out.extend_from_slice(entry);
            }
            Body::ChainCheck { index, head } => {
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(head);
            }
            Body::ForwardRefused {
                request_tag,
                reason,
            } => {
                out.extend_from_slice(&request_tag.to_be_bytes());
                out.push(*reason as u8);
            }
        }
    }

    /// Decodes one envelope (total).
    pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
        let mut r = BeReader::new(bytes);
        let kind = r.u8()?;
        let lamport = r.u64()?;
        let hlc = r.u64()?;
        let rest = r.rest();
        let mut body = BeReader::new(rest);
        let body = match kind {
            1 => Body::Raft(Message::decode(rest).map_err(WireError::Raft)?),
            2 | 4 => {
                let admitted = kind == 2;
                let origin = body.u64()?;
                let request_tag = body.u64()?;
                let entry = body.rest();
                if entry.is_empty() {
                    return Err(WireError::BadBody);
                }
                Body::Forward {
                    origin,
                    request_tag,
                    entry: entry.to_vec(),
                    admitted,
                }
            }
            3 => {
                if rest.len() != 40 {
                    return Err(WireError::BadBody);
                }
                Body::ChainCheck {
                    index: body.u64()?,
                    head: body.array()?,
                }
            }
            5 => {
                let reason = match rest {
                    [_, _, _, _, _, _, _, _, 1] => ForwardRefusal::BadSignature,
                    [_, _, _, _, _, _, _, _, 2] => ForwardRefusal::Unresolved,
                    _ => return Err(WireError::BadBody),
                };
                Body::ForwardRefused {
                    request_tag: body.u64()?,
                    reason,
                }
            }
            other => return Err(WireError::UnknownKind(other)),
        };
        Ok(Envelope { lamport, hlc, body })
    }
}

/// The node fields in front of a bank entry in a Raft log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    /// Node that took the client's request (answers it on apply).
    pub origin: NodeId,
    /// That node's request tag for the request.
    pub request_tag: u64,
    /// Leader's HLC timestamp at proposal.
    pub hlc: u64,
}

impl EntryHeader {
    /// `header | bank entry` as Raft entry data.
    pub fn wrap(&self, bank_entry: &[u8]) -> Vec<u8> {
        let mut data = Vec::with_capacity(ENTRY_HEADER_BYTES + bank_entry.len());
        data.extend_from_slice(&self.origin.to_be_bytes());
        data.extend_from_slice(&self.request_tag.to_be_bytes());
        data.extend_from_slice(&self.hlc.to_be_bytes());
        data.extend_from_slice(bank_entry);
        data
    }

    /// Splits Raft entry data into header and bank entry (total).
    pub fn unwrap(data: &[u8]) -> Result<(EntryHeader, &[u8]), WireError> {
        let mut r = BeReader::new(data);
        let header = EntryHeader {
            origin: r.u64()?,
            request_tag: r.u64()?,
            hlc: r.u64()?,
        };
        Ok((header, r.rest()))
    }
}
