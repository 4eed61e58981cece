//! One total reader over untrusted bytes, shared by every codec.
//!
//! [`Reader`] is a cursor: each read either returns the next field and
//! advances, or fails with [`Truncated`] and leaves nothing half-read
//! behind; it never panics and never reads past the input. The byte order
//! is part of the reader's type ([`BigEndian`] for the network formats,
//! [`LittleEndian`] for the bank's and the disk's; ARCHITECTURE.md,
//! "Byte formats"), so a codec cannot mix them by accident. Each codec maps
//! [`Truncated`] / [`Trailing`] into its own error type with `From`.

use core::marker::PhantomData;

/// The input ended inside a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

/// Bytes were left over after the last field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailing {
    /// How many.
    pub extra: usize,
}

/// A byte order for fixed-width integers.
pub trait ByteOrder {
    /// `u16` from its two bytes.
    fn u16(bytes: [u8; 2]) -> u16;
    /// `u32` from its four bytes.
    fn u32(bytes: [u8; 4]) -> u32;
    /// `u64` from its eight bytes.
    fn u64(bytes: [u8; 8]) -> u64;
    /// `u128` from its sixteen bytes.
    fn u128(bytes: [u8; 16]) -> u128;
}

/// Network byte order: the common header, peer and client messages, the
/// node envelope and entry header, the Raft codec.
#[derive(Clone, Copy, Debug)]
pub enum BigEndian {}

/// The bank's commands, entries, outcomes and snapshots; on-disk formats.
#[derive(Clone, Copy, Debug)]
pub enum LittleEndian {}

impl ByteOrder for BigEndian {
    fn u16(bytes: [u8; 2]) -> u16 {
        u16::from_be_bytes(bytes)
    }
    fn u32(bytes: [u8; 4]) -> u32 {
        u32::from_be_bytes(bytes)
    }
    fn u64(bytes: [u8; 8]) -> u64 {
        u64::from_be_bytes(bytes)
    }
    fn u128(bytes: [u8; 16]) -> u128 {
        u128::from_be_bytes(bytes)
    }
}

impl ByteOrder for LittleEndian {
    fn u16(bytes: [u8; 2]) -> u16 {
        u16::from_le_bytes(bytes)
    }
    fn u32(bytes: [u8; 4]) -> u32 {
        u32::from_le_bytes(bytes)
    }
    fn u64(bytes: [u8; 8]) -> u64 {
        u64::from_le_bytes(bytes)
    }
    fn u128(bytes: [u8; 16]) -> u128 {
        u128::from_le_bytes(bytes)
    }
}

/// A bounds-checked cursor over input bytes in byte order `O`.
#[derive(Clone, Debug)]
pub struct Reader<'a, O: ByteOrder> {
    bytes: &'a [u8],
    order: PhantomData<O>,
}

/// A [`Reader`] in network byte order.
pub type BeReader<'a> = Reader<'a, BigEndian>;
/// A [`Reader`] in little-endian order.
pub type LeReader<'a> = Reader<'a, LittleEndian>;

impl<'a, O: ByteOrder> Reader<'a, O> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            bytes,
            order: PhantomData,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.bytes.len() < n {
            return Err(Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.array::<1>()?[0])
    }

    /// A `u16` in this reader's byte order.
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        Ok(O::u16(self.array()?))
    }

    /// A `u32` in this reader's byte order.
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(O::u32(self.array()?))
    }

    /// A `u64` in this reader's byte order.
    pub fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(O::u64(self.array()?))
    }

    /// A `u128` in this reader's byte order.
    pub fn u128(&mut self) -> Result<u128, Truncated> {
        Ok(O::u128(self.array()?))
    }

    /// Everything not yet read (the reader is then empty).
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.bytes)
    }

    /// Succeeds only if every byte was read.
    pub fn finish(&self) -> Result<(), Trailing> {
        match self.bytes.len() {
            0 => Ok(()),
            extra => Err(Trailing { extra }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_its_byte_order_and_never_past_the_end() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut be = BeReader::new(&bytes);
        assert_eq!(be.u16(), Ok(0x0102));
        assert_eq!(be.u32(), Ok(0x0304_0506));
        assert_eq!(be.remaining(), 3);
        assert_eq!(be.u32(), Err(Truncated));
        // A failed read consumes nothing.
        assert_eq!(be.remaining(), 3);
        assert_eq!(be.finish(), Err(Trailing { extra: 3 }));
        assert_eq!(be.rest(), &[7, 8, 9]);
        assert_eq!(be.finish(), Ok(()));

        let mut le = LeReader::new(&bytes);
        assert_eq!(le.u64(), Ok(0x0807_0605_0403_0201));
        assert_eq!(le.u8(), Ok(9));
        assert_eq!(le.u8(), Err(Truncated));
        assert_eq!(LeReader::new(&[]).u128(), Err(Truncated));
        assert_eq!(LeReader::new(&[0xff; 16]).u128(), Ok(u128::MAX));
    }
}
