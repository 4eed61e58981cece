//! Disk images for the Continuum kernel.
//!
//! The `bootloader` crate compiles its BIOS stages and UEFI application once,
//! in its build script; turning a kernel ELF into an image afterwards is a
//! file copy into a FAT partition, well under a second. So the images are
//! made by this small host tool at run time, not by a build script that
//! would rebuild them whenever the kernel changes.
//!
//! The bootloader's own serial and framebuffer logging are turned off: the
//! console belongs to the kernel, and the extra lines cost ~0.3 s under TCG.

use bootloader::{BiosBoot, BootConfig, UefiBoot};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where [`build_images`] wrote the two images.
#[derive(Debug, Clone)]
pub struct Images {
    /// MBR-partitioned image for legacy BIOS boot.
    pub bios: PathBuf,
    /// GPT-partitioned image with an EFI system partition.
    pub uefi: PathBuf,
}

#[derive(Debug)]
pub enum BootError {
    /// The kernel ELF does not exist or cannot be read.
    KernelUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not an x86_64 ELF executable.
    NotAnElf { path: PathBuf },
    /// The output directory could not be created.
    OutputDir {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The bootloader crate failed to write an image.
    Image { kind: &'static str, error: String },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::KernelUnreadable { path, error } => {
                write!(f, "cannot read kernel {}: {error}", path.display())
            }
            BootError::NotAnElf { path } => write!(
                f,
                "{} is not an x86_64 ELF executable (build it with `cargo build --release -p continuum-kernel`)",
                path.display()
            ),
            BootError::OutputDir { path, error } => {
                write!(f, "cannot create output directory {}: {error}", path.display())
            }
            BootError::Image { kind, error } => write!(f, "writing the {kind} image failed: {error}"),
        }
    }
}

impl std::error::Error for BootError {}

/// ELF header checks: magic, 64-bit, little-endian, executable, x86_64.
fn check_elf(path: &Path) -> Result<(), BootError> {
    let bytes = std::fs::read(path).map_err(|error| BootError::KernelUnreadable {
        path: path.to_owned(),
        error,
    })?;
    let is_x86_64_elf = bytes.len() >= 20
        && bytes[..4] == *b"\x7fELF"
        && bytes[4] == 2 // ELFCLASS64
        && bytes[5] == 1 // little-endian
        && u16::from_le_bytes([bytes[16], bytes[17]]) & 0xfffe == 2 // ET_EXEC or ET_DYN (PIE)
        && u16::from_le_bytes([bytes[18], bytes[19]]) == 62; // EM_X86_64
    if is_x86_64_elf {
        Ok(())
    } else {
        Err(BootError::NotAnElf {
            path: path.to_owned(),
        })
    }
}

/// Writes `continuum-bios.img` and `continuum-uefi.img` for `kernel` into
/// `out_dir`, with `ramdisk` (if any) loaded next to the kernel.
pub fn build_images(
    kernel: &Path,
    out_dir: &Path,
    ramdisk: Option<&Path>,
) -> Result<Images, BootError> {
    check_elf(kernel)?;
    std::fs::create_dir_all(out_dir).map_err(|error| BootError::OutputDir {
        path: out_dir.to_owned(),
        error,
    })?;
    let mut config = BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;

    let images = Images {
        bios: out_dir.join("continuum-bios.img"),
        uefi: out_dir.join("continuum-uefi.img"),
    };
    let mut bios = BiosBoot::new(kernel);
    bios.set_boot_config(&config);
    let mut uefi = UefiBoot::new(kernel);
    uefi.set_boot_config(&config);
    if let Some(ramdisk) = ramdisk {
        bios.set_ramdisk(ramdisk);
        uefi.set_ramdisk(ramdisk);
    }
    bios.create_disk_image(&images.bios)
        .map_err(|error| BootError::Image {
            kind: "BIOS",
            error: format!("{error:#}"),
        })?;
    uefi.create_disk_image(&images.uefi)
        .map_err(|error| BootError::Image {
            kind: "UEFI",
            error: format!("{error:#}"),
        })?;
    Ok(images)
}
