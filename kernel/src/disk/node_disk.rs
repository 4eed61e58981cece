//! The node's disk, whichever driver is behind it: one
//! [`BlockDevice`] over the claimed disk, and what is on its first and
//! last blocks before the node touches it.

use crate::drivers::blockdev::DiskInfo;
use crate::drivers::ClaimedDisk;
use alloc::vec;
use continuum_storage::layout::{Superblock, SUPERBLOCK_LBAS, SUPERBLOCK_MAGIC};
use continuum_storage::{BlockDevice, DeviceError, Identity, BLOCK_SIZE};
use core::fmt;

/// Magic of a hard-state slot (`continuum_storage`'s `hard_state::SLOT_MAGIC`,
/// LBAs 2 and 3): our own first format writes the slots before the
/// superblocks, so a disk with only these is still ours.
const SLOT_MAGIC: [u8; 8] = *b"CNTMHARD";
const SLOT_LBAS: [u64; 2] = [2, 3];

/// Whether a write at `lba` is a hard-state slot write.
pub fn is_slot_lba(lba: u64) -> bool {
    SLOT_LBAS.contains(&lba)
}

/// Blocks checked at each end of a disk before it is called blank: 1 MiB
/// covers MBR and GPT headers, LVM, md-raid 1.2, ext2-4, XFS, btrfs, NTFS
/// and FAT boot sectors at the start, and the backup GPT, md-raid 0.9/1.0
/// and ZFS labels at the end.
pub const BLANK_CHECK_BLOCKS: u64 = 2048;
/// Blocks read per request while checking.
const CHECK_CHUNK_BLOCKS: u64 = 256;

/// What a disk holds, as far as the node can tell without changing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    /// A Continuum log; the identity when a superblock copy is readable.
    Continuum(Option<Identity>),
    /// The first and last [`BLANK_CHECK_BLOCKS`] are all zeros.
    Blank,
    /// LBA 0 ends in the MBR signature 55AAh (an MBR partition table, a
    /// GPT's protective MBR, or a boot sector).
    MbrSignature,
    /// LBA 1 starts with "EFI PART" (UEFI 2.x §5.3.2) without an MBR.
    Gpt,
    /// Something else that is not zeros (a filesystem, another program's data).
    Unknown,
}

impl fmt::Display for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contents::Continuum(Some(identity)) => write!(f, "a Continuum log of {identity}"),
            Contents::Continuum(None) => f.write_str("a Continuum log (superblock unreadable)"),
            Contents::Blank => f.write_str("nothing (blank)"),
            Contents::MbrSignature => f.write_str("an MBR partition table or boot sector"),
            Contents::Gpt => f.write_str("a GPT partition table"),
            Contents::Unknown => f.write_str("data of unknown kind (a filesystem?)"),
        }
    }
}

/// The disk the store runs on.
pub struct NodeDisk {
    disk: ClaimedDisk,
}

impl NodeDisk {
    pub fn new(disk: ClaimedDisk) -> NodeDisk {
        NodeDisk { disk }
    }

    pub fn info(&self) -> &DiskInfo {
        self.disk.info()
    }

    fn device(&mut self) -> &mut dyn BlockDevice {
        match &mut self.disk {
            ClaimedDisk::Virtio(d) => &mut **d,
            ClaimedDisk::Nvme(d) => d,
            ClaimedDisk::Ahci(d) => d,
        }
    }

    fn device_ref(&self) -> &dyn BlockDevice {
        match &self.disk {
            ClaimedDisk::Virtio(d) => &**d,
            ClaimedDisk::Nvme(d) => d,
            ClaimedDisk::Ahci(d) => d,
        }
    }

    /// Reads (never writes) the blocks that tell what the disk holds.
    pub fn contents(&mut self) -> Result<Contents, DeviceError> {
        let mut block = [0u8; BLOCK_SIZE];
        let mut heads = [[0u8; 8]; 4];
        for (head, lba) in heads
            .iter_mut()
            .zip(SUPERBLOCK_LBAS.iter().chain(&SLOT_LBAS))
        {
            self.read(*lba, &mut block)?;
            head.copy_from_slice(&block[..8]);
        }
        if heads[..2].contains(&SUPERBLOCK_MAGIC) || heads[2..].contains(&SLOT_MAGIC) {
            let mut identity = None;
            for lba in SUPERBLOCK_LBAS {
                self.read(lba, &mut block)?;
                if let Ok(superblock) = Superblock::decode(&block) {
                    identity = Some(superblock.identity);
                    break;
                }
            }
            return Ok(Contents::Continuum(identity));
        }
        self.read(0, &mut block)?;
        if block[510..512] == [0x55, 0xaa] {
            return Ok(Contents::MbrSignature);
        }
        self.read(1, &mut block)?;
        if &block[..8] == b"EFI PART" {
            return Ok(Contents::Gpt);
        }
        let capacity = self.capacity_blocks();
        let head = capacity.min(BLANK_CHECK_BLOCKS);
        let tail_start = capacity.saturating_sub(BLANK_CHECK_BLOCKS).max(head);
        let mut chunk = vec![0u8; CHECK_CHUNK_BLOCKS as usize * BLOCK_SIZE];
        for range in [0..head, tail_start..capacity] {
            let mut lba = range.start;
            while lba < range.end {
                let blocks = (range.end - lba).min(CHECK_CHUNK_BLOCKS);
                let bytes = &mut chunk[..blocks as usize * BLOCK_SIZE];
                self.read(lba, bytes)?;
                if bytes.iter().any(|&b| b != 0) {
                    return Ok(Contents::Unknown);
                }
                lba += blocks;
            }
        }
        Ok(Contents::Blank)
    }
}

impl BlockDevice for NodeDisk {
    fn block_size(&self) -> usize {
        self.device_ref().block_size()
    }

    fn capacity_blocks(&self) -> u64 {
        self.device_ref().capacity_blocks()
    }

    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.device().read(lba, buf)
    }

    /// Writes and records the latency for `/metrics` (`crate::metrics`;
    /// here, not in the drivers: a driver never calls up into the node).
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let started = crate::time::monotonic_ns();
        let result = self.device().write(lba, buf);
        crate::metrics::record_write(lba, crate::metrics::micros_since(started));
        result
    }

    /// Flushes and records the latency for `/metrics`, as [`Self::write`].
    fn flush(&mut self) -> Result<(), DeviceError> {
        let started = crate::time::monotonic_ns();
        let result = self.device().flush();
        crate::metrics::record_flush(crate::metrics::micros_since(started));
        result
    }

    fn supports_flush(&self) -> bool {
        self.device_ref().supports_flush()
    }
}
