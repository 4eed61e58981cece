//! Disk geometry and the superblock: which block range holds what, and the
//! identity of the disk's owner.
//!
//! The superblock is written twice (LBA 0 and LBA 1, each flushed before
//! the other is touched), so a torn superblock write always leaves one
//! valid copy. Field table: see the crate docs.

use core::fmt;

use crate::bytes::{get_u128, get_u32, get_u64, put_u128, put_u32, put_u64};
use crate::crc32c::crc32c;
use crate::device::BLOCK_SIZE;

/// Superblock magic ("CNTMSUPR").
pub const SUPERBLOCK_MAGIC: [u8; 8] = *b"CNTMSUPR";
/// On-disk format version written by this crate. Bumped on any layout change.
/// Version 2: circular WAL (hard-state slot records the log's start
/// position) and the two-slot snapshot region.
pub const FORMAT_VERSION: u32 = 2;
/// LBAs of the two superblock copies.
pub const SUPERBLOCK_LBAS: [u64; 2] = [0, 1];
/// LBA of hard-state slot 0 (slot 1 follows it).
pub const HARD_STATE_LBA: u64 = 2;
/// First block after the fixed header blocks (blocks 4..8 are reserved).
const HEADER_BLOCKS: u64 = 8;
/// Smallest disk we format: header, a minimal snapshot region and a WAL
/// that holds at least a handful of records.
pub const MIN_CAPACITY_BLOCKS: u64 = 64;
/// Bytes of the superblock covered by its checksum (the checksum follows).
const SUPERBLOCK_BODY: usize = 96;

/// Who a disk belongs to. Booting with another node's or another cluster's
/// disk is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Identity {
    /// Cluster the disk was formatted for.
    pub cluster_id: u128,
    /// Node within that cluster.
    pub node_id: continuum_raft::NodeId,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cluster {:#x} node {}", self.cluster_id, self.node_id)
    }
}

/// Where each region lives, in blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Device capacity when formatted.
    pub capacity_blocks: u64,
    /// First block of the snapshot region (two slots, see `snapshot.rs`).
    pub snapshot_lba: u64,
    /// Blocks in the snapshot region.
    pub snapshot_blocks: u64,
    /// First block of the WAL region.
    pub wal_lba: u64,
    /// Blocks in the WAL region.
    pub wal_blocks: u64,
}

impl Geometry {
    /// The layout for a disk of `capacity_blocks`: half of the disk for
    /// the two snapshot slots (each a quarter: a 1,000,000-account ledger
    /// snapshot is ~58 MB, so a 256 MiB disk holds it), the rest for the
    /// WAL (compaction keeps the live log short). `None` if too small.
    pub fn for_capacity(capacity_blocks: u64) -> Option<Geometry> {
        if capacity_blocks < MIN_CAPACITY_BLOCKS {
            return None;
        }
        let snapshot_blocks = (capacity_blocks / 2) & !7;
        let wal_lba = HEADER_BLOCKS + snapshot_blocks;
        Some(Geometry {
            capacity_blocks,
            snapshot_lba: HEADER_BLOCKS,
            snapshot_blocks,
            wal_lba,
            wal_blocks: capacity_blocks - wal_lba,
        })
    }

    /// WAL region size in bytes.
    pub fn wal_bytes(&self) -> u64 {
        self.wal_blocks * BLOCK_SIZE as u64
    }

    fn is_consistent(&self) -> bool {
        self.snapshot_lba >= HEADER_BLOCKS
            && self.snapshot_lba.checked_add(self.snapshot_blocks) == Some(self.wal_lba)
            && self.wal_lba.checked_add(self.wal_blocks) == Some(self.capacity_blocks)
            && self.wal_blocks > 0
    }
}

/// The decoded superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Owner of the disk.
    pub identity: Identity,
    /// Incremented each time the disk is formatted; every hard-state slot
    /// and WAL record carries it, so nothing from an earlier format is
    /// ever mistaken for current data.
    pub format_epoch: u64,
    /// Region layout.
    pub geometry: Geometry,
}

/// Why a superblock copy was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuperblockDefect {
    /// The block is all zeros (never written).
    Blank,
    /// The magic does not match: not a Continuum disk, or overwritten.
    BadMagic,
    /// The checksum does not match the contents.
    BadChecksum,
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion(u32),
    /// Written for another block size.
    BadBlockSize(u32),
    /// Region offsets that do not tile the disk.
    BadGeometry,
}

impl fmt::Display for SuperblockDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuperblockDefect::Blank => write!(f, "blank"),
            SuperblockDefect::BadMagic => write!(f, "bad magic"),
            SuperblockDefect::BadChecksum => write!(f, "checksum mismatch"),
            SuperblockDefect::UnsupportedVersion(v) => {
                write!(f, "format version {v} (this build reads {FORMAT_VERSION})")
            }
            SuperblockDefect::BadBlockSize(b) => write!(f, "block size {b}"),
            SuperblockDefect::BadGeometry => write!(f, "inconsistent region offsets"),
        }
    }
}

impl Superblock {
    /// Encode into one block.
    pub fn encode(&self) -> [u8; BLOCK_SIZE] {
        let mut b = [0u8; BLOCK_SIZE];
        b[0..8].copy_from_slice(&SUPERBLOCK_MAGIC);
        put_u32(&mut b, 8, FORMAT_VERSION);
        put_u32(&mut b, 12, BLOCK_SIZE as u32);
        put_u128(&mut b, 16, self.identity.cluster_id);
        put_u64(&mut b, 32, self.identity.node_id);
        put_u64(&mut b, 40, self.format_epoch);
        put_u64(&mut b, 48, self.geometry.capacity_blocks);
        put_u64(&mut b, 56, HARD_STATE_LBA);
        put_u64(&mut b, 64, self.geometry.snapshot_lba);
        put_u64(&mut b, 72, self.geometry.snapshot_blocks);
        put_u64(&mut b, 80, self.geometry.wal_lba);
        put_u64(&mut b, 88, self.geometry.wal_blocks);
        let crc = crc32c(&b[..SUPERBLOCK_BODY]);
        put_u32(&mut b, SUPERBLOCK_BODY, crc);
        b
    }

    /// Decode one block; total over any input.
    pub fn decode(b: &[u8; BLOCK_SIZE]) -> Result<Superblock, SuperblockDefect> {
        if b.iter().all(|&x| x == 0) {
            return Err(SuperblockDefect::Blank);
        }
        if b[0..8] != SUPERBLOCK_MAGIC {
            return Err(SuperblockDefect::BadMagic);
        }
        if crc32c(&b[..SUPERBLOCK_BODY]) != get_u32(b, SUPERBLOCK_BODY) {
            return Err(SuperblockDefect::BadChecksum);
        }
        let version = get_u32(b, 8);
        if version != FORMAT_VERSION {
            return Err(SuperblockDefect::UnsupportedVersion(version));
        }
        let block_size = get_u32(b, 12);
        if block_size as usize != BLOCK_SIZE {
            return Err(SuperblockDefect::BadBlockSize(block_size));
        }
        let geometry = Geometry {
            capacity_blocks: get_u64(b, 48),
            snapshot_lba: get_u64(b, 64),
            snapshot_blocks: get_u64(b, 72),
            wal_lba: get_u64(b, 80),
            wal_blocks: get_u64(b, 88),
        };
        if get_u64(b, 56) != HARD_STATE_LBA || !geometry.is_consistent() {
            return Err(SuperblockDefect::BadGeometry);
        }
        Ok(Superblock {
            identity: Identity {
                cluster_id: get_u128(b, 16),
                node_id: get_u64(b, 32),
            },
            format_epoch: get_u64(b, 40),
            geometry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_bit_flip_is_caught() {
        let sb = Superblock {
            identity: Identity {
                cluster_id: 0x1234_5678_9abc_def0_1122_3344_5566_7788,
                node_id: 3,
            },
            format_epoch: 7,
            geometry: Geometry::for_capacity(4096).unwrap(),
        };
        let enc = sb.encode();
        assert_eq!(Superblock::decode(&enc), Ok(sb));
        for byte in 0..SUPERBLOCK_BODY + 4 {
            for bit in 0..8 {
                let mut bad = enc;
                bad[byte] ^= 1 << bit;
                assert!(Superblock::decode(&bad).is_err(), "flip {byte}.{bit}");
            }
        }
    }

    #[test]
    fn geometry_tiles_the_disk() {
        assert_eq!(Geometry::for_capacity(MIN_CAPACITY_BLOCKS - 1), None);
        for cap in [MIN_CAPACITY_BLOCKS, 100, 4096, 1 << 30] {
            let g = Geometry::for_capacity(cap).unwrap();
            assert!(g.is_consistent(), "{g:?}");
        }
    }
}
