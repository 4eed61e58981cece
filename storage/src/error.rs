//! Errors of opening a disk and of operating the store.

use core::fmt;

use crate::device::DeviceError;
use crate::hard_state::SlotDefect;
use crate::layout::{Identity, SuperblockDefect};
use crate::record::RecordDefect;
use crate::snapshot::SnapshotDefect;

/// Why [`crate::Store::open`] or [`crate::Store::format`] refused a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The device failed.
    Device(DeviceError),
    /// The device's block size is not [`crate::BLOCK_SIZE`].
    UnsupportedBlockSize(usize),
    /// The device cannot flush its cache, so nothing would ever be durable.
    /// Refused unless `OpenOptions::unsafe_no_flush` is set.
    NoFlushSupport,
    /// The device is smaller than [`crate::layout::MIN_CAPACITY_BLOCKS`].
    TooSmall {
        /// Capacity in blocks.
        blocks: u64,
    },
    /// Neither superblock copy is valid and the disk is not blank: not a
    /// Continuum disk, or both copies are damaged. Never formatted over.
    NoValidSuperblock([SuperblockDefect; 2]),
    /// The disk belongs to another cluster.
    WrongCluster {
        /// Identity this node was started with.
        expected: Identity,
        /// Identity recorded on the disk.
        found: Identity,
    },
    /// The disk belongs to another node of this cluster.
    WrongNode {
        /// Identity this node was started with.
        expected: Identity,
        /// Identity recorded on the disk.
        found: Identity,
    },
    /// The superblock describes a disk larger than the device.
    DeviceShrunk {
        /// Blocks the superblock expects.
        formatted_blocks: u64,
        /// Blocks the device has.
        device_blocks: u64,
    },
    /// Neither hard-state slot is valid.
    NoValidHardState([SlotDefect; 2]),
    /// A record in the middle of the WAL is corrupt (a later record proves
    /// it had been flushed). The node must not start: dropping it could
    /// forget an acknowledged entry or vote. There is no repair from peers.
    CorruptRecord {
        /// Index the corrupt record should hold.
        index: u64,
        /// Its byte offset in the WAL region.
        offset: u64,
        /// What is wrong with it.
        defect: RecordDefect,
        /// What proves it had been flushed.
        witness: crate::recovery::Witness,
    },
    /// The WAL holds more records than the in-memory index may hold.
    TooManyRecords {
        /// The configured `OpenOptions::max_entries`.
        max_entries: usize,
    },
    /// Both superblock copies were written by a build with another on-disk
    /// format version. Never touched.
    UnsupportedFormat {
        /// The version on the disk.
        version: u32,
    },
    /// Finishing a compaction or snapshot install that a crash
    /// interrupted failed.
    Reconcile(StoreError),
    /// The log was compacted past every usable snapshot (the snapshot it
    /// was compacted to is unreadable): the entries in between are gone.
    SnapshotBehindLog {
        /// Index of the newest usable snapshot (0: none).
        snapshot_index: u64,
        /// First index the log holds.
        first_index: u64,
    },
    /// A snapshot slot holds a header of a version this build does not
    /// know (a newer build wrote it): refusing, rather than ignoring the
    /// newest snapshot the log may have been compacted to.
    UnknownSnapshotVersion {
        /// The slot (0 or 1).
        slot: usize,
        /// The version byte found.
        version: u8,
    },
}

impl From<DeviceError> for OpenError {
    fn from(e: DeviceError) -> OpenError {
        OpenError::Device(e)
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Device(e) => write!(f, "disk error: {e}"),
            OpenError::UnsupportedBlockSize(b) => write!(
                f,
                "disk has {b}-byte blocks; only {}-byte blocks are supported",
                crate::BLOCK_SIZE
            ),
            OpenError::NoFlushSupport => write!(
                f,
                "disk cannot flush its write cache: writes would never be durable (refusing; `unsafe-no-flush` overrides for benchmarks)"
            ),
            OpenError::TooSmall { blocks } => write!(
                f,
                "disk of {blocks} blocks is too small (need {})",
                crate::layout::MIN_CAPACITY_BLOCKS
            ),
            OpenError::NoValidSuperblock([a, b]) => write!(
                f,
                "not a Continuum disk or superblock destroyed (copy 0: {a}; copy 1: {b}); refusing to format over it"
            ),
            OpenError::WrongCluster { expected, found } => write!(
                f,
                "disk belongs to another cluster: it is {found}, this node is {expected}"
            ),
            OpenError::WrongNode { expected, found } => write!(
                f,
                "disk belongs to another node: it is {found}, this node is {expected}"
            ),
            OpenError::DeviceShrunk {
                formatted_blocks,
                device_blocks,
            } => write!(
                f,
                "disk was formatted with {formatted_blocks} blocks but has only {device_blocks}"
            ),
            OpenError::NoValidHardState([a, b]) => write!(
                f,
                "both hard-state slots are unreadable (slot 0: {a}; slot 1: {b})"
            ),
            OpenError::CorruptRecord {
                index,
                offset,
                defect,
                witness,
            } => write!(
                f,
                "WAL record {index} at byte {offset} is corrupt ({defect}) although it had been flushed ({witness}): refusing to start with a damaged log"
            ),
            OpenError::TooManyRecords { max_entries } => write!(
                f,
                "WAL holds more than {max_entries} records (the in-memory index bound)"
            ),
            OpenError::Reconcile(e) => write!(
                f,
                "finishing the snapshot step a crash interrupted failed: {e}"
            ),
            OpenError::UnsupportedFormat { version } => write!(
                f,
                "disk has on-disk format version {version}, this build reads only version {}: refusing to touch it (run the build that wrote it, or reformat the disk, losing its log)",
                crate::layout::FORMAT_VERSION
            ),
            OpenError::SnapshotBehindLog {
                snapshot_index,
                first_index,
            } => write!(
                f,
                "log starts at index {first_index} but the newest readable snapshot covers only up to {snapshot_index}: entries in between are lost, refusing to start"
            ),
            OpenError::UnknownSnapshotVersion { slot, version } => write!(
                f,
                "snapshot slot {slot} has header version {version}; this build reads versions 1 and {}: refusing to start (run the build that wrote it)",
                crate::snapshot::SNAPSHOT_VERSION
            ),
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The device failed. The store is now failed: after a failed write or
    /// flush nothing about durability is known, so every later call
    /// returns [`StoreError::Failed`] until the node restarts and recovers.
    Device(DeviceError),
    /// An earlier device error left the store in an unknown state.
    Failed,
    /// The WAL region cannot hold the live log plus this append: take a
    /// snapshot and [`crate::Store::compact_to`] it to release space.
    WalFull {
        /// Bytes the append needs.
        needed: u64,
        /// Bytes left in the WAL region.
        available: u64,
    },
    /// The in-memory index is at `OpenOptions::max_entries`.
    IndexFull {
        /// The bound.
        max_entries: usize,
    },
    /// Appended records do not continue the log (truncate first).
    NotContiguous {
        /// Index the log needs next.
        expected: u64,
        /// Index offered.
        found: u64,
    },
    /// An appended record's term is below its predecessor's.
    TermRegression {
        /// Index of the offending record.
        index: u64,
    },
    /// A payload over [`crate::record::MAX_PAYLOAD_BYTES`].
    PayloadTooLarge {
        /// Index of the offending record.
        index: u64,
        /// Its payload length.
        len: usize,
    },
    /// An index outside `first_index..=last_index` (or `+1` where allowed).
    OutOfRange {
        /// Index asked for.
        index: u64,
        /// First index held.
        first: u64,
        /// Last index held.
        last: u64,
    },
    /// A record read back no longer matches its checksum or the index.
    CorruptRecord {
        /// Its index.
        index: u64,
        /// What is wrong.
        defect: RecordDefect,
    },
    /// Snapshot metadata this store cannot hold: index 0, more than
    /// [`crate::snapshot::MAX_SNAPSHOT_MEMBERS`] members or more than
    /// [`crate::snapshot::MAX_SNAPSHOT_APP_BYTES`] of application metadata.
    SnapshotInvalid,
    /// The snapshot data does not match the metadata's length and SHA-256.
    SnapshotDigestMismatch {
        /// The snapshot's index.
        index: u64,
    },
    /// A snapshot at or below the current one.
    SnapshotNotNewer {
        /// Index offered.
        index: u64,
        /// The current snapshot's index.
        current: u64,
    },
    /// The snapshot is larger than a snapshot slot.
    SnapshotTooLarge {
        /// Its data length.
        len: u64,
        /// Data bytes a slot holds.
        capacity: u64,
    },
    /// The stored snapshot no longer reads back as written.
    CorruptSnapshot {
        /// Its index.
        index: u64,
        /// What is wrong.
        defect: SnapshotDefect,
    },
    /// Compaction past what the current snapshot covers would lose entries.
    CompactBeyondSnapshot {
        /// Index asked for.
        index: u64,
        /// The current snapshot's index.
        snapshot_index: u64,
    },
}

impl From<DeviceError> for StoreError {
    fn from(e: DeviceError) -> StoreError {
        StoreError::Device(e)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Device(e) => write!(f, "disk error: {e}"),
            StoreError::Failed => write!(
                f,
                "store failed after an earlier disk error; restart to recover"
            ),
            StoreError::WalFull { needed, available } => write!(
                f,
                "WAL full: append needs {needed} bytes, {available} left (take a snapshot and compact the log to release space)"
            ),
            StoreError::IndexFull { max_entries } => {
                write!(f, "log index full at {max_entries} entries")
            }
            StoreError::NotContiguous { expected, found } => write!(
                f,
                "append of index {found} does not continue the log (next is {expected})"
            ),
            StoreError::TermRegression { index } => {
                write!(f, "entry {index} has a term below its predecessor's")
            }
            StoreError::PayloadTooLarge { index, len } => write!(
                f,
                "entry {index} payload of {len} bytes exceeds {}",
                crate::record::MAX_PAYLOAD_BYTES
            ),
            StoreError::OutOfRange { index, first, last } => {
                write!(f, "index {index} outside the log {first}..={last}")
            }
            StoreError::CorruptRecord { index, defect } => {
                write!(f, "entry {index} unreadable: {defect}")
            }
            StoreError::SnapshotInvalid => write!(
                f,
                "snapshot metadata out of bounds (index 0, over {} voters and learners or over {} bytes of application metadata)",
                crate::snapshot::MAX_SNAPSHOT_MEMBERS,
                crate::snapshot::MAX_SNAPSHOT_APP_BYTES
            ),
            StoreError::SnapshotDigestMismatch { index } => write!(
                f,
                "snapshot at {index}: data does not match its length and SHA-256"
            ),
            StoreError::SnapshotNotNewer { index, current } => write!(
                f,
                "snapshot at {index} is not newer than the stored one at {current}"
            ),
            StoreError::SnapshotTooLarge { len, capacity } => write!(
                f,
                "snapshot of {len} bytes exceeds the {capacity}-byte snapshot slot"
            ),
            StoreError::CorruptSnapshot { index, defect } => {
                write!(f, "snapshot at {index} unreadable: {defect}")
            }
            StoreError::CompactBeyondSnapshot {
                index,
                snapshot_index,
            } => write!(
                f,
                "cannot compact the log to {index}: the snapshot covers only up to {snapshot_index}"
            ),
        }
    }
}
