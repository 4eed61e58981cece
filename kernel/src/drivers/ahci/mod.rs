//! AHCI (PCI class 01h/06h/01h) SATA disks as
//! [`continuum_storage::BlockDevice`]s: one command slot per port,
//! READ DMA EXT, WRITE DMA EXT, FLUSH CACHE EXT.
//!
//! Bring-up follows AHCI 1.3.1 §10.1.2: set GHC.AE (§3.1.2), take the
//! controller from the BIOS if it offers the handoff (§10.6), then per
//! implemented port (PI) with a device present (PxSSTS.DET = 3) that
//! signs as a SATA disk (PxSIG = 0000_0101h): stop the port (clear
//! PxCMD.ST and FRE, wait CR and FR clear), point PxCLB at a command list
//! and PxFB at a FIS receive area (§4.2.1, §4.2.2), clear PxSERR and
//! PxIS, set FRE, wait for BSY and DRQ to clear, set ST. IDENTIFY DEVICE
//! (ATA8-ACS §7.16) then gives model, serial, 48-bit capacity (words
//! 100-103), the logical sector size (words 106, 117-118) and the cache:
//!
//! * **Flush.** Word 85 bit 5 says the volatile write cache is enabled,
//!   word 86 bit 13 that FLUSH CACHE EXT is supported (ATA8-ACS Table 22).
//!   With a cache, [`Ahci::flush`] issues FLUSH CACHE EXT (§7.15); a disk
//!   with a cache and no FLUSH CACHE EXT reports no flush and is refused
//!   unless `unsafe_no_flush`. Without a cache a completed write is on the
//!   media, and flush has nothing to do.
//! * **Data transfer.** Each command moves at most [`MAX_TRANSFER_BYTES`]
//!   through a driver-owned contiguous buffer described by one PRDT entry
//!   (§4.2.3.3: byte count up to 4 MiB, even, word-aligned address).
//!
//! # Completion: polling PxCI, bounded
//! Until the async-disk work lands the trait is synchronous: a command is
//! issued by setting bit 0 of PxCI and the driver spins until the HBA
//! clears it (§5.3.2.4) or PxIS.TFES reports a task-file error, for at most
//! [`IO_TIMEOUT_MS`]. A timeout or error restarts the port's command
//! engine (§6.2.2.2) and is reported as an I/O error ([`TIMEOUT_CODE`] or
//! the ATA status and error registers). GHC.IE stays clear and PCI INTx is
//! disabled, so the controller never raises an interrupt.
//!
//! # Files
//! * `regs`: register offsets and bits, ATA opcodes, the port page layout,
//!   timeouts.
//! * `port`: one port's command engine (issue, poll, recover).
//! * this file: claiming the controller, bringing a port up, IDENTIFY
//!   DEVICE, and the [`BlockDevice`] front end.
//!
//! A driver: it knows nothing of the store or the node above it.

mod port;
mod regs;

use super::blockdev::{
    ascii_field, poll_until, DiskInfo, DiskKind, Dma, Regs, WriteCache, MAX_TRANSFER_BYTES, PAGE,
};
use alloc::string::String;
use alloc::vec::Vec;
use continuum_storage::{check_request, BlockDevice, DeviceError, BLOCK_SIZE};
use core::fmt;
pub use port::CommandError;
use regs::*;

/// Why a port could not be used.
#[derive(Debug)]
pub enum InitError {
    NoMemory,
    /// DMA memory above 4 GiB on an HBA without 64-bit addressing.
    No64BitDma,
    /// The command engine did not stop or start in time.
    EngineStuck,
    Command(CommandError),
    /// The disk does not support 48-bit LBA (READ/WRITE DMA EXT).
    NoLba48,
    /// The disk's logical sectors are not 512 bytes.
    SectorSize {
        bytes: u64,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NoMemory => f.write_str("no contiguous memory for the command list"),
            InitError::No64BitDma => {
                f.write_str("DMA memory lies above 4 GiB and the HBA cannot reach it")
            }
            InitError::EngineStuck => f.write_str("the port's command engine did not stop/start"),
            InitError::Command(e) => write!(f, "{e}"),
            InitError::NoLba48 => f.write_str("the disk lacks 48-bit LBA"),
            InitError::SectorSize { bytes } => write!(
                f,
                "the disk uses {bytes}-byte logical sectors; the log needs {BLOCK_SIZE}"
            ),
        }
    }
}

/// One SATA disk on one AHCI port.
pub struct Ahci {
    regs: Regs,
    port: usize,
    /// Command list, FIS receive area and command table (see the offsets).
    port_memory: Dma,
    /// Data staging buffer, [`MAX_TRANSFER_BYTES`].
    buffer: Dma,
    capacity_blocks: u64,
    write_cache: bool,
    flush_ext: bool,
    info: DiskInfo,
}

/// Why a controller yielded no disk on a port, for the console.
pub struct PortProblem {
    pub port: usize,
    pub error: InitError,
}

/// Takes the controller behind ABAR (BAR 5) and returns every SATA disk on
/// it, in port order, plus the ports that had a disk it could not use.
pub fn claim_controller(
    abar_phys: u64,
    abar_len: u64,
    location: (u8, u8, u8),
) -> (Vec<Ahci>, Vec<PortProblem>) {
    let regs = Regs::map(abar_phys, (abar_len as usize).min(0x1100));
    take_from_bios(regs);
    regs.write32(HBA_GHC, (regs.read32(HBA_GHC) | GHC_AE) & !GHC_IE);
    let cap = regs.read32(HBA_CAP);
    let implemented = regs.read32(HBA_PI);
    let mut disks = Vec::new();
    let mut problems = Vec::new();
    for port in (0..MAX_PORTS).filter(|p| implemented >> p & 1 == 1) {
        let base = 0x100 + port * 0x80;
        if base + 0x80 > abar_len as usize {
            break;
        }
        let present = regs.read32(base + PORT_SSTS) & 0xf == 3;
        if !present || regs.read32(base + PORT_SIG) != SIG_SATA_DISK {
            continue; // empty, or ATAPI / port multiplier: not a disk
        }
        match Ahci::new(regs, cap, port, location) {
            Ok(disk) => disks.push(disk),
            Err(error) => problems.push(PortProblem { port, error }),
        }
    }
    (disks, problems)
}

/// BIOS/OS handoff (§10.6): ask for ownership, wait for the BIOS to let go.
fn take_from_bios(regs: Regs) {
    if regs.read32(HBA_CAP2) & CAP2_BOH == 0 {
        return;
    }
    regs.write32(HBA_BOHC, regs.read32(HBA_BOHC) | BOHC_OOS);
    if !poll_until(HANDOFF_TIMEOUT_MS, || regs.read32(HBA_BOHC) & BOHC_BOS == 0) {
        log::warn!("ahci: the BIOS did not release the controller; taking it anyway");
    }
}

impl Ahci {
    fn new(regs: Regs, cap: u32, port: usize, location: (u8, u8, u8)) -> Result<Ahci, InitError> {
        let port_memory = Dma::alloc(PAGE).ok_or(InitError::NoMemory)?;
        let buffer = Dma::alloc(MAX_TRANSFER_BYTES).ok_or(InitError::NoMemory)?;
        let top = port_memory
            .phys
            .max(buffer.phys + MAX_TRANSFER_BYTES as u64);
        if cap & CAP_S64A == 0 && top > u64::from(u32::MAX) {
            return Err(InitError::No64BitDma);
        }
        let mut disk = Ahci {
            regs,
            port,
            port_memory,
            buffer,
            capacity_blocks: 0,
            write_cache: false,
            flush_ext: false,
            info: DiskInfo {
                kind: DiskKind::Ahci,
                location,
                unit: port as u32,
                model: String::new(),
                serial: String::new(),
                capacity_blocks: 0,
                cache: WriteCache::None,
            },
        };
        disk.stop_engine()?;
        let phys = disk.port_memory.phys;
        disk.port_write(PORT_CLB, phys as u32);
        disk.port_write(PORT_CLB + 4, (phys >> 32) as u32);
        let fis = phys + FIS_OFFSET as u64;
        disk.port_write(PORT_FB, fis as u32);
        disk.port_write(PORT_FB + 4, (fis >> 32) as u32);
        // The command header of slot 0 points at the command table (§4.2.2).
        let table = phys + CMD_TABLE_OFFSET as u64;
        disk.port_memory.write32(CMD_LIST_OFFSET + 8, table as u32);
        disk.port_memory
            .write32(CMD_LIST_OFFSET + 12, (table >> 32) as u32);
        if cap & CAP_SSS != 0 {
            disk.port_write(PORT_CMD, disk.port_read(PORT_CMD) | CMD_SUD);
        }
        disk.port_write(PORT_IE, 0);
        disk.start_engine()?;
        disk.identify()?;
        Ok(disk)
    }

    fn identify(&mut self) -> Result<(), InitError> {
        self.execute(ATA_IDENTIFY_DEVICE, 0, 0, BLOCK_SIZE, false)
            .map_err(InitError::Command)?;
        let bytes = self.buffer.bytes();
        let word = |i: usize| u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        // ATA strings hold two characters per word, first in the high byte.
        let string = |from: usize, to: usize| {
            let swapped: Vec<u8> = (from..to).flat_map(|i| word(i).to_be_bytes()).collect();
            ascii_field(&swapped)
        };
        if word(83) & (1 << 10) == 0 {
            return Err(InitError::NoLba48);
        }
        let sectors = (100..104)
            .rev()
            .fold(0u64, |acc, i| acc << 16 | u64::from(word(i)));
        // Word 106: valid when bit 14 is set and 15 clear; bit 12 says the
        // logical sector is longer than 256 words (size in words 117-118).
        let w106 = word(106);
        if w106 & 0xc000 == 0x4000 && w106 & (1 << 12) != 0 {
            let words = u64::from(word(117)) | u64::from(word(118)) << 16;
            if words != 256 {
                return Err(InitError::SectorSize { bytes: words * 2 });
            }
        }
        self.write_cache = word(85) & (1 << 5) != 0;
        self.flush_ext = word(83) & (1 << 13) != 0 && word(86) & (1 << 13) != 0;
        self.capacity_blocks = sectors;
        self.info.model = string(27, 47);
        self.info.serial = string(10, 20);
        self.info.capacity_blocks = sectors;
        self.info.cache = match (self.write_cache, self.flush_ext) {
            (false, _) => WriteCache::None,
            (true, true) => WriteCache::Flushed,
            (true, false) => WriteCache::NoFlush,
        };
        Ok(())
    }

    /// What the console lists.
    pub fn info(&self) -> &DiskInfo {
        &self.info
    }

    fn transfer(&mut self, command: u8, lba: u64, len: usize) -> Result<(), DeviceError> {
        let sectors = (len / BLOCK_SIZE) as u16;
        self.execute(command, lba, sectors, len, command == ATA_WRITE_DMA_EXT)
            .map_err(CommandError::device_error)
    }
}

// READ/WRITE DMA EXT count 0 means 65536 sectors; our transfers stay below.
const _: () = assert!(MAX_TRANSFER_BYTES / BLOCK_SIZE < 65536);

impl BlockDevice for Ahci {
    fn block_size(&self) -> usize {
        BLOCK_SIZE
    }

    fn capacity_blocks(&self) -> u64 {
        self.capacity_blocks
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.capacity_blocks)?;
        let mut lba = lba;
        for chunk in buf.chunks_mut(MAX_TRANSFER_BYTES) {
            self.transfer(ATA_READ_DMA_EXT, lba, chunk.len())?;
            chunk.copy_from_slice(&self.buffer.bytes()[..chunk.len()]);
            lba += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        check_request(lba, buf.len(), self.capacity_blocks)?;
        let mut lba = lba;
        for chunk in buf.chunks(MAX_TRANSFER_BYTES) {
            self.buffer.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
            self.transfer(ATA_WRITE_DMA_EXT, lba, chunk.len())?;
            lba += (chunk.len() / BLOCK_SIZE) as u64;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeviceError> {
        match (self.write_cache, self.flush_ext) {
            // No volatile cache: completed writes are already on the media.
            (false, _) => Ok(()),
            (true, true) => self
                .execute(ATA_FLUSH_CACHE_EXT, 0, 0, 0, false)
                .map_err(CommandError::device_error),
            (true, false) => Err(DeviceError::FlushUnsupported),
        }
    }

    fn supports_flush(&self) -> bool {
        !self.write_cache || self.flush_ext
    }
}
