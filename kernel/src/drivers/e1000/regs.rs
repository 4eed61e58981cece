//! The e1000 family's register map, bit definitions and legacy descriptor
//! layouts (SDM chapters 3 and 13; the 82574 datasheet's chapters 7 and
//! 10 keep the same offsets and bits for everything used here), with the
//! ring and buffer sizes this driver picks. Definitions only: no code
//! touches the device from here.

use continuum_net::nic::MAX_FRAME_BYTES;

/// Receive descriptors. A multiple of 8 (`RDLEN` must be a multiple of
/// 128 bytes, SDM §13.4.27); 64 frames absorb a burst of peer traffic
/// between two runs of the network task.
pub(super) const RX_DESCRIPTORS: usize = 64;
/// Transmit descriptors, a multiple of 8 for the same reason (`TDLEN`).
pub(super) const TX_DESCRIPTORS: usize = 32;
/// Size of each receive and transmit buffer: `RCTL.BSIZE` = 00 with
/// `RCTL.BSEX` = 0 selects 2048-byte receive buffers (SDM §13.4.22).
pub(super) const BUFFER_BYTES: usize = 2048;
pub(super) const PAGE: usize = 4096;
/// Bytes of BAR 0 that hold the registers used here (both families decode
/// 128 KiB there).
pub(super) const REGISTER_WINDOW: u64 = 0x2_0000;
/// How long a reset or an EEPROM read may take before we give up.
pub(super) const RESET_TIMEOUT_MS: u64 = 100;
pub(super) const EEPROM_TIMEOUT_MS: u64 = 10;

/// Register offsets in BAR 0 (SDM §13.4; the 82574 register summary in
/// its chapter 10 keeps them).
pub(super) mod reg {
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
pub(super) const CTRL_LRST: u32 = 1 << 3;
pub(super) const CTRL_SLU: u32 = 1 << 6;
pub(super) const CTRL_ILOS: u32 = 1 << 7;
pub(super) const CTRL_FRCSPD: u32 = 1 << 11;
pub(super) const CTRL_FRCDPLX: u32 = 1 << 12;
pub(super) const CTRL_RST: u32 = 1 << 26;
pub(super) const CTRL_VME: u32 = 1 << 30;
pub(super) const CTRL_PHY_RST: u32 = 1 << 31;
// STATUS (SDM §13.4.2).
pub(super) const STATUS_FD: u32 = 1 << 0;
pub(super) const STATUS_LU: u32 = 1 << 1;
// EECD (82574 ch. 10): the NVM auto-read after reset is done.
pub(super) const EECD_AUTO_RD: u32 = 1 << 9;
// EERD: START is bit 0 on both; DONE and the address field moved
// (SDM §13.4.4: DONE bit 4, ADDR 15:8; 82574 EERD: DONE bit 1, ADDR 15:2).
pub(super) const EERD_START: u32 = 1 << 0;
// Interrupt causes, same bits in ICR, IMS and IMC (SDM §13.4.17).
pub(super) const INT_TXDW: u32 = 1 << 0;
pub(super) const INT_LSC: u32 = 1 << 2;
pub(super) const INT_RXDMT0: u32 = 1 << 4;
pub(super) const INT_RXO: u32 = 1 << 6;
pub(super) const INT_RXT0: u32 = 1 << 7;
// RCTL (SDM §13.4.22): enable, accept broadcast, strip the Ethernet CRC.
// BSIZE = 00 (2048), RDMTS = 00 (half), LPE, UPE, MPE and LBM all zero.
pub(super) const RCTL_EN: u32 = 1 << 1;
pub(super) const RCTL_BAM: u32 = 1 << 15;
pub(super) const RCTL_SECRC: u32 = 1 << 26;
// TCTL (SDM §13.4.33): enable, pad short packets, retry threshold 15.
pub(super) const TCTL_EN: u32 = 1 << 1;
pub(super) const TCTL_PSP: u32 = 1 << 3;
pub(super) const TCTL_CT_15: u32 = 0x0f << 4;
pub(super) const TCTL_COLD_SHIFT: u32 = 12;
// RAH0, "Receive Address High" (SDM ch. 13): address valid.
pub(super) const RAH_AV: u32 = 1 << 31;

// Legacy receive descriptor status and errors (SDM §3.2.3.1, §3.2.3.2).
pub(super) const RX_STATUS_DD: u8 = 1 << 0;
pub(super) const RX_STATUS_EOP: u8 = 1 << 1;
/// CE, SE, SEQ, CXE and RXE: the frame itself is bad. (TCPE and IPE only
/// report checksum offload, which is off.)
pub(super) const RX_ERRORS_FRAME: u8 = 0b1001_0111;
// Legacy transmit descriptor command and status (SDM §3.3.3).
pub(super) const TX_CMD_EOP: u8 = 1 << 0;
pub(super) const TX_CMD_IFCS: u8 = 1 << 1;
pub(super) const TX_CMD_RS: u8 = 1 << 3;
pub(super) const TX_STATUS_DD: u8 = 1 << 0;

/// Legacy receive descriptor (SDM §3.2.3; the 82574's legacy format is the same).
#[repr(C, align(16))]
pub(super) struct RxDescriptor {
    pub(super) buffer: u64,
    pub(super) length: u16,
    pub(super) checksum: u16,
    pub(super) status: u8,
    pub(super) errors: u8,
    pub(super) special: u16,
}

/// Legacy transmit descriptor (SDM §3.3.3; likewise on the 82574).
#[repr(C, align(16))]
pub(super) struct TxDescriptor {
    pub(super) buffer: u64,
    pub(super) length: u16,
    pub(super) cso: u8,
    pub(super) cmd: u8,
    pub(super) status: u8,
    pub(super) css: u8,
    pub(super) special: u16,
}

const _: () = assert!(core::mem::size_of::<RxDescriptor>() == 16);
const _: () = assert!(core::mem::size_of::<TxDescriptor>() == 16);
const _: () = assert!(RX_DESCRIPTORS.is_multiple_of(8) && TX_DESCRIPTORS.is_multiple_of(8));
const _: () = assert!(BUFFER_BYTES >= MAX_FRAME_BYTES);
