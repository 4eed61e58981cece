//! Canonical binary encoding of [`Message`].
//!
//! Layout (all integers fixed-width big-endian, so each value has exactly one
//! encoding): `version:u8 = 1`, `kind:u8`, `from:u64`, `to:u64`, `term:u64`,
//! then the body fields in declaration order. Booleans are one byte, 0 or 1.
//! `Append` carries `count:u32` entries, each `index:u64 term:u64 kind:u8
//! chain_hash:[u8;32] len:u32 data`. `InstallSnapshot` carries `index term
//! chain_hash conf_index conf total_len total_hash part:u8`; `conf` (a
//! [`crate::ConfState`]) is `voters:u32 ids learners:u32 ids`, each list
//! strictly increasing, non-zero, the two disjoint, together at most
//! [`MAX_CLUSTER_MEMBERS`]. Then for a manifest piece
//! (`part = 1`) `max_chunk:u32 chunk_count:u32 manifest_hash:[u8;32]
//! first:u32 count:u32` and `count` entries `name:[u8;32] len:u32`, with
//! `1 <= max_chunk <= MAX_SNAPSHOT_CHUNK_BYTES`, `chunk_count <= total_len`,
//! `first + count <= chunk_count`, `count <= MAX_MANIFEST_ENTRIES_PER_MESSAGE`
//! and every `1 <= len <= max_chunk`; for a chunk (`part = 2`)
//! `position:u32 len:u32 chunk` with `1 <= len <= MAX_SNAPSHOT_CHUNK_BYTES`
//! and `len <= total_len`. `InstallSnapshotResponse` is `index:u64
//! manifest_next:u32 chunk_next:u32 done:bool`.
//!
//! Decoding is total: any input gives `Ok` or a [`DecodeError`], never a
//! panic. Nothing is allocated from an unchecked length: counts and lengths
//! are checked against [`MAX_ENTRIES_PER_MESSAGE`],
//! [`MAX_ENTRY_DATA_BYTES`] and the bytes actually remaining before any
//! allocation, and the whole input is capped by [`MAX_MESSAGE_BYTES`].
//! Non-canonical input (unknown kind bytes, booleans other than 0/1, trailing
//! bytes, node id 0) is refused, so `decode(b)` is `Ok(m)` only if
//! `encode(m) == b`. Semantic sanity is checked too: `Append` entries must
//! have consecutive indexes after `prev_log_index` and non-decreasing terms
//! between `prev_log_term` and the message term (Raft §5.3 invariants a
//! correct leader always satisfies).

use crate::config::MAX_ENTRY_DATA_BYTES;
use crate::entry::{Entry, EntryKind, LogChainHash};
use crate::message::{ChunkRef, Message, MessageBody, SnapshotPart};
use crate::storage::ConfState;
use crate::NO_NODE;
use alloc::vec::Vec;
use continuum_base::bytes::{BeReader, Truncated};
use core::fmt;

/// Codec version byte. 2: content-addressed InstallSnapshot (manifest
/// and named chunks); a node on version 1 refuses these messages rather
/// than misread them.
pub const CODEC_VERSION: u8 = 2;
/// Most entries in one encoded message.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1024;
/// Largest snapshot chunk in one InstallSnapshot message.
pub const MAX_SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024;
/// Most manifest entries in one InstallSnapshot message (36 bytes each).
pub const MAX_MANIFEST_ENTRIES_PER_MESSAGE: usize = 1024;
/// Most members (voters + learners) a configuration may have on the wire.
pub const MAX_CLUSTER_MEMBERS: usize = 64;
/// Largest encoded message accepted.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why bytes are not a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Input longer than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// Input ended inside a field.
    Truncated,
    /// Unknown codec version.
    Version(u8),
    /// Unknown message kind.
    MessageKind(u8),
    /// Unknown entry kind.
    EntryKind(u8),
    /// Boolean byte other than 0 or 1.
    Bool(u8),
    /// Node id 0 in `from` or `to`.
    ZeroNode,
    /// More entries than [`MAX_ENTRIES_PER_MESSAGE`].
    TooManyEntries,
    /// Entry data longer than [`MAX_ENTRY_DATA_BYTES`].
    EntryTooLarge,
    /// Entry index or term breaks the log's ordering rules.
    EntryOrder,
    /// Bytes left after a complete message.
    TrailingBytes,
    /// A snapshot chunk empty, over [`MAX_SNAPSHOT_CHUNK_BYTES`] or beyond
    /// the snapshot's total length.
    SnapshotChunk,
    /// A snapshot manifest piece whose counts, chunk sizes or positions
    /// break the bounds in the module doc.
    SnapshotManifest,
    /// Unknown InstallSnapshot part kind.
    SnapshotPart(u8),
    /// A configuration with more than [`MAX_CLUSTER_MEMBERS`] members, an
    /// unsorted or duplicated list, node id 0, or a voter that is also a
    /// learner.
    ConfState,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge => write!(f, "message larger than {MAX_MESSAGE_BYTES} bytes"),
            DecodeError::Truncated => f.write_str("message truncated"),
            DecodeError::Version(v) => write!(f, "unknown codec version {v}"),
            DecodeError::MessageKind(t) => write!(f, "unknown message kind {t}"),
            DecodeError::EntryKind(k) => write!(f, "unknown entry kind {k}"),
            DecodeError::Bool(b) => write!(f, "non-canonical boolean {b}"),
            DecodeError::ZeroNode => f.write_str("node id 0 in message header"),
            DecodeError::TooManyEntries => write!(f, "more than {MAX_ENTRIES_PER_MESSAGE} entries"),
            DecodeError::EntryTooLarge => write!(f, "entry data over {MAX_ENTRY_DATA_BYTES} bytes"),
            DecodeError::EntryOrder => f.write_str("entries not consecutive or terms out of order"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after message"),
            DecodeError::SnapshotChunk => {
                f.write_str("snapshot chunk empty, too large or beyond the snapshot's length")
            }
            DecodeError::SnapshotManifest => {
                f.write_str("snapshot manifest piece with out-of-bounds counts or chunk sizes")
            }
            DecodeError::SnapshotPart(p) => write!(f, "unknown snapshot part {p}"),
            DecodeError::ConfState => write!(
                f,
                "invalid configuration (unsorted, duplicate, zero, or over {MAX_CLUSTER_MEMBERS} members)"
            ),
        }
    }
}

const KIND_PRE_VOTE: u8 = 1;
const KIND_PRE_VOTE_RESPONSE: u8 = 2;
const KIND_VOTE: u8 = 3;
const KIND_VOTE_RESPONSE: u8 = 4;
const KIND_APPEND: u8 = 5;
const KIND_APPEND_RESPONSE: u8 = 6;
const KIND_HEARTBEAT: u8 = 7;
const KIND_HEARTBEAT_RESPONSE: u8 = 8;
const KIND_TIMEOUT_NOW: u8 = 9;
const KIND_READ_INDEX_REQUEST: u8 = 10;
const KIND_READ_INDEX_RESPONSE: u8 = 11;
const KIND_INSTALL_SNAPSHOT: u8 = 12;
const KIND_INSTALL_SNAPSHOT_RESPONSE: u8 = 13;
const PART_MANIFEST: u8 = 1;
const PART_CHUNK: u8 = 2;

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Appends `conf` as `voters:u32 ids learners:u32 ids` (the layout the
/// InstallSnapshot message and configuration entries share).
pub(crate) fn put_conf_state(out: &mut Vec<u8>, conf: &ConfState) {
    for ids in [&conf.voters, &conf.learners] {
        out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for &id in ids {
            put_u64(out, id);
        }
    }
}

impl Message {
    /// Appends the canonical encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(CODEC_VERSION);
        let kind = match &self.body {
            MessageBody::PreVote { .. } => KIND_PRE_VOTE,
            MessageBody::PreVoteResponse { .. } => KIND_PRE_VOTE_RESPONSE,
            MessageBody::Vote { .. } => KIND_VOTE,
            MessageBody::VoteResponse { .. } => KIND_VOTE_RESPONSE,
            MessageBody::Append { .. } => KIND_APPEND,
            MessageBody::AppendResponse { .. } => KIND_APPEND_RESPONSE,
            MessageBody::Heartbeat { .. } => KIND_HEARTBEAT,
            MessageBody::HeartbeatResponse { .. } => KIND_HEARTBEAT_RESPONSE,
            MessageBody::TimeoutNow => KIND_TIMEOUT_NOW,
            MessageBody::ReadIndexRequest { .. } => KIND_READ_INDEX_REQUEST,
            MessageBody::ReadIndexResponse { .. } => KIND_READ_INDEX_RESPONSE,
            MessageBody::InstallSnapshot { .. } => KIND_INSTALL_SNAPSHOT,
            MessageBody::InstallSnapshotResponse { .. } => KIND_INSTALL_SNAPSHOT_RESPONSE,
        };
        out.push(kind);
        put_u64(out, self.from);
        put_u64(out, self.to);
        put_u64(out, self.term);
        match &self.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => {
                put_u64(out, *last_log_index);
                put_u64(out, *last_log_term);
            }
            MessageBody::PreVoteResponse { reject } | MessageBody::VoteResponse { reject } => {
                put_bool(out, *reject)
            }
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                leader_transfer,
            } => {
                put_u64(out, *last_log_index);
                put_u64(out, *last_log_term);
                put_bool(out, *leader_transfer);
            }
            MessageBody::Append {
                prev_log_index,
                prev_log_term,
                leader_commit,
                entries,
            } => {
                put_u64(out, *prev_log_index);
                put_u64(out, *prev_log_term);
                put_u64(out, *leader_commit);
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for entry in entries {
                    put_u64(out, entry.index);
                    put_u64(out, entry.term);
                    out.push(entry.kind.byte());
                    out.extend_from_slice(&entry.chain_hash);
                    out.extend_from_slice(&(entry.data.len() as u32).to_be_bytes());
                    out.extend_from_slice(&entry.data);
                }
            }
            MessageBody::AppendResponse {
                reject,
                index,
                reject_hint,
                hint_term,
            } => {
                put_bool(out, *reject);
                put_u64(out, *index);
                put_u64(out, *reject_hint);
                put_u64(out, *hint_term);
            }
            MessageBody::Heartbeat { commit, read_seq } => {
                put_u64(out, *commit);
                put_u64(out, *read_seq);
            }
            MessageBody::HeartbeatResponse { read_seq } => put_u64(out, *read_seq),
            MessageBody::TimeoutNow => {}
            MessageBody::ReadIndexRequest { ctx } => put_u64(out, *ctx),
            MessageBody::ReadIndexResponse { ctx, index } => {
                put_u64(out, *ctx);
                put_u64(out, *index);
            }
            MessageBody::InstallSnapshot {
                index,
                snapshot_term,
                chain_hash,
                conf_state,
                conf_index,
                total_len,
                total_hash,
                part,
            } => {
                put_u64(out, *index);
                put_u64(out, *snapshot_term);
                out.extend_from_slice(chain_hash);
                put_u64(out, *conf_index);
                put_conf_state(out, conf_state);
                put_u64(out, *total_len);
                out.extend_from_slice(total_hash);
                match part {
                    SnapshotPart::Manifest {
                        max_chunk,
                        chunk_count,
                        manifest_hash,
                        first,
                        entries,
                    } => {
                        out.push(PART_MANIFEST);
                        put_u32(out, *max_chunk);
                        put_u32(out, *chunk_count);
                        out.extend_from_slice(manifest_hash);
                        put_u32(out, *first);
                        put_u32(out, entries.len() as u32);
                        for e in entries {
                            out.extend_from_slice(&e.name);
                            put_u32(out, e.len);
                        }
                    }
                    SnapshotPart::Chunk { position, chunk } => {
                        out.push(PART_CHUNK);
                        put_u32(out, *position);
                        put_u32(out, chunk.len() as u32);
                        out.extend_from_slice(chunk);
                    }
                }
            }
            MessageBody::InstallSnapshotResponse {
                index,
                manifest_next,
                chunk_next,
                done,
            } => {
                put_u64(out, *index);
                put_u32(out, *manifest_next);
                put_u32(out, *chunk_next);
                put_bool(out, *done);
            }
        }
    }

    /// Decodes exactly one message occupying all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge);
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != CODEC_VERSION {
            return Err(DecodeError::Version(version));
        }
        let kind = r.u8()?;
        let from = r.u64()?;
        let to = r.u64()?;
        let term = r.u64()?;
        if from == NO_NODE || to == NO_NODE {
            return Err(DecodeError::ZeroNode);
        }
        let body = match kind {
            KIND_PRE_VOTE => MessageBody::PreVote {
                last_log_index: r.u64()?,
                last_log_term: r.u64()?,
            },
            KIND_PRE_VOTE_RESPONSE => MessageBody::PreVoteResponse { reject: r.bool()? },
            KIND_VOTE => MessageBody::Vote {
                last_log_index: r.u64()?,
                last_log_term: r.u64()?,
                leader_transfer: r.bool()?,
            },
            KIND_VOTE_RESPONSE => MessageBody::VoteResponse { reject: r.bool()? },
            KIND_APPEND => decode_append(&mut r, term)?,
            KIND_APPEND_RESPONSE => MessageBody::AppendResponse {
                reject: r.bool()?,
                index: r.u64()?,
                reject_hint: r.u64()?,
                hint_term: r.u64()?,
            },
            KIND_HEARTBEAT => MessageBody::Heartbeat {
                commit: r.u64()?,
                read_seq: r.u64()?,
            },
            KIND_HEARTBEAT_RESPONSE => MessageBody::HeartbeatResponse { read_seq: r.u64()? },
            KIND_TIMEOUT_NOW => MessageBody::TimeoutNow,
            KIND_READ_INDEX_REQUEST => MessageBody::ReadIndexRequest { ctx: r.u64()? },
            KIND_READ_INDEX_RESPONSE => MessageBody::ReadIndexResponse {
                ctx: r.u64()?,
                index: r.u64()?,
            },
            KIND_INSTALL_SNAPSHOT => decode_install_snapshot(&mut r, term)?,
            KIND_INSTALL_SNAPSHOT_RESPONSE => MessageBody::InstallSnapshotResponse {
                index: r.u64()?,
                manifest_next: r.u32()?,
                chunk_next: r.u32()?,
                done: r.bool()?,
            },
            other => return Err(DecodeError::MessageKind(other)),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Message {
            from,
            to,
            term,
            body,
        })
    }
}

fn decode_append(r: &mut Reader<'_>, msg_term: u64) -> Result<MessageBody, DecodeError> {
    let prev_log_index = r.u64()?;
    let prev_log_term = r.u64()?;
    let leader_commit = r.u64()?;
    let count = r.u32()? as usize;
    if count > MAX_ENTRIES_PER_MESSAGE {
        return Err(DecodeError::TooManyEntries);
    }
    // Each entry needs at least its header: bound the allocation by the input.
    if count > r.remaining() / crate::entry::ENTRY_HEADER_BYTES {
        return Err(DecodeError::Truncated);
    }
    let mut entries = Vec::with_capacity(count);
    let mut expect_index = prev_log_index;
    let mut min_term = prev_log_term;
    for _ in 0..count {
        let index = r.u64()?;
        let term = r.u64()?;
        let kind_byte = r.u8()?;
        let kind = EntryKind::from_byte(kind_byte).ok_or(DecodeError::EntryKind(kind_byte))?;
        let chain_hash: LogChainHash =
            r.take(32)?.try_into().map_err(|_| DecodeError::Truncated)?;
        let len = r.u32()? as usize;
        if len > MAX_ENTRY_DATA_BYTES {
            return Err(DecodeError::EntryTooLarge);
        }
        let data = r.take(len)?.to_vec();
        if kind == EntryKind::ConfChange {
            crate::membership::ConfEntry::decode(&data)?;
        }
        expect_index = expect_index.checked_add(1).ok_or(DecodeError::EntryOrder)?;
        if index != expect_index || term < min_term || term > msg_term {
            return Err(DecodeError::EntryOrder);
        }
        min_term = term;
        entries.push(Entry {
            index,
            term,
            kind,
            data,
            chain_hash,
        });
    }
    Ok(MessageBody::Append {
        prev_log_index,
        prev_log_term,
        leader_commit,
        entries,
    })
}

fn decode_install_snapshot(r: &mut Reader<'_>, msg_term: u64) -> Result<MessageBody, DecodeError> {
    let index = r.u64()?;
    let snapshot_term = r.u64()?;
    let chain_hash = r.hash()?;
    let conf_index = r.u64()?;
    let conf_state = r.conf_state()?;
    if conf_index > index {
        return Err(DecodeError::EntryOrder);
    }
    let total_len = r.u64()?;
    let total_hash = r.hash()?;
    // A leader's snapshot covers entries of its term or older.
    if snapshot_term > msg_term {
        return Err(DecodeError::EntryOrder);
    }
    let part = match r.u8()? {
        PART_MANIFEST => {
            let max_chunk = r.u32()?;
            let chunk_count = r.u32()?;
            let manifest_hash = r.hash()?;
            let first = r.u32()?;
            let count = r.u32()?;
            if max_chunk == 0
                || max_chunk as usize > MAX_SNAPSHOT_CHUNK_BYTES
                || u64::from(chunk_count) > total_len
                || count as usize > MAX_MANIFEST_ENTRIES_PER_MESSAGE
                || first.checked_add(count).is_none_or(|end| end > chunk_count)
            {
                return Err(DecodeError::SnapshotManifest);
            }
            if r.remaining() < count as usize * 36 {
                return Err(DecodeError::Truncated);
            }
            let mut entries = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let name = r.hash()?;
                let len = r.u32()?;
                if len == 0 || len > max_chunk {
                    return Err(DecodeError::SnapshotManifest);
                }
                entries.push(ChunkRef { name, len });
            }
            SnapshotPart::Manifest {
                max_chunk,
                chunk_count,
                manifest_hash,
                first,
                entries,
            }
        }
        PART_CHUNK => {
            let position = r.u32()?;
            let len = r.u32()? as usize;
            if len == 0 || len > MAX_SNAPSHOT_CHUNK_BYTES || len as u64 > total_len {
                return Err(DecodeError::SnapshotChunk);
            }
            let chunk = r.take(len)?.to_vec();
            SnapshotPart::Chunk { position, chunk }
        }
        other => return Err(DecodeError::SnapshotPart(other)),
    };
    Ok(MessageBody::InstallSnapshot {
        index,
        snapshot_term,
        chain_hash,
        conf_state,
        conf_index,
        total_len,
        total_hash,
        part,
    })
}

/// Reads a [`ConfState`] from the front of `bytes`, returning it and the
/// rest (configuration entries, `membership.rs`).
pub(crate) fn take_conf_state(bytes: &[u8]) -> Result<(ConfState, &[u8]), DecodeError> {
    let mut r = Reader::new(bytes);
    let conf = r.conf_state()?;
    Ok((conf, r.rest()))
}

/// The workspace's total byte reader, big-endian (`continuum_base::bytes`).
type Reader<'a> = BeReader<'a>;

impl From<Truncated> for DecodeError {
    fn from(_: Truncated) -> DecodeError {
        DecodeError::Truncated
    }
}

/// The Raft codec's composite fields, read with the shared reader.
trait RaftFields {
    fn hash(&mut self) -> Result<[u8; 32], DecodeError>;
    fn bool(&mut self) -> Result<bool, DecodeError>;
    fn conf_state(&mut self) -> Result<ConfState, DecodeError>;
}

impl RaftFields for Reader<'_> {
    fn hash(&mut self) -> Result<[u8; 32], DecodeError> {
        Ok(self.array()?)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::Bool(other)),
        }
    }

    /// A [`ConfState`] as [`put_conf_state`] writes it; refuses anything
    /// [`ConfState::is_valid`] would not accept, and more than
    /// [`MAX_CLUSTER_MEMBERS`] members (checked before allocating).
    fn conf_state(&mut self) -> Result<ConfState, DecodeError> {
        let mut lists: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut members = 0usize;
        for list in lists.iter_mut() {
            let count = self.u32()? as usize;
            members = members.saturating_add(count);
            if members > MAX_CLUSTER_MEMBERS {
                return Err(DecodeError::ConfState);
            }
            list.reserve(count);
            for _ in 0..count {
                list.push(self.u64()?);
            }
        }
        let [voters, learners] = lists;
        let conf = ConfState { voters, learners };
        if !conf.is_valid() {
            return Err(DecodeError::ConfState);
        }
        Ok(conf)
    }
}

/// Fuzz/property entry point: decodes arbitrary bytes and, if they form a
/// message, checks that re-encoding reproduces them exactly (one valid
/// encoding per message). Panics on a violation; used by `raft/fuzz` and by
/// the proptests so CI covers the same function.
pub fn check_decode_canonical(bytes: &[u8]) {
    if let Ok(message) = Message::decode(bytes) {
        let mut again = Vec::new();
        message.encode(&mut again);
        assert_eq!(
            again.as_slice(),
            bytes,
            "decode accepted a non-canonical encoding"
        );
    }
}
