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

use super::blockdev::{
    ascii_field, poll_until, DiskInfo, DiskKind, Dma, Regs, WriteCache, MAX_TRANSFER_BYTES, PAGE,
};
use alloc::string::String;
use continuum_storage::{check_request, BlockDevice, DeviceError, BLOCK_SIZE};
use core::fmt;
use core::sync::atomic::{fence, Ordering};

// Controller registers (§3.1).
const REG_CAP: usize = 0x00;
const REG_INTMS: usize = 0x0c;
const REG_CC: usize = 0x14;
const REG_CSTS: usize = 0x1c;
const REG_AQA: usize = 0x24;
const REG_ASQ: usize = 0x28;
const REG_ACQ: usize = 0x30;
const DOORBELLS: usize = 0x1000;

const CC_EN: u32 = 1;
/// CC.IOSQES = 6 (64-byte entries), CC.IOCQES = 4 (16-byte entries).
const CC_ENTRY_SIZES: u32 = 6 << 16 | 4 << 20;
const CSTS_RDY: u32 = 1;
const CSTS_CFS: u32 = 1 << 1;

// Opcodes: admin (§5) and NVM (NVM command set §6).
const ADMIN_CREATE_SQ: u8 = 0x01;
const ADMIN_CREATE_CQ: u8 = 0x05;
const ADMIN_IDENTIFY: u8 = 0x06;
const ADMIN_SET_FEATURES: u8 = 0x09;
const NVM_FLUSH: u8 = 0x00;
const NVM_WRITE: u8 = 0x01;
const NVM_READ: u8 = 0x02;
const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// Entries per queue (each queue is one page; one command is in flight at
/// a time, so depth only has to exceed one).
const QUEUE_ENTRIES: u16 = 16;
const SQ_ENTRY_BYTES: usize = 64;
const CQ_ENTRY_BYTES: usize = 16;
/// Longest wait for an admin command (Identify, queue creation).
pub const ADMIN_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for a read, write or flush before it is an I/O error.
pub const IO_TIMEOUT_MS: u64 = 30_000;
/// [`DeviceError::Io`] code of a command that did not complete in time,
/// and of every command after it: a controller that lost a command is not
/// trusted again until reboot (other codes are the NVMe status, SCT << 8 |
/// SC, §4.6.1.2).
pub const TIMEOUT_CODE: u32 = 0x1_0000;
/// Status reported when a completion names another command than the one
/// in flight (a controller bug); the controller is not used again.
const STATUS_WRONG_COMPLETION: u16 = 0xffff;

/// Why an NVMe controller could not be brought up.
#[derive(Debug)]
pub enum InitError {
    NoMemory,
    /// CAP.CSS says the NVM command set is not supported.
    NoNvmCommandSet,
    /// CAP.MPSMIN is above 4 KiB.
    PageSize {
        min_bytes: u64,
    },
    /// CSTS.RDY did not reach the wanted value within CAP.TO.
    NotReady {
        enable: bool,
        timeout_ms: u64,
    },
    /// CSTS.CFS: the controller reported a fatal error.
    Fatal,
    Command(CommandError),
    NoNamespace,
    /// CAP.DSTRD puts queue 1's doorbells beyond the mapped BAR.
    DoorbellsOutsideBar,
    /// The namespace's LBA size is not 512 bytes.
    BlockSize {
        bytes: u64,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NoMemory => f.write_str("no contiguous memory for queues"),
            InitError::NoNvmCommandSet => f.write_str("controller lacks the NVM command set"),
            InitError::PageSize { min_bytes } => {
                write!(f, "smallest memory page {min_bytes} bytes, above 4096")
            }
            InitError::NotReady { enable, timeout_ms } => write!(
                f,
                "controller did not {} within {timeout_ms} ms",
                if *enable { "become ready" } else { "reset" }
            ),
            InitError::Fatal => f.write_str("controller fatal status (CSTS.CFS)"),
            InitError::Command(e) => write!(f, "{e}"),
            InitError::NoNamespace => f.write_str("no active namespace"),
            InitError::DoorbellsOutsideBar => {
                f.write_str("the doorbell stride puts queue 1's doorbells outside BAR 0")
            }
            InitError::BlockSize { bytes } => write!(
                f,
                "namespace uses {bytes}-byte blocks; the log needs {BLOCK_SIZE}-byte (512e) blocks"
            ),
        }
    }
}

/// A command that failed.
#[derive(Debug, Clone, Copy)]
pub struct CommandError {
    pub opcode: u8,
    pub admin: bool,
    /// `None`: no completion within the timeout. Else SCT << 8 | SC.
    pub status: Option<u16>,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = if self.admin { "admin" } else { "I/O" };
        match self.status {
            None => write!(f, "{set} command {:#04x} timed out", self.opcode),
            Some(s) => write!(
                f,
                "{set} command {:#04x} failed: status type {}, code {:#04x}",
                self.opcode,
                s >> 8,
                s & 0xff
            ),
        }
    }
}

impl CommandError {
    fn device_error(self) -> DeviceError {
        DeviceError::Io {
            code: self.status.map_or(TIMEOUT_CODE, u32::from),
        }
    }
}

/// A submission queue and its completion queue.
struct QueuePair {
    id: u16,
    sq: Dma,
    cq: Dma,
    entries: u16,
    sq_tail: u16,
    cq_head: u16,
    /// Phase tag a new completion entry carries (starts at 1, §4.6).
    phase: bool,
}

impl QueuePair {
    fn new(id: u16, entries: u16) -> Result<QueuePair, InitError> {
        Ok(QueuePair {
            id,
            entries,
            sq: Dma::alloc(usize::from(QUEUE_ENTRIES) * SQ_ENTRY_BYTES)
                .ok_or(InitError::NoMemory)?,
            cq: Dma::alloc(usize::from(QUEUE_ENTRIES) * CQ_ENTRY_BYTES)
                .ok_or(InitError::NoMemory)?,
            sq_tail: 0,
            cq_head: 0,
            phase: true,
        })
    }
}

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

    /// §7.6.1 steps 1-7: disable, program the admin queues, enable.
    fn reset(&mut self, timeout_ms: u64, entries: u16) -> Result<(), InitError> {
        let regs = self.regs;
        regs.write32(REG_CC, regs.read32(REG_CC) & !CC_EN);
        if !poll_until(timeout_ms, || regs.read32(REG_CSTS) & CSTS_RDY == 0) {
            return Err(InitError::NotReady {
                enable: false,
                timeout_ms,
            });
        }
        let size = u32::from(entries - 1);
        regs.write32(REG_AQA, size << 16 | size);
        regs.write64(REG_ASQ, self.admin.sq.phys);
        regs.write64(REG_ACQ, self.admin.cq.phys);
        // CSS = 0 (NVM), MPS = 0 (4 KiB), AMS = 0 (round robin); the
        // fields are set while disabled, then EN (§7.6.1 step 5-6).
        regs.write32(REG_CC, CC_ENTRY_SIZES);
        regs.write32(REG_CC, CC_ENTRY_SIZES | CC_EN);
        let ready = poll_until(timeout_ms, || {
            regs.read32(REG_CSTS) & (CSTS_RDY | CSTS_CFS) != 0
        });
        if regs.read32(REG_CSTS) & CSTS_CFS != 0 {
            return Err(InitError::Fatal);
        }
        if !ready {
            return Err(InitError::NotReady {
                enable: true,
                timeout_ms,
            });
        }
        // Polled: mask every interrupt vector (§3.1.3, INTx/MSI only).
        regs.write32(REG_INTMS, u32::MAX);
        Ok(())
    }

    fn identify(&mut self) -> Result<(), InitError> {
        // Identify Controller (CNS 01h), Figure 247 of §5.15.2.2.
        self.admin_identify(1, 0)?;
        let id = self.buffer.bytes();
        let serial = ascii_field(&id[4..24]);
        let model = ascii_field(&id[24..64]);
        let mdts = id[77];
        let volatile_cache = id[525] & 1 != 0;
        if mdts != 0 {
            self.max_transfer_bytes = MAX_TRANSFER_BYTES.min(PAGE << mdts.min(20));
        }
        // Active namespace list (CNS 02h): ascending ids, zero-terminated.
        self.admin_identify(2, 0)?;
        let nsid = u32::from_le_bytes(self.buffer.bytes()[0..4].try_into().unwrap());
        if nsid == 0 {
            return Err(InitError::NoNamespace);
        }
        // Identify Namespace (CNS 00h), Figure 245: NSZE at 0, FLBAS at
        // 26, the LBA formats from byte 128 (LBADS in bits 23:16).
        self.admin_identify(0, nsid)?;
        let ns = self.buffer.bytes();
        let nsze = u64::from_le_bytes(ns[0..8].try_into().unwrap());
        let format = usize::from(ns[26] & 0xf);
        let lbads = ns[128 + 4 * format + 2];
        if lbads != 9 {
            return Err(InitError::BlockSize {
                bytes: 1u64.checked_shl(u32::from(lbads)).unwrap_or(0),
            });
        }
        self.nsid = nsid;
        self.capacity_blocks = nsze;
        self.info.unit = nsid;
        self.info.model = model;
        self.info.serial = serial;
        self.info.capacity_blocks = nsze;
        self.info.cache = if volatile_cache {
            WriteCache::Flushed
        } else {
            WriteCache::None
        };
        Ok(())
    }

    fn admin_identify(&mut self, cns: u32, nsid: u32) -> Result<(), InitError> {
        let mut command = [0u32; 16];
        command[0] = u32::from(ADMIN_IDENTIFY);
        command[1] = nsid;
        set_prp1(&mut command, self.buffer.phys);
        command[10] = cns;
        self.execute(true, command, ADMIN_TIMEOUT_MS)
            .map(|_| ())
            .map_err(InitError::Command)
    }

    fn create_io_queues(&mut self, entries: u16) -> Result<(), InitError> {
        // Ask for one queue of each kind (0's based counts, §5.21.1.7).
        let mut command = [0u32; 16];
        command[0] = u32::from(ADMIN_SET_FEATURES);
        command[10] = FEATURE_NUMBER_OF_QUEUES;
        self.execute(true, command, ADMIN_TIMEOUT_MS)
            .map_err(InitError::Command)?;
        let size = u32::from(entries - 1) << 16 | u32::from(self.io.id);
        // Create I/O Completion Queue (§5.3): physically contiguous (PC),
        // interrupts disabled (IEN = 0).
        let mut command = [0u32; 16];
        command[0] = u32::from(ADMIN_CREATE_CQ);
        set_prp1(&mut command, self.io.cq.phys);
        command[10] = size;
        command[11] = 1;
        self.execute(true, command, ADMIN_TIMEOUT_MS)
            .map_err(InitError::Command)?;
        // Create I/O Submission Queue (§5.4): contiguous, on CQ 1.
        let mut command = [0u32; 16];
        command[0] = u32::from(ADMIN_CREATE_SQ);
        set_prp1(&mut command, self.io.sq.phys);
        command[10] = size;
        command[11] = u32::from(self.io.id) << 16 | 1;
        self.execute(true, command, ADMIN_TIMEOUT_MS)
            .map_err(InitError::Command)?;
        Ok(())
    }

    /// What the console lists.
    pub fn info(&self) -> &DiskInfo {
        &self.info
    }

    /// Submits `command` on the admin or I/O queue and polls for its
    /// completion; `Ok` carries completion dword 0.
    fn execute(
        &mut self,
        admin: bool,
        mut command: [u32; 16],
        timeout_ms: u64,
    ) -> Result<u32, CommandError> {
        let opcode = command[0] as u8;
        let error = |status| CommandError {
            opcode,
            admin,
            status,
        };
        if self.broken {
            return Err(error(None));
        }
        let command_id = self.next_command_id;
        self.next_command_id = self.next_command_id.wrapping_add(1);
        command[0] |= u32::from(command_id) << 16;
        let stride = self.doorbell_stride;
        let regs = self.regs;
        let queue = if admin { &mut self.admin } else { &mut self.io };
        let entries = queue.entries;
        let slot = usize::from(queue.sq_tail) * SQ_ENTRY_BYTES;
        for (i, dword) in command.iter().enumerate() {
            queue.sq.write32(slot + 4 * i, *dword);
        }
        queue.sq_tail = (queue.sq_tail + 1) % entries;
        // The entry must be in memory before the doorbell tells the device.
        fence(Ordering::SeqCst);
        let qid = usize::from(queue.id);
        regs.write32(DOORBELLS + 2 * qid * stride, u32::from(queue.sq_tail));
        let entry = usize::from(queue.cq_head) * CQ_ENTRY_BYTES;
        let phase = queue.phase;
        let cq = &queue.cq;
        let arrived = poll_until(timeout_ms, || {
            (cq.read32(entry + 12) >> 16 & 1 == 1) == phase
        });
        if !arrived {
            self.broken = true;
            return Err(error(None));
        }
        fence(Ordering::SeqCst);
        let dw0 = queue.cq.read32(entry);
        let dw3 = queue.cq.read32(entry + 12);
        queue.cq_head = (queue.cq_head + 1) % entries;
        if queue.cq_head == 0 {
            queue.phase = !queue.phase;
        }
        regs.write32(DOORBELLS + (2 * qid + 1) * stride, u32::from(queue.cq_head));
        // One command in flight at a time: the completion must be ours.
        if dw3 & 0xffff != u32::from(command_id) {
            self.broken = true;
            return Err(error(Some(STATUS_WRONG_COMPLETION)));
        }
        // Status field (§4.6.1): SC in bits 24:17, SCT in 27:25.
        let status = ((dw3 >> 17) & 0xff) | ((dw3 >> 25) & 0x7) << 8;
        if status != 0 {
            return Err(error(Some(status as u16)));
        }
        Ok(dw0)
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

fn set_prp1(command: &mut [u32; 16], phys: u64) {
    command[6] = phys as u32;
    command[7] = (phys >> 32) as u32;
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
