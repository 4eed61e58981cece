//! Intel e1000-class Ethernet controllers as a [`Nic`]: the 82540EM (QEMU's
//! `-device e1000`, and many older PCs and hypervisors), the 82545EM, and
//! the PCIe 82574L (QEMU's `-device e1000e`, common on real boards).
//!
//! References, cited by section below:
//! * **SDM**: *PCI/PCI-X Family of Gigabit Ethernet Controllers Software
//!   Developer's Manual* (8254x, Intel 317453), chapters 3 (descriptors),
//!   13 (registers) and 14 (initialization).
//! * **82574**: *Intel 82574 GbE Controller Family Datasheet* (Intel
//!   317694), chapter 7 (legacy descriptors) and chapter 10 (registers),
//!   cited by register name.
//!
//! # One driver for both families
//! The 82574 keeps the 8254x register offsets for everything used here and
//! still accepts the *legacy* receive and transmit descriptors (SDM §3.2.3,
//! §3.3.3; 82574 chapter 7: legacy receive descriptors are the default while
//! `RFCTL.EXSTEN` is clear, and a transmit descriptor with `DEXT` clear is
//! legacy). So the data path is shared; the differences are confined to
//! bring-up: the `EERD` layout, and two reserved bits the 82574 wants set
//! (see [`E1000::new`]).
//!
//! # Data path
//! * **Receive**: a ring of [`RX_DESCRIPTORS`] descriptors, each owning a
//!   2 KiB DMA buffer (`RCTL.BSIZE` = 2048). With long-packet reception off
//!   (`RCTL.LPE` = 0) a frame fits one buffer; a frame that does not end in
//!   its first descriptor (`EOP` clear) or carries a receive error is
//!   dropped whole. A frame is copied out once, then the descriptor goes
//!   straight back to the device through `RDT`.
//! * **Transmit**: a ring of [`TX_DESCRIPTORS`] descriptors with their own
//!   buffers. [`Nic::transmit`] copies the frame into the next free buffer
//!   and moves `TDT`; it never waits. Every descriptor asks for a status
//!   write-back (`RS`), and slots whose `DD` bit came back are reclaimed on
//!   the next call. A full ring is [`NicError::QueueFull`].
//! * **Interrupts**: legacy INTx, level-triggered, possibly shared.
//!   Receive timer, receive overrun, low receive descriptors, transmit
//!   written back and link change are unmasked (`IMS`); the network task
//!   reads `ICR` in [`Nic::ack_interrupt`], which clears the causes and
//!   deasserts the line before the I/O APIC pin is unmasked again.
//!
//! All descriptor memory and buffers come from `memory::alloc_dma_frames`
//! and are handed to the device by physical address; nothing assumes an
//! identity mapping. Registers live in BAR 0, mapped uncached with
//! `memory::map_mmio` (OVMF may place it above 4 GiB).
//!
//! No checksum offload, VLAN, jumbo frames or multicast filtering: smoltcp
//! checks every checksum, and the node speaks unicast and broadcast IPv4.
//!
//! # Files
//! * `regs`: register offsets, bits, descriptor layouts, ring sizes.
//! * `init`: reset, station address, link configuration (bring-up only).
//! * `ring`: the receive and transmit rings (the data path).
//! * this file: the chip models, [`E1000::new`], register access and the
//!   [`Nic`] front end.
//!
//! A driver: it knows nothing of the network stack or the node above it.

mod init;
mod regs;
mod ring;

use crate::memory;
use continuum_net::nic::{Nic, NicError, MAX_FRAME_BYTES};
use core::fmt;
use regs::*;
use ring::Ring;

/// The chips this driver knows, by PCI id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// 82540EM desktop controller, 8086:100e (QEMU `e1000`).
    I82540Em,
    /// 82545EM copper, 8086:100f (QEMU `e1000-82545em`).
    I82545Em,
    /// 82574L PCIe controller, 8086:10d3 (QEMU `e1000e`).
    I82574L,
}

impl Model {
    /// The model behind a PCI vendor and device id, if this driver runs it.
    pub fn from_pci_ids(vendor: u16, device: u16) -> Option<Model> {
        match (vendor, device) {
            (0x8086, 0x100e) => Some(Model::I82540Em),
            (0x8086, 0x100f) => Some(Model::I82545Em),
            (0x8086, 0x10d3) => Some(Model::I82574L),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Model::I82540Em => "Intel 82540EM (e1000)",
            Model::I82545Em => "Intel 82545EM (e1000)",
            Model::I82574L => "Intel 82574L (e1000e)",
        }
    }

    fn is_82574(self) -> bool {
        self == Model::I82574L
    }
}

/// Why a controller could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// BAR 0 is unassigned or smaller than the register window.
    BadBar { address: u64, size: u64 },
    /// `CTRL.RST` did not clear.
    ResetTimeout,
    /// Neither `RAL0`/`RAH0` nor the EEPROM hold a usable unicast address.
    NoMacAddress,
    /// No DMA memory left for the rings.
    NoMemory,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InitError::BadBar { address, size } => write!(
                f,
                "BAR 0 at {address:#x} ({size} bytes) is not a usable register window"
            ),
            InitError::ResetTimeout => {
                write!(
                    f,
                    "the device reset did not complete in {RESET_TIMEOUT_MS} ms"
                )
            }
            InitError::NoMacAddress => {
                f.write_str("no valid MAC address in RAL0/RAH0 or the EEPROM")
            }
            InitError::NoMemory => f.write_str("no memory for the descriptor rings"),
        }
    }
}

pub struct E1000 {
    model: Model,
    /// Virtual address of the register window.
    registers: u64,
    mac: [u8; 6],
    rx: Ring,
    /// Next receive descriptor the device fills.
    rx_next: usize,
    /// Inside a frame that spans descriptors (dropped up to its `EOP`).
    rx_discarding: bool,
    /// Frames dropped: receive errors or too long for one buffer.
    rx_dropped: u64,
    tx: Ring,
    /// Next transmit descriptor to fill; `TDT` as last written.
    tx_tail: usize,
    /// Oldest descriptor not yet known to be sent. `tx_clean == tx_tail`
    /// means the ring is empty; one slot stays unused so that a full ring
    /// is distinguishable from an empty one.
    tx_clean: usize,
    link_up: bool,
}

impl E1000 {
    /// Resets and starts the controller whose BAR 0 is at physical
    /// `bar_address` (`bar_size` bytes). The caller has enabled memory
    /// decoding and bus mastering.
    ///
    /// Order, after SDM chapter 14 (the 82574's initialization chapter
    /// follows the same steps):
    /// 1. Quiesce: mask interrupts, stop both units, then global reset
    ///    (`CTRL.RST`), which also reloads the EEPROM defaults.
    /// 2. General configuration (SDM §14.3): link up (`CTRL.SLU`) with
    ///    speed and duplex from the PHY's auto-negotiation; flow control
    ///    registers zero (no flow control); multicast table cleared; the
    ///    station address into `RAL0`/`RAH0`.
    /// 3. Receive (SDM §14.4) and transmit (SDM §14.5) rings.
    /// 4. Unmask the interrupt causes the network task handles.
    pub fn new(model: Model, bar_address: u64, bar_size: u64) -> Result<E1000, InitError> {
        if bar_address == 0 || bar_size < REGISTER_WINDOW {
            return Err(InitError::BadBar {
                address: bar_address,
                size: bar_size,
            });
        }
        let registers = memory::map_mmio(bar_address, REGISTER_WINDOW);
        let rx = Ring::allocate(RX_DESCRIPTORS)?;
        let tx = Ring::allocate(TX_DESCRIPTORS)?;
        let mut nic = E1000 {
            model,
            registers,
            mac: [0; 6],
            rx,
            rx_next: 0,
            rx_discarding: false,
            rx_dropped: 0,
            tx,
            tx_tail: 0,
            tx_clean: 0,
            link_up: false,
        };
        nic.reset()?;
        nic.mac = nic.station_address().ok_or(InitError::NoMacAddress)?;
        nic.configure_link();
        nic.start_receive();
        nic.start_transmit();
        nic.write(
            reg::IMS,
            INT_RXT0 | INT_RXO | INT_RXDMT0 | INT_TXDW | INT_LSC,
        );
        nic.link_up = nic.read(reg::STATUS) & STATUS_LU != 0;
        nic.log_link();
        Ok(nic)
    }

    fn read(&self, offset: usize) -> u32 {
        debug_assert!((offset as u64) < REGISTER_WINDOW);
        // SAFETY: `registers` maps REGISTER_WINDOW bytes of BAR 0 uncached
        // and every offset used is a 32-bit register inside it.
        unsafe { ((self.registers + offset as u64) as *const u32).read_volatile() }
    }

    fn write(&self, offset: usize, value: u32) {
        debug_assert!((offset as u64) < REGISTER_WINDOW);
        // SAFETY: as in `read`; writes only go to registers this driver owns.
        unsafe { ((self.registers + offset as u64) as *mut u32).write_volatile(value) }
    }
}

impl Nic for E1000 {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
        self.rx_take(buf)
    }

    fn can_transmit(&mut self) -> bool {
        self.tx_has_room()
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        self.tx_put(frame)
    }

    fn ack_interrupt(&mut self) {
        // Reading ICR returns and clears the pending causes and deasserts
        // INTx (SDM §13.4.17; the 82574's ICR does the same in legacy
        // interrupt mode, without MSI-X).
        let causes = self.read(reg::ICR);
        if causes & INT_LSC != 0 {
            let up = self.read(reg::STATUS) & STATUS_LU != 0;
            if up != self.link_up {
                self.link_up = up;
                self.log_link();
            }
        }
        if causes & INT_RXO != 0 {
            log::debug!("e1000: receive overrun (frames arrived faster than they were taken)");
        }
    }
}
