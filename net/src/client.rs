//! Client messages: requests from clients to any node and the node's reply.
//!
//! They use the common header (sender = client id) followed directly by the
//! payload; they carry no authenticator at this layer because the commands a
//! client submits are signed by the debited account's owner (checked by the
//! bank), and a reply only reports facts the client can re-query.
//!
//! Request payload: `request id (u64) | op (u8) | op body`:
//!
//! | op | name              | body                                   |
//! |----|-------------------|----------------------------------------|
//! | 1  | Submit            | bank entry bytes (the rest, at least 1) |
//! | 2  | QueryBalance      | account id (u128)                      |
//! | 3  | QueryOutcome      | transfer id (u128)                     |
//! | 4  | QueryChainHead    | (empty)                                |
//! | 5  | ChangeMembership  | an operator-signed membership command (the rest; `continuum_node::membership`) |
//!
//! A query (ops 2–4) is followed by zero bytes up to exactly
//! [`QUERY_REQUEST_BYTES`] for the whole datagram, the size of the largest
//! reply a query can get; anything else is refused (`QueryPadding`). So no
//! reply is ever longer than its request: a query's `Ok` is at most
//! [`QUERY_REQUEST_BYTES`]; an error is 34 bytes, as long as the shortest
//! request (a submit of one byte); a redirect (41 bytes; nodes forward
//! instead of sending one) or a submit's `Ok` only answers a decodable
//! entry, whose every command (≥ 123 signed bytes) gets one outcome byte.
//! A request with a spoofed source address therefore reflects at most as
//! many bytes as the attacker sent (issue 14, LOW 9).
//!
//! Reply payload: `request id (u64) | status (u8) | status body`:
//!
//! | status | name     | body                                                    |
//! |--------|----------|---------------------------------------------------------|
//! | 0      | Ok       | index u64, term u64, HLC u64, chain hash (32 bytes), outcome (rest) |
//! | 1      | Redirect | leader hint u64 (0 = unknown leader)                    |
//! | 2      | Error    | error code u8                                           |
//! | 3      | MembershipRefused | reason u8 ([`MembershipRefusal`]), configuration index in effect u64 |
//!
//! `Ok` carries a log position and an answer. For a submit the position is
//! the entry that carried the command (its index, term and HLC timestamp);
//! for a query it is the applied position the linearizable read was served
//! at. `chain hash` is always the bank's receipt-chain head after applying
//! that index, so replies from different nodes can be compared.
//!
//! | request        | `outcome` bytes                                                     |
//! |----------------|---------------------------------------------------------------------|
//! | Submit         | the bank outcome of each command of the entry, in order (`Outcome::encode_into`) |
//! | QueryBalance   | `0` (no such account) or `1 \| balance u64`                          |
//! | QueryOutcome   | `0 \| log time ms u64` (not decided within the dedup window), `1 \| index u64` (applied by that entry) or `2 \| index u64 \| outcome code u8` (rejected by that entry) |
//! | QueryChainHead | empty                                                               |

use alloc::vec::Vec;
use core::fmt;

use crate::header::{
    ClusterId, DecodeError, EncodeError, Header, Kind, NodeId, Reader, HEADER_BYTES,
    MAX_CLIENT_PAYLOAD_BYTES,
};

/// Fixed bytes in front of a request's op body (request id + op).
const REQUEST_PREFIX_BYTES: usize = 9;
/// Fixed bytes of an `Ok` reply body in front of the outcome.
const REPLY_OK_FIXED_BYTES: usize = 8 + 1 + 8 + 8 + 8 + 32;
/// Largest bank entry a client can submit in one datagram.
pub const MAX_SUBMIT_BYTES: usize = MAX_CLIENT_PAYLOAD_BYTES - REQUEST_PREFIX_BYTES;
/// Largest outcome a reply can carry in one datagram.
pub const MAX_OUTCOME_BYTES: usize = MAX_CLIENT_PAYLOAD_BYTES - REPLY_OK_FIXED_BYTES;
/// Longest answer to a query: a transfer rejected by an entry
/// (`2 | index u64 | outcome code u8`, see the table above).
pub const MAX_QUERY_ANSWER_BYTES: usize = 1 + 8 + 1;
/// Length of every query request datagram (zero-padded): the longest `Ok`
/// reply to a query, so no reply outgrows its request.
pub const QUERY_REQUEST_BYTES: usize = HEADER_BYTES + REPLY_OK_FIXED_BYTES + MAX_QUERY_ANSWER_BYTES;

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOp {
    /// Propose a bank entry (one or more owner-signed bank commands).
    Submit {
        /// The encoded bank entry (one or more signed commands).
        entry: Vec<u8>,
    },
    /// Linearizable read of one account's balance.
    QueryBalance {
        /// The account's id.
        account: u128,
    },
    /// The outcome of a transfer by its client-chosen 128-bit id.
    QueryOutcome {
        /// The transfer's id.
        transfer_id: u128,
    },
    /// The applied chain head (index, term, HLC, hash).
    QueryChainHead,
    /// Change the cluster's membership (or hand leadership over): an
    /// operator-signed command, answered by the leader only (others
    /// redirect). `Ok` once the change committed and applied there.
    ChangeMembership {
        /// The signed command's bytes.
        command: Vec<u8>,
    },
}

/// A client request datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    /// The cluster the request is for (a node of another refuses it).
    pub cluster_id: ClusterId,
    /// Client-chosen id; together with `request_id` it names a retry.
    pub client_id: u64,
    /// Client-chosen id of this request; the reply echoes it.
    pub request_id: u64,
    /// What is asked.
    pub op: RequestOp,
}

/// Why a node could not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ReplyError {
    /// Overloaded (a bounded queue is full); retry later.
    Busy = 1,
    /// No quorum reachable / no leader known; retry later.
    Unavailable = 2,
    /// The request was understood but refused (e.g. the command is invalid).
    BadRequest = 3,
    /// The request did not commit in time; its outcome is unknown — query it.
    Timeout = 4,
    /// A command's signature does not verify against the key this node
    /// knows for its signer (the operator key for account creation, the
    /// debited account's owner for a transfer): refused before it reaches
    /// the log.
    BadSignature = 5,
}

impl ReplyError {
    fn from_byte(byte: u8) -> Option<ReplyError> {
        match byte {
            1 => Some(ReplyError::Busy),
            2 => Some(ReplyError::Unavailable),
            3 => Some(ReplyError::BadRequest),
            4 => Some(ReplyError::Timeout),
            5 => Some(ReplyError::BadSignature),
            _ => None,
        }
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ReplyError::Busy => "busy",
            ReplyError::Unavailable => "unavailable",
            ReplyError::BadRequest => "bad request",
            ReplyError::Timeout => "timed out",
            ReplyError::BadSignature => "bad signature",
        };
        f.write_str(text)
    }
}

/// Why the leader refused a membership command (nothing was appended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MembershipRefusal {
    /// Not a membership command.
    Malformed = 1,
    /// The operator's signature does not verify.
    BadSignature = 2,
    /// Past its expiry.
    Expired = 3,
    /// Its expiry is further ahead than the cluster allows.
    ExpiryTooFar = 4,
    /// Made against another configuration (see the reply's index).
    StaleConfiguration = 5,
    /// The new member's key or address is invalid or already in use.
    BadMember = 6,
    /// The cluster would have too many members.
    TooManyMembers = 7,
    /// A leadership transfer is in progress.
    TransferInProgress = 8,
    /// The leader has not committed an entry of its term yet: retry.
    LeaderNotReady = 9,
    /// Another change is not committed yet: retry.
    ChangeInProgress = 10,
    /// The node is already a member.
    AlreadyMember = 11,
    /// The node is not a member of the kind the change needs.
    UnknownNode = 12,
    /// It would remove the last voter.
    RemoveLastVoter = 13,
    /// It would remove the leader: transfer leadership first.
    RemoveLeader = 14,
    /// The learner has not caught up yet: retry.
    LearnerBehind = 15,
    /// Too few voters of the new configuration are reachable.
    WouldLoseQuorum = 16,
    /// This node already leads (transfer to itself).
    AlreadyLeader = 17,
}

impl MembershipRefusal {
    fn from_byte(byte: u8) -> Option<MembershipRefusal> {
        use MembershipRefusal::*;
        Some(match byte {
            1 => Malformed,
            2 => BadSignature,
            3 => Expired,
            4 => ExpiryTooFar,
            5 => StaleConfiguration,
            6 => BadMember,
            7 => TooManyMembers,
            8 => TransferInProgress,
            9 => LeaderNotReady,
            10 => ChangeInProgress,
            11 => AlreadyMember,
            12 => UnknownNode,
            13 => RemoveLastVoter,
            14 => RemoveLeader,
            15 => LearnerBehind,
            16 => WouldLoseQuorum,
            17 => AlreadyLeader,
            _ => return None,
        })
    }

    /// Whether the same command may succeed if sent again a little later.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            MembershipRefusal::TransferInProgress
                | MembershipRefusal::LeaderNotReady
                | MembershipRefusal::ChangeInProgress
                | MembershipRefusal::LearnerBehind
        )
    }
}

impl fmt::Display for MembershipRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MembershipRefusal::Malformed => "not a well-formed membership command",
            MembershipRefusal::BadSignature => "the operator signature does not verify",
            MembershipRefusal::Expired => "the command has expired",
            MembershipRefusal::ExpiryTooFar => "the command's expiry is too far ahead",
            MembershipRefusal::StaleConfiguration => {
                "made against another configuration (it changed meanwhile)"
            }
            MembershipRefusal::BadMember => {
                "the new member's key or address is invalid or already used by a member"
            }
            MembershipRefusal::TooManyMembers => "the cluster would have too many members",
            MembershipRefusal::TransferInProgress => "a leadership transfer is in progress",
            MembershipRefusal::LeaderNotReady => {
                "the leader has not committed an entry of its term yet"
            }
            MembershipRefusal::ChangeInProgress => "another membership change is not committed yet",
            MembershipRefusal::AlreadyMember => "the node is already a member",
            MembershipRefusal::UnknownNode => {
                "the node is not a member of the kind this change needs"
            }
            MembershipRefusal::RemoveLastVoter => "cannot remove the last voter",
            MembershipRefusal::RemoveLeader => {
                "cannot remove the leader; transfer leadership first"
            }
            MembershipRefusal::LearnerBehind => "the learner has not caught up yet",
            MembershipRefusal::WouldLoseQuorum => {
                "too few voters of the new configuration are reachable: it would lose quorum"
            }
            MembershipRefusal::AlreadyLeader => "that node already leads",
        })
    }
}

/// The body of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyBody {
    /// Committed (submit) or read (query) at this log position.
    Ok {
        /// Log index of the entry (or of the read).
        index: u64,
        /// Its term.
        term: u64,
        /// Hybrid logical clock timestamp of the entry.
        hlc: u64,
        /// Receipt-chain head after it.
        chain_hash: [u8; 32],
        /// Bank-encoded outcome or query answer (empty for a chain head).
        outcome: Vec<u8>,
    },
    /// This node is not the leader; try `leader_hint` if known.
    Redirect {
        /// The leader this node knows of.
        leader_hint: Option<NodeId>,
    },
    /// Not answered; why.
    Error(ReplyError),
    /// A membership command refused by the leader.
    MembershipRefused {
        /// Why.
        reason: MembershipRefusal,
        /// The configuration index in effect at the leader.
        conf_index: u64,
    },
}

/// A reply datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReply {
    /// The replying node's cluster.
    pub cluster_id: ClusterId,
    /// The replying node.
    pub node: NodeId,
    /// Echo of the request's id.
    pub request_id: u64,
    /// The answer.
    pub body: ReplyBody,
}

/// Checks the common header for a client message of `kind` and returns the
/// payload slice.
fn client_payload(bytes: &[u8], kind: Kind) -> Result<(Header, &[u8]), DecodeError> {
    let header = Header::decode(bytes)?;
    if header.kind != kind {
        return Err(DecodeError::UnexpectedKind(header.kind));
    }
    let payload = &bytes[HEADER_BYTES..];
    let declared = usize::from(header.payload_len);
    if declared != payload.len() {
        return Err(DecodeError::LengthMismatch {
            declared,
            actual: payload.len(),
        });
    }
    Ok((header, payload))
}

/// Wraps a finished payload in the common header.
fn frame(
    kind: Kind,
    cluster_id: ClusterId,
    sender: u64,
    payload: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    if payload.len() > MAX_CLIENT_PAYLOAD_BYTES {
        return Err(EncodeError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_CLIENT_PAYLOAD_BYTES,
        });
    }
    let payload_len = u16::try_from(payload.len()).map_err(|_| EncodeError::PayloadTooLarge {
        len: payload.len(),
        max: MAX_CLIENT_PAYLOAD_BYTES,
    })?;
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    Header {
        kind,
        payload_len,
        cluster_id,
        sender,
    }
    .encode_into(&mut out);
    out.extend_from_slice(payload);
    Ok(out)
}

impl RequestOp {
    /// Whether the op carries a variable-length command (the rest of the
    /// datagram) rather than a zero-padded fixed-size query.
    fn is_variable(&self) -> bool {
        matches!(
            self,
            RequestOp::Submit { .. } | RequestOp::ChangeMembership { .. }
        )
    }
}

impl ClientRequest {
    /// Encodes the request as one datagram.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut payload = Vec::with_capacity(REQUEST_PREFIX_BYTES + 16);
        payload.extend_from_slice(&self.request_id.to_be_bytes());
        match &self.op {
            RequestOp::Submit { entry } => {
                if entry.is_empty() {
                    return Err(EncodeError::EmptyEntry);
                }
                payload.push(1);
                payload.extend_from_slice(entry);
            }
            RequestOp::QueryBalance { account } => {
                payload.push(2);
                payload.extend_from_slice(&account.to_be_bytes());
            }
            RequestOp::QueryOutcome { transfer_id } => {
                payload.push(3);
                payload.extend_from_slice(&transfer_id.to_be_bytes());
            }
            RequestOp::QueryChainHead => payload.push(4),
            RequestOp::ChangeMembership { command } => {
                if command.is_empty() {
                    return Err(EncodeError::EmptyMembershipCommand);
                }
                payload.push(5);
                payload.extend_from_slice(command);
            }
        }
        if !self.op.is_variable() {
            payload.resize(QUERY_REQUEST_BYTES - HEADER_BYTES, 0);
        }
        frame(
            Kind::ClientRequest,
            self.cluster_id,
            self.client_id,
            &payload,
        )
    }

    /// Decodes one request datagram (total: never panics).
    pub fn decode(bytes: &[u8]) -> Result<ClientRequest, DecodeError> {
        let (header, payload) = client_payload(bytes, Kind::ClientRequest)?;
        let mut r = Reader::new(payload);
        let request_id = r.u64()?;
        let op_byte = r.u8()?;
        let op = match op_byte {
            1 => {
                let entry = r.rest();
                if entry.is_empty() {
                    return Err(DecodeError::EmptyEntry);
                }
                RequestOp::Submit {
                    entry: entry.to_vec(),
                }
            }
            2 => RequestOp::QueryBalance { account: r.u128()? },
            3 => RequestOp::QueryOutcome {
                transfer_id: r.u128()?,
            },
            4 => RequestOp::QueryChainHead,
            5 => {
                let command = r.rest();
                if command.is_empty() {
                    return Err(DecodeError::EmptyMembershipCommand);
                }
                RequestOp::ChangeMembership {
                    command: command.to_vec(),
                }
            }
            other => return Err(DecodeError::UnknownOp(other)),
        };
        if !op.is_variable() {
            let padding = r.rest();
            if bytes.len() != QUERY_REQUEST_BYTES || padding.iter().any(|&b| b != 0) {
                return Err(DecodeError::QueryPadding);
            }
        }
        r.finish()?;
        Ok(ClientRequest {
            cluster_id: header.cluster_id,
            client_id: header.sender,
            request_id,
            op,
        })
    }
}

impl ClientReply {
    /// Encodes the reply as one datagram.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        if self.node == 0 {
            return Err(EncodeError::ZeroNodeId);
        }
        let mut payload = Vec::with_capacity(REPLY_OK_FIXED_BYTES);
        payload.extend_from_slice(&self.request_id.to_be_bytes());
        match &self.body {
            ReplyBody::Ok {
                index,
                term,
                hlc,
                chain_hash,
                outcome,
            } => {
                payload.push(0);
                payload.extend_from_slice(&index.to_be_bytes());
                payload.extend_from_slice(&term.to_be_bytes());
                payload.extend_from_slice(&hlc.to_be_bytes());
                payload.extend_from_slice(chain_hash);
                payload.extend_from_slice(outcome);
            }
            ReplyBody::Redirect { leader_hint } => {
                payload.push(1);
                let hint = match leader_hint {
                    Some(0) => return Err(EncodeError::ZeroNodeId),
                    Some(id) => *id,
                    None => 0,
                };
                payload.extend_from_slice(&hint.to_be_bytes());
            }
            ReplyBody::Error(code) => {
                payload.push(2);
                payload.push(*code as u8);
            }
            ReplyBody::MembershipRefused { reason, conf_index } => {
                payload.push(3);
                payload.push(*reason as u8);
                payload.extend_from_slice(&conf_index.to_be_bytes());
            }
        }
        frame(Kind::ClientReply, self.cluster_id, self.node, &payload)
    }

    /// Decodes one reply datagram (total: never panics).
    pub fn decode(bytes: &[u8]) -> Result<ClientReply, DecodeError> {
        let (header, payload) = client_payload(bytes, Kind::ClientReply)?;
        if header.sender == 0 {
            return Err(DecodeError::ZeroNodeId);
        }
        let mut r = Reader::new(payload);
        let request_id = r.u64()?;
        let status = r.u8()?;
        let body = match status {
            0 => ReplyBody::Ok {
                index: r.u64()?,
                term: r.u64()?,
                hlc: r.u64()?,
                chain_hash: r.array()?,
                outcome: r.rest().to_vec(),
            },
            1 => {
                let hint = r.u64()?;
                ReplyBody::Redirect {
                    leader_hint: (hint != 0).then_some(hint),
                }
            }
            2 => {
                let code = r.u8()?;
                ReplyBody::Error(
                    ReplyError::from_byte(code).ok_or(DecodeError::UnknownErrorCode(code))?,
                )
            }
            3 => {
                let code = r.u8()?;
                ReplyBody::MembershipRefused {
                    reason: MembershipRefusal::from_byte(code)
                        .ok_or(DecodeError::UnknownErrorCode(code))?,
                    conf_index: r.u64()?,
                }
            }
            other => return Err(DecodeError::UnknownStatus(other)),
        };
        r.finish()?;
        Ok(ClientReply {
            cluster_id: header.cluster_id,
            node: header.sender,
            request_id,
            body,
        })
    }
}

/// Encodes a `QueryBalance` answer (see the module table).
pub fn encode_balance_answer(balance: Option<u64>, out: &mut Vec<u8>) {
    match balance {
        None => out.push(0),
        Some(balance) => {
            out.push(1);
            out.extend_from_slice(&balance.to_be_bytes());
        }
    }
}

/// Decodes a `QueryBalance` answer (total).
pub fn decode_balance_answer(bytes: &[u8]) -> Result<Option<u64>, DecodeError> {
    decode_optional_u64(bytes)
}

/// What the ledger knows about a transfer id (a `QueryOutcome` answer).
///
/// The bank remembers every id it decided until the transfer's signed
/// `expires_at` passes in log time; after that a replay can only be
/// `Expired`, so the id is forgotten. Hence "not decided" comes with the log
/// time: a transfer whose `expires_at` is below it is *expired from the
/// dedup window* and can never apply; one whose `expires_at` is not below
/// it was not decided yet (or was refused without a decision, e.g. a bad
/// signature) and may still apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferAnswer {
    /// No decision on this id inside the dedup window, as of `log_time_ms`.
    NotDecided {
        /// The ledger's log time when asked (ms).
        log_time_ms: u64,
    },
    /// Applied by the entry at `index`.
    Applied {
        /// The deciding entry's index.
        index: u64,
    },
    /// Rejected by the entry at `index` with the bank outcome `outcome_code`
    /// (a retry of the same bytes gets the same answer).
    Rejected {
        /// The deciding entry's index.
        index: u64,
        /// The bank outcome's code.
        outcome_code: u8,
    },
}

impl TransferAnswer {
    /// The index of the entry that applied it, if it applied.
    pub fn applied_at(&self) -> Option<u64> {
        match self {
            TransferAnswer::Applied { index } => Some(*index),
            _ => None,
        }
    }

    /// Whether a transfer with this `expires_at` is expired from the dedup
    /// window (can never apply) according to this answer.
    pub fn expired(&self, expires_at: u64) -> bool {
        matches!(self, TransferAnswer::NotDecided { log_time_ms } if expires_at < *log_time_ms)
    }
}

/// Encodes a `QueryOutcome` answer (see the module table).
pub fn encode_transfer_answer(answer: &TransferAnswer, out: &mut Vec<u8>) {
    match *answer {
        TransferAnswer::NotDecided { log_time_ms } => {
            out.push(0);
            out.extend_from_slice(&log_time_ms.to_be_bytes());
        }
        TransferAnswer::Applied { index } => {
            out.push(1);
            out.extend_from_slice(&index.to_be_bytes());
        }
        TransferAnswer::Rejected {
            index,
            outcome_code,
        } => {
            out.push(2);
            out.extend_from_slice(&index.to_be_bytes());
            out.push(outcome_code);
        }
    }
}

/// Decodes a `QueryOutcome` answer (total).
pub fn decode_transfer_answer(bytes: &[u8]) -> Result<TransferAnswer, DecodeError> {
    let mut r = Reader::new(bytes);
    let answer = match r.u8()? {
        0 => TransferAnswer::NotDecided {
            log_time_ms: r.u64()?,
        },
        1 => TransferAnswer::Applied { index: r.u64()? },
        2 => TransferAnswer::Rejected {
            index: r.u64()?,
            outcome_code: r.u8()?,
        },
        other => return Err(DecodeError::UnknownStatus(other)),
    };
    r.finish()?;
    Ok(answer)
}

fn decode_optional_u64(bytes: &[u8]) -> Result<Option<u64>, DecodeError> {
    let mut r = Reader::new(bytes);
    let answer = match r.u8()? {
        0 => None,
        1 => Some(r.u64()?),
        other => return Err(DecodeError::UnknownStatus(other)),
    };
    r.finish()?;
    Ok(answer)
}
