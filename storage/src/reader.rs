//! Buffered reads of WAL byte ranges, so the recovery scan and `entries`
//! issue one device request per chunk instead of one per record.
//!
//! Offsets are logical WAL positions (they only grow; the byte lives at
//! `position % wal_bytes` in the region, see `store.rs`). A read never
//! crosses the region end: records and batches never straddle it.

use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BlockDevice, DeviceError, BLOCK_SIZE};
use crate::layout::Geometry;

/// Bytes fetched per device read when scanning the WAL (bounds the
/// reader's buffer; a single record may need up to
/// `MAX_PAYLOAD_BYTES + header`, fetched in one larger read).
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A read-through window over the WAL region.
pub struct WalReader<'a, D: BlockDevice> {
    dev: &'a mut D,
    wal_lba: u64,
    wal_bytes: u64,
    /// Logical WAL position of `window[0]` (block-aligned).
    window_start: u64,
    window: Vec<u8>,
    /// Minimum bytes fetched per device read.
    chunk: u64,
}

impl<'a, D: BlockDevice> WalReader<'a, D> {
    /// A reader over `geometry`'s WAL region of `dev`, fetching
    /// [`READ_CHUNK_BYTES`] at a time (sequential scans).
    pub fn new(dev: &'a mut D, geometry: &Geometry) -> WalReader<'a, D> {
        WalReader::with_chunk(dev, geometry, READ_CHUNK_BYTES)
    }

    /// A reader fetching at least `chunk` bytes (rounded to blocks) per
    /// device read, at most [`READ_CHUNK_BYTES`] unless one read needs more.
    pub fn with_chunk(dev: &'a mut D, geometry: &Geometry, chunk: usize) -> WalReader<'a, D> {
        WalReader {
            dev,
            wal_lba: geometry.wal_lba,
            wal_bytes: geometry.wal_bytes(),
            window_start: 0,
            window: Vec::new(),
            chunk: chunk.min(READ_CHUNK_BYTES) as u64,
        }
    }

    /// Size of the WAL region in bytes.
    pub fn wal_bytes(&self) -> u64 {
        self.wal_bytes
    }

    /// Bytes from logical position `offset` to the region end (where the
    /// next lap starts).
    pub fn left_in_lap(&self, offset: u64) -> u64 {
        self.wal_bytes - offset % self.wal_bytes
    }

    /// The bytes `[offset, offset + len)` of the WAL (logical positions).
    /// The caller checks `len <= left_in_lap(offset)`.
    pub fn read(&mut self, offset: u64, len: usize) -> Result<&[u8], DeviceError> {
        let end = offset + len as u64;
        assert!(
            len as u64 <= self.left_in_lap(offset),
            "WAL read across the region end"
        );
        let window_end = self.window_start + self.window.len() as u64;
        if offset < self.window_start || end > window_end {
            let block = BLOCK_SIZE as u64;
            let start = offset / block * block;
            let want = (end - start).max(self.chunk);
            let stop = (start + want).div_ceil(block) * block;
            let stop = stop.min(start + self.left_in_lap(start));
            self.window = vec![0; (stop - start) as usize];
            self.window_start = start;
            let lba = self.wal_lba + (start % self.wal_bytes) / block;
            if let Err(e) = self.dev.read(lba, &mut self.window) {
                self.window.clear();
                return Err(e);
            }
        }
        let at = (offset - self.window_start) as usize;
        Ok(&self.window[at..at + len])
    }
}
