//! virtio-blk (modern, PCI) as a [`continuum_storage::BlockDevice`].
//!
//! The protocol work (feature negotiation, the request virtqueue, request
//! headers) is `virtio_drivers::device::blk::VirtIOBlk`; this file adds what
//! the durable log needs on top (virtio 1.2 §5.2):
//!
//! * **Flush is mandatory.** Without `VIRTIO_BLK_F_FLUSH` (§5.2.3) the device
//!   may keep completed writes in a volatile cache forever, so nothing would
//!   ever be known durable. `VirtIOBlk::flush` silently does nothing on such
//!   a device, so we read the device's feature bits from the transport
//!   before negotiation and report [`BlockDevice::supports_flush`] from
//!   them; the store then refuses the disk unless the node config says
//!   `unsafe_no_flush = true` (benchmarks only). `VirtIOBlk` offers FLUSH in
//!   its supported set, so "device offers it" equals "negotiated".
//! * **Only heap buffers reach the device.** The heap is one physically
//!   contiguous run (see `memory`), so a heap buffer is DMA'd in place. The
//!   store sometimes passes a small buffer on the stack (a superblock read);
//!   such a request is copied through [`VirtioBlk`]'s heap staging buffer.
//! * **Bounded requests.** A request moves at most [`MAX_REQUEST_BYTES`];
//!   longer buffers are split into consecutive requests in LBA order (the
//!   store's 1 MiB group-commit write becomes four). The store tolerates a
//!   torn write of any prefix, so the split adds no new failure mode.
//!
//! # Completion: blocking, not interrupt-driven
//! The [`BlockDevice`] trait is synchronous (the store calls it from the
//! consensus node's Ready loop, inside the network task), and `VirtIOBlk`
//! has no non-blocking flush. So every request uses the blocking calls
//! (`read_blocks`/`write_blocks`/`flush`), which notify the device and spin
//! on the used ring. Used-buffer interrupts are suppressed
//! (`disable_interrupts`) and the ISR is acknowledged after every request,
//! so a disk sharing a PCI INTx line with the NIC never holds that
//! level-triggered line asserted. Cost: while a request is in flight the
//! executor runs nothing else on this CPU: no network, no apply, no
//! console. An async `BlockDevice` completed through `DeviceIrq::wait`
//! would let the other work run during a flush; there is none today.

use super::blockdev::{ascii_field, DiskInfo, DiskKind, WriteCache};
use super::virtio::KernelHal;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use continuum_storage::{check_request, BlockDevice, DeviceError, BLOCK_SIZE};
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::Transport;

/// `VIRTIO_BLK_F_FLUSH`, virtio 1.2 §5.2.3.
const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

/// Largest single request, in bytes. QEMU accepts far more; a bound keeps
/// the staging buffer small and one request's latency predictable.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

const _: () = assert!(SECTOR_SIZE == BLOCK_SIZE && MAX_REQUEST_BYTES.is_multiple_of(BLOCK_SIZE));

/// Status codes in [`DeviceError::Io`] (the virtio-blk status where the
/// device gave one, §5.2.6: 1 = `VIRTIO_BLK_S_IOERR`, 2 = `UNSUPP`).
fn io_code(error: virtio_drivers::Error) -> DeviceError {
    let code = match error {
        virtio_drivers::Error::IoError => 1,
        virtio_drivers::Error::Unsupported => 2,
        virtio_drivers::Error::NotReady => 0x100,
        virtio_drivers::Error::QueueFull => 0x101,
        virtio_drivers::Error::DmaError => 0x102,
        _ => 0x1ff,
    };
    DeviceError::Io { code }
}

/// Why a virtio-blk device could not be brought up.
#[derive(Debug)]
pub enum InitError {
    /// `virtio-drivers` refused the device (queue setup, config space).
    Driver(virtio_drivers::Error),
    /// The device is read-only; a log cannot live on it.
    ReadOnly,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Driver(e) => write!(f, "driver initialisation failed: {e}"),
            InitError::ReadOnly => f.write_str("device is read-only"),
        }
    }
}

/// One virtio-blk disk.
pub struct VirtioBlk {
    blk: VirtIOBlk<KernelHal, PciTransport>,
    capacity_blocks: u64,
    has_flush: bool,
    /// Heap staging for caller buffers outside the heap; [`MAX_REQUEST_BYTES`].
    staging: Vec<u8>,
    info: DiskInfo,
}

impl VirtioBlk {
    /// Negotiates features and sets up the request queue. `location` and
    /// `index` (its place among virtio-blk disks, PCI order) name it on
    /// the console and in the `disk = virtio:<index>` config key.
    pub fn new(
        mut transport: PciTransport,
        location: (u8, u8, u8),
        index: u32,
    ) -> Result<VirtioBlk, InitError> {
        let has_flush = transport.read_device_features() & VIRTIO_BLK_F_FLUSH != 0;
        let mut blk = VirtIOBlk::<KernelHal, _>::new(transport).map_err(InitError::Driver)?;
        if blk.readonly() {
            return Err(InitError::ReadOnly);
        }
        blk.disable_interrupts();
        let capacity_blocks = blk.capacity();
        // VIRTIO_BLK_T_GET_ID (§5.2.6): the serial QEMU was given, if any.
        let mut id = [0u8; 20];
        let serial = match blk.device_id(&mut id) {
            Ok(len) => ascii_field(&id[..len.min(id.len())]),
            Err(_) => String::new(),
        };
        let _ = blk.ack_interrupt();
        Ok(VirtioBlk {
            blk,
            capacity_blocks,
            has_flush,
            staging: vec![0; MAX_REQUEST_BYTES],
            info: DiskInfo {
                kind: DiskKind::Virtio,
                location,
                unit: index,
                model: String::from("virtio-blk"),
                serial,
                capacity_blocks,
                cache: if has_flush {
                    WriteCache::Flushed
                } else {
                    WriteCache::NoFlush
                },
            },
        })
    }

    /// What the console lists.
    pub fn info(&self) -> &DiskInfo {
        &self.info
    }

    /// Clears the device's interrupt status after a completed request (see
    /// the module docs: we never wait for the interrupt, but must not leave
    /// a shared level-triggered line asserted).
    fn acknowledge(&mut self) {
        let _ = self.blk.ack_interrupt();
    }
}

/// Whether `buf` lies wholly inside the kernel heap (physically contiguous,
/// so the device may DMA it in place).
fn in_heap(buf: &[u8]) -> bool {
    let (used, free) = crate::memory::heap_usage();
    let start = crate::KERNEL_REGION_START;
    let end = start + (used + free) as u64;
    let at = buf.as_ptr() as u64;
    at >= start && at + buf.len() as u64 <= end
}

impl BlockDevice for VirtioBlk {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn capacity_blocks(&self) -> u64 {
        self.capacity_blocks
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.capacity_blocks)?;
        let direct = in_heap(buf);
        let mut lba = lba;
        for chunk in buf.chunks_mut(MAX_REQUEST_BYTES) {
            let result = if direct {
                self.blk.read_blocks(lba as usize, chunk)
            } else {
                let staged = &mut self.staging[..chunk.len()];
                let r = self.blk.read_blocks(lba as usize, staged);
                chunk.copy_from_slice(staged);
                r
            };
            self.acknowledge();
            result.map_err(io_code)?;
            lba += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.capacity_blocks)?;
        let direct = in_heap(buf);
        let mut lba = lba;
        for chunk in buf.chunks(MAX_REQUEST_BYTES) {
            let result = if direct {
                self.blk.write_blocks(lba as usize, chunk)
            } else {
                let staged = &mut self.staging[..chunk.len()];
                staged.copy_from_slice(chunk);
                self.blk.write_blocks(lba as usize, staged)
            };
            self.acknowledge();
            result.map_err(io_code)?;
            lba += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        if !self.has_flush {
            return Err(DeviceError::FlushUnsupported);
        }
        let result = self.blk.flush();
        self.acknowledge();
        result.map_err(io_code)
    }

    fn supports_flush(&self) -> bool {
        self.has_flush
    }
}
