//! The block-device trait: the one seam between the portable log format and
//! a disk driver.
//!
//! virtio-blk (and later AHCI or NVMe) implements this trait in the kernel;
//! [`crate::MemDisk`] implements it for host tests with injected faults.
//! The trait is synchronous on purpose: the kernel drives the store from its
//! WAL-writer task, which may block (or spin) on the device; nothing here
//! needs to interleave with other work.
//!
//! Contract the store relies on (and every implementation must keep):
//! * `read`/`write` move whole blocks: the buffer length is a non-zero
//!   multiple of [`BlockDevice::block_size`], starting at `lba`.
//! * A completed `write` may still sit in a volatile cache: it is only
//!   durable after a later `flush` returns `Ok`. Writes that are not yet
//!   flushed may be lost, or survive in any per-block subset, on power loss.
//! * A write interrupted by power loss may persist only a prefix of its
//!   bytes ("torn write"). The store never overwrites durable bytes with
//!   different bytes, so a torn write can only damage data that was never
//!   acknowledged.

use core::fmt;

/// Block size the on-disk format is laid out in. Every device we target
/// (virtio-blk, AHCI, NVMe in 512e mode) exposes 512-byte logical blocks;
/// a device reporting another size is refused at open.
pub const BLOCK_SIZE: usize = 512;

/// A failure reported by a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The request reaches past the end of the device.
    OutOfRange {
        /// First block of the request.
        lba: u64,
        /// Number of blocks requested.
        blocks: u64,
        /// Device capacity in blocks.
        capacity: u64,
    },
    /// The buffer is empty or not a multiple of the block size.
    Misaligned {
        /// Buffer length in bytes.
        len: usize,
    },
    /// The device reported an I/O error (media error, bus error, the device
    /// went away). `code` is driver-specific (virtio-blk status, ATA error).
    Io {
        /// Driver-specific status code.
        code: u32,
    },
    /// The device has no cache-flush command (virtio-blk without
    /// `VIRTIO_BLK_F_FLUSH`).
    FlushUnsupported,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::OutOfRange {
                lba,
                blocks,
                capacity,
            } => write!(
                f,
                "block request [{lba}, {lba}+{blocks}) is beyond the device end ({capacity} blocks)"
            ),
            DeviceError::Misaligned { len } => {
                write!(
                    f,
                    "buffer of {len} bytes is not a whole number of {BLOCK_SIZE}-byte blocks"
                )
            }
            DeviceError::Io { code } => write!(f, "device I/O error (status {code:#x})"),
            DeviceError::FlushUnsupported => write!(f, "device has no cache flush command"),
        }
    }
}

/// A disk addressed in fixed-size logical blocks.
pub trait BlockDevice {
    /// Logical block size in bytes (the store requires [`BLOCK_SIZE`]).
    fn block_size(&self) -> usize;

    /// Capacity in blocks.
    fn capacity_blocks(&self) -> u64;

    /// Read `buf.len() / block_size()` blocks starting at `lba` into `buf`.
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError>;

    /// Write `buf.len() / block_size()` blocks starting at `lba`. Not durable
    /// until a later [`BlockDevice::flush`] returns `Ok`.
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError>;

    /// Make every completed write durable (virtio-blk `VIRTIO_BLK_T_FLUSH`,
    /// ATA FLUSH CACHE, NVMe Flush). Returns only once the device says so.
    fn flush(&mut self) -> Result<(), DeviceError>;

    /// Whether [`BlockDevice::flush`] is backed by a real cache-flush
    /// command. Without it nothing is ever known to be durable; the store
    /// refuses such a device unless told otherwise (benchmarks only).
    fn supports_flush(&self) -> bool;
}

/// Check a request against a device's geometry; shared by implementations.
pub fn check_request(lba: u64, len: usize, capacity: u64) -> Result<(), DeviceError> {
    if len == 0 || !len.is_multiple_of(BLOCK_SIZE) {
        return Err(DeviceError::Misaligned { len });
    }
    let blocks = (len / BLOCK_SIZE) as u64;
    match lba.checked_add(blocks) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(DeviceError::OutOfRange {
            lba,
            blocks,
            capacity,
        }),
    }
}
