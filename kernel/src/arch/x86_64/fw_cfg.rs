//! QEMU's firmware configuration device (`fw_cfg`), legacy port interface:
//! a 16-bit selector at 0x510 and a byte-wide data port at 0x511
//! (QEMU docs/specs/fw_cfg.rst). We only read one named file from it — the
//! node config that the launcher passes with
//! `-fw_cfg name=opt/continuum/config,file=...`.

use core::fmt;
use x86_64::instructions::port::Port;

const SELECTOR: u16 = 0x510;
const DATA: u16 = 0x511;
const SIGNATURE_KEY: u16 = 0x0000;
const FILE_DIR_KEY: u16 = 0x0019;
/// Entries in the file directory; QEMU's own limit is far below this.
const MAX_FILES: u32 = 4096;

#[derive(Debug)]
pub enum FwCfgError {
    /// The file is larger than the caller's buffer.
    TooLarge { size: u32, limit: usize },
    /// The directory claims more files than any QEMU would create.
    CorruptDirectory { count: u32 },
}

impl fmt::Display for FwCfgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FwCfgError::TooLarge { size, limit } => {
                write!(f, "file is {size} bytes, more than the {limit} accepted")
            }
            FwCfgError::CorruptDirectory { count } => {
                write!(f, "directory claims {count} files")
            }
        }
    }
}

fn select(key: u16) {
    // SAFETY: writing the fw_cfg selector has no effect on memory; on a
    // machine without fw_cfg the port is unclaimed and the write is lost.
    unsafe { Port::<u16>::new(SELECTOR).write(key) }
}

fn read_bytes(out: &mut [u8]) {
    let mut data = Port::<u8>::new(DATA);
    for byte in out {
        // SAFETY: reading the fw_cfg data port only advances its offset.
        *byte = unsafe { data.read() };
    }
}

fn read_be_u32() -> u32 {
    let mut bytes = [0; 4];
    read_bytes(&mut bytes);
    u32::from_be_bytes(bytes)
}

/// Looks up `name` in the fw_cfg directory and reads it into `buffer`.
/// `Ok(None)`: no fw_cfg device (real hardware) or no such file.
pub fn read_file<'b>(name: &str, buffer: &'b mut [u8]) -> Result<Option<&'b [u8]>, FwCfgError> {
    select(SIGNATURE_KEY);
    let mut signature = [0; 4];
    read_bytes(&mut signature);
    if &signature != b"QEMU" {
        return Ok(None);
    }
    select(FILE_DIR_KEY);
    let count = read_be_u32();
    if count > MAX_FILES {
        return Err(FwCfgError::CorruptDirectory { count });
    }
    for _ in 0..count {
        // struct FWCfgFile { u32 size; u16 select; u16 reserved; char name[56]; }, big-endian.
        let size = read_be_u32();
        let mut key = [0; 2];
        read_bytes(&mut key);
        let mut reserved = [0; 2];
        read_bytes(&mut reserved);
        let mut file_name = [0; 56];
        read_bytes(&mut file_name);
        let len = file_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(file_name.len());
        if &file_name[..len] != name.as_bytes() {
            continue;
        }
        if size as usize > buffer.len() {
            return Err(FwCfgError::TooLarge {
                size,
                limit: buffer.len(),
            });
        }
        select(u16::from_be_bytes(key));
        let contents = &mut buffer[..size as usize];
        read_bytes(contents);
        return Ok(Some(contents));
    }
    Ok(None)
}
