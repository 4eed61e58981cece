//! NVMe (PCI class 01h/08h/02h) as a [`continuum_storage::BlockDevice`]:
//! one admin queue pair, one I/O queue pair, the first active namespace.
//!
//! Bring-up follows NVMe Base Specification 1.4 §7.6.1 (controller
//! initialisation): disable (CC.EN = 0, wait CSTS.RDY = 0), program the
//! admin queues (AQA/ASQ/ACQ, §3.1.8-3.1.10), enable with 64-byte
//! submission and 16-byte completion entries and 4 KiB pages, wait
//! CSTS.RDY = 1 within CAP.TO. Then Identify Controller (CNS 01h) for
//! model, serial, MDTS and the volatile-write-cache bit, the active
//! namespace list (CNS 02h), Identify Namespace (CNS 00h) for size and LBA
//! format, Set Features *Number of Queues* (§5.21.1.7), and Create I/O
//! Completion / Submission Queue (§5.3, §5.4).
//!
//! * **Flush.** Identify Controller byte 525 (VWC, §5.15.2.2) says whether
//!   the controller has a volatile write cache. Flush (NVM command set
//!   §6.8) is mandatory for every NVM controller, so
//!   [`BlockDevice::supports_flush`] is always true and [`Nvme::flush`]
//!   issues it, cache or not (without a cache it is a cheap no-op).
//! * **Data transfer.** Every command moves at most
//!   [`MAX_TRANSFER_BYTES`] (or less if MDTS says so) through a
//!   driver-owned contiguous buffer. PRP1 points at its first page; for two
//!   pages PRP2 is the second, for more PRP2 points at a PRP list
//!   (§4.3: every entry after the first is page-aligned) in its own page.
//! * **Blocks.** The store lays out 512-byte blocks; a namespace formatted
//!   with another LBA size is refused (reformat it to 512e with the vendor
//!   tool, or add a translation layer here).
//!
//! # Completion: polling the phase tag, bounded
//! Until the async-disk work lands the trait is synchronous, so each
//! command is submitted (SQ tail doorbell, §3.1.24) and the driver spins on
//! the next completion entry's phase tag (§4.6: it flips each pass through
//! the queue) for at most [`ADMIN_TIMEOUT_MS`] / [`IO_TIMEOUT_MS`]; a
//! timeout is an I/O error with [`TIMEOUT_CODE`], and so is every later
//! command (the lost command could still complete into the queue). Controller interrupts are
//! masked (INTMS, §3.1.3) and PCI INTx is disabled, so the disk never holds
//! a shared interrupt line asserted.
//!
//! # Files
//! * `regs`: register offsets, opcodes, queue geometry, timeouts.
//! * `queue`: the queue pairs and command submission/completion.
//! * `init`: controller bring-up and Identify.
//! * this file: [`Nvme::new`] and the [`BlockDevice`] front end.
//!
//! A driver: it knows nothing of the store or the node above it.

mod init;
mod queue;
mod regs;

use super::blockdev::{DiskInfo, DiskKind, Dma, Regs, WriteCache, MAX_TRANSFER_BYTES, PAGE};
use alloc::string::String;
use continuum_storage::{check_request, BlockDevice, DeviceError, BLOCK_SIZE};
pub use init::InitError;
pub use queue::CommandError;
use queue::{set_prp1, QueuePair};
use regs::*;

/// One NVMe namespace on its controller.
pub struct Nvme {
    regs: Regs,
    /// Bytes between doorbells: 4 << CAP.DSTRD (§3.1.1).
    doorbell_stride: usize,
    admin: QueuePair,
    io: QueuePair,
    nsid: u32,
    capacity_blocks: u64,
    max_transfer_bytes: usize,
    next_command_id: u16,
    /// Set when a command timed out or completed out of turn: the queues no
    /// longer match the controller's view, so nothing more is submitted.
    broken: bool,
    /// Data staging buffer, [`MAX_TRANSFER_BYTES`].
    buffer: Dma,
    /// One page of PRP entries for transfers of more than two pages.
    prp_list: Dma,
    info: DiskInfo,
}

impl Nvme {
    /// Resets and initialises the controller behind BAR 0 (`bar_phys`,
    /// `bar_len`), which the caller has enabled for memory and bus mastering.
    pub fn new(bar_phys: u64, bar_len: u64, location: (u8, u8, u8)) -> Result<Nvme, InitError> {
        // The registers and the doorbells (at most 64 KiB of the BAR).
        let regs = Regs::map(bar_phys, (bar_len as usize).min(0x1_0000));
        let cap = regs.read64(REG_CAP);
        if cap >> 37 & 1 == 0 {
            return Err(InitError::NoNvmCommandSet);
        }
        let mpsmin = (cap >> 48) & 0xf;
        if mpsmin != 0 {
            return Err(InitError::PageSize {
                min_bytes: 4096 << mpsmin,
            });
        }
        let ready_timeout_ms = ((cap >> 24) & 0xff).max(1) * 500; // CAP.TO
                                                                  // CAP.MQES is 0's based and at least 1 (§3.1.1): two entries or more.
        let entries = ((cap & 0xffff) + 1).clamp(2, u64::from(QUEUE_ENTRIES)) as u16;
        let doorbell_stride = 4usize << ((cap >> 32) & 0xf);
        if DOORBELLS + 4 * doorbell_stride > (bar_len as usize).min(0x1_0000) {
            return Err(InitError::DoorbellsOutsideBar);
        }
        let mut nvme = Nvme {
            regs,
            doorbell_stride,
            admin: QueuePair::new(0, entries)?,
            io: QueuePair::new(1, entries)?,
            nsid: 0,
            capacity_blocks: 0,
            max_transfer_bytes: MAX_TRANSFER_BYTES,
            next_command_id: 0,
            broken: false,
            buffer: Dma::alloc(MAX_TRANSFER_BYTES).ok_or(InitError::NoMemory)?,
            prp_list: Dma::alloc(PAGE).ok_or(InitError::NoMemory)?,
            info: DiskInfo {
                kind: DiskKind::Nvme,
                location,
                unit: 0,
                model: String::new(),
                serial: String::new(),
                capacity_blocks: 0,
                cache: WriteCache::Flushed,
            },
        };
        nvme.reset(ready_timeout_ms, entries)?;
        nvme.identify()?;
        nvme.create_io_queues(entries)?;
        Ok(nvme)
    }

    /// What the console lists.
    pub fn info(&self) -> &DiskInfo {
        &self.info
    }

    /// One read or write of at most `max_transfer_bytes` through the buffer.
    fn transfer(&mut self, opcode: u8, lba: u64, len: usize) -> Result<(), DeviceError> {
        let pages = len.div_ceil(PAGE);
        let mut command = [0u32; 16];
        command[0] = u32::from(opcode);
        command[1] = self.nsid;
        set_prp1(&mut command, self.buffer.phys);
        let prp2 = match pages {
            1 => 0,
            2 => self.buffer.phys + PAGE as u64,
            _ => {
                for i in 1..pages {
                    let entry = self.buffer.phys + (i * PAGE) as u64;
                    self.prp_list.write32(8 * (i - 1), entry as u32);
                    self.prp_list.write32(8 * (i - 1) + 4, (entry >> 32) as u32);
                }
                self.prp_list.phys
            }
        };
        command[8] = prp2 as u32;
        command[9] = (prp2 >> 32) as u32;
        command[10] = lba as u32;
        command[11] = (lba >> 32) as u32;
        command[12] = (len / BLOCK_SIZE - 1) as u32; // NLB, 0's based
        self.execute(false, command, IO_TIMEOUT_MS)
            .map(|_| ())
            .map_err(CommandError::device_error)
    }
}

impl BlockDevice for Nvme {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn capacity_blocks(&self) -> u64 {
        self.capacity_blocks
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.capacity_blocks)?;
        let mut lba = lba;
        for chunk in buf.chunks_mut(self.max_transfer_bytes) {
            self.transfer(NVM_READ, lba, chunk.len())?;
            chunk.copy_from_slice(&self.buffer.bytes()[..chunk.len()]);
            lba += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.capacity_blocks)?;
        let mut lba = lba;
        for chunk in buf.chunks(self.max_transfer_bytes) {
            self.buffer.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
            self.transfer(NVM_WRITE, lba, chunk.len())?;
            lba += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        let mut command = [0u32; 16];
        command[0] = u32::from(NVM_FLUSH);
        command[1] = self.nsid;
        self.execute(false, command, IO_TIMEOUT_MS)
            .map(|_| ())
            .map_err(CommandError::device_error)
    }

    fn supports_flush(&self) -> bool {
        true
    }
}
