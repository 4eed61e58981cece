//! A log entry: a batch of one or more signed commands, applied in order.
//!
//! Encoding: `version (1) = ENTRY_VERSION ‖ count (2, LE, 1..=MAX_COMMANDS_PER_BATCH)
//! ‖ count × signed command`. A single command is a batch of one, so each
//! entry has exactly one encoding. The decoder checks the entry length against
//! [`MAX_ENTRY_BYTES`] and the count against [`MAX_COMMANDS_PER_BATCH`] before
//! it allocates, and allocates at most `count` slots.

use crate::codec::{DecodeError, Put, Reader};
use crate::command::{SignedCommand, SIGNATURE_LEN, TRANSFER_BODY_LEN};
use alloc::vec::Vec;

/// Version byte of the entry encoding (2: commands carry `expires_at`).
pub const ENTRY_VERSION: u8 = 2;
/// Most commands in one entry. Bounds per-entry work (one batch signature
/// verification) and the decoder's allocation.
pub const MAX_COMMANDS_PER_BATCH: usize = 512;
/// Largest signed command on the wire (a transfer): kind + body + signature.
pub const MAX_SIGNED_COMMAND_LEN: usize = 1 + TRANSFER_BODY_LEN + SIGNATURE_LEN;
/// Longest valid entry: header + a full batch of the largest command.
pub const MAX_ENTRY_BYTES: usize = 3 + MAX_COMMANDS_PER_BATCH * MAX_SIGNED_COMMAND_LEN;
/// Smallest signed command (a create-account): used to bound `count` by the
/// bytes actually present before allocating.
const MIN_SIGNED_COMMAND_LEN: usize = 1 + crate::command::CREATE_ACCOUNT_BODY_LEN + SIGNATURE_LEN;

/// A decoded log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    commands: Vec<SignedCommand>,
}

impl Entry {
    /// A batch of `commands`; fails if empty or above the cap.
    pub fn new(commands: Vec<SignedCommand>) -> Result<Entry, DecodeError> {
        if commands.is_empty() {
            return Err(DecodeError::EmptyBatch);
        }
        if commands.len() > MAX_COMMANDS_PER_BATCH {
            return Err(DecodeError::BatchTooLarge);
        }
        Ok(Entry { commands })
    }

    /// A batch of one command.
    pub fn single(command: SignedCommand) -> Entry {
        Entry {
            commands: alloc::vec![command],
        }
    }

    /// The entry's commands, in the order they apply.
    pub fn commands(&self) -> &[SignedCommand] {
        &self.commands
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.commands.len() * MAX_SIGNED_COMMAND_LEN);
        out.put_u8(ENTRY_VERSION);
        // `new` bounds the count by MAX_COMMANDS_PER_BATCH < u16::MAX.
        out.put_u16(self.commands.len() as u16);
        for c in &self.commands {
            c.encode_into(&mut out);
        }
        out
    }

    /// Total decoder: any bytes give an entry or an error.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(DecodeError::EntryTooLarge);
        }
        let mut r = Reader::new(bytes);
        if r.u8()? != ENTRY_VERSION {
            return Err(DecodeError::UnsupportedVersion);
        }
        let count = usize::from(r.u16()?);
        if count == 0 {
            return Err(DecodeError::EmptyBatch);
        }
        if count > MAX_COMMANDS_PER_BATCH {
            return Err(DecodeError::BatchTooLarge);
        }
        if count * MIN_SIGNED_COMMAND_LEN > r.remaining() {
            return Err(DecodeError::Truncated);
        }
        let mut commands = Vec::with_capacity(count);
        for _ in 0..count {
            commands.push(SignedCommand::read(&mut r)?);
        }
        r.finish()?;
        Ok(Entry { commands })
    }
}
