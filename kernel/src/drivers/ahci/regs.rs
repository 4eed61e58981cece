//! AHCI register offsets and bits (AHCI 1.3.1 §3), ATA opcodes
//! (ATA8-ACS §7), the layout of each port's command page, and timeouts.
//! Definitions only: nothing here touches the controller.

// Generic host control (§3.1).
pub(super) const HBA_CAP: usize = 0x00;
pub(super) const HBA_GHC: usize = 0x04;
pub(super) const HBA_PI: usize = 0x0c;
pub(super) const HBA_CAP2: usize = 0x24;
pub(super) const HBA_BOHC: usize = 0x28;
pub(super) const CAP_S64A: u32 = 1 << 31;
pub(super) const CAP_SSS: u32 = 1 << 27;
pub(super) const GHC_AE: u32 = 1 << 31;
pub(super) const GHC_IE: u32 = 1 << 1;
pub(super) const CAP2_BOH: u32 = 1;
pub(super) const BOHC_BOS: u32 = 1;
pub(super) const BOHC_OOS: u32 = 1 << 1;

// Port registers (§3.3), at 100h + port * 80h.
pub(super) const PORT_CLB: usize = 0x00;
pub(super) const PORT_FB: usize = 0x08;
pub(super) const PORT_IS: usize = 0x10;
pub(super) const PORT_IE: usize = 0x14;
pub(super) const PORT_CMD: usize = 0x18;
pub(super) const PORT_TFD: usize = 0x20;
pub(super) const PORT_SIG: usize = 0x24;
pub(super) const PORT_SSTS: usize = 0x28;
pub(super) const PORT_SERR: usize = 0x30;
pub(super) const PORT_CI: usize = 0x38;
pub(super) const CMD_ST: u32 = 1;
pub(super) const CMD_SUD: u32 = 1 << 1;
pub(super) const CMD_FRE: u32 = 1 << 4;
pub(super) const CMD_FR: u32 = 1 << 14;
pub(super) const CMD_CR: u32 = 1 << 15;
pub(super) const IS_TFES: u32 = 1 << 30;
pub(super) const TFD_ERR: u32 = 1;
pub(super) const TFD_DRQ: u32 = 1 << 3;
pub(super) const TFD_BSY: u32 = 1 << 7;
pub(super) const SIG_SATA_DISK: u32 = 0x0000_0101;

// ATA commands (ATA8-ACS §7).
pub(super) const ATA_IDENTIFY_DEVICE: u8 = 0xec;
pub(super) const ATA_READ_DMA_EXT: u8 = 0x25;
pub(super) const ATA_WRITE_DMA_EXT: u8 = 0x35;
pub(super) const ATA_FLUSH_CACHE_EXT: u8 = 0xea;
pub(super) const FIS_REGISTER_H2D: u8 = 0x27;

/// Layout of the one page each port owns: command list (32 headers of
/// 32 bytes, 1 KiB-aligned), FIS receive area (256 bytes, 256-aligned),
/// command table for slot 0 (128-aligned: 64-byte CFIS, 16-byte ACMD,
/// reserved, one PRDT entry at 80h).
pub(super) const CMD_LIST_OFFSET: usize = 0;
pub(super) const FIS_OFFSET: usize = 0x400;
pub(super) const CMD_TABLE_OFFSET: usize = 0x800;
pub(super) const PRDT_OFFSET: usize = CMD_TABLE_OFFSET + 0x80;

/// Longest wait for a port's command engine or FIS receive to stop or start.
pub(super) const ENGINE_TIMEOUT_MS: u64 = 1_000;
/// Longest wait for the BIOS to release the controller (§10.6: 25 ms, or
/// 2 s when it sets BOHC.BB).
pub(super) const HANDOFF_TIMEOUT_MS: u64 = 2_000;
/// Longest wait for a command (a spun-down disk needs seconds to answer).
pub(super) const IO_TIMEOUT_MS: u64 = 30_000;
/// [`DeviceError::Io`] code of a command that did not complete in time
/// (other codes are PxTFD: ATA error register << 8 | status register).
pub(super) const TIMEOUT_CODE: u32 = 0x1_0000;
/// Most ports an HBA has (CAP.NP is 5 bits).
pub(super) const MAX_PORTS: usize = 32;
