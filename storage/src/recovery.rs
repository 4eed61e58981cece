//! The boot-time WAL scan: find the longest valid prefix of the log, tell
//! a torn tail from mid-log corruption, and describe what was found.
//!
//! The scan walks records from the start of the WAL. A record is accepted
//! only if its checksum holds and it continues the log: same format epoch,
//! index = previous + 1, `prev_checksum` = previous record's checksum, term
//! not below the previous one, and a generation that is neither newer than
//! the durable truncation marker nor older while at/after the truncation
//! point. The first record that fails ends the log.
//!
//! Torn tail or corruption? Every record stores `durable_upto`, the WAL
//! offset the store knew to be flushed when it wrote the record. If any
//! readable record of the current generation *after* the stopping point
//! has `durable_upto` beyond it, the bytes at the stopping point had been
//! flushed (and possibly acknowledged) before: that is media corruption in
//! the middle of the log, and the node refuses to start. Otherwise the
//! damaged bytes were never known durable: a torn or lost tail, truncated.
//! The current hard-state slot is a witness too: it records the flushed
//! WAL offset at the time it was written (every hard-state update, every
//! truncation and every open), so a bad record below that offset is
//! corruption. A later record witness, if one exists, lies within `MAX_UNSYNCED_BYTES` of the
//! stopping point (the store syncs before it lets more than that be
//! unsynced), so the search is bounded by [`WITNESS_WINDOW_BYTES`].
//!
//! Known limit: corruption of a record flushed after the last *flushed*
//! hard-state write and not followed by any later batch leaves no witness
//! and is indistinguishable from a torn tail; it is truncated and
//! reported. [`crate::Store::witness_pending`] tells a caller when such
//! records exist, so it can close the window by flushing its next
//! hard-state write (the node's `DiskLog` does).
//!
//! A slot whose commit index exceeds the recovered log is reported
//! ([`RecoveryReport::commit_clamped`]) for the Raft adapter to clamp.

use alloc::vec::Vec;
use core::fmt;

use crate::device::{BlockDevice, DeviceError, BLOCK_SIZE};
use crate::hard_state::SlotState;
use crate::layout::Geometry;
use crate::reader::WalReader;
use crate::record::{self, RecordDefect, RecordHeader, FLAG_BATCH_END, TRAILER_LEN};
use crate::store::IndexEntry;

/// Most bytes appended but not yet flushed at any time; `append` syncs
/// first rather than exceed it. Bounds the witness search at recovery.
pub const MAX_UNSYNCED_BYTES: u64 = 1024 * 1024;
/// How far past a bad record recovery looks for proof that it had been
/// flushed (see the module docs).
/// (The next batch after a flush starts at most `MAX_UNSYNCED_BYTES` plus
/// one block of padding past any byte that flush made durable, plus the
/// gap a batch leaves when it does not fit before the region end and
/// starts the next lap, under one batch; one more block is margin.)
pub const WITNESS_WINDOW_BYTES: u64 =
    MAX_UNSYNCED_BYTES + crate::store::MAX_BATCH_BYTES as u64 + 2 * BLOCK_SIZE as u64;

/// How the scanned log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// The log fills the WAL region (one whole lap).
    RegionEnd,
    /// The bytes after the last record were never written.
    Blank,
    /// Bytes after the last record were discarded: a torn write, a lost
    /// unflushed write, or records cut off by an earlier truncation.
    Discarded {
        /// Why the next bytes are not a record.
        defect: RecordDefect,
        /// Bytes of the unusable record (or rest of its block) dropped.
        bytes: u64,
    },
}

/// Result of a successful scan.
pub struct Scan {
    /// Positions and terms of the valid records, in index order.
    pub index: Vec<IndexEntry>,
    /// WAL position just past the last valid record (before block
    /// padding); the slot's start position if there is none.
    pub end_offset: u64,
    /// Checksum of the last valid record (the slot's start link if none).
    pub last_checksum: u32,
    /// Whether the last valid record ended its batch (next append starts
    /// on a block boundary).
    pub ends_batch: bool,
    /// How the log ended.
    pub tail: Tail,
    /// The newest caller mark among the valid records (`record.rs`).
    pub mark: Option<u64>,
}

/// Why a scan refused the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// The device failed.
    Device(DeviceError),
    /// A record in the middle of the log is corrupt: a later record proves
    /// it had been flushed.
    MidLogCorruption {
        /// WAL byte offset of the bad record.
        offset: u64,
        /// Index the bad record should hold.
        index: u64,
        /// What is wrong with it.
        defect: RecordDefect,
        /// What proves it had been flushed.
        witness: Witness,
    },
    /// More valid records than the in-memory index may hold.
    TooManyRecords {
        /// The configured bound.
        max_entries: usize,
    },
}

impl From<DeviceError> for ScanError {
    fn from(e: DeviceError) -> ScanError {
        ScanError::Device(e)
    }
}

/// Proof that a bad record had been flushed before it went bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witness {
    /// The current hard-state slot was written when the WAL was known
    /// flushed up to `durable_upto`, past the bad record.
    HardStateSlot {
        /// The slot's durable WAL offset.
        durable_upto: u64,
    },
    /// A later record of the current generation was written when the bad
    /// record was already flushed.
    Record {
        /// The later record's index.
        index: u64,
    },
}

impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Witness::HardStateSlot { durable_upto } => write!(
                f,
                "the hard-state slot records the WAL flushed up to byte {durable_upto}"
            ),
            Witness::Record { index } => {
                write!(
                    f,
                    "record {index}, written after it was flushed, follows it"
                )
            }
        }
    }
}

/// What [`probe`] found at an offset.
enum Probe {
    Valid { header: RecordHeader, checksum: u32 },
    Invalid { defect: RecordDefect, bytes: u64 },
}

/// Read and checksum the record starting at logical position `offset`
/// (context-free).
fn probe<D: BlockDevice>(r: &mut WalReader<'_, D>, offset: u64) -> Result<Probe, DeviceError> {
    let left = r.left_in_lap(offset);
    let block_rest = BLOCK_SIZE as u64 - offset % BLOCK_SIZE as u64;
    if left < (record::HEADER_LEN + TRAILER_LEN) as u64 {
        return Ok(Probe::Invalid {
            defect: RecordDefect::BeyondRegion,
            bytes: left,
        });
    }
    let header = match record::decode_header(r.read(offset, record::HEADER_LEN)?) {
        Ok(h) => h,
        Err(defect) => {
            return Ok(Probe::Invalid {
                defect,
                bytes: if defect == RecordDefect::Blank {
                    0
                } else {
                    block_rest
                },
            })
        }
    };
    let len = header.record_len() as u64;
    if len > left {
        return Ok(Probe::Invalid {
            defect: RecordDefect::BeyondRegion,
            bytes: left,
        });
    }
    match record::verify(r.read(offset, len as usize)?) {
        Ok(checksum) => Ok(Probe::Valid { header, checksum }),
        Err(defect) => Ok(Probe::Invalid { defect, bytes: len }),
    }
}

/// The log as scanned so far: what the next record must continue.
struct Cursor {
    next_index: u64,
    last_checksum: u32,
    last_term: u64,
}

/// A valid continuation (header, checksum), or why not (defect, bytes).
type Accepted = Result<(RecordHeader, u32), (RecordDefect, u64)>;

/// Whether the record at `offset` is a valid continuation of `cursor`:
/// `Ok(Ok((header, checksum)))` if it is, else its defect and length.
fn accept<D: BlockDevice>(
    r: &mut WalReader<'_, D>,
    offset: u64,
    format_epoch: u64,
    slot: &SlotState,
    cursor: &Cursor,
) -> Result<Accepted, DeviceError> {
    Ok(match probe(r, offset)? {
        Probe::Invalid { defect, bytes } => Err((defect, bytes)),
        Probe::Valid { header, checksum } => match continues(
            &header,
            format_epoch,
            slot,
            cursor.next_index,
            cursor.last_checksum,
            cursor.last_term,
        ) {
            Some(defect) => Err((defect, header.record_len() as u64)),
            None => Ok((header, checksum)),
        },
    })
}

/// Scan the WAL of a disk whose current slot is `slot`, from the slot's
/// start position. A batch that did not fit before the region end was
/// written at the start of the next lap (the gap is never read as log):
/// when the bytes at a position do not continue the log, the scan also
/// tries the next lap's first record, which continues the log only if the
/// writer put it there (its index and link name the record just read).
pub fn scan<D: BlockDevice>(
    dev: &mut D,
    geometry: &Geometry,
    format_epoch: u64,
    slot: &SlotState,
    max_entries: usize,
) -> Result<Scan, ScanError> {
    let mut r = WalReader::new(dev, geometry);
    let wal_bytes = r.wal_bytes();
    let mut index: Vec<IndexEntry> = Vec::new();
    let start = slot.wal_start_offset;
    let mut offset = start;
    let mut cursor = Cursor {
        next_index: slot.log_start_index,
        last_checksum: slot.wal_start_prev_checksum,
        last_term: 0,
    };
    let mut ends_batch = true;
    let mut mark = None;
    let tail = loop {
        if offset >= start + wal_bytes {
            break Tail::RegionEnd;
        }
        let mut found = accept(&mut r, offset, format_epoch, slot, &cursor)?;
        if found.is_err() && !offset.is_multiple_of(wal_bytes) {
            let lap = offset.next_multiple_of(wal_bytes);
            if lap < start + wal_bytes {
                if let Ok(ok) = accept(&mut r, lap, format_epoch, slot, &cursor)? {
                    offset = lap;
                    found = Ok(ok);
                }
            }
        }
        let (defect, bytes) = match found {
            Err(bad) => bad,
            Ok((header, checksum)) => {
                if index.len() >= max_entries {
                    return Err(ScanError::TooManyRecords { max_entries });
                }
                let len = header.record_len() as u64;
                index.push(IndexEntry {
                    offset,
                    term: header.term,
                    len: len as u32,
                });
                cursor.last_checksum = checksum;
                cursor.last_term = header.term;
                cursor.next_index += 1;
                mark = header.mark.or(mark);
                offset += len;
                ends_batch = header.flags & FLAG_BATCH_END != 0;
                if ends_batch {
                    offset = offset.div_ceil(BLOCK_SIZE as u64) * BLOCK_SIZE as u64;
                }
                continue;
            }
        };
        let witness = if offset < slot.wal_durable_upto {
            Some(Witness::HardStateSlot {
                durable_upto: slot.wal_durable_upto,
            })
        } else {
            find_witness(&mut r, offset, start, format_epoch, slot)?
                .map(|index| Witness::Record { index })
        };
        if let Some(witness) = witness {
            return Err(ScanError::MidLogCorruption {
                offset,
                index: cursor.next_index,
                defect,
                witness,
            });
        }
        break if defect == RecordDefect::Blank {
            Tail::Blank
        } else {
            Tail::Discarded { defect, bytes }
        };
    };
    let end_offset = match index.last() {
        Some(e) => e.offset + e.len as u64,
        None => start,
    };
    Ok(Scan {
        index,
        end_offset,
        last_checksum: cursor.last_checksum,
        ends_batch,
        tail,
        mark,
    })
}

/// Whether a checksummed record continues the log; `None` if it does.
fn continues(
    h: &RecordHeader,
    format_epoch: u64,
    slot: &SlotState,
    next_index: u64,
    last_checksum: u32,
    last_term: u64,
) -> Option<RecordDefect> {
    if h.format_epoch != format_epoch {
        return Some(RecordDefect::WrongEpoch(h.format_epoch));
    }
    if h.generation > slot.wal_generation {
        return Some(RecordDefect::FutureGeneration(h.generation));
    }
    if h.generation < slot.wal_generation && h.index >= slot.wal_truncated_from {
        return Some(RecordDefect::Stale {
            generation: h.generation,
        });
    }
    if h.index != next_index {
        return Some(RecordDefect::IndexGap {
            expected: next_index,
            found: h.index,
        });
    }
    if h.prev_checksum != last_checksum {
        return Some(RecordDefect::BrokenLink);
    }
    if h.term < last_term {
        return Some(RecordDefect::TermRegression);
    }
    None
}

/// Look past a bad record at `bad_offset` for a current-generation record
/// proving the bad bytes had been flushed; returns its index.
fn find_witness<D: BlockDevice>(
    r: &mut WalReader<'_, D>,
    bad_offset: u64,
    scan_start: u64,
    format_epoch: u64,
    slot: &SlotState,
) -> Result<Option<u64>, DeviceError> {
    let block = BLOCK_SIZE as u64;
    // Positions past one lap from the scan start are the live log again.
    let stop = (bad_offset + WITNESS_WINDOW_BYTES).min(scan_start + r.wal_bytes());
    let mut at = (bad_offset / block + 1) * block;
    while at < stop {
        if let Probe::Valid { header, .. } = probe(r, at)? {
            if header.format_epoch == format_epoch
                && header.generation == slot.wal_generation
                && header.durable_upto > bad_offset
            {
                return Ok(Some(header.index));
            }
        }
        at += block;
    }
    Ok(None)
}

/// What `Store::open` found and did, for the boot console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The disk was blank and has been formatted.
    pub formatted: bool,
    /// Format epoch of the disk.
    pub format_epoch: u64,
    /// A superblock copy was invalid or stale and has been rewritten
    /// (which copy, and what was wrong with it).
    pub superblock_repaired: Option<(usize, crate::layout::SuperblockDefect)>,
    /// The hard state recovered.
    pub hard_state: crate::hard_state::HardState,
    /// The slot's commit index, when it exceeds the recovered log (the
    /// slot reached the media before the entries it covers). The store
    /// keeps it as written; a Raft adapter must clamp it to `last_index`
    /// (the node's `DiskLog` does).
    pub commit_clamped: Option<u64>,
    /// The hard-state slot not chosen was unreadable (a torn update).
    pub slot_defect: Option<crate::hard_state::SlotDefect>,
    /// Valid records found.
    pub records: u64,
    /// First index in the log.
    pub first_index: u64,
    /// Last index in the log (first_index - 1 if empty).
    pub last_index: u64,
    /// Term of the last record (0 if empty).
    pub last_term: u64,
    /// WAL bytes in use, and the WAL region size.
    pub wal_bytes_used: u64,
    /// WAL region size in bytes.
    pub wal_bytes_total: u64,
    /// How the log ended.
    pub tail: Tail,
    /// WAL generation from now on (bumped at every open).
    pub wal_generation: u64,
    /// Index of the current snapshot (0: none).
    pub snapshot_index: u64,
    /// Its data length in bytes.
    pub snapshot_bytes: u64,
    /// Why each snapshot slot was unusable, if it was (an empty slot is
    /// `BadMagic`; a slot holding the older snapshot is `None`).
    pub snapshot_defects: [Option<crate::snapshot::SnapshotDefect>; 2],
    /// A crash fell between a snapshot write and its compaction or log
    /// reset; open finished it.
    pub reconciled: Option<crate::store::Reconciled>,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.formatted {
            writeln!(
                f,
                "storage: blank disk, formatted (epoch {})",
                self.format_epoch
            )?;
        } else {
            writeln!(f, "storage: format epoch {}", self.format_epoch)?;
        }
        if let Some((copy, defect)) = self.superblock_repaired {
            writeln!(f, "storage: superblock copy {copy} was {defect}; rewritten")?;
        }
        write!(f, "storage: hard state {}", self.hard_state)?;
        if let Some(d) = self.slot_defect {
            write!(f, " (other slot: {d}; older value kept)")?;
        }
        writeln!(f)?;
        if let Some(on_disk) = self.commit_clamped {
            writeln!(
                f,
                "storage: WARNING: hard state commit {on_disk} is beyond the last durable index {}; Raft starts from commit {} (the slot reached the disk before its entries)",
                self.last_index, self.last_index
            )?;
        }
        writeln!(
            f,
            "storage: WAL {} records, index {}..={}, last term {}, {} of {} bytes used, generation {}",
            self.records,
            self.first_index,
            self.last_index,
            self.last_term,
            self.wal_bytes_used,
            self.wal_bytes_total,
            self.wal_generation
        )?;
        if self.snapshot_index > 0 {
            writeln!(
                f,
                "storage: snapshot at index {} ({} bytes)",
                self.snapshot_index, self.snapshot_bytes
            )?;
        } else {
            writeln!(f, "storage: no snapshot")?;
        }
        for (slot, defect) in self.snapshot_defects.iter().enumerate() {
            match defect {
                None | Some(crate::snapshot::SnapshotDefect::BadMagic) => {}
                Some(d) => writeln!(f, "storage: snapshot slot {slot} unusable ({d})")?,
            }
        }
        match self.reconciled {
            Some(crate::store::Reconciled::Reset) => writeln!(
                f,
                "storage: finished the snapshot install interrupted after the snapshot was written (log reset)"
            )?,
            None => {}
        }
        match self.tail {
            Tail::RegionEnd => write!(f, "storage: WAL tail: region full"),
            Tail::Blank => write!(f, "storage: WAL tail: clean"),
            Tail::Discarded { defect, bytes } => write!(
                f,
                "storage: WAL tail: {bytes} bytes after index {} discarded ({defect})",
                self.last_index
            ),
        }
    }
}
