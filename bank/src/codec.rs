//! Little-endian fixed-width reader and writer shared by every encoding in
//! this crate (commands, entries, snapshots).
//!
//! The reader is *total*: every read either returns the requested bytes or
//! [`DecodeError::Truncated`]; nothing here allocates, so no length read from
//! untrusted bytes can size an allocation. Callers check counts against named
//! caps before they allocate.

use core::fmt;

/// Why bytes did not decode. Each variant has a stable one-byte code because a
/// rejected entry's reason is part of the receipt chain (see `receipt.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the encoding needs.
    Truncated,
    /// Bytes left over after a complete value.
    TrailingBytes,
    /// The entry's version byte is not [`crate::ENTRY_VERSION`].
    UnsupportedVersion,
    /// A command kind byte that names no command.
    UnknownCommandKind,
    /// A batch with zero commands (an entry always carries at least one).
    EmptyBatch,
    /// A batch count above [`crate::MAX_COMMANDS_PER_BATCH`].
    BatchTooLarge,
    /// Account flag bits that are reserved (must be zero).
    ReservedFlags,
    /// An entry longer than [`crate::MAX_ENTRY_BYTES`].
    EntryTooLarge,
}

impl DecodeError {
    /// Every variant, in code order (used to decode codes back).
    pub const ALL: [DecodeError; 8] = [
        DecodeError::Truncated,
        DecodeError::TrailingBytes,
        DecodeError::UnsupportedVersion,
        DecodeError::UnknownCommandKind,
        DecodeError::EmptyBatch,
        DecodeError::BatchTooLarge,
        DecodeError::ReservedFlags,
        DecodeError::EntryTooLarge,
    ];

    /// Stable wire code (1-based).
    pub fn code(self) -> u8 {
        match self {
            DecodeError::Truncated => 1,
            DecodeError::TrailingBytes => 2,
            DecodeError::UnsupportedVersion => 3,
            DecodeError::UnknownCommandKind => 4,
            DecodeError::EmptyBatch => 5,
            DecodeError::BatchTooLarge => 6,
            DecodeError::ReservedFlags => 7,
            DecodeError::EntryTooLarge => 8,
        }
    }

    /// Inverse of [`DecodeError::code`].
    pub fn from_code(code: u8) -> Option<DecodeError> {
        DecodeError::ALL.iter().copied().find(|e| e.code() == code)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DecodeError::Truncated => "truncated encoding",
            DecodeError::TrailingBytes => "trailing bytes after a complete encoding",
            DecodeError::UnsupportedVersion => "unsupported entry version",
            DecodeError::UnknownCommandKind => "unknown command kind",
            DecodeError::EmptyBatch => "batch with no commands",
            DecodeError::BatchTooLarge => "batch exceeds MAX_COMMANDS_PER_BATCH",
            DecodeError::ReservedFlags => "reserved account flag bits set",
            DecodeError::EntryTooLarge => "entry exceeds MAX_ENTRY_BYTES",
        };
        f.write_str(text)
    }
}

/// Cursor over untrusted bytes: the workspace's total reader, little-endian
/// (`continuum_base::bytes`).
pub(crate) type Reader<'a> = continuum_base::bytes::LeReader<'a>;

impl From<continuum_base::bytes::Truncated> for DecodeError {
    fn from(_: continuum_base::bytes::Truncated) -> DecodeError {
        DecodeError::Truncated
    }
}

impl From<continuum_base::bytes::Trailing> for DecodeError {
    fn from(_: continuum_base::bytes::Trailing) -> DecodeError {
        DecodeError::TrailingBytes
    }
}

/// Appends little-endian fixed-width fields.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u64(&mut self, v: u64);
    fn put_u128(&mut self, v: u128);
    fn put_bytes(&mut self, v: &[u8]);
}

impl Put for alloc::vec::Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u128(&mut self, v: u128) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
}
