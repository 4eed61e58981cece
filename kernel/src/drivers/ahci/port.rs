//! One port's command engine: register access, stopping and starting the
//! engine (§10.1.2, §10.3.1), issuing a command in slot 0 and polling
//! PxCI / PxIS.TFES for it (bounded by [`IO_TIMEOUT_MS`]), and restarting
//! the engine after an error (§6.2.2.2). A failed command is reported,
//! never retried.

use super::regs::*;
use super::{Ahci, InitError};
use crate::drivers::blockdev::poll_until;
use continuum_storage::DeviceError;
use core::fmt;
use core::sync::atomic::{fence, Ordering};

/// An ATA command that failed.
#[derive(Debug, Clone, Copy)]
pub struct CommandError {
    pub command: u8,
    /// `None`: timed out. Else PxTFD bits 15:0 (error << 8 | status).
    pub task_file: Option<u16>,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task_file {
            None => write!(f, "ATA command {:#04x} timed out", self.command),
            Some(tfd) => write!(
                f,
                "ATA command {:#04x} failed: status {:#04x}, error {:#04x}",
                self.command,
                tfd & 0xff,
                tfd >> 8
            ),
        }
    }
}

impl CommandError {
    pub(super) fn device_error(self) -> DeviceError {
        DeviceError::Io {
            code: self.task_file.map_or(TIMEOUT_CODE, u32::from),
        }
    }
}

impl Ahci {
    pub(super) fn port_read(&self, register: usize) -> u32 {
        self.regs.read32(0x100 + self.port * 0x80 + register)
    }

    pub(super) fn port_write(&self, register: usize, value: u32) {
        self.regs
            .write32(0x100 + self.port * 0x80 + register, value)
    }

    /// §10.1.2: clear ST, wait CR clear; clear FRE, wait FR clear.
    pub(super) fn stop_engine(&self) -> Result<(), InitError> {
        self.port_write(PORT_CMD, self.port_read(PORT_CMD) & !CMD_ST);
        if !poll_until(ENGINE_TIMEOUT_MS, || self.port_read(PORT_CMD) & CMD_CR == 0) {
            return Err(InitError::EngineStuck);
        }
        self.port_write(PORT_CMD, self.port_read(PORT_CMD) & !CMD_FRE);
        if !poll_until(ENGINE_TIMEOUT_MS, || self.port_read(PORT_CMD) & CMD_FR == 0) {
            return Err(InitError::EngineStuck);
        }
        Ok(())
    }

    /// §10.3.1: clear errors, enable FIS receive, wait until the device is
    /// idle (BSY and DRQ clear), start the command engine.
    pub(super) fn start_engine(&self) -> Result<(), InitError> {
        self.port_write(PORT_SERR, u32::MAX);
        self.port_write(PORT_IS, u32::MAX);
        self.port_write(PORT_CMD, self.port_read(PORT_CMD) | CMD_FRE);
        if !poll_until(IO_TIMEOUT_MS, || {
            self.port_read(PORT_TFD) & (TFD_BSY | TFD_DRQ) == 0
        }) {
            return Err(InitError::EngineStuck);
        }
        self.port_write(PORT_CMD, self.port_read(PORT_CMD) | CMD_ST);
        Ok(())
    }

    /// Issues one ATA command in slot 0 with `len` bytes of the staging
    /// buffer as data (`len` 0: no data) and polls for its completion.
    pub(super) fn execute(
        &mut self,
        command: u8,
        lba: u64,
        sectors: u16,
        len: usize,
        write: bool,
    ) -> Result<(), CommandError> {
        let failed = |task_file| CommandError { command, task_file };
        if !poll_until(IO_TIMEOUT_MS, || {
            self.port_read(PORT_TFD) & (TFD_BSY | TFD_DRQ) == 0
        }) {
            self.recover();
            return Err(failed(None));
        }
        let memory = &mut self.port_memory;
        // Command header (§4.2.2): CFL = 5 dwords, W, PRDTL.
        let prdtl = u32::from(len > 0);
        memory.write32(CMD_LIST_OFFSET, 5 | u32::from(write) << 6 | prdtl << 16);
        memory.write32(CMD_LIST_OFFSET + 4, 0); // PRDBC, written by the HBA
                                                // Register host-to-device FIS (SATA 3.x §10.5.5), in the table.
        let mut fis = [0u8; 20];
        fis[0] = FIS_REGISTER_H2D;
        fis[1] = 1 << 7; // C: this is a command
        fis[2] = command;
        fis[4..7].copy_from_slice(&lba.to_le_bytes()[0..3]);
        fis[7] = 1 << 6; // device: LBA mode
        fis[8..11].copy_from_slice(&lba.to_le_bytes()[3..6]);
        fis[12..14].copy_from_slice(&sectors.to_le_bytes());
        for (i, dword) in fis.chunks(4).enumerate() {
            memory.write32(
                CMD_TABLE_OFFSET + 4 * i,
                u32::from_le_bytes(dword.try_into().unwrap()),
            );
        }
        if len > 0 {
            // PRDT entry (§4.2.3.3): address, byte count - 1.
            let data = self.buffer.phys;
            memory.write32(PRDT_OFFSET, data as u32);
            memory.write32(PRDT_OFFSET + 4, (data >> 32) as u32);
            memory.write32(PRDT_OFFSET + 8, 0);
            memory.write32(PRDT_OFFSET + 12, (len - 1) as u32);
        }
        self.port_write(PORT_IS, u32::MAX);
        // Table and header must be in memory before the HBA fetches them.
        fence(Ordering::SeqCst);
        self.port_write(PORT_CI, 1);
        let done = poll_until(IO_TIMEOUT_MS, || {
            self.port_read(PORT_CI) & 1 == 0 || self.port_read(PORT_IS) & IS_TFES != 0
        });
        fence(Ordering::SeqCst);
        let tfd = self.port_read(PORT_TFD);
        if !done {
            self.recover();
            return Err(failed(None));
        }
        if self.port_read(PORT_IS) & IS_TFES != 0 || tfd & TFD_ERR != 0 {
            self.recover();
            return Err(failed(Some(tfd as u16)));
        }
        Ok(())
    }

    /// §6.2.2.2: after an error or a hang, restart the command engine so
    /// the next command can run; the failed one is reported, never retried.
    pub(super) fn recover(&mut self) {
        if self
            .stop_engine()
            .and_then(|()| self.start_engine())
            .is_err()
        {
            log::error!(
                "ahci: port {}: the command engine did not restart after an error",
                self.port
            );
        }
    }
}
