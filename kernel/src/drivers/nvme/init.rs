//! NVMe controller bring-up (§7.6.1): reset and enable with the admin
//! queues, Identify Controller / active namespaces / Namespace, Set
//! Features *Number of Queues*, and the I/O queue pair. Runs once, from
//! [`Nvme::new`]; each wait is bounded (CAP.TO, [`ADMIN_TIMEOUT_MS`]).

use super::queue::{set_prp1, CommandError};
use super::regs::*;
use super::Nvme;
use crate::drivers::blockdev::{ascii_field, poll_until, WriteCache, MAX_TRANSFER_BYTES, PAGE};
use continuum_storage::BLOCK_SIZE;
use core::fmt;

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

impl Nvme {
    /// §7.6.1 steps 1-7: disable, program the admin queues, enable.
    pub(super) fn reset(&mut self, timeout_ms: u64, entries: u16) -> Result<(), InitError> {
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

    pub(super) fn identify(&mut self) -> Result<(), InitError> {
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

    pub(super) fn admin_identify(&mut self, cns: u32, nsid: u32) -> Result<(), InitError> {
        let mut command = [0u32; 16];
        command[0] = u32::from(ADMIN_IDENTIFY);
        command[1] = nsid;
        set_prp1(&mut command, self.buffer.phys);
        command[10] = cns;
        self.execute(true, command, ADMIN_TIMEOUT_MS)
            .map(|_| ())
            .map_err(InitError::Command)
    }

    pub(super) fn create_io_queues(&mut self, entries: u16) -> Result<(), InitError> {
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
}
