//! The e1000 data path: the receive and transmit descriptor rings and
//! their DMA buffers (SDM §3.2, §3.3, §14.4, §14.5).
//!
//! Owns descriptor ownership hand-offs (`RDT`/`TDT`, `DD`), frame copies in
//! and out, and reclaiming sent slots. It never waits for the device and
//! never allocates after bring-up; bring-up itself is in `init`.

use super::regs::*;
use super::{InitError, E1000};
use crate::memory;
use continuum_net::nic::{NicError, MAX_FRAME_BYTES};
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{fence, Ordering};

/// A descriptor ring and its buffers: physical addresses for the device,
/// virtual ones (through the physical-memory window) for us.
pub(super) struct Ring {
    pub(super) descriptors_phys: u64,
    pub(super) descriptors: u64,
    pub(super) buffers_phys: u64,
    pub(super) buffers: u64,
}

impl Ring {
    pub(super) fn allocate(descriptors: usize) -> Result<Ring, InitError> {
        let ring_pages = (descriptors * 16).div_ceil(PAGE) as u64;
        let buffer_pages = (descriptors * BUFFER_BYTES).div_ceil(PAGE) as u64;
        let descriptors_phys = memory::alloc_dma_frames(ring_pages).ok_or(InitError::NoMemory)?;
        let buffers_phys = memory::alloc_dma_frames(buffer_pages).ok_or(InitError::NoMemory)?;
        Ok(Ring {
            descriptors_phys,
            descriptors: memory::phys_to_virt(descriptors_phys),
            buffers_phys,
            buffers: memory::phys_to_virt(buffers_phys),
        })
    }

    fn buffer_phys(&self, index: usize) -> u64 {
        self.buffers_phys + (index * BUFFER_BYTES) as u64
    }

    fn buffer(&self, index: usize) -> *mut u8 {
        (self.buffers + (index * BUFFER_BYTES) as u64) as *mut u8
    }
}

impl E1000 {
    pub(super) fn rx_descriptor(&self, index: usize) -> *mut RxDescriptor {
        debug_assert!(index < RX_DESCRIPTORS);
        (self.rx.descriptors + (index * 16) as u64) as *mut RxDescriptor
    }

    pub(super) fn tx_descriptor(&self, index: usize) -> *mut TxDescriptor {
        debug_assert!(index < TX_DESCRIPTORS);
        (self.tx.descriptors + (index * 16) as u64) as *mut TxDescriptor
    }

    /// Hands receive descriptor `index` (empty, pointing at its buffer) to
    /// the device's side of the ring, without moving `RDT`.
    pub(super) fn arm_rx_descriptor(&self, index: usize) {
        let desc = self.rx_descriptor(index);
        // SAFETY: `desc` is inside the ring this driver allocated; the
        // device does not own it (it is at or past RDT).
        unsafe {
            addr_of_mut!((*desc).buffer).write_volatile(self.rx.buffer_phys(index));
            addr_of_mut!((*desc).status).write_volatile(0);
            addr_of_mut!((*desc).errors).write_volatile(0);
            addr_of_mut!((*desc).length).write_volatile(0);
        }
    }

    pub(super) fn start_receive(&mut self) {
        for index in 0..RX_DESCRIPTORS {
            self.arm_rx_descriptor(index);
        }
        // SDM §14.4: base, length, head 0; tail one short of the head so
        // the device owns every descriptor but one.
        let base = self.rx.descriptors_phys;
        self.write(reg::RDBAL, base as u32);
        self.write(reg::RDBAH, (base >> 32) as u32);
        self.write(reg::RDLEN, (RX_DESCRIPTORS * 16) as u32);
        self.write(reg::RDH, 0);
        fence(Ordering::SeqCst);
        self.write(reg::RDT, (RX_DESCRIPTORS - 1) as u32);
        self.rx_next = 0;
        // Interrupt as soon as a frame is stored (no receive delay timer).
        self.write(reg::RDTR, 0);
        self.write(reg::RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    }

    pub(super) fn start_transmit(&mut self) {
        for index in 0..TX_DESCRIPTORS {
            let desc = self.tx_descriptor(index);
            // SAFETY: inside the ring this driver allocated; the transmit
            // unit is not enabled yet.
            unsafe {
                addr_of_mut!((*desc).buffer).write_volatile(self.tx.buffer_phys(index));
                addr_of_mut!((*desc).cmd).write_volatile(0);
                addr_of_mut!((*desc).status).write_volatile(0);
            }
        }
        // SDM §14.5: base, length, head = tail = 0 (empty).
        let base = self.tx.descriptors_phys;
        self.write(reg::TDBAL, base as u32);
        self.write(reg::TDBAH, (base >> 32) as u32);
        self.write(reg::TDLEN, (TX_DESCRIPTORS * 16) as u32);
        self.write(reg::TDH, 0);
        self.write(reg::TDT, 0);
        self.tx_tail = 0;
        self.tx_clean = 0;
        // Collision distance and inter-packet gap for full-duplex copper:
        // SDM §14.5 and §13.4.34 give COLD 0x40 and IPGT 10 / IPGR1 8 /
        // IPGR2 6 for the 8254x; the 82574's reset values (TCTL, TIPG) are
        // COLD 0x3f and IPGT 8, kept here.
        let (cold, ipgt) = if self.model.is_82574() {
            (0x3f, 8)
        } else {
            (0x40, 10)
        };
        self.write(reg::TIPG, ipgt | 8 << 10 | 6 << 20);
        self.write(
            reg::TCTL,
            TCTL_EN | TCTL_PSP | TCTL_CT_15 | cold << TCTL_COLD_SHIFT,
        );
    }

    /// Moves descriptors the device has finished sending back to the free
    /// side of the transmit ring.
    pub(super) fn reclaim_transmitted(&mut self) {
        while self.tx_clean != self.tx_tail {
            let desc = self.tx_descriptor(self.tx_clean);
            // SAFETY: inside our ring; the device writes only `status` of a
            // descriptor it owns, and a byte read cannot tear.
            let status = unsafe { addr_of!((*desc).status).read_volatile() };
            if status & TX_STATUS_DD == 0 {
                break;
            }
            self.tx_clean = (self.tx_clean + 1) % TX_DESCRIPTORS;
        }
    }

    pub(super) fn tx_ring_full(&self) -> bool {
        (self.tx_tail + 1) % TX_DESCRIPTORS == self.tx_clean
    }

    /// `Nic::receive`: the next good frame, dropping bad or split ones.
    pub(super) fn rx_take(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
        loop {
            let index = self.rx_next;
            let desc = self.rx_descriptor(index);
            // SAFETY: inside our ring. DD is read first, and the rest of
            // the descriptor only after it (the fence keeps the order), as
            // the device sets DD after writing the other fields.
            let status = unsafe { addr_of!((*desc).status).read_volatile() };
            if status & RX_STATUS_DD == 0 {
                return None;
            }
            fence(Ordering::Acquire);
            // SAFETY: as above; DD hands the descriptor to us.
            let (length, errors) = unsafe {
                (
                    addr_of!((*desc).length).read_volatile() as usize,
                    addr_of!((*desc).errors).read_volatile(),
                )
            };
            let end_of_frame = status & RX_STATUS_EOP != 0;
            let whole = !self.rx_discarding && end_of_frame;
            let deliver =
                whole && errors & RX_ERRORS_FRAME == 0 && (1..=MAX_FRAME_BYTES).contains(&length);
            if deliver {
                // SAFETY: the device wrote `length` <= MAX_FRAME_BYTES bytes
                // into this descriptor's buffer and no longer touches it.
                unsafe {
                    core::ptr::copy_nonoverlapping(self.rx.buffer(index), buf.as_mut_ptr(), length)
                };
            } else if whole || end_of_frame {
                self.rx_dropped += 1;
                log::debug!(
                    "e1000: dropped a received frame ({length} bytes, errors {errors:#04x}, {} dropped so far)",
                    self.rx_dropped
                );
            }
            self.rx_discarding = !end_of_frame;
            // Give the descriptor back: it becomes the one held short of
            // the head, and the previous one goes to the device.
            self.arm_rx_descriptor(index);
            fence(Ordering::SeqCst);
            self.write(reg::RDT, index as u32);
            self.rx_next = (index + 1) % RX_DESCRIPTORS;
            if deliver {
                return Some(length);
            }
        }
    }

    /// `Nic::can_transmit`: a free transmit slot after reclaiming.
    pub(super) fn tx_has_room(&mut self) -> bool {
        self.reclaim_transmitted();
        !self.tx_ring_full()
    }

    /// `Nic::transmit`: copies `frame` into the next slot and moves `TDT`.
    pub(super) fn tx_put(&mut self, frame: &[u8]) -> Result<(), NicError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(NicError::FrameTooLarge);
        }
        if frame.is_empty() {
            // A zero-length descriptor is not a frame (SDM §3.3.3).
            return Err(NicError::Device);
        }
        self.reclaim_transmitted();
        if self.tx_ring_full() {
            return Err(NicError::QueueFull);
        }
        let index = self.tx_tail;
        let desc = self.tx_descriptor(index);
        // SAFETY: the slot is on our side of the ring (between the last
        // reclaimed descriptor and TDT), so the device reads neither the
        // descriptor nor its buffer until TDT moves past it below; the
        // frame fits the 2 KiB buffer.
        unsafe {
            core::ptr::copy_nonoverlapping(frame.as_ptr(), self.tx.buffer(index), frame.len());
            addr_of_mut!((*desc).buffer).write_volatile(self.tx.buffer_phys(index));
            addr_of_mut!((*desc).length).write_volatile(frame.len() as u16);
            addr_of_mut!((*desc).cso).write_volatile(0);
            addr_of_mut!((*desc).css).write_volatile(0);
            addr_of_mut!((*desc).special).write_volatile(0);
            addr_of_mut!((*desc).status).write_volatile(0);
            addr_of_mut!((*desc).cmd).write_volatile(TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS);
        }
        // The buffer and descriptor must be visible before the tail moves.
        fence(Ordering::SeqCst);
        self.tx_tail = (index + 1) % TX_DESCRIPTORS;
        self.write(reg::TDT, self.tx_tail as u32);
        Ok(())
    }
}
