//! The submission/completion queue pairs and the one place a command is
//! issued: [`Nvme::execute`] writes the entry, rings the SQ tail doorbell,
//! polls the next completion's phase tag (bounded), and rings the CQ head
//! doorbell (§3.1.24, §4.6). One command is in flight at a time; a
//! timeout or an out-of-turn completion marks the controller broken.

use super::regs::*;
use super::{InitError, Nvme};
use crate::drivers::blockdev::{poll_until, Dma};
use continuum_storage::DeviceError;
use core::fmt;
use core::sync::atomic::{fence, Ordering};

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
    pub(super) fn device_error(self) -> DeviceError {
        DeviceError::Io {
            code: self.status.map_or(TIMEOUT_CODE, u32::from),
        }
    }
}

/// A submission queue and its completion queue.
pub(super) struct QueuePair {
    pub(super) id: u16,
    pub(super) sq: Dma,
    pub(super) cq: Dma,
    pub(super) entries: u16,
    pub(super) sq_tail: u16,
    pub(super) cq_head: u16,
    /// Phase tag a new completion entry carries (starts at 1, §4.6).
    pub(super) phase: bool,
}

impl QueuePair {
    pub(super) fn new(id: u16, entries: u16) -> Result<QueuePair, InitError> {
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

impl Nvme {
    /// Submits `command` on the admin or I/O queue and polls for its
    /// completion; `Ok` carries completion dword 0.
    pub(super) fn execute(
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
}

/// PRP entry 1 of `command` (dwords 6-7): the first data page.
pub(super) fn set_prp1(command: &mut [u32; 16], phys: u64) {
    command[6] = phys as u32;
    command[7] = (phys >> 32) as u32;
}
