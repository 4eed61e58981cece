//! Wire encoding of clock timestamps: 8 bytes, big-endian, fixed width.
//!
//! Decoding is total (any byte slice gives `Ok` or `Err`, never a panic)
//! and canonical (one encoding per accepted value). Slices must be exactly
//! 8 bytes: the framing layer (`net/`) cuts fields out of a message, so a
//! short or long field is a framing bug worth reporting, not something to
//! paper over by reading a prefix.

use core::fmt;

use crate::lamport::LAMPORT_REMOTE_MAX;
use crate::timestamp::HlcTimestamp;

/// Encoded size of every timestamp.
pub const TIMESTAMP_WIRE_LEN: usize = 8;

/// Why bytes are not a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The field is not [`TIMESTAMP_WIRE_LEN`] bytes long.
    WrongLength {
        /// The length received.
        found: usize,
    },
    /// A Lamport timestamp above [`LAMPORT_REMOTE_MAX`], which
    /// [`crate::LamportClock::recv`] would refuse anyway.
    LamportOutOfRange {
        /// The decoded value.
        value: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { found } => write!(
                f,
                "timestamp field is {found} bytes, expected {TIMESTAMP_WIRE_LEN}"
            ),
            Self::LamportOutOfRange { value } => write!(
                f,
                "Lamport timestamp {value} exceeds the accepted maximum {LAMPORT_REMOTE_MAX}"
            ),
        }
    }
}

fn exact_word(bytes: &[u8]) -> Result<u64, DecodeError> {
    let array: [u8; TIMESTAMP_WIRE_LEN] = bytes
        .try_into()
        .map_err(|_| DecodeError::WrongLength { found: bytes.len() })?;
    Ok(u64::from_be_bytes(array))
}

impl HlcTimestamp {
    /// Big-endian packed word: 6 bytes of milliseconds, 2 of logical.
    pub const fn to_bytes(self) -> [u8; TIMESTAMP_WIRE_LEN] {
        self.packed().to_be_bytes()
    }

    /// Inverse of [`HlcTimestamp::to_bytes`]. Every 8-byte value is a
    /// timestamp, so the only error is the length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        exact_word(bytes).map(Self::from_packed)
    }
}

/// Encodes a Lamport timestamp.
pub const fn lamport_to_bytes(value: u64) -> [u8; TIMESTAMP_WIRE_LEN] {
    value.to_be_bytes()
}

/// Decodes a Lamport timestamp, refusing values above
/// [`LAMPORT_REMOTE_MAX`].
pub fn lamport_from_bytes(bytes: &[u8]) -> Result<u64, DecodeError> {
    let value = exact_word(bytes)?;
    if value > LAMPORT_REMOTE_MAX {
        return Err(DecodeError::LamportOutOfRange { value });
    }
    Ok(value)
}

/// Fuzzing oracle shared by the `wire_decode` fuzz target and the
/// property tests: decoding `bytes` must not panic, must fail exactly when
/// the length is wrong (or the Lamport value is out of range), and whatever
/// decodes must re-encode to the same bytes.
///
/// # Panics
/// If any of those properties is violated.
#[doc(hidden)]
pub fn check_wire_decoding(bytes: &[u8]) {
    match HlcTimestamp::from_bytes(bytes) {
        Ok(stamp) => assert_eq!(&stamp.to_bytes()[..], bytes),
        Err(error) => {
            assert_ne!(bytes.len(), TIMESTAMP_WIRE_LEN, "8 bytes refused: {error}");
            assert_eq!(error, DecodeError::WrongLength { found: bytes.len() });
        }
    }
    match lamport_from_bytes(bytes) {
        Ok(value) => {
            assert!(value <= LAMPORT_REMOTE_MAX);
            assert_eq!(&lamport_to_bytes(value)[..], bytes);
        }
        Err(DecodeError::WrongLength { found }) => {
            assert_eq!(found, bytes.len());
            assert_ne!(found, TIMESTAMP_WIRE_LEN);
        }
        Err(DecodeError::LamportOutOfRange { value }) => {
            assert!(value > LAMPORT_REMOTE_MAX);
            assert_eq!(&lamport_to_bytes(value)[..], bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_layout_is_big_endian_millis_then_logical() {
        let ts = HlcTimestamp::new(0x0102_0304_0506, 0x0708).unwrap();
        assert_eq!(ts.to_bytes(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(HlcTimestamp::from_bytes(&ts.to_bytes()), Ok(ts));
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for len in [0, 1, 7, 9, 16] {
            let bytes = [0u8; 16];
            assert_eq!(
                HlcTimestamp::from_bytes(&bytes[..len]),
                Err(DecodeError::WrongLength { found: len })
            );
            assert_eq!(
                lamport_from_bytes(&bytes[..len]),
                Err(DecodeError::WrongLength { found: len })
            );
        }
    }

    #[test]
    fn lamport_range_is_enforced() {
        assert_eq!(lamport_to_bytes(258), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(
            lamport_from_bytes(&lamport_to_bytes(LAMPORT_REMOTE_MAX)),
            Ok(LAMPORT_REMOTE_MAX)
        );
        assert_eq!(
            lamport_from_bytes(&[0xff; 8]),
            Err(DecodeError::LamportOutOfRange { value: u64::MAX })
        );
    }
}
