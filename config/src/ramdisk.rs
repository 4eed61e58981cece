//! The node config as a bootloader ramdisk: how a USB image carries it.
//!
//! `boot/` writes one image per node with that node's config baked in as
//! the `bootloader` crate's ramdisk (a file in the image's FAT partition
//! that the BIOS and UEFI loaders place in memory and hand to the kernel).
//! A USB stick can rot, and a config with one flipped bit in a peer's
//! address or key would boot a node that quietly fails to join (or worse,
//! joins with the wrong identity). So the text is sealed with a small header
//! the kernel checks before parsing:
//!
//! ```text
//! offset  size  field
//!  0       8    magic "CTMCONF" followed by the format version, '1'
//!  8       4    length of the config text in bytes, u32 little-endian
//! 12       4    CRC-32 of the text (IEEE 802.3 polynomial, reflected,
//!               as in Ethernet, zip and GPT headers), u32 little-endian
//! 16       len  the config text (the same format as over fw_cfg)
//! ```
//!
//! Nothing may follow the text: both loaders report the file's exact size,
//! so a longer ramdisk is a different file, not a padded one. The checksum
//! detects corruption, not tampering: whoever can write the stick can also
//! read the node's secret key from it.
//!
//! Opening never allocates and never panics, like the parser it feeds.

use crate::MAX_CONFIG_BYTES;
use core::fmt;

/// Magic bytes, without the version digit.
const MAGIC_PREFIX: &[u8; 7] = b"CTMCONF";
/// The format version this code writes and reads.
const VERSION: u8 = b'1';
/// Size of the header in front of the config text.
pub const HEADER_BYTES: usize = 16;

/// Why a ramdisk does not yield a config text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamdiskError {
    /// Shorter than the header.
    Truncated {
        /// The ramdisk's length in bytes.
        len: usize,
    },
    /// The magic is missing: this ramdisk is something else.
    NotAConfig,
    /// A sealed config of a format version this kernel does not know.
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The declared text is larger than [`MAX_CONFIG_BYTES`].
    TooLarge {
        /// The declared length in bytes.
        len: usize,
    },
    /// The header's length disagrees with the ramdisk's size.
    LengthMismatch {
        /// Text length the header declares.
        declared: usize,
        /// Text bytes the ramdisk holds.
        actual: usize,
    },
    /// The text does not match its checksum.
    Corrupt {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the text as read.
        computed: u32,
    },
}

impl fmt::Display for RamdiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RamdiskError::Truncated { len } => write!(
                f,
                "{len} bytes, shorter than the {HEADER_BYTES}-byte config header"
            ),
            RamdiskError::NotAConfig => {
                f.write_str("not a Continuum config (no CTMCONF header); rewrite the image with continuum-boot")
            }
            RamdiskError::UnsupportedVersion { version } => write!(
                f,
                "config format version {:?}, this kernel reads version {:?}; rewrite the image with a matching continuum-boot",
                version as char, VERSION as char
            ),
            RamdiskError::TooLarge { len } => write!(
                f,
                "config text of {len} bytes, more than the {MAX_CONFIG_BYTES} accepted"
            ),
            RamdiskError::LengthMismatch { declared, actual } => write!(
                f,
                "header declares {declared} bytes of config text but {actual} follow it (truncated or damaged image)"
            ),
            RamdiskError::Corrupt { stored, computed } => write!(
                f,
                "config text is corrupt: CRC-32 {computed:08x}, header says {stored:08x} (damaged stick or image; rewrite it)"
            ),
        }
    }
}

/// The header to put in front of `text` to make a ramdisk of it.
pub fn header(text: &[u8]) -> Result<[u8; HEADER_BYTES], RamdiskError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(RamdiskError::TooLarge { len: text.len() });
    }
    let mut header = [0u8; HEADER_BYTES];
    header[..7].copy_from_slice(MAGIC_PREFIX);
    header[7] = VERSION;
    // MAX_CONFIG_BYTES is far below u32::MAX: the cast is exact.
    header[8..12].copy_from_slice(&(text.len() as u32).to_le_bytes());
    header[12..16].copy_from_slice(&crc32(text).to_le_bytes());
    Ok(header)
}

/// Checks a ramdisk and returns the config text inside it.
pub fn open(ramdisk: &[u8]) -> Result<&[u8], RamdiskError> {
    let Some((head, text)) = ramdisk.split_first_chunk::<HEADER_BYTES>() else {
        return Err(RamdiskError::Truncated { len: ramdisk.len() });
    };
    if head[..7] != MAGIC_PREFIX[..] {
        return Err(RamdiskError::NotAConfig);
    }
    if head[7] != VERSION {
        return Err(RamdiskError::UnsupportedVersion { version: head[7] });
    }
    let declared = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if declared > MAX_CONFIG_BYTES {
        return Err(RamdiskError::TooLarge { len: declared });
    }
    if declared != text.len() {
        return Err(RamdiskError::LengthMismatch {
            declared,
            actual: text.len(),
        });
    }
    let stored = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    let computed = crc32(text);
    if stored != computed {
        return Err(RamdiskError::Corrupt { stored, computed });
    }
    Ok(text)
}

/// CRC-32 (IEEE 802.3): reflected polynomial 0xEDB88320, initial value and
/// final XOR 0xFFFFFFFF. Bitwise: a config is at most 4 KiB, read once.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    const TEXT: &[u8] = b"node_id = 3\ncluster_id = 42\n";

    fn sealed(text: &[u8]) -> Vec<u8> {
        let mut out = header(text).expect("small text").to_vec();
        out.extend_from_slice(text);
        out
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The catalogue check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_sealed_text_opens_to_itself() {
        assert_eq!(open(&sealed(TEXT)), Ok(TEXT));
        assert_eq!(open(&sealed(b"")), Ok(&b""[..]));
        let largest = [b'#'; MAX_CONFIG_BYTES];
        assert_eq!(open(&sealed(&largest)), Ok(&largest[..]));
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let good = sealed(TEXT);
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                assert!(
                    open(&bad).is_err(),
                    "flip of bit {bit} in byte {at} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn damaged_ramdisks_say_what_is_wrong() {
        let good = sealed(TEXT);
        assert_eq!(open(&good[..10]), Err(RamdiskError::Truncated { len: 10 }));
        assert_eq!(
            open(&good[..good.len() - 1]),
            Err(RamdiskError::LengthMismatch {
                declared: TEXT.len(),
                actual: TEXT.len() - 1
            })
        );
        let mut padded = good.clone();
        padded.push(0);
        assert!(matches!(
            open(&padded),
            Err(RamdiskError::LengthMismatch { .. })
        ));
        assert_eq!(open(TEXT), Err(RamdiskError::NotAConfig));
        let mut future = good.clone();
        future[7] = b'2';
        assert_eq!(
            open(&future),
            Err(RamdiskError::UnsupportedVersion { version: b'2' })
        );
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0x20;
        assert!(matches!(open(&flipped), Err(RamdiskError::Corrupt { .. })));
        let mut huge = good;
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            open(&huge),
            Err(RamdiskError::TooLarge {
                len: u32::MAX as usize
            })
        );
    }

    #[test]
    fn oversized_text_is_refused_when_sealing() {
        let text = [b'#'; MAX_CONFIG_BYTES + 1];
        assert_eq!(
            header(&text),
            Err(RamdiskError::TooLarge {
                len: MAX_CONFIG_BYTES + 1
            })
        );
    }

    #[test]
    fn messages_name_the_problem() {
        let corrupt = RamdiskError::Corrupt {
            stored: 1,
            computed: 2,
        };
        assert!(std::format!("{corrupt}").contains("corrupt"));
        assert!(std::format!("{}", RamdiskError::NotAConfig).contains("not a Continuum config"));
    }
}
