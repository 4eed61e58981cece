//! What the NVMe and AHCI drivers share: register windows, DMA memory,
//! bounded polling, and the description of a disk the console prints.
//!
//! Both drivers move data through a driver-owned, physically contiguous
//! DMA buffer ([`Dma`]) and copy to or from the caller's buffer: the store
//! hands over heap and stack buffers alike, and a copy of at most
//! [`MAX_TRANSFER_BYTES`] per command costs far less than the device.

use crate::memory;
use alloc::string::String;
use core::fmt;

/// Bytes one NVMe or AHCI command moves at most (the store's 1 MiB
/// group-commit write becomes eight commands, in LBA order; the store
/// tolerates a torn write of any prefix, so the split adds no failure mode).
pub const MAX_TRANSFER_BYTES: usize = 128 * 1024;

pub const PAGE: usize = 4096;

/// A memory-mapped register window (a PCI BAR), mapped uncached.
#[derive(Clone, Copy)]
pub struct Regs {
    base: u64,
    len: usize,
}

impl Regs {
    /// Maps `len` bytes of device memory at physical `phys`.
    pub fn map(phys: u64, len: usize) -> Regs {
        Regs {
            base: memory::map_mmio(phys, len as u64),
            len,
        }
    }

    fn at(&self, offset: usize, width: usize) -> u64 {
        assert!(
            offset + width <= self.len && offset.is_multiple_of(width),
            "register {offset:#x} outside its {:#x}-byte window",
            self.len
        );
        self.base + offset as u64
    }

    pub fn read32(&self, offset: usize) -> u32 {
        // SAFETY: `at` keeps the access inside the mapped, aligned window.
        unsafe { core::ptr::read_volatile(self.at(offset, 4) as *const u32) }
    }

    pub fn write32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read32`; the driver owns the device.
        unsafe { core::ptr::write_volatile(self.at(offset, 4) as *mut u32, value) }
    }

    /// A 64-bit register read as two 32-bit halves (low first), which
    /// every controller accepts (NVMe 1.4 §3.1: 64-bit registers may be
    /// accessed as two dwords).
    pub fn read64(&self, offset: usize) -> u64 {
        u64::from(self.read32(offset)) | u64::from(self.read32(offset + 4)) << 32
    }

    pub fn write64(&self, offset: usize, value: u64) {
        self.write32(offset, value as u32);
        self.write32(offset + 4, (value >> 32) as u32);
    }
}

/// Physically contiguous, zeroed, page-aligned DMA memory, kept for the
/// node's lifetime (devices are never released).
pub struct Dma {
    pub phys: u64,
    virt: u64,
    len: usize,
}

impl Dma {
    /// `None` when the frame allocator has no contiguous run this long.
    pub fn alloc(len: usize) -> Option<Dma> {
        let pages = len.div_ceil(PAGE);
        let phys = memory::alloc_dma_frames(pages as u64)?;
        Some(Dma {
            phys,
            virt: memory::phys_to_virt(phys),
            len: pages * PAGE,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the frames are ours alone and mapped in the physical
        // window for `len` bytes. The device writes them only while a
        // command we issued is in flight, and we read after it completed.
        unsafe { core::slice::from_raw_parts(self.virt as *const u8, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut(self.virt as *mut u8, self.len) }
    }

    /// Volatile 32-bit read at `offset` (memory the device writes while
    /// we poll it, such as an NVMe completion entry).
    pub fn read32(&self, offset: usize) -> u32 {
        assert!(offset + 4 <= self.len && offset.is_multiple_of(4));
        // SAFETY: inside our frames, aligned.
        unsafe { core::ptr::read_volatile((self.virt + offset as u64) as *const u32) }
    }

    /// Volatile 32-bit write at `offset` (memory the device reads).
    pub fn write32(&mut self, offset: usize, value: u32) {
        assert!(offset + 4 <= self.len && offset.is_multiple_of(4));
        // SAFETY: inside our frames, aligned.
        unsafe { core::ptr::write_volatile((self.virt + offset as u64) as *mut u32, value) }
    }
}

/// Spins until `done()` or `timeout_ms` passed; `true` when done. How both
/// drivers wait until the async-disk work gives them interrupts.
pub fn poll_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = crate::time::monotonic_ns() + timeout_ms * 1_000_000;
    loop {
        if done() {
            return true;
        }
        if crate::time::monotonic_ns() > deadline {
            return done();
        }
        core::hint::spin_loop();
    }
}

/// Which driver a disk is behind; also the prefix of the `disk` config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskKind {
    Virtio,
    Nvme,
    Ahci,
}

impl fmt::Display for DiskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskKind::Virtio => "virtio",
            DiskKind::Nvme => "nvme",
            DiskKind::Ahci => "ahci",
        })
    }
}

/// What the disk says about its write cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCache {
    /// No volatile cache: a completed write is durable.
    None,
    /// A volatile cache with a flush command the driver issues.
    Flushed,
    /// A volatile cache (or, for virtio-blk, possibly one) and no flush:
    /// nothing written is ever known durable.
    NoFlush,
}

impl fmt::Display for WriteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteCache::None => "none",
            WriteCache::Flushed => "volatile, flushed",
            WriteCache::NoFlush => "volatile, NO flush command",
        })
    }
}

/// A disk as the console lists it.
#[derive(Clone, Debug)]
pub struct DiskInfo {
    pub kind: DiskKind,
    /// PCI bus, device, function of the controller.
    pub location: (u8, u8, u8),
    /// The unit behind the controller: the AHCI port, the NVMe namespace
    /// id, the virtio-blk index among virtio-blk disks.
    pub unit: u32,
    pub model: String,
    pub serial: String,
    pub capacity_blocks: u64,
    pub cache: WriteCache,
}

impl fmt::Display for DiskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (bus, device, function) = self.location;
        let unit = match self.kind {
            DiskKind::Virtio => "index",
            DiskKind::Nvme => "namespace",
            DiskKind::Ahci => "port",
        };
        write!(
            f,
            "{} {bus:02x}:{device:02x}.{function} {unit} {}, model \"{}\", serial \"{}\", {} MiB, write cache {}",
            self.kind,
            self.unit,
            self.model,
            self.serial,
            self.capacity_blocks / 2048,
            self.cache
        )
    }
}

/// An ASCII identification string from a device (NVMe and ATA pad with
/// spaces): printable characters kept, the rest shown as `?`, trimmed.
pub fn ascii_field(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    String::from(text.trim_matches(|c| c == ' ' || c == '?'))
}
