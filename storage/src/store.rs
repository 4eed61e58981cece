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
//! * [`Store::write_snapshot`], [`Store::compact_to`] and
//!   [`Store::install_snapshot`] are durable on return.
//!
//! # The circular WAL
//! Record positions are *logical*: they only grow, and the byte at
//! position `p` lives at `p % wal_bytes` in the WAL region. The live log is
//! `[start, next)`, where `start` (the position of the record at
//! `first_index`) is recorded durably in the hard-state slot; a batch that
//! does not fit before the region end starts the next lap (positions in
//! between are never read as log). An append fails with
//! [`StoreError::WalFull`] only if the live log plus the new batch would
//! exceed the region: [`Store::compact_to`] releases the prefix a snapshot
//! covers, and its space is reused once the slot naming the new start is
//! flushed (never before, so a crash never finds the old start
//! overwritten).

use alloc::vec::Vec;

use crate::device::{BlockDevice, BLOCK_SIZE};
use crate::error::StoreError;
use crate::hard_state::{HardState, SlotState};
use crate::layout::{Identity, Superblock, HARD_STATE_LBA};
use crate::open::OpenOptions;
use crate::reader::WalReader;
use crate::record::{self, Record, RecordDefect, WriteContext, FLAG_BATCH_END, MAX_PAYLOAD_BYTES};
use crate::recovery::{Scan, MAX_UNSYNCED_BYTES};
use crate::snapshot::{self, SlotGeometry, SnapshotDefect, SnapshotMeta, SNAPSHOT_HEADER_BLOCKS};

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
    /// WAL position of the record (logical; [`Store::record_extent`]
    /// reports the byte offset within the region instead).
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
    /// The current snapshot: its slot position, sequence and metadata.
    snapshot: Option<(usize, u64, SnapshotMeta)>,
    /// The current snapshot's data as open read and verified it, kept
    /// until the first [`Store::read_snapshot`] takes it (a restart reads
    /// and hashes the snapshot once, not twice).
    verified_data: Option<Vec<u8>>,
    /// The caller's mark, stamped on every record written from now on
    /// (`record.rs`; [`Store::set_mark`]).
    mark: u64,
    /// The newest mark among the records open recovered.
    recovered_mark: Option<u64>,
}

/// Where a batch of `len` encoded bytes goes when the log ends at logical
/// position `pos`: (block-aligned start, bytes of the live block prefix to
/// rewrite, padded length). A batch that would cross the region end starts
/// the next lap instead.
fn placement(pos: u64, len: usize, wal_bytes: u64) -> (u64, usize, usize) {
    let start = pos / BLOCK * BLOCK;
    let prefix = (pos - start) as usize;
    let padded = (prefix + len).div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    if !start.is_multiple_of(wal_bytes) && start % wal_bytes + padded as u64 > wal_bytes {
        let lap = start.next_multiple_of(wal_bytes);
        return (lap, 0, len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE);
    }
    (start, prefix, padded)
}

impl<D: BlockDevice> Store<D> {
    pub(crate) fn from_recovered(
        dev: D,
        superblock: Superblock,
        options: OpenOptions,
        slot: SlotState,
        slot_pos: usize,
        scan: Scan,
        snapshot: Option<(usize, u64, SnapshotMeta, Vec<u8>)>,
    ) -> Store<D> {
        let (snapshot, verified_data) = match snapshot {
            Some((pos, seq, meta, data)) => (Some((pos, seq, meta)), Some(data)),
            None => (None, None),
        };
        // An empty log continues exactly at its recorded start (which may
        // sit mid-block after a truncation back to it): the scan looks for
        // the first record there and nowhere else.
        let next_offset = if scan.ends_batch && !scan.index.is_empty() {
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
            snapshot,
            verified_data,
            mark: 0,
            recovered_mark: scan.mark,
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

    /// Sets the mark stamped on the records written from now on: an index
    /// the caller vouches for, opaque to the store (`record.rs`). Stamped
    /// only where it is below the record's index and within
    /// [`crate::record::MAX_MARK_LAG`] of it.
    pub fn set_mark(&mut self, mark: u64) {
        self.mark = mark;
    }

    /// The newest mark among the records this open recovered (those the
    /// log still holds), if any carried one.
    pub fn recovered_mark(&self) -> Option<u64> {
        self.recovered_mark
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

    /// First index held: the snapshot index + 1 once the log was
    /// compacted or a snapshot installed; 1 before.
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

    /// Where entry `index` lives: `offset` is its byte offset within the
    /// WAL region (diagnostics, tests: add [`Store::wal_device_offset`]).
    pub fn record_extent(&self, index: u64) -> Result<IndexEntry, StoreError> {
        let e = self.index[self.position(index)?];
        Ok(IndexEntry {
            offset: e.offset % self.superblock.geometry.wal_bytes(),
            ..e
        })
    }

    /// Byte offset of the WAL region on the device.
    pub fn wal_device_offset(&self) -> u64 {
        self.superblock.geometry.wal_lba * BLOCK
    }

    /// WAL bytes in use and the WAL region size.
    pub fn wal_usage(&self) -> (u64, u64) {
        (self.wal_used_bytes(), self.wal_capacity_bytes())
    }

    /// WAL bytes the live log occupies (from the block of its first record
    /// to the write position, lap gaps included).
    pub fn wal_used_bytes(&self) -> u64 {
        self.next_offset - self.live_block_start()
    }

    /// Size of the WAL region in bytes.
    pub fn wal_capacity_bytes(&self) -> u64 {
        self.superblock.geometry.wal_bytes()
    }

    /// Block-aligned logical position of the live log's first byte: no
    /// write may reach one region length past it.
    fn live_block_start(&self) -> u64 {
        let start = self.index.first().map_or(self.next_offset, |e| e.offset);
        start / BLOCK * BLOCK
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
        let mut batch = 0usize;
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
            // Never an empty batch: one record always fits (const assert;
            // a batch after a mid-block truncation also carries the
            // block's live prefix, under one block).
            if i > 0 && batch + len + BLOCK_SIZE > MAX_BATCH_BYTES {
                ends.push((i, batch));
                batch = 0;
            }
            batch += len;
            prev_term = r.term;
        }
        if !records.is_empty() {
            ends.push((records.len(), batch));
        }
        // Place every batch as `write_batch` will; none may reach one
        // region length past the live log's first block.
        let wal_bytes = self.superblock.geometry.wal_bytes();
        let limit = self.live_block_start() + wal_bytes;
        let from = self.next_offset / BLOCK * BLOCK;
        let mut pos = self.next_offset;
        for &(_, len) in &ends {
            let (start, _, padded) = placement(pos, len, wal_bytes);
            pos = start + padded as u64;
        }
        if pos > limit {
            return Err(StoreError::WalFull {
                needed: pos - from,
                available: limit.saturating_sub(from),
            });
        }
        Ok(ends.into_iter().map(|(end, _)| end).collect())
    }

    /// Write one batch at `next_offset` (one device request).
    fn write_batch(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let wal_bytes = self.superblock.geometry.wal_bytes();
        let len: usize = records.iter().map(Record::encoded_len).sum();
        let (start, prefix, padded) = placement(self.next_offset, len, wal_bytes);
        let lba = self.superblock.geometry.wal_lba + (start % wal_bytes) / BLOCK;
        let mut buf = Vec::new();
        if prefix > 0 {
            // After a truncation in mid-block: rewrite the block's live
            // records byte for byte, so even a torn write of this block
            // leaves them intact.
            let mut block = [0u8; BLOCK_SIZE];
            self.io(|d| d.read(lba, &mut block))?;
            buf.extend_from_slice(&block[..prefix]);
        }
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
            mark: self.mark,
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
        // `plan` checked the space; a violation here would overwrite live
        // records or write outside the WAL region.
        assert!(
            start + padded as u64 <= self.live_block_start() + wal_bytes
                && start % wal_bytes + padded as u64 <= wal_bytes,
            "WAL write over the live log or past the region end"
        );
        self.io(|d| d.write(lba, &buf))?;
        self.dirty = true;
        self.index.extend_from_slice(&entries);
        self.last_checksum = checksum;
        self.next_offset = start + padded as u64;
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
            None => self.slot.wal_start_offset,
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
            None => self.slot.wal_start_prev_checksum,
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

    /// The current snapshot's metadata (`None`: never written on this
    /// format of the disk).
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref().map(|(_, _, meta)| meta)
    }

    /// Index the current snapshot covers (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_meta().map_or(0, |m| m.index)
    }

    /// Most data bytes one snapshot may hold on this disk (half the
    /// snapshot region, less a header block).
    pub fn snapshot_capacity_bytes(&self) -> u64 {
        SlotGeometry::of(&self.superblock.geometry).data_capacity()
    }

    /// Store `data` as the snapshot `meta` describes (its `data_len` and
    /// `data_hash` must match `data`; [`SnapshotMeta::for_data`] computes
    /// them), in the slot not holding the current one: data, flush,
    /// header, flush. Durable and current on return; a crash before that
    /// leaves the previous snapshot current. The log is untouched: call
    /// [`Store::compact_to`] to release the prefix it covers.
    pub fn write_snapshot(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        self.check_usable()?;
        if !snapshot::fits_header(meta) || meta.index == 0 {
            return Err(StoreError::SnapshotInvalid);
        }
        if meta.data_len != data.len() as u64 || snapshot::digest(data) != meta.data_hash {
            return Err(StoreError::SnapshotDigestMismatch { index: meta.index });
        }
        let current = self.snapshot_index();
        if meta.index <= current {
            return Err(StoreError::SnapshotNotNewer {
                index: meta.index,
                current,
            });
        }
        let slots = SlotGeometry::of(&self.superblock.geometry);
        if meta.data_len > slots.data_capacity() {
            return Err(StoreError::SnapshotTooLarge {
                len: meta.data_len,
                capacity: slots.data_capacity(),
            });
        }
        let (pos, seq) = match &self.snapshot {
            Some((pos, seq, _)) => (1 - pos, seq.saturating_add(1)),
            None => (0, 1),
        };
        let data_lba = slots.header_lba(pos) + SNAPSHOT_HEADER_BLOCKS;
        for (i, chunk) in data.chunks(MAX_BATCH_BYTES).enumerate() {
            let mut buf = chunk.to_vec();
            buf.resize(chunk.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE, 0);
            let lba = data_lba + (i * MAX_BATCH_BYTES / BLOCK_SIZE) as u64;
            self.io(|d| d.write(lba, &buf))?;
            self.dirty = true;
        }
        // The data is durable before a header vouching for it exists.
        self.sync()?;
        let header = snapshot::encode_header(meta, data, self.superblock.format_epoch, seq);
        self.io(|d| d.write(slots.header_lba(pos), &header))?;
        self.dirty = true;
        self.verified_data = None;
        self.sync()?;
        self.snapshot = Some((pos, seq, meta.clone()));
        Ok(())
    }

    /// The current snapshot and its data, verified against its SHA-256
    /// (`None` without one). The first call after open returns the data
    /// open already read and verified; later calls read it again.
    pub fn read_snapshot(&mut self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        self.check_usable()?;
        let Some((pos, _, meta)) = self.snapshot.clone() else {
            return Ok(None);
        };
        if let Some(data) = self.verified_data.take() {
            return Ok(Some((meta, data)));
        }
        let slots = SlotGeometry::of(&self.superblock.geometry);
        let data = match read_slot_data(&mut self.dev, &slots, pos, meta.data_len) {
            Ok(d) => d,
            Err(e) => {
                self.failed = true;
                return Err(StoreError::Device(e));
            }
        };
        if snapshot::digest(&data) != meta.data_hash {
            return Err(StoreError::CorruptSnapshot {
                index: meta.index,
                defect: SnapshotDefect::DataMismatch,
            });
        }
        Ok(Some((meta, data)))
    }

    /// Release every entry up to `index` (Raft §7 log compaction): the log
    /// then starts at `index + 1` and the WAL space before it is reused.
    /// `index` must be covered by the current snapshot and held by the log;
    /// an `index` already released is a no-op. Durable on return (the slot
    /// naming the new start is flushed before any byte of the released
    /// space can be overwritten).
    pub fn compact_to(&mut self, index: u64) -> Result<(), StoreError> {
        self.check_usable()?;
        if index < self.first_index() {
            return Ok(());
        }
        let snapshot_index = self.snapshot_index();
        if index > snapshot_index {
            return Err(StoreError::CompactBeyondSnapshot {
                index,
                snapshot_index,
            });
        }
        let pos = self.position(index)?;
        let prev_checksum = self.stored_checksum(pos)?;
        let start = match self.index.get(pos + 1) {
            Some(e) => e.offset,
            // Nothing left: the next batch starts on a fresh block.
            None => self.next_offset.div_ceil(BLOCK) * BLOCK,
        };
        // The slot claims everything written so far is durable.
        self.sync()?;
        let slot = SlotState {
            log_start_index: index + 1,
            wal_start_offset: start,
            wal_start_prev_checksum: prev_checksum,
            wal_durable_upto: self.durable_end,
            ..self.slot
        };
        self.write_slot(slot)?;
        self.index.drain(..=pos);
        if self.index.is_empty() {
            self.next_offset = start;
        }
        self.sync()
    }

    /// A snapshot received from the leader (Raft §7 InstallSnapshot) that
    /// the log does not contain: store it ([`Store::write_snapshot`]),
    /// then discard the whole log, which restarts empty at
    /// `meta.index + 1`. Durable on return; a crash in between leaves the
    /// new snapshot over the old log, which the next open reconciles.
    pub fn install_snapshot(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        self.write_snapshot(meta, data)?;
        self.reset_log_after(meta.index)
    }

    /// Empty the log so it starts at `index + 1` on a fresh block, in a
    /// new generation whose marker makes every older record from
    /// `index + 1` on stale. Durable on return.
    pub(crate) fn reset_log_after(&mut self, index: u64) -> Result<(), StoreError> {
        self.check_usable()?;
        self.sync()?;
        let start = self.next_offset.div_ceil(BLOCK) * BLOCK;
        let slot = SlotState {
            wal_generation: self.slot.wal_generation.saturating_add(1),
            wal_truncated_from: index + 1,
            log_start_index: index + 1,
            wal_start_offset: start,
            wal_start_prev_checksum: 0,
            wal_durable_upto: self.durable_end,
            ..self.slot
        };
        self.write_slot(slot)?;
        self.index.clear();
        self.next_offset = start;
        self.last_checksum = 0;
        self.sync()
    }

    /// At open: make the log and the snapshot a consistent pair. A log
    /// that holds the snapshot's entry already is one; a snapshot whose
    /// entry the log does not hold (an install a crash interrupted before
    /// its log reset) gets the reset here.
    pub(crate) fn reconcile_snapshot(&mut self) -> Result<Option<Reconciled>, StoreError> {
        let Some(meta) = self.snapshot_meta().cloned() else {
            return Ok(None);
        };
        if meta.index < self.first_index() {
            return Ok(None);
        }
        let matches = meta.index <= self.last_index() && self.term(meta.index) == Ok(meta.term);
        if matches {
            // The log holds the snapshot's entry and some before it: a
            // consistent pair already (the entries kept before a snapshot,
            // or a compaction a crash interrupted, which the next one
            // finishes). Nothing to release here.
            Ok(None)
        } else {
            self.reset_log_after(meta.index)?;
            Ok(Some(Reconciled::Reset))
        }
    }
}

/// What open did to pair the log with a snapshot written just before a
/// crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciled {
    /// The log did not hold it (an interrupted install): the log was
    /// emptied to start after the snapshot.
    Reset,
}

/// Read `len` data bytes of snapshot slot `pos`.
pub(crate) fn read_slot_data<D: BlockDevice>(
    dev: &mut D,
    slots: &SlotGeometry,
    pos: usize,
    len: u64,
) -> Result<Vec<u8>, crate::DeviceError> {
    let len = len as usize;
    let mut data = Vec::with_capacity(len);
    let lba = slots.header_lba(pos) + SNAPSHOT_HEADER_BLOCKS;
    let mut buf = Vec::new();
    while data.len() < len {
        let want = (len - data.len()).min(MAX_BATCH_BYTES);
        buf.resize(want.div_ceil(BLOCK_SIZE) * BLOCK_SIZE, 0);
        dev.read(lba + (data.len() / BLOCK_SIZE) as u64, &mut buf)?;
        data.extend_from_slice(&buf[..want]);
    }
    Ok(data)
}
