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

use crate::{memory, time};
use continuum_net::nic::{Nic, NicError, MAX_FRAME_BYTES};
use core::fmt;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{fence, Ordering};

/// Receive descriptors. A multiple of 8 (`RDLEN` must be a multiple of
/// 128 bytes, SDM §13.4.27); 64 frames absorb a burst of peer traffic
/// between two runs of the network task.
pub const RX_DESCRIPTORS: usize = 64;
/// Transmit descriptors, a multiple of 8 for the same reason (`TDLEN`).
pub const TX_DESCRIPTORS: usize = 32;
/// Size of each receive and transmit buffer: `RCTL.BSIZE` = 00 with
/// `RCTL.BSEX` = 0 selects 2048-byte receive buffers (SDM §13.4.22).
const BUFFER_BYTES: usize = 2048;
const PAGE: usize = 4096;
/// Bytes of BAR 0 that hold the registers used here (both families decode
/// 128 KiB there).
const REGISTER_WINDOW: u64 = 0x2_0000;
/// How long a reset or an EEPROM read may take before we give up.
const RESET_TIMEOUT_MS: u64 = 100;
const EEPROM_TIMEOUT_MS: u64 = 10;

/// Register offsets in BAR 0 (SDM §13.4; the 82574 register summary in
/// its chapter 10 keeps them).
mod reg {
    pub const CTRL: usize = 0x0000;
    pub const STATUS: usize = 0x0008;
    pub const EECD: usize = 0x0010;
    pub const EERD: usize = 0x0014;
    pub const FCAL: usize = 0x0028;
    pub const FCAH: usize = 0x002c;
    pub const FCT: usize = 0x0030;
    pub const ICR: usize = 0x00c0;
    pub const IMS: usize = 0x00d0;
    pub const IMC: usize = 0x00d8;
    pub const RCTL: usize = 0x0100;
    pub const FCTTV: usize = 0x0170;
    pub const TCTL: usize = 0x0400;
    pub const TIPG: usize = 0x0410;
    pub const RDBAL: usize = 0x2800;
    pub const RDBAH: usize = 0x2804;
    pub const RDLEN: usize = 0x2808;
    pub const RDH: usize = 0x2810;
    pub const RDT: usize = 0x2818;
    pub const RDTR: usize = 0x2820;
    pub const TDBAL: usize = 0x3800;
    pub const TDBAH: usize = 0x3804;
    pub const TDLEN: usize = 0x3808;
    pub const TDH: usize = 0x3810;
    pub const TDT: usize = 0x3818;
    pub const TXDCTL: usize = 0x3828;
    pub const MTA: usize = 0x5200;
    pub const RAL0: usize = 0x5400;
    pub const RAH0: usize = 0x5404;
    /// 82574 only: 3GIO (PCIe) general control.
    pub const GCR: usize = 0x5b00;
}

// CTRL (SDM §13.4.1).
const CTRL_LRST: u32 = 1 << 3;
const CTRL_SLU: u32 = 1 << 6;
const CTRL_ILOS: u32 = 1 << 7;
const CTRL_FRCSPD: u32 = 1 << 11;
const CTRL_FRCDPLX: u32 = 1 << 12;
const CTRL_RST: u32 = 1 << 26;
const CTRL_VME: u32 = 1 << 30;
const CTRL_PHY_RST: u32 = 1 << 31;
// STATUS (SDM §13.4.2).
const STATUS_FD: u32 = 1 << 0;
const STATUS_LU: u32 = 1 << 1;
// EECD (82574 ch. 10): the NVM auto-read after reset is done.
const EECD_AUTO_RD: u32 = 1 << 9;
// EERD: START is bit 0 on both; DONE and the address field moved
// (SDM §13.4.4: DONE bit 4, ADDR 15:8; 82574 EERD: DONE bit 1, ADDR 15:2).
const EERD_START: u32 = 1 << 0;
// Interrupt causes, same bits in ICR, IMS and IMC (SDM §13.4.17).
const INT_TXDW: u32 = 1 << 0;
const INT_LSC: u32 = 1 << 2;
const INT_RXDMT0: u32 = 1 << 4;
const INT_RXO: u32 = 1 << 6;
const INT_RXT0: u32 = 1 << 7;
// RCTL (SDM §13.4.22): enable, accept broadcast, strip the Ethernet CRC.
// BSIZE = 00 (2048), RDMTS = 00 (half), LPE, UPE, MPE and LBM all zero.
const RCTL_EN: u32 = 1 << 1;
const RCTL_BAM: u32 = 1 << 15;
const RCTL_SECRC: u32 = 1 << 26;
// TCTL (SDM §13.4.33): enable, pad short packets, retry threshold 15.
const TCTL_EN: u32 = 1 << 1;
const TCTL_PSP: u32 = 1 << 3;
const TCTL_CT_15: u32 = 0x0f << 4;
const TCTL_COLD_SHIFT: u32 = 12;
// RAH0, "Receive Address High" (SDM ch. 13): address valid.
const RAH_AV: u32 = 1 << 31;

// Legacy receive descriptor status and errors (SDM §3.2.3.1, §3.2.3.2).
const RX_STATUS_DD: u8 = 1 << 0;
const RX_STATUS_EOP: u8 = 1 << 1;
/// CE, SE, SEQ, CXE and RXE: the frame itself is bad. (TCPE and IPE only
/// report checksum offload, which is off.)
const RX_ERRORS_FRAME: u8 = 0b1001_0111;
// Legacy transmit descriptor command and status (SDM §3.3.3).
const TX_CMD_EOP: u8 = 1 << 0;
const TX_CMD_IFCS: u8 = 1 << 1;
const TX_CMD_RS: u8 = 1 << 3;
const TX_STATUS_DD: u8 = 1 << 0;

/// Legacy receive descriptor (SDM §3.2.3; the 82574's legacy format is the same).
#[repr(C, align(16))]
struct RxDescriptor {
    buffer: u64,
    length: u16,
    checksum: u16,
    status: u8,
    errors: u8,
    special: u16,
}

/// Legacy transmit descriptor (SDM §3.3.3; likewise on the 82574).
#[repr(C, align(16))]
struct TxDescriptor {
    buffer: u64,
    length: u16,
    cso: u8,
    cmd: u8,
    status: u8,
    css: u8,
    special: u16,
}

const _: () = assert!(core::mem::size_of::<RxDescriptor>() == 16);
const _: () = assert!(core::mem::size_of::<TxDescriptor>() == 16);
const _: () = assert!(RX_DESCRIPTORS.is_multiple_of(8) && TX_DESCRIPTORS.is_multiple_of(8));
const _: () = assert!(BUFFER_BYTES >= MAX_FRAME_BYTES);

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

/// A descriptor ring and its buffers: physical addresses for the device,
/// virtual ones (through the physical-memory window) for us.
struct Ring {
    descriptors_phys: u64,
    descriptors: u64,
    buffers_phys: u64,
    buffers: u64,
}

impl Ring {
    fn allocate(descriptors: usize) -> Result<Ring, InitError> {
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

/// Busy-waits `ms` milliseconds (bring-up only, never on the data path).
fn delay_ms(ms: u64) {
    let until = time::monotonic_ns() + ms * 1_000_000;
    while time::monotonic_ns() < until {
        core::hint::spin_loop();
    }
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

    fn reset(&mut self) -> Result<(), InitError> {
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
    fn station_address(&self) -> Option<[u8; 6]> {
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

    fn eeprom_word(&self, word: u8) -> Option<u16> {
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

    fn configure_link(&mut self) {
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

    fn rx_descriptor(&self, index: usize) -> *mut RxDescriptor {
        debug_assert!(index < RX_DESCRIPTORS);
        (self.rx.descriptors + (index * 16) as u64) as *mut RxDescriptor
    }

    fn tx_descriptor(&self, index: usize) -> *mut TxDescriptor {
        debug_assert!(index < TX_DESCRIPTORS);
        (self.tx.descriptors + (index * 16) as u64) as *mut TxDescriptor
    }

    /// Hands receive descriptor `index` (empty, pointing at its buffer) to
    /// the device's side of the ring, without moving `RDT`.
    fn arm_rx_descriptor(&self, index: usize) {
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

    fn start_receive(&mut self) {
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

    fn start_transmit(&mut self) {
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
    fn reclaim_transmitted(&mut self) {
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

    fn tx_ring_full(&self) -> bool {
        (self.tx_tail + 1) % TX_DESCRIPTORS == self.tx_clean
    }

    fn log_link(&self) {
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
fn usable_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

impl Nic for E1000 {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
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

    fn can_transmit(&mut self) -> bool {
        self.reclaim_transmitted();
        !self.tx_ring_full()
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
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
