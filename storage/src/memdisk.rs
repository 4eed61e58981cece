//! An in-memory [`BlockDevice`] with a volatile write cache and injectable
//! faults, for host tests and benchmarks (no_std + alloc, so it can also
//! back a RAM disk in the kernel).
//!
//! The model keeps two images: `visible` (what reads return: every completed
//! write) and `durable` (what survives power loss: only flushed writes).
//! Faults:
//! * [`MemDisk::crash`] drops unflushed writes, or keeps a random per-block
//!   subset of them ([`CrashMode::KeepRandomSubset`]) to model a device cache
//!   that reorders writes.
//! * [`MemDisk::tear_next_write`]: the next write persists only its first
//!   `k` bytes and the power fails during it: every later request fails
//!   until [`MemDisk::crash`].
//! * [`MemDisk::cut_power_after`]: power fails at the n-th next device
//!   operation (write or flush); a write cut that way keeps a prefix of
//!   its bytes. The simulator arms it around every persistence step to
//!   cut power at every operation inside it.
//! * [`MemDisk::flip_bit`]: media corruption at a chosen byte.
//! * [`MemDisk::fail_reads`]: reads touching a block range report an error.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use continuum_raft::SplitMix64;
use core::ops::Range;

use crate::device::{check_request, BlockDevice, DeviceError, BLOCK_SIZE};

/// Status code [`MemDisk`] reports after simulated power loss.
pub const POWER_LOST: u32 = 0xDEAD;
/// Status code [`MemDisk`] reports for an injected read error.
pub const INJECTED_READ_ERROR: u32 = 0xBAD;

/// What happens to unflushed writes on [`MemDisk::crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every write since the last flush is lost.
    LoseUnflushed,
    /// Each block written since the last flush independently survives with
    /// probability 1/2 (seeded), modelling a cache that reorders writes.
    KeepRandomSubset {
        /// Seed for the per-block coin flips.
        seed: u64,
    },
}

/// In-memory block device; see the module docs.
#[derive(Debug, Clone)]
pub struct MemDisk {
    visible: Vec<u8>,
    durable: Vec<u8>,
    /// Blocks written since the last flush (bounded by the disk size).
    unflushed: BTreeSet<u64>,
    flush_supported: bool,
    /// (writes to let through first, bytes of the torn write to keep)
    torn_write: Option<(u64, usize)>,
    /// (write or flush operations to let through first, bytes of a cut
    /// write to keep)
    power_cut: Option<(u64, usize)>,
    powered_off: bool,
    failing_reads: Option<Range<u64>>,
    /// Completed write requests (statistics for tests and benches).
    pub writes: u64,
    /// Completed flush requests.
    pub flushes: u64,
}

impl MemDisk {
    /// A zero-filled disk of `capacity_blocks` blocks with flush support.
    pub fn new(capacity_blocks: u64) -> MemDisk {
        let bytes = (capacity_blocks as usize) * BLOCK_SIZE;
        MemDisk {
            visible: vec![0; bytes],
            durable: vec![0; bytes],
            unflushed: BTreeSet::new(),
            flush_supported: true,
            torn_write: None,
            power_cut: None,
            powered_off: false,
            failing_reads: None,
            writes: 0,
            flushes: 0,
        }
    }

    /// Declare whether the device has a flush command.
    pub fn set_flush_supported(&mut self, supported: bool) {
        self.flush_supported = supported;
    }

    /// Power loss: the durable image becomes what reads return; unflushed
    /// writes are lost or kept per `mode`. Clears a pending torn write and
    /// powers the disk back on.
    pub fn crash(&mut self, mode: CrashMode) {
        let mut rng = match mode {
            CrashMode::LoseUnflushed => None,
            CrashMode::KeepRandomSubset { seed } => Some(SplitMix64::new(seed)),
        };
        for &lba in &self.unflushed {
            let range = block_range(lba);
            let keep = rng.as_mut().is_some_and(|r| r.next_u64() & 1 == 1);
            if keep {
                self.durable[range.clone()].copy_from_slice(&self.visible[range]);
            } else {
                self.visible[range.clone()].copy_from_slice(&self.durable[range]);
            }
        }
        self.unflushed.clear();
        self.torn_write = None;
        self.power_cut = None;
        self.powered_off = false;
    }

    /// The next write persists only its first `keep_bytes` bytes (durably:
    /// they reached the media before the power failed), then the disk is
    /// powered off until [`MemDisk::crash`].
    pub fn tear_next_write(&mut self, keep_bytes: usize) {
        self.tear_write(0, keep_bytes);
    }

    /// Let `skip` more writes complete normally, then tear the one after
    /// (as [`MemDisk::tear_next_write`]).
    pub fn tear_write(&mut self, skip: u64, keep_bytes: usize) {
        self.torn_write = Some((skip, keep_bytes));
    }

    /// Let `skip` more device operations (writes and flushes) complete,
    /// then fail the next one with power loss: a write keeps its first
    /// `keep_bytes` bytes (durably, as [`MemDisk::tear_next_write`]), a
    /// flush makes nothing durable. The disk stays off until
    /// [`MemDisk::crash`]. Replaces an earlier `cut_power_after`.
    pub fn cut_power_after(&mut self, skip: u64, keep_bytes: usize) {
        self.power_cut = Some((skip, keep_bytes));
    }

    /// Disarm [`MemDisk::cut_power_after`] if it has not fired.
    pub fn cancel_power_cut(&mut self) {
        self.power_cut = None;
    }

    /// Whether the power is off (an injected cut fired; only
    /// [`MemDisk::crash`] turns it back on).
    pub fn powered_off(&self) -> bool {
        self.powered_off
    }

    /// Counts down an armed power cut; `Some(keep)` if it fires now.
    fn power_cut_fires(&mut self) -> Option<usize> {
        match self.power_cut {
            Some((0, keep)) => {
                self.power_cut = None;
                self.powered_off = true;
                Some(keep)
            }
            Some((skip, keep)) => {
                self.power_cut = Some((skip - 1, keep));
                None
            }
            None => None,
        }
    }

    /// Flip bit `bit` (0..8) of the byte at `byte_offset` in both images.
    pub fn flip_bit(&mut self, byte_offset: usize, bit: u8) {
        assert!(bit < 8, "bit index {bit} out of range");
        self.visible[byte_offset] ^= 1 << bit;
        self.durable[byte_offset] ^= 1 << bit;
    }

    /// Reads touching any block in `lbas` fail until cleared with `None`.
    pub fn fail_reads(&mut self, lbas: Option<Range<u64>>) {
        self.failing_reads = lbas;
    }

    /// The durable image (what a crash would leave).
    pub fn durable_image(&self) -> &[u8] {
        &self.durable
    }

    /// Overwrite bytes of both images directly (test set-up: blank a
    /// region, plant a foreign superblock, ...).
    pub fn poke(&mut self, byte_offset: usize, bytes: &[u8]) {
        let range = byte_offset..byte_offset + bytes.len();
        self.visible[range.clone()].copy_from_slice(bytes);
        self.durable[range].copy_from_slice(bytes);
    }

    fn capacity(&self) -> u64 {
        (self.visible.len() / BLOCK_SIZE) as u64
    }
}

fn block_range(lba: u64) -> Range<usize> {
    let start = lba as usize * BLOCK_SIZE;
    start..start + BLOCK_SIZE
}

impl BlockDevice for MemDisk {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn capacity_blocks(&self) -> u64 {
        self.capacity()
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        if self.powered_off {
            return Err(DeviceError::Io { code: POWER_LOST });
        }
        check_request(lba, buf.len(), self.capacity())?;
        let blocks = (buf.len() / BLOCK_SIZE) as u64;
        if let Some(bad) = &self.failing_reads {
            if lba < bad.end && bad.start < lba + blocks {
                return Err(DeviceError::Io {
                    code: INJECTED_READ_ERROR,
                });
            }
        }
        let start = lba as usize * BLOCK_SIZE;
        buf.copy_from_slice(&self.visible[start..start + buf.len()]);
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        if self.powered_off {
            return Err(DeviceError::Io { code: POWER_LOST });
        }
        check_request(lba, buf.len(), self.capacity())?;
        let start = lba as usize * BLOCK_SIZE;
        if let Some(keep) = self.power_cut_fires() {
            let keep = keep.min(buf.len());
            self.durable[start..start + keep].copy_from_slice(&buf[..keep]);
            self.visible[start..start + keep].copy_from_slice(&buf[..keep]);
            return Err(DeviceError::Io { code: POWER_LOST });
        }
        if let Some((skip, keep)) = self.torn_write {
            if skip > 0 {
                self.torn_write = Some((skip - 1, keep));
            }
        }
        if let Some((0, keep)) = self.torn_write {
            self.torn_write = None;
            let keep = keep.min(buf.len());
            self.durable[start..start + keep].copy_from_slice(&buf[..keep]);
            self.visible[start..start + keep].copy_from_slice(&buf[..keep]);
            self.powered_off = true;
            return Err(DeviceError::Io { code: POWER_LOST });
        }
        self.visible[start..start + buf.len()].copy_from_slice(buf);
        let blocks = (buf.len() / BLOCK_SIZE) as u64;
        self.unflushed.extend(lba..lba + blocks);
        self.writes += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        if self.powered_off {
            return Err(DeviceError::Io { code: POWER_LOST });
        }
        if !self.flush_supported {
            return Err(DeviceError::FlushUnsupported);
        }
        if self.power_cut_fires().is_some() {
            return Err(DeviceError::Io { code: POWER_LOST });
        }
        for &lba in &self.unflushed {
            let range = block_range(lba);
            self.durable[range.clone()].copy_from_slice(&self.visible[range]);
        }
        self.unflushed.clear();
        self.flushes += 1;
        Ok(())
    }

    fn supports_flush(&self) -> bool {
        self.flush_supported
    }
}
