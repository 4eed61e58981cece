//! NVMe register offsets, command opcodes, queue geometry and timeouts
//! (NVMe Base Specification 1.4 §3.1, §5; NVM command set §6).
//! Definitions only: nothing here touches the controller.

// Controller registers (§3.1).
pub(super) const REG_CAP: usize = 0x00;
pub(super) const REG_INTMS: usize = 0x0c;
pub(super) const REG_CC: usize = 0x14;
pub(super) const REG_CSTS: usize = 0x1c;
pub(super) const REG_AQA: usize = 0x24;
pub(super) const REG_ASQ: usize = 0x28;
pub(super) const REG_ACQ: usize = 0x30;
pub(super) const DOORBELLS: usize = 0x1000;

pub(super) const CC_EN: u32 = 1;
/// CC.IOSQES = 6 (64-byte entries), CC.IOCQES = 4 (16-byte entries).
pub(super) const CC_ENTRY_SIZES: u32 = 6 << 16 | 4 << 20;
pub(super) const CSTS_RDY: u32 = 1;
pub(super) const CSTS_CFS: u32 = 1 << 1;

// Opcodes: admin (§5) and NVM (NVM command set §6).
pub(super) const ADMIN_CREATE_SQ: u8 = 0x01;
pub(super) const ADMIN_CREATE_CQ: u8 = 0x05;
pub(super) const ADMIN_IDENTIFY: u8 = 0x06;
pub(super) const ADMIN_SET_FEATURES: u8 = 0x09;
pub(super) const NVM_FLUSH: u8 = 0x00;
pub(super) const NVM_WRITE: u8 = 0x01;
pub(super) const NVM_READ: u8 = 0x02;
pub(super) const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// Entries per queue (each queue is one page; one command is in flight at
/// a time, so depth only has to exceed one).
pub(super) const QUEUE_ENTRIES: u16 = 16;
pub(super) const SQ_ENTRY_BYTES: usize = 64;
pub(super) const CQ_ENTRY_BYTES: usize = 16;
/// Longest wait for an admin command (Identify, queue creation).
pub(super) const ADMIN_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for a read, write or flush before it is an I/O error.
pub(super) const IO_TIMEOUT_MS: u64 = 30_000;
/// [`DeviceError::Io`] code of a command that did not complete in time,
/// and of every command after it: a controller that lost a command is not
/// trusted again until reboot (other codes are the NVMe status, SCT << 8 |
/// SC, §4.6.1.2).
pub(super) const TIMEOUT_CODE: u32 = 0x1_0000;
/// Status reported when a completion names another command than the one
/// in flight (a controller bug); the controller is not used again.
pub(super) const STATUS_WRONG_COMPLETION: u16 = 0xffff;
