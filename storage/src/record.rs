//! WAL entry records: the byte format of one log entry on disk.
//!
//! A record is self-identifying: besides its own checksum it names the
//! format epoch of the disk, the WAL generation it was written in, its
//! index, and the checksum of the record before it. The recovery scan
//! (`recovery.rs`) accepts a record only if all of these continue the log
//! it has read so far, so a stale record left behind by a truncation, an
//! earlier format, or a lost write can never pass as a continuation.
//!
//! It also carries `durable_upto`: the WAL byte offset up to which the
//! store knew everything was flushed when it wrote this record. That is
//! what lets recovery tell a torn tail (never acknowledged, truncate it)
//! from a corrupted record in the middle (acknowledged, refuse to start).
//!
//! And it may carry the caller's **mark**: an index below its own that
//! the caller stamps on what it writes (the node: every entry up to it was
//! applied, with every signature valid, before this record was written;
//! see the node's `disk_log.rs`). The store does not interpret it; open
//! reports the newest one ([`crate::Store::recovered_mark`]). It is stored
//! as the distance `index − mark` in the header's two formerly reserved
//! bytes (6..8): 0 means "no mark" (records written before marks existed,
//! or a mark more than [`MAX_MARK_LAG`] below the record), so disks written
//! before marks open unchanged.

use alloc::vec::Vec;
use core::fmt;

use crate::bytes::{get_u32, get_u64, put_u32, put_u64};
use crate::crc32c::{crc32c, crc32c_append};

/// Record magic ("CWAL" little-endian).
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"CWAL");
/// Fixed header length in bytes.
pub const HEADER_LEN: usize = 88;
/// Trailer (checksum) length in bytes.
pub const TRAILER_LEN: usize = 4;
/// Largest payload one record may carry. Raft entries are client commands
/// (a bank transfer is ~200 bytes); this bound keeps a single corrupt
/// length field from making recovery read megabytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Flag: this record ends its batch; the next record starts at the next
/// block boundary (batches are block-aligned so a new batch never rewrites
/// a block holding acknowledged records).
pub const FLAG_BATCH_END: u8 = 1;

/// Largest `index − mark` a record can carry (16 bits); a caller's mark
/// further below is not stamped (the record says nothing).
pub const MAX_MARK_LAG: u64 = u16::MAX as u64;

/// One Raft log entry as the store keeps it. The raft crate's
/// `Entry { index, term, kind, data, chain_hash }` maps field for field
/// (`kind` as its `u8` discriminant, `data` as `payload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Log index (1-based, contiguous).
    pub index: u64,
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Entry kind (normal command, no-op, configuration change, ...),
    /// opaque to the store.
    pub kind: u8,
    /// SHA-256 chain value computed by Raft over the previous chain value
    /// and this entry; stored verbatim.
    pub chain_hash: [u8; 32],
    /// The command bytes.
    pub payload: Vec<u8>,
}

impl Record {
    /// Bytes this record occupies on disk (before batch padding).
    pub fn encoded_len(&self) -> usize {
        encoded_len(self.payload.len())
    }
}

/// Bytes a record with `payload_len` payload bytes occupies on disk.
pub const fn encoded_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len + TRAILER_LEN
}

/// The decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// See [`Record::kind`].
    pub kind: u8,
    /// [`FLAG_BATCH_END`] or 0.
    pub flags: u8,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Checksum of the previous record (0 for the first record).
    pub prev_checksum: u32,
    /// Log index.
    pub index: u64,
    /// Term.
    pub term: u64,
    /// WAL generation the record was written in.
    pub generation: u64,
    /// WAL offset known durable when the record was written.
    pub durable_upto: u64,
    /// Format epoch of the disk.
    pub format_epoch: u64,
    /// Raft chain hash.
    pub chain_hash: [u8; 32],
    /// The caller's mark stamped on this record, if any (module doc).
    pub mark: Option<u64>,
}

impl RecordHeader {
    /// Total on-disk length of the record this header starts.
    pub fn record_len(&self) -> usize {
        encoded_len(self.payload_len as usize)
    }
}

/// Why bytes at a WAL offset are not an acceptable next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDefect {
    /// The header is all zeros: nothing was ever written here.
    Blank,
    /// The magic does not match.
    BadMagic,
    /// Reserved bits set, unknown flags or a payload length over the bound.
    BadHeader,
    /// The record would extend past the end of the WAL region.
    BeyondRegion,
    /// The checksum does not match the contents (torn or corrupted).
    BadChecksum,
    /// Written under an earlier format of this disk.
    WrongEpoch(u64),
    /// Its index does not continue the log.
    IndexGap {
        /// Index the log needs next.
        expected: u64,
        /// Index found.
        found: u64,
    },
    /// It does not link to the previous record's checksum.
    BrokenLink,
    /// Left over from before a truncation (older generation, index at or
    /// past the truncation point).
    Stale {
        /// Generation found in the record.
        generation: u64,
    },
    /// A generation newer than any made durable (never acknowledged).
    FutureGeneration(u64),
    /// Its term is below the previous record's (Raft logs never do that).
    TermRegression,
}

impl fmt::Display for RecordDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordDefect::Blank => write!(f, "blank (never written)"),
            RecordDefect::BadMagic => write!(f, "bad magic"),
            RecordDefect::BadHeader => write!(f, "malformed header"),
            RecordDefect::BeyondRegion => write!(f, "extends past the WAL region"),
            RecordDefect::BadChecksum => write!(f, "checksum mismatch"),
            RecordDefect::WrongEpoch(e) => write!(f, "from format epoch {e}"),
            RecordDefect::IndexGap { expected, found } => {
                write!(f, "index {found} where {expected} was expected")
            }
            RecordDefect::BrokenLink => write!(f, "does not link to the previous record"),
            RecordDefect::Stale { generation } => {
                write!(f, "stale (generation {generation}, truncated)")
            }
            RecordDefect::FutureGeneration(g) => write!(f, "unacknowledged generation {g}"),
            RecordDefect::TermRegression => write!(f, "term below the previous record's"),
        }
    }
}

/// Per-write context stamped into each record.
#[derive(Debug, Clone, Copy)]
pub struct WriteContext {
    /// Format epoch of the disk.
    pub format_epoch: u64,
    /// Current WAL generation.
    pub generation: u64,
    /// WAL offset known durable now.
    pub durable_upto: u64,
    /// The caller's mark (module doc); 0 for none.
    pub mark: u64,
}

/// The header's encoding of `mark` for a record at `index`: the distance,
/// or 0 when there is no mark or it does not fit.
fn mark_lag(index: u64, mark: u64) -> u16 {
    match index.checked_sub(mark) {
        Some(lag) if mark > 0 && (1..=MAX_MARK_LAG).contains(&lag) => lag as u16,
        _ => 0,
    }
}

/// Append the encoding of `record` to `out`; returns its checksum.
pub fn encode(
    out: &mut Vec<u8>,
    record: &Record,
    ctx: &WriteContext,
    prev_checksum: u32,
    flags: u8,
) -> u32 {
    assert!(
        record.payload.len() <= MAX_PAYLOAD_BYTES,
        "payload bound checked by the caller"
    );
    let start = out.len();
    let mut h = [0u8; HEADER_LEN];
    put_u32(&mut h, 0, RECORD_MAGIC);
    h[4] = record.kind;
    h[5] = flags;
    h[6..8].copy_from_slice(&mark_lag(record.index, ctx.mark).to_le_bytes());
    put_u32(&mut h, 8, record.payload.len() as u32);
    put_u32(&mut h, 12, prev_checksum);
    put_u64(&mut h, 16, record.index);
    put_u64(&mut h, 24, record.term);
    put_u64(&mut h, 32, ctx.generation);
    put_u64(&mut h, 40, ctx.durable_upto);
    put_u64(&mut h, 48, ctx.format_epoch);
    h[56..88].copy_from_slice(&record.chain_hash);
    out.extend_from_slice(&h);
    out.extend_from_slice(&record.payload);
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    crc
}

/// Decode and sanity-check a header; total over any 88 bytes.
pub fn decode_header(h: &[u8]) -> Result<RecordHeader, RecordDefect> {
    if h.len() < HEADER_LEN {
        return Err(RecordDefect::BeyondRegion);
    }
    let h = &h[..HEADER_LEN];
    if h.iter().all(|&b| b == 0) {
        return Err(RecordDefect::Blank);
    }
    if get_u32(h, 0) != RECORD_MAGIC {
        return Err(RecordDefect::BadMagic);
    }
    let payload_len = get_u32(h, 8);
    let index = get_u64(h, 16);
    let lag = u64::from(u16::from_le_bytes([h[6], h[7]]));
    if h[5] & !FLAG_BATCH_END != 0 || payload_len as usize > MAX_PAYLOAD_BYTES
        // A mark is at least 1 (0 is "none"): the lag stays below the index.
        || (lag > 0 && lag >= index)
    {
        return Err(RecordDefect::BadHeader);
    }
    let mut chain_hash = [0u8; 32];
    chain_hash.copy_from_slice(&h[56..88]);
    Ok(RecordHeader {
        kind: h[4],
        flags: h[5],
        payload_len,
        prev_checksum: get_u32(h, 12),
        index,
        term: get_u64(h, 24),
        generation: get_u64(h, 32),
        durable_upto: get_u64(h, 40),
        format_epoch: get_u64(h, 48),
        chain_hash,
        mark: (lag > 0).then(|| index - lag),
    })
}

/// Verify the checksum of a whole record (`bytes.len() == record_len`);
/// returns the checksum.
pub fn verify(bytes: &[u8]) -> Result<u32, RecordDefect> {
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(RecordDefect::BeyondRegion);
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER_LEN);
    let crc = crc32c_append(0, body);
    if crc != get_u32(trailer, 0) {
        return Err(RecordDefect::BadChecksum);
    }
    Ok(crc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_and_every_flip_is_caught() {
        let r = Record {
            index: 12,
            term: 3,
            kind: 2,
            chain_hash: [7; 32],
            payload: vec![1, 2, 3, 4, 5],
        };
        let ctx = WriteContext {
            format_epoch: 1,
            generation: 4,
            durable_upto: 1024,
            mark: 9,
        };
        let mut out = Vec::new();
        let crc = encode(&mut out, &r, &ctx, 99, FLAG_BATCH_END);
        assert_eq!(out.len(), r.encoded_len());
        let h = decode_header(&out).unwrap();
        assert_eq!((h.index, h.term, h.kind, h.prev_checksum), (12, 3, 2, 99));
        assert_eq!((h.generation, h.durable_upto, h.format_epoch), (4, 1024, 1));
        assert_eq!(h.record_len(), out.len());
        assert_eq!(h.mark, Some(9));
        assert_eq!(verify(&out), Ok(crc));
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(verify(&bad).is_err(), "flip {byte}.{bit} undetected");
            }
        }
    }

    #[test]
    fn a_mark_is_stamped_only_below_the_record_and_within_reach() {
        let at = |index: u64, mark: u64| {
            let r = Record {
                index,
                term: 1,
                kind: 0,
                chain_hash: [0; 32],
                payload: vec![],
            };
            let ctx = WriteContext {
                format_epoch: 1,
                generation: 1,
                durable_upto: 0,
                mark,
            };
            let mut out = Vec::new();
            encode(&mut out, &r, &ctx, 0, FLAG_BATCH_END);
            decode_header(&out).unwrap().mark
        };
        assert_eq!(at(10, 0), None, "0 is no mark");
        assert_eq!(at(10, 9), Some(9));
        assert_eq!(at(10, 10), None, "a mark is below the record");
        assert_eq!(at(10, 11), None);
        assert_eq!(at(MAX_MARK_LAG + 1, 1), Some(1));
        assert_eq!(at(MAX_MARK_LAG + 2, 1), None, "out of reach");
    }

    #[test]
    fn a_header_claiming_a_mark_below_one_is_malformed() {
        let mut h = [0u8; HEADER_LEN];
        put_u32(&mut h, 0, RECORD_MAGIC);
        put_u64(&mut h, 16, 3);
        for lag in [3, 4, 0xff] {
            h[6] = lag;
            assert_eq!(decode_header(&h), Err(RecordDefect::BadHeader), "lag {lag}");
        }
        h[6] = 2;
        assert_eq!(decode_header(&h).unwrap().mark, Some(1));
    }
}
