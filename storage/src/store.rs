//! The open store: append, sync, hard state, truncation and reads.
//!
//! Durability contract (`continuum_node::DiskLog::persist` relies on it):
//! * [`Store::append`] and [`Store::set_hard_state`] only *write*; nothing
//!   is durable until [`Store::sync`] returns `Ok`. Acknowledge an append
//!   (AppendEntries response, client reply) or a vote only after that
//!   `sync`: Raft's "persistence before speech".
//! * [`Store::truncate_from`] is durable when it returns (it flushes).
//! * Group commit: one `append` of many records is one device write per
//!   `MAX_BATCH_BYTES`, and one `sync` is one flush for all of them.
//! * After any device error the store is failed: every later call returns
//!   [`StoreError::Failed`]. Restart and let recovery decide what is on
//!   disk (a failed flush cannot be retried: fsyncgate).

use alloc::vec::Vec;

use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::error::StoreError;
use crate::hard_state::{HardState, SlotState};
use crate::layout::{Identity, Superblock, HARD_STATE_LBA};
use crate::open::OpenOptions;
use crate::reader::WalReader;
use crate::record::{self, Record, RecordDefect, WriteContext, FLAG_BATCH_END, MAX_PAYLOAD_BYTES};
use crate::recovery::{Scan, MAX_UNSYNCED_BYTES};

/// Most bytes one append batch writes in one device request (records plus
/// block padding); larger appends are split into several batches.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

const BLOCK: u64 = BLOCK_SIZE as u64;

// A block's worth of prefix plus the largest record always fits one batch,
// and one batch never exceeds what may be unsynced (recovery's witness
// window relies on the latter).
const _: () = assert!(BLOCK_SIZE + record::encoded_len(MAX_PAYLOAD_BYTES) <= MAX_BATCH_BYTES);
const _: () = assert!(MAX_BATCH_BYTES as u64 <= MAX_UNSYNCED_BYTES);

/// Where one record lives: 24 bytes of memory per log entry (the whole
/// in-memory cost of the log besides the tail bookkeeping), bounded by
/// `OpenOptions::max_entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// WAL byte offset of the record.
    pub offset: u64,
    /// Its term (so `term(i)` never touches the disk).
    pub term: u64,
    /// Its encoded length in bytes.
    pub len: u32,
}

/// The durable Raft log and hard state on one block device.
pub struct Store<D: BlockDevice> {
    dev: D,
    superblock: Superblock,
    options: OpenOptions,
    /// The most recently written slot (durable once `dirty` is clear).
    slot: SlotState,
    /// Position (0/1) of `slot`.
    slot_pos: usize,
    /// Position of the slot holding the last *flushed* value: never
    /// overwritten before the next flush.
    durable_slot_pos: usize,
    index: Vec<IndexEntry>,
    /// WAL offset where the next record goes.
    next_offset: u64,
    /// Checksum of the last record (the next record links to it).
    last_checksum: u32,
    /// WAL bytes below this offset are flushed.
    durable_end: u64,
    /// WAL offset the last *flushed* hard-state slot records as durable:
    /// records past it have no slot witness yet (see `witness_pending`).
    witnessed_upto: u64,
    /// WAL generation made durable by the open that started this boot.
    boot_generation: u64,
    /// Writes issued since the last flush.
    dirty: bool,
    /// A device error left durability unknown.
    failed: bool,
}

impl<D: BlockDevice> Store<D> {
    pub(crate) fn from_recovered(
        dev: D,
        superblock: Superblock,
        options: OpenOptions,
        slot: SlotState,
        slot_pos: usize,
        scan: Scan,
    ) -> Store<D> {
        let next_offset = if scan.ends_batch {
            scan.end_offset.div_ceil(BLOCK) * BLOCK
        } else {
            scan.end_offset
        };
        Store {
            witnessed_upto: slot.wal_durable_upto,
            boot_generation: slot.wal_generation,
            dev,
            superblock,
            options,
            slot,
            slot_pos,
            durable_slot_pos: slot_pos,
            index: scan.index,
            next_offset,
            last_checksum: scan.last_checksum,
            durable_end: scan.end_offset,
            dirty: false,
            failed: false,
        }
    }

    /// The owner of this disk.
    pub fn identity(&self) -> Identity {
        self.superblock.identity
    }

    /// The device (for statistics; do not write to it behind the store).
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// The device, mutably: for fault injection in tests. Writing to it
    /// behind the store breaks the store's invariants.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Give the device back (tests crash it and reopen).
    pub fn into_device(self) -> D {
        self.dev
    }

    /// A number unique to this boot of this disk, strictly greater than the
    /// one of every earlier boot: the WAL generation the open made durable
    /// (every open bumps it past every generation used before, truncations
    /// included, and flushes it before returning). Use it to make ids that
    /// must never repeat across restarts (request tags, boot epochs).
    pub fn boot_generation(&self) -> u64 {
        self.boot_generation
    }

    /// Whether flushed records exist that no flushed hard-state slot
    /// witnesses yet. Recovery can tell such a record, if it later reads
    /// back corrupt, from a torn tail only through a witness (see
    /// `recovery.rs`); a caller that acknowledged the records closes the
    /// gap by writing a hard state (it records the flushed WAL end) and
    /// syncing.
    pub fn witness_pending(&self) -> bool {
        self.durable_end > self.witnessed_upto
    }

    /// First index held (1 until snapshots compact the log).
    pub fn first_index(&self) -> u64 {
        self.slot.log_start_index
    }

    /// Last index held; `first_index() - 1` when the log is empty.
    pub fn last_index(&self) -> u64 {
        self.slot.log_start_index - 1 + self.index.len() as u64
    }

    /// The current hard state (as last set, durable after `sync`).
    pub fn hard_state(&self) -> HardState {
        self.slot.hard_state
    }

    /// Term of entry `index`; 0 for `first_index() - 1` (the empty prefix).
    pub fn term(&self, index: u64) -> Result<u64, StoreError> {
        if index.checked_add(1) == Some(self.first_index()) {
            return Ok(0);
        }
        Ok(self.index[self.position(index)?].term)
    }

    /// Where entry `index` lives in the WAL region (diagnostics, tests).
    pub fn record_extent(&self, index: u64) -> Result<IndexEntry, StoreError> {
        Ok(self.index[self.position(index)?])
    }

    /// Byte offset of the WAL region on the device.
    pub fn wal_device_offset(&self) -> u64 {
        self.superblock.geometry.wal_lba * BLOCK
    }

    /// WAL bytes in use and the WAL region size.
    pub fn wal_usage(&self) -> (u64, u64) {
        (self.next_offset, self.superblock.geometry.wal_bytes())
    }

    fn position(&self, index: u64) -> Result<usize, StoreError> {
        let first = self.first_index();
        let last = self.last_index();
        if index < first || index > last {
            return Err(StoreError::OutOfRange { index, first, last });
        }
        Ok((index - first) as usize)
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        if self.failed {
            Err(StoreError::Failed)
        } else {
            Ok(())
        }
    }

    /// Run a device operation; any error fails the store.
    fn io<T>(
        &mut self,
        op: impl FnOnce(&mut D) -> Result<T, crate::DeviceError>,
    ) -> Result<T, StoreError> {
        match op(&mut self.dev) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.failed = true;
                Err(StoreError::Device(e))
            }
        }
    }

    /// Append `records`, which must continue the log (index `last_index()
    /// + 1` onward, terms non-decreasing). Written, not durable: call
    /// [`Store::sync`] before acknowledging them.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.check_usable()?;
        let batches = self.plan(records)?;
        let mut start = 0;
        for end in batches {
            self.write_batch(&records[start..end])?;
            start = end;
        }
        Ok(())
    }

    /// Validate an append and split it into batches (end positions);
    /// checks space for all of them before anything is written.
    fn plan(&self, records: &[Record]) -> Result<Vec<usize>, StoreError> {
        let first = self.last_index() + 1;
        let mut prev_term = self.index.last().map_or(0, |e| e.term);
        if self.index.len() + records.len() > self.options.max_entries {
            return Err(StoreError::IndexFull {
                max_entries: self.options.max_entries,
            });
        }
        let mut ends = Vec::new();
        // A batch after a mid-block truncation starts with the block's live
        // prefix (see `write_batch`).
        let mut batch = (self.next_offset % BLOCK) as usize;
        let mut total: u64 = 0;
        for (i, r) in records.iter().enumerate() {
            let expected = first + i as u64;
            if r.index != expected {
                return Err(StoreError::NotContiguous {
                    expected,
                    found: r.index,
                });
            }
            if r.term < prev_term {
                return Err(StoreError::TermRegression { index: r.index });
            }
            if r.payload.len() > MAX_PAYLOAD_BYTES {
                return Err(StoreError::PayloadTooLarge {
                    index: r.index,
                    len: r.payload.len(),
                });
            }
            let len = r.encoded_len();
            // Never an empty batch: one record always fits (const assert).
            if i > 0 && batch + len > MAX_BATCH_BYTES {
                ends.push(i);
                total += (batch as u64).div_ceil(BLOCK) * BLOCK;
                batch = 0;
            }
            batch += len;
            prev_term = r.term;
        }
        if !records.is_empty() {
            ends.push(records.len());
            total += (batch as u64).div_ceil(BLOCK) * BLOCK;
        }
        let start = self.next_offset / BLOCK * BLOCK;
        let available = self.superblock.geometry.wal_bytes() - start;
        if total > available {
            return Err(StoreError::WalFull {
                needed: total,
                available,
            });
        }
        Ok(ends)
    }

    /// Write one batch at `next_offset` (one device request).
    fn write_batch(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let start = self.next_offset / BLOCK * BLOCK;
        let mut buf = Vec::new();
        let prefix = (self.next_offset - start) as usize;
        if prefix > 0 {
            // After a truncation in mid-block: rewrite the block's live
            // records byte for byte, so even a torn write of this block
            // leaves them intact.
            let mut block = [0u8; BLOCK_SIZE];
            let lba = self.superblock.geometry.wal_lba + start / BLOCK;
            self.io(|d| d.read(lba, &mut block))?;
            buf.extend_from_slice(&block[..prefix]);
        }
        let len: usize = records.iter().map(Record::encoded_len).sum();
        let padded = (prefix + len).div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
        // Bound what a crash can find unflushed (recovery's witness window).
        if self.dirty
            && (start + padded as u64).saturating_sub(self.durable_end) > MAX_UNSYNCED_BYTES
        {
            self.sync()?;
        }
        buf.reserve(padded - prefix);
        let ctx = WriteContext {
            format_epoch: self.superblock.format_epoch,
            generation: self.slot.wal_generation,
            durable_upto: self.durable_end,
        };
        let mut entries = Vec::with_capacity(records.len());
        let mut checksum = self.last_checksum;
        for (i, r) in records.iter().enumerate() {
            let flags = if i + 1 == records.len() {
                FLAG_BATCH_END
            } else {
                0
            };
            let offset = start + buf.len() as u64;
            checksum = record::encode(&mut buf, r, &ctx, checksum, flags);
            entries.push(IndexEntry {
                offset,
                term: r.term,
                len: r.encoded_len() as u32,
            });
        }
        buf.resize(padded, 0);
        let lba = self.superblock.geometry.wal_lba + start / BLOCK;
        self.io(|d| d.write(lba, &buf))?;
        self.dirty = true;
        self.index.extend_from_slice(&entries);
        self.last_checksum = checksum;
        self.next_offset = start + padded as u64;
        // `plan` checked the space; a violation here would mean records
        // were written outside the WAL region.
        assert!(
            self.next_offset <= self.superblock.geometry.wal_bytes(),
            "WAL write past the region end"
        );
        Ok(())
    }

    /// Make every write so far durable (one flush). Returns once the
    /// device confirms; only then may the caller acknowledge.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.check_usable()?;
        if !self.dirty {
            return Ok(());
        }
        if self.dev.supports_flush() {
            self.io(|d| d.flush())?;
        }
        self.dirty = false;
        self.durable_end = match self.index.last() {
            Some(e) => e.offset + e.len as u64,
            None => 0,
        };
        assert!(
            self.durable_end <= self.next_offset,
            "durable end beyond the write position"
        );
        self.durable_slot_pos = self.slot_pos;
        self.witnessed_upto = self.slot.wal_durable_upto;
        Ok(())
    }

    /// Write `slot` into the position not holding the last flushed slot.
    fn write_slot(&mut self, mut slot: SlotState) -> Result<(), StoreError> {
        slot.seq = self.slot.seq.saturating_add(1);
        let pos = 1 - self.durable_slot_pos;
        let block = slot.encode(self.superblock.format_epoch);
        self.io(|d| d.write(HARD_STATE_LBA + pos as u64, &block))?;
        self.slot = slot;
        self.slot_pos = pos;
        self.dirty = true;
        Ok(())
    }

    /// Record Raft's hard state. Durable after the next [`Store::sync`];
    /// until then a crash keeps the previous durable value or this one.
    pub fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), StoreError> {
        self.check_usable()?;
        let slot = SlotState {
            hard_state,
            wal_durable_upto: self.durable_end,
            ..self.slot
        };
        self.write_slot(slot)
    }

    /// Raft §5.3: delete entry `index` and all that follow. Durable when
    /// it returns (flushes, including every earlier write). `index` may be
    /// `last_index() + 1` (nothing to delete).
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StoreError> {
        self.check_usable()?;
        if index == self.last_index() + 1 {
            return self.sync();
        }
        let pos = self.position(index)?;
        let cut = self.index[pos].offset;
        let prev_checksum = match pos.checked_sub(1) {
            None => 0,
            Some(p) => self.stored_checksum(p)?,
        };
        // Flush pending writes first: the slot below claims everything
        // before `cut` is durable, which must be true if it survives alone.
        self.sync()?;
        // The new generation's marker: records from `index` on written in
        // older generations are dead once this slot is durable.
        let slot = SlotState {
            wal_generation: self.slot.wal_generation.saturating_add(1),
            wal_truncated_from: index,
            wal_durable_upto: cut,
            ..self.slot
        };
        self.write_slot(slot)?;
        self.index.truncate(pos);
        self.next_offset = cut;
        self.last_checksum = prev_checksum;
        self.sync()
    }

    /// The checksum stored in the trailer of the record at index position
    /// `pos`.
    fn stored_checksum(&mut self, pos: usize) -> Result<u32, StoreError> {
        let e = self.index[pos];
        let geometry = self.superblock.geometry;
        let mut reader = WalReader::new(&mut self.dev, &geometry);
        let at = e.offset + e.len as u64 - record::TRAILER_LEN as u64;
        let t = reader.read(at, record::TRAILER_LEN)?;
        Ok(u32::from_le_bytes([t[0], t[1], t[2], t[3]]))
    }

    /// Entries `[lo, hi)`, stopping early once more than `max_bytes` of
    /// payload would be returned (at least one entry is returned if
    /// `lo < hi`). Every record is re-verified against its checksum.
    pub fn entries(&mut self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Record>, StoreError> {
        self.check_usable()?;
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        let first_pos = self.position(lo)?;
        let last_pos = self.position(hi - 1)?;
        // Fetch only the span the answer can cover (Raft often asks for
        // one or a few entries), not a whole scan chunk.
        let mut span_payload = 0u64;
        let mut span_end = first_pos;
        for e in &self.index[first_pos..=last_pos] {
            span_payload += e.len as u64 - record::encoded_len(0) as u64;
            span_end += 1;
            if span_payload > max_bytes {
                break;
            }
        }
        let span_start = self.index[first_pos].offset;
        let last = self.index[span_end - 1];
        let span = (last.offset + last.len as u64 - span_start) as usize;
        let geometry = self.superblock.geometry;
        let mut reader = WalReader::with_chunk(&mut self.dev, &geometry, span);
        let mut bytes = 0u64;
        for (i, e) in self.index[first_pos..=last_pos].iter().enumerate() {
            let index = lo + i as u64;
            let raw = reader.read(e.offset, e.len as usize)?;
            let corrupt = |defect| StoreError::CorruptRecord { index, defect };
            record::verify(raw).map_err(corrupt)?;
            let h = record::decode_header(raw).map_err(corrupt)?;
            if h.index != index || h.term != e.term || h.record_len() != e.len as usize {
                return Err(corrupt(RecordDefect::IndexGap {
                    expected: index,
                    found: h.index,
                }));
            }
            let payload = &raw[record::HEADER_LEN..raw.len() - record::TRAILER_LEN];
            bytes += payload.len() as u64;
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(Record {
                index,
                term: h.term,
                kind: h.kind,
                chain_hash: h.chain_hash,
                payload: payload.to_vec(),
            });
        }
        Ok(out)
    }
}
