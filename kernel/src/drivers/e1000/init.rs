//! e1000 bring-up (SDM chapter 14): reset, the station address from the
//! registers or the EEPROM, link and flow-control configuration, and the
//! link-state line on the console. Runs once, from [`E1000::new`], and may
//! busy-wait (bounded by [`RESET_TIMEOUT_MS`] / [`EEPROM_TIMEOUT_MS`]);
//! nothing here is on the data path.

use super::regs::*;
use super::{InitError, E1000};
use crate::time;

/// Busy-waits `ms` milliseconds (bring-up only, never on the data path).
fn delay_ms(ms: u64) {
    let until = time::monotonic_ns() + ms * 1_000_000;
    while time::monotonic_ns() < until {
        core::hint::spin_loop();
    }
}

impl E1000 {
    pub(super) fn reset(&mut self) -> Result<(), InitError> {
        // Mask everything and stop both units before the reset, so no DMA
        // is in flight when it hits (firmware may have used the NIC to
        // network-boot). Reading STATUS flushes the posted writes.
        self.write(reg::IMC, !0);
        self.write(reg::RCTL, 0);
        self.write(reg::TCTL, TCTL_PSP);
        self.read(reg::STATUS);
        delay_ms(10);
        self.write(reg::CTRL, self.read(reg::CTRL) | CTRL_RST);
        // RST also starts an EEPROM reload; Linux's e1000 waits 5 ms before
        // touching the device again, and so do we.
        delay_ms(5);
        let deadline = time::monotonic_ns() + RESET_TIMEOUT_MS * 1_000_000;
        while self.read(reg::CTRL) & CTRL_RST != 0 {
            if time::monotonic_ns() > deadline {
                return Err(InitError::ResetTimeout);
            }
            core::hint::spin_loop();
        }
        if self.model.is_82574() {
            // 82574 EECD.AUTO_RD: set once the NVM words are
            // loaded into the registers (station address included).
            let deadline = time::monotonic_ns() + EEPROM_TIMEOUT_MS * 1_000_000;
            while self.read(reg::EECD) & EECD_AUTO_RD == 0 {
                if time::monotonic_ns() > deadline {
                    log::warn!("e1000: NVM auto-read not reported done after reset");
                    break;
                }
                core::hint::spin_loop();
            }
        }
        // The reset unmasks nothing, but a cause may have latched: clear it.
        self.write(reg::IMC, !0);
        self.read(reg::ICR);
        Ok(())
    }

    /// The station address: `RAL0`/`RAH0`, which both families load from
    /// the EEPROM/NVM at reset, else EEPROM words 0..=2 read through `EERD`.
    /// Written back to `RAL0`/`RAH0` with the address-valid bit set.
    pub(super) fn station_address(&self) -> Option<[u8; 6]> {
        let low = self.read(reg::RAL0).to_le_bytes();
        let high = self.read(reg::RAH0);
        let from_registers = [
            low[0],
            low[1],
            low[2],
            low[3],
            high as u8,
            (high >> 8) as u8,
        ];
        let mac = if high & RAH_AV != 0 && usable_unicast(&from_registers) {
            from_registers
        } else {
            let mut mac = [0u8; 6];
            for word in 0..3 {
                let [lo, hi] = self.eeprom_word(word)?.to_le_bytes();
                mac[word as usize * 2] = lo;
                mac[word as usize * 2 + 1] = hi;
            }
            if !usable_unicast(&mac) {
                return None;
            }
            mac
        };
        self.write(
            reg::RAL0,
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        );
        self.write(
            reg::RAH0,
            u32::from_le_bytes([mac[4], mac[5], 0, 0]) | RAH_AV,
        );
        Some(mac)
    }

    pub(super) fn eeprom_word(&self, word: u8) -> Option<u16> {
        let (address_shift, done) = if self.model.is_82574() {
            (2, 1 << 1)
        } else {
            (8, 1 << 4)
        };
        self.write(reg::EERD, (word as u32) << address_shift | EERD_START);
        let deadline = time::monotonic_ns() + EEPROM_TIMEOUT_MS * 1_000_000;
        loop {
            let value = self.read(reg::EERD);
            if value & done != 0 {
                return Some((value >> 16) as u16);
            }
            if time::monotonic_ns() > deadline {
                return None;
            }
            core::hint::spin_loop();
        }
    }

    pub(super) fn configure_link(&mut self) {
        // SDM §14.3 / §13.4.1: with the internal copper PHY the MAC takes
        // speed and duplex from the PHY's auto-negotiation; SLU lets the
        // link come up; no forced speed or duplex, no link or PHY reset,
        // no loss-of-signal inversion, no VLAN mode.
        let ctrl = self.read(reg::CTRL);
        self.write(
            reg::CTRL,
            (ctrl | CTRL_SLU)
                & !(CTRL_LRST | CTRL_PHY_RST | CTRL_ILOS | CTRL_FRCSPD | CTRL_FRCDPLX | CTRL_VME),
        );
        // No flow control: SDM §14.3 says to zero these when it is unused.
        for register in [reg::FCAL, reg::FCAH, reg::FCT, reg::FCTTV] {
            self.write(register, 0);
        }
        // The multicast table array powers up with unknown contents; SDM
        // §14.4 has it zeroed (no multicast groups are joined).
        for entry in 0..128 {
            self.write(reg::MTA + 4 * entry, 0);
        }
        if self.model.is_82574() {
            // Reserved bits the 82574 wants written as 1: TXDCTL bit 22 and
            // GCR bit 22 (set by Linux e1000e in
            // e1000_initialize_hw_bits_82571 for the 82574).
            self.write(reg::TXDCTL, self.read(reg::TXDCTL) | 1 << 22);
            self.write(reg::GCR, self.read(reg::GCR) | 1 << 22);
        }
    }

    pub(super) fn log_link(&self) {
        if self.link_up {
            let status = self.read(reg::STATUS);
            // STATUS.SPEED, bits 7:6 (SDM §13.4.2).
            let speed = match (status >> 6) & 0b11 {
                0b00 => 10,
                0b01 => 100,
                _ => 1000,
            };
            let duplex = if status & STATUS_FD != 0 {
                "full"
            } else {
                "half"
            };
            log::info!(
                "e1000: {} link up, {speed} Mb/s {duplex} duplex",
                self.model.name()
            );
        } else {
            log::info!(
                "e1000: {} link down (waiting for auto-negotiation or a cable)",
                self.model.name()
            );
        }
    }
}

/// A unicast, non-zero, non-broadcast Ethernet address.
pub(super) fn usable_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}
