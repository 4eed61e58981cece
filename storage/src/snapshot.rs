//! The snapshot region: two slots, each half of the region, holding the
//! newest snapshot and the one before it.
//!
//! A slot is one header block followed by the data. A new snapshot goes to
//! the slot *not* holding the current one: data written and flushed, then
//! the header (with a sequence number one above the current) written and
//! flushed. Only then does it become current, so a crash at any point of
//! the write leaves the previous snapshot usable (the slot being written
//! has either its old header, whose data no longer matches its SHA-256, a
//! torn header, or the complete new snapshot). At open the valid slot with
//! the higher sequence wins; valid means the header checksums, carries this
//! disk's format epoch, sane fields, and the data matches: its CRC-32C
//! (version 3) or, for headers written before it, its SHA-256.
//!
//! Why a data CRC as well as the SHA-256: the SHA-256 is what Raft names
//! the snapshot by (InstallSnapshot's whole-snapshot hash), and it is
//! checked against the data when the snapshot is written. At open the
//! question is only whether the bytes are still the ones written (a torn
//! write, media corruption), which a CRC answers; under TCG a SHA-256 pass
//! over a multi-megabyte snapshot was a quarter of a restart (issue 12).
//!
//! Header (one block; CRC-32C over bytes 0..500). Version 3, written by
//! this build; it carries the whole configuration (voters, learners and the
//! index of the entry that set it), so a node restarting from a snapshot,
//! or a follower installing one, knows the membership in effect at it:
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 8 | magic `CNTMSNV` then the version byte (2) |
//! | 8 | 8 | format epoch |
//! | 16 | 8 | sequence number |
//! | 24 | 8 | snapshot index (last log index it covers) |
//! | 32 | 8 | term of that entry |
//! | 40 | 32 | Raft chain hash at that index |
//! | 72 | 8 | data length in bytes |
//! | 80 | 32 | SHA-256 of the data |
//! | 112 | 2 | voter count |
//! | 114 | 2 | application metadata length (at most [`MAX_SNAPSHOT_APP_BYTES`]) |
//! | 116 | 2 | learner count (voters + learners at most [`MAX_SNAPSHOT_MEMBERS`]) |
//! | 118 | 8 | configuration index (entry that set the configuration; 0: the bootstrap one) |
//! | 126 | 128 | voters then learners (node ids, 8 bytes each; unused ones zero) |
//! | 254 | 240 | application metadata (opaque: the node stores its receipt-chain head) |
//! | 494 | 4 | CRC-32C of the data |
//! | 498 | 2 | zero |
//! | 500 | 4 | CRC-32C |
//!
//! Version 2 (earlier builds) is version 3 without the data CRC (zero
//! there); its data is checked against the SHA-256. Version 1 (magic
//! `CNTMSNAP`) is still read: voters at 116 (16 ids), application metadata
//! at 244 (up to 256 bytes), no learners, configuration index 0
//! (membership was fixed then). A
//! header whose magic is `CNTMSNV` with any other version byte was written
//! by a newer build: open refuses the disk
//! ([`crate::OpenError::UnknownSnapshotVersion`]) rather than fall back to
//! an older snapshot the log was compacted past, or misread the newer one.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::bytes::{get_u32, get_u64, put_u32, put_u64};
use crate::crc32c::crc32c;
use crate::device::BLOCK_SIZE;
use crate::layout::Geometry;

/// Magic of a version-1 header ("CNTMSNAP"), read but no longer written.
pub const SNAPSHOT_MAGIC_V1: [u8; 8] = *b"CNTMSNAP";
/// First seven bytes of the magic of every later version; the eighth byte
/// is the version.
pub const SNAPSHOT_MAGIC_PREFIX: [u8; 7] = *b"CNTMSNV";
/// The header version this build writes.
pub const SNAPSHOT_VERSION: u8 = 3;
/// The version before it (no data CRC), still read.
const SNAPSHOT_VERSION_NO_DATA_CRC: u8 = 2;
/// Where version 3 keeps the data's CRC-32C.
const DATA_CRC_AT: usize = 494;
/// Most members (voters plus learners) a snapshot's configuration may list.
pub const MAX_SNAPSHOT_MEMBERS: usize = 16;
/// Most bytes of opaque application metadata a snapshot carries.
pub const MAX_SNAPSHOT_APP_BYTES: usize = 240;
/// Blocks of a slot taken by its header.
pub const SNAPSHOT_HEADER_BLOCKS: u64 = 1;
const HEADER_BODY: usize = 500;
const MEMBERS_AT: usize = 126;
const APP_AT: usize = MEMBERS_AT + 8 * MAX_SNAPSHOT_MEMBERS;
const _: () = assert!(APP_AT + MAX_SNAPSHOT_APP_BYTES <= DATA_CRC_AT);
const _: () = assert!(DATA_CRC_AT + 4 <= HEADER_BODY);
const _: () = assert!(HEADER_BODY + 4 <= BLOCK_SIZE);
/// Version 1: voters at 116, application metadata at 244 (up to 256 bytes).
const V1_VOTERS_AT: usize = 116;
const V1_APP_AT: usize = V1_VOTERS_AT + 8 * MAX_SNAPSHOT_MEMBERS;
const V1_MAX_APP_BYTES: usize = 256;
const _: () = assert!(V1_APP_AT + V1_MAX_APP_BYTES == HEADER_BODY);

/// What a stored snapshot covers, as written by [`crate::Store::write_snapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Last log index the snapshot covers (the application applied it).
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Raft chain hash of that entry.
    pub chain_hash: [u8; 32],
    /// Voting members as of `index`.
    pub voters: Vec<u64>,
    /// Non-voting members as of `index` (with the voters at most
    /// [`MAX_SNAPSHOT_MEMBERS`]).
    pub learners: Vec<u64>,
    /// Index of the configuration entry that set the configuration in
    /// effect at `index` (0: the bootstrap configuration).
    pub conf_index: u64,
    /// Opaque application metadata (at most [`MAX_SNAPSHOT_APP_BYTES`]),
    /// e.g. the receipt-chain head at `index`.
    pub app: Vec<u8>,
    /// Length of the data in bytes.
    pub data_len: u64,
    /// SHA-256 of the data.
    pub data_hash: [u8; 32],
}

impl SnapshotMeta {
    /// Metadata for `data` at `index`/`term`/`chain_hash`: computes the
    /// length and SHA-256. No learners, configuration index 0: set them
    /// with struct update syntax when the configuration came from the log.
    pub fn for_data(
        index: u64,
        term: u64,
        chain_hash: [u8; 32],
        voters: Vec<u64>,
        app: Vec<u8>,
        data: &[u8],
    ) -> SnapshotMeta {
        SnapshotMeta {
            index,
            term,
            chain_hash,
            voters,
            learners: Vec::new(),
            conf_index: 0,
            app,
            data_len: data.len() as u64,
            data_hash: digest(data),
        }
    }
}

/// SHA-256 of snapshot data (the same digest Raft's InstallSnapshot uses).
pub fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Why a snapshot slot was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotDefect {
    /// Never written (or not a snapshot header).
    BadMagic,
    /// Header checksum mismatch (torn or corrupted header).
    BadChecksum,
    /// Written under an earlier format of this disk.
    StaleEpoch(u64),
    /// Checksummed but with values this crate never writes.
    BadField,
    /// The data does not match the header's CRC-32C (or, in a version-2
    /// header, its SHA-256): a write interrupted before the header was
    /// replaced, or media corruption.
    DataMismatch,
    /// A header version this build does not know (written by a newer one).
    UnknownVersion(u8),
}

impl fmt::Display for SnapshotDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotDefect::BadMagic => write!(f, "empty"),
            SnapshotDefect::BadChecksum => write!(f, "header checksum mismatch"),
            SnapshotDefect::StaleEpoch(e) => write!(f, "from format epoch {e}"),
            SnapshotDefect::BadField => write!(f, "invalid header fields"),
            SnapshotDefect::DataMismatch => write!(f, "data does not match its checksum"),
            SnapshotDefect::UnknownVersion(v) => write!(
                f,
                "header version {v}, this build reads versions 1 to {SNAPSHOT_VERSION}"
            ),
        }
    }
}

/// Geometry of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotGeometry {
    /// First block of slot 0 (slot 1 follows it).
    pub lba: u64,
    /// Blocks per slot.
    pub blocks: u64,
}

impl SlotGeometry {
    /// The two halves of `geometry`'s snapshot region.
    pub fn of(geometry: &Geometry) -> SlotGeometry {
        SlotGeometry {
            lba: geometry.snapshot_lba,
            blocks: geometry.snapshot_blocks / 2,
        }
    }

    /// First block (the header) of slot `pos`.
    pub fn header_lba(&self, pos: usize) -> u64 {
        self.lba + pos as u64 * self.blocks
    }

    /// Most data bytes one slot holds.
    pub fn data_capacity(&self) -> u64 {
        self.blocks.saturating_sub(SNAPSHOT_HEADER_BLOCKS) * BLOCK_SIZE as u64
    }
}

/// Whether `meta`'s variable fields fit the header.
pub fn fits_header(meta: &SnapshotMeta) -> bool {
    meta.voters.len() + meta.learners.len() <= MAX_SNAPSHOT_MEMBERS
        && meta.app.len() <= MAX_SNAPSHOT_APP_BYTES
}

/// How a slot's data is checked at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCheck {
    /// Against this CRC-32C (version 3).
    Crc32c(u32),
    /// Against the metadata's SHA-256 (versions 1 and 2).
    Sha256,
}

impl DataCheck {
    /// Whether `data` is what the header vouches for.
    pub fn holds(self, meta: &SnapshotMeta, data: &[u8]) -> bool {
        match self {
            DataCheck::Crc32c(crc) => crc32c(data) == crc,
            DataCheck::Sha256 => digest(data) == meta.data_hash,
        }
    }
}

/// Encode a version-[`SNAPSHOT_VERSION`] header for `data` (the caller
/// checked [`fits_header`], and that `meta` describes `data`).
pub fn encode_header(meta: &SnapshotMeta, data: &[u8], epoch: u64, seq: u64) -> [u8; BLOCK_SIZE] {
    assert!(
        fits_header(meta),
        "snapshot header bounds checked by the caller"
    );
    let mut b = [0u8; BLOCK_SIZE];
    b[0..7].copy_from_slice(&SNAPSHOT_MAGIC_PREFIX);
    b[7] = SNAPSHOT_VERSION;
    put_u64(&mut b, 8, epoch);
    put_u64(&mut b, 16, seq);
    put_u64(&mut b, 24, meta.index);
    put_u64(&mut b, 32, meta.term);
    b[40..72].copy_from_slice(&meta.chain_hash);
    put_u64(&mut b, 72, meta.data_len);
    b[80..112].copy_from_slice(&meta.data_hash);
    b[112..114].copy_from_slice(&(meta.voters.len() as u16).to_le_bytes());
    b[114..116].copy_from_slice(&(meta.app.len() as u16).to_le_bytes());
    b[116..118].copy_from_slice(&(meta.learners.len() as u16).to_le_bytes());
    put_u64(&mut b, 118, meta.conf_index);
    for (i, v) in meta.voters.iter().chain(&meta.learners).enumerate() {
        put_u64(&mut b, MEMBERS_AT + 8 * i, *v);
    }
    b[APP_AT..APP_AT + meta.app.len()].copy_from_slice(&meta.app);
    put_u32(&mut b, DATA_CRC_AT, crc32c(data));
    let crc = crc32c(&b[..HEADER_BODY]);
    put_u32(&mut b, HEADER_BODY, crc);
    b
}

/// Where a header version keeps its variable fields.
struct HeaderLayout {
    learners: usize,
    conf_index: u64,
    members_at: usize,
    app_at: usize,
    max_app: usize,
}

/// Decode a header (versions 1 to [`SNAPSHOT_VERSION`]) for a disk of
/// format epoch `epoch` whose slots hold at most `capacity` data bytes;
/// returns (sequence, metadata, how to check the data). Total.
pub fn decode_header(
    b: &[u8; BLOCK_SIZE],
    epoch: u64,
    capacity: u64,
) -> Result<(u64, SnapshotMeta, DataCheck), SnapshotDefect> {
    let v1 = b[0..8] == SNAPSHOT_MAGIC_V1;
    if !v1 && b[0..7] != SNAPSHOT_MAGIC_PREFIX {
        return Err(SnapshotDefect::BadMagic);
    }
    if crc32c(&b[..HEADER_BODY]) != get_u32(b, HEADER_BODY) {
        return Err(SnapshotDefect::BadChecksum);
    }
    if !v1 && b[7] != SNAPSHOT_VERSION && b[7] != SNAPSHOT_VERSION_NO_DATA_CRC {
        return Err(SnapshotDefect::UnknownVersion(b[7]));
    }
    let check = if !v1 && b[7] == SNAPSHOT_VERSION {
        DataCheck::Crc32c(get_u32(b, DATA_CRC_AT))
    } else {
        DataCheck::Sha256
    };
    let found = get_u64(b, 8);
    if found != epoch {
        return Err(SnapshotDefect::StaleEpoch(found));
    }
    let layout = if v1 {
        HeaderLayout {
            learners: 0,
            conf_index: 0,
            members_at: V1_VOTERS_AT,
            app_at: V1_APP_AT,
            max_app: V1_MAX_APP_BYTES,
        }
    } else {
        HeaderLayout {
            learners: u16::from_le_bytes([b[116], b[117]]) as usize,
            conf_index: get_u64(b, 118),
            members_at: MEMBERS_AT,
            app_at: APP_AT,
            max_app: MAX_SNAPSHOT_APP_BYTES,
        }
    };
    let voters = u16::from_le_bytes([b[112], b[113]]) as usize;
    let app = u16::from_le_bytes([b[114], b[115]]) as usize;
    let index = get_u64(b, 24);
    let data_len = get_u64(b, 72);
    if voters + layout.learners > MAX_SNAPSHOT_MEMBERS
        || app > layout.max_app
        || data_len > capacity
        || index == 0
        || index > crate::hard_state::MAX_LOG_INDEX
        || layout.conf_index > index
    {
        return Err(SnapshotDefect::BadField);
    }
    let mut chain_hash = [0u8; 32];
    chain_hash.copy_from_slice(&b[40..72]);
    let mut data_hash = [0u8; 32];
    data_hash.copy_from_slice(&b[80..112]);
    let id = |i: usize| get_u64(b, layout.members_at + 8 * i);
    let meta = SnapshotMeta {
        index,
        term: get_u64(b, 32),
        chain_hash,
        voters: (0..voters).map(id).collect(),
        learners: (voters..voters + layout.learners).map(id).collect(),
        conf_index: layout.conf_index,
        app: b[layout.app_at..layout.app_at + app].to_vec(),
        data_len,
        data_hash,
    };
    Ok((get_u64(b, 16), meta, check))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn header_round_trip_and_flips_are_caught() {
        let meta = SnapshotMeta::for_data(40, 3, [9; 32], vec![1, 2, 3], vec![7; 32], b"state");
        let enc = encode_header(&meta, b"state", 5, 11);
        assert_eq!(
            decode_header(&enc, 5, 1024),
            Ok((11, meta.clone(), DataCheck::Crc32c(crc32c(b"state"))))
        );
        assert_eq!(
            decode_header(&enc, 6, 1024),
            Err(SnapshotDefect::StaleEpoch(5))
        );
        assert_eq!(decode_header(&enc, 5, 4), Err(SnapshotDefect::BadField));
        for byte in 0..HEADER_BODY + 4 {
            let mut bad = enc;
            bad[byte] ^= 0x04;
            assert!(decode_header(&bad, 5, 1024).is_err(), "flip at {byte}");
        }
    }

    #[test]
    fn learners_and_configuration_index_round_trip() {
        let meta = SnapshotMeta {
            learners: vec![4, 5],
            conf_index: 37,
            ..SnapshotMeta::for_data(40, 3, [9; 32], vec![1, 2, 3], vec![7; 32], b"state")
        };
        let enc = encode_header(&meta, b"state", 5, 11);
        assert_eq!(
            decode_header(&enc, 5, 1024),
            Ok((11, meta, DataCheck::Crc32c(crc32c(b"state"))))
        );
        let full = SnapshotMeta {
            learners: (4..=16).collect(),
            app: vec![1; MAX_SNAPSHOT_APP_BYTES],
            ..SnapshotMeta::for_data(40, 3, [9; 32], vec![1, 2, 3], vec![], b"state")
        };
        assert!(fits_header(&full));
        let enc = encode_header(&full, b"state", 5, 11);
        assert_eq!(
            decode_header(&enc, 5, 1024),
            Ok((11, full.clone(), DataCheck::Crc32c(crc32c(b"state"))))
        );
        let over = SnapshotMeta {
            learners: (4..=17).collect(),
            ..full
        };
        assert!(!fits_header(&over));
    }

    /// A header a newer build wrote (same layout, next version byte, valid
    /// checksum) is refused by its version, not mistaken for garbage.
    #[test]
    fn unknown_version_is_named() {
        let meta = SnapshotMeta::for_data(40, 3, [9; 32], vec![1, 2, 3], vec![], b"state");
        let mut enc = encode_header(&meta, b"state", 5, 11);
        enc[7] = SNAPSHOT_VERSION + 1;
        let crc = crc32c(&enc[..HEADER_BODY]);
        put_u32(&mut enc, HEADER_BODY, crc);
        assert_eq!(
            decode_header(&enc, 5, 1024),
            Err(SnapshotDefect::UnknownVersion(SNAPSHOT_VERSION + 1))
        );
    }

    /// A version-1 header (the layout earlier builds wrote) still reads:
    /// voters only, configuration index 0.
    #[test]
    fn version_one_headers_still_read() {
        let mut b = [0u8; BLOCK_SIZE];
        b[0..8].copy_from_slice(&SNAPSHOT_MAGIC_V1);
        put_u64(&mut b, 8, 5);
        put_u64(&mut b, 16, 11);
        put_u64(&mut b, 24, 40);
        put_u64(&mut b, 32, 3);
        b[40..72].copy_from_slice(&[9; 32]);
        put_u64(&mut b, 72, 5);
        b[112..114].copy_from_slice(&3u16.to_le_bytes());
        b[114..116].copy_from_slice(&2u16.to_le_bytes());
        for (i, v) in [1u64, 2, 3].iter().enumerate() {
            put_u64(&mut b, V1_VOTERS_AT + 8 * i, *v);
        }
        b[V1_APP_AT..V1_APP_AT + 2].copy_from_slice(&[7, 8]);
        let crc = crc32c(&b[..HEADER_BODY]);
        put_u32(&mut b, HEADER_BODY, crc);
        let (seq, meta, check) = decode_header(&b, 5, 1024).expect("a version-1 header");
        assert_eq!(seq, 11);
        assert_eq!(check, DataCheck::Sha256);
        assert_eq!(meta.voters, vec![1, 2, 3]);
        assert!(meta.learners.is_empty());
        assert_eq!(meta.conf_index, 0);
        assert_eq!(meta.app, vec![7, 8]);
    }

    /// A version-2 header (version 3 without the data CRC) still reads,
    /// and its data is checked against the SHA-256.
    #[test]
    fn version_two_headers_still_read_and_check_the_sha256() {
        let meta = SnapshotMeta::for_data(40, 3, [9; 32], vec![1, 2, 3], vec![7; 4], b"state");
        let mut enc = encode_header(&meta, b"state", 5, 11);
        enc[7] = 2;
        enc[DATA_CRC_AT..DATA_CRC_AT + 4].fill(0);
        let crc = crc32c(&enc[..HEADER_BODY]);
        put_u32(&mut enc, HEADER_BODY, crc);
        let (_, decoded, check) = decode_header(&enc, 5, 1024).expect("a version-2 header");
        assert_eq!(decoded, meta);
        assert_eq!(check, DataCheck::Sha256);
        assert!(check.holds(&decoded, b"state"));
        assert!(!check.holds(&decoded, b"stale"));
    }

    /// Version 3 checks the data by its CRC-32C: a changed byte fails.
    #[test]
    fn version_three_checks_the_data_crc() {
        let meta = SnapshotMeta::for_data(40, 3, [9; 32], vec![1], vec![], b"state");
        let enc = encode_header(&meta, b"state", 5, 11);
        let (_, decoded, check) = decode_header(&enc, 5, 1024).expect("decodes");
        assert!(check.holds(&decoded, b"state"));
        assert!(!check.holds(&decoded, b"stbte"));
    }
}
