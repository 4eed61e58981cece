//! Continuum's durable Raft log: superblock, hard state, a two-slot
//! snapshot region and a checksummed circular write-ahead log of entries,
//! over any [`BlockDevice`].
//!
//! Portable logic only (`#![no_std]` + `alloc`, no `unsafe`): the kernel
//! supplies a virtio-blk [`BlockDevice`]; host tests use [`MemDisk`], which
//! injects torn writes, lost unflushed writes, bit flips and read errors.
//!
//! # Contract
//! Raft is only safe if what a node said survives power loss. So:
//! [`Store::append`] and [`Store::set_hard_state`] only write;
//! **acknowledge nothing (vote, append ack, client reply) until
//! [`Store::sync`] has returned `Ok`**. [`Store::truncate_from`],
//! [`Store::write_snapshot`], [`Store::compact_to`] and
//! [`Store::install_snapshot`] are durable on return. Group commit is one `append` of many records plus one `sync`:
//! one device write (per [`MAX_BATCH_BYTES`]) and one flush.
//!
//! # Driving it (what `continuum_node::DiskLog::persist` does per Ready)
//! ```text
//! let (mut store, report) = Store::open(virtio_blk, identity)?;   // refuse to boot on Err
//! console.print(report);                                           // what recovery found
//! loop {
//!     let ready = raft.ready();
//!     if let Some(first) = ready.entries.first() {
//!         if first.index <= store.last_index() {
//!             store.truncate_from(first.index)?;                  // Raft §5.3, durable
//!         }
//!         store.append(&records(ready.entries))?;                 // one write per 1 MiB
//!     }
//!     if let Some(hs) = ready.hard_state { store.set_hard_state(hs)?; }
//!     // the node skips the flush when only the commit index changed
//!     store.sync()?;                                               // one flush
//!     send(ready.messages);                                        // only now: persistence before speech
//!     raft.advance(ready);
//! }
//! // every N applied entries: snapshot the application, release the log
//! store.write_snapshot(&SnapshotMeta::for_data(i, term, hash, voters, app, &data), &data)?;
//! store.compact_to(i)?;                                            // WAL space before i+1 is reused
//! // a follower handed a snapshot by InstallSnapshot (before that Ready's entries):
//! store.install_snapshot(&meta, &data)?;                           // log restarts at meta.index + 1
//! ```
//! Reads (`entries`, `term`, `first_index`, `last_index`, `hard_state`)
//! serve Raft's log queries from the in-memory index plus one device read
//! of exactly the requested records' blocks (entries are re-verified
//! against their checksums on every read).
//!
//! # On-disk layout (512-byte blocks, little-endian)
//!
//! | Blocks | Contents |
//! |---|---|
//! | 0 | superblock copy 0 |
//! | 1 | superblock copy 1 (same bytes; written after copy 0 is flushed) |
//! | 2, 3 | hard-state slots 0 and 1 (alternating) |
//! | 4..8 | reserved |
//! | 8..8+S | snapshot region, S = capacity/2: slot 0 = first S/2 blocks, slot 1 = next S/2 (see [`snapshot`]) |
//! | 8+S..end | WAL, circular: records packed back to back; each batch starts on a block boundary and never crosses the region end |
//!
//! Superblock (one block; CRC-32C over bytes 0..96):
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 8 | magic `CNTMSUPR` |
//! | 8 | 4 | format version (2; a disk of another version is refused with [`OpenError::UnsupportedFormat`]) |
//! | 12 | 4 | block size (512) |
//! | 16 | 16 | cluster id (u128) |
//! | 32 | 8 | node id |
//! | 40 | 8 | format epoch (bumped by every format) |
//! | 48 | 8 | capacity in blocks |
//! | 56 | 8 | hard-state slot 0 LBA (2) |
//! | 64 | 8 | snapshot region LBA |
//! | 72 | 8 | snapshot region blocks |
//! | 80 | 8 | WAL LBA |
//! | 88 | 8 | WAL blocks |
//! | 96 | 4 | CRC-32C |
//!
//! Hard-state slot (one block; CRC-32C over bytes 0..100; the valid slot with
//! the higher sequence number wins; an update never overwrites the slot
//! holding the last flushed value):
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 8 | magic `CNTMHARD` |
//! | 8 | 8 | format epoch |
//! | 16 | 8 | sequence number |
//! | 24 | 8 | term |
//! | 32 | 8 | vote (node id) |
//! | 40 | 1 | vote present (0/1) |
//! | 48 | 8 | commit index |
//! | 56 | 8 | WAL generation (bumped by each truncation and each open) |
//! | 64 | 8 | WAL truncated-from index |
//! | 72 | 8 | log start index (snapshot index + 1; 1 without one) |
//! | 80 | 8 | WAL position known flushed when the slot was written |
//! | 88 | 8 | WAL position of the record at the log start index |
//! | 96 | 4 | checksum that record links to (its released predecessor's) |
//! | 100 | 4 | CRC-32C |
//!
//! WAL positions are logical: they only grow, and position `p` is byte
//! `p % wal_bytes` of the region (see `store.rs`). Recovery scans from the
//! slot's start position; the snapshot header table is in [`snapshot`].
//!
//! WAL record (88-byte header, payload, 4-byte trailer; CRC-32C over header
//! and payload):
//!
//! | Offset | Size | Field |
//! |---|---|---|
//! | 0 | 4 | magic `CWAL` |
//! | 4 | 1 | entry kind (opaque) |
//! | 5 | 1 | flags (bit 0: last record of its batch) |
//! | 6 | 2 | reserved, zero |
//! | 8 | 4 | payload length (at most [`MAX_PAYLOAD_BYTES`]) |
//! | 12 | 4 | CRC-32C of the previous record (0 for the first) |
//! | 16 | 8 | index |
//! | 24 | 8 | term |
//! | 32 | 8 | WAL generation at write time |
//! | 40 | 8 | WAL position known flushed at write time |
//! | 48 | 8 | format epoch |
//! | 56 | 32 | Raft chain hash (SHA-256, computed by Raft) |
//! | 88 | n | payload |
//! | 88+n | 4 | CRC-32C |
//!
//! [`Store::boot_generation`] is unique per boot and strictly increasing
//! (every open bumps the WAL generation durably): ids that must never
//! repeat across restarts are built from it.
//!
//! Recovery (see `recovery.rs`) accepts the longest prefix of records that
//! each checksum and continue the log (epoch, index, link to the previous
//! checksum, generation vs. the truncation marker), following a batch to
//! the next lap when it did not fit before the region end, truncates a torn
//! tail, and refuses to start if a bad record is provably one that had been
//! flushed (mid-log corruption). It then picks the newest snapshot whose
//! data matches its SHA-256, refuses if the log was compacted past it, and
//! finishes a compaction or install that a crash interrupted.
//!
//! # Memory
//! The store keeps 24 bytes per live log entry ([`IndexEntry`]) so reads
//! never rescan, bounded by [`OpenOptions::max_entries`] (default 1 Mi
//! entries, 24 MiB), plus the current snapshot's metadata and transient
//! buffers bounded by [`MAX_BATCH_BYTES`] and [`READ_CHUNK_BYTES`]
//! ([`Store::read_snapshot`] returns the whole snapshot as one buffer;
//! open keeps the data it verified until the first `read_snapshot` takes
//! it, so a restart reads and hashes the snapshot once).
//!
//! # Limits
//! Appends fail with [`StoreError::WalFull`] only when the live log (from
//! its first entry) plus the new batch exceed the WAL region; compacting
//! after each snapshot keeps the live log short. A snapshot holds at most
//! [`Store::snapshot_capacity_bytes`] (a quarter of the disk less a block).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod bytes;
pub mod crc32c;
mod device;
mod error;
mod hard_state;
pub mod layout;
mod memdisk;
mod open;
mod reader;
pub mod record;
mod recovery;
pub mod snapshot;
mod store;
pub mod testing;

pub use device::{check_request, BlockDevice, DeviceError, BLOCK_SIZE};
pub use error::{OpenError, StoreError};
pub use hard_state::{HardState, SlotDefect};
pub use layout::{Identity, SuperblockDefect};
pub use memdisk::{CrashMode, MemDisk, INJECTED_READ_ERROR, POWER_LOST};
pub use open::{OpenOptions, DEFAULT_MAX_ENTRIES};
pub use reader::READ_CHUNK_BYTES;
pub use record::{Record, RecordDefect, MAX_MARK_LAG, MAX_PAYLOAD_BYTES};
pub use recovery::{RecoveryReport, Tail, Witness, MAX_UNSYNCED_BYTES, WITNESS_WINDOW_BYTES};
pub use snapshot::{
    SnapshotDefect, SnapshotMeta, MAX_SNAPSHOT_APP_BYTES, MAX_SNAPSHOT_MEMBERS, SNAPSHOT_VERSION,
};
pub use store::{IndexEntry, Reconciled, Store, MAX_BATCH_BYTES};

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn block_size(&self) -> usize {
        (**self).block_size()
    }
    fn capacity_blocks(&self) -> u64 {
        (**self).capacity_blocks()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        (**self).read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        (**self).write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        (**self).flush()
    }
    fn supports_flush(&self) -> bool {
        (**self).supports_flush()
    }
}
