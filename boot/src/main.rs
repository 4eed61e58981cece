//! `continuum-boot <kernel-elf> <out-dir> [--ramdisk FILE]`: writes the BIOS
//! and UEFI disk images and prints their paths.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: continuum-boot <kernel-elf> <out-dir> [--ramdisk FILE]";

fn main() -> ExitCode {
    let mut positional = Vec::new();
    let mut ramdisk = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--ramdisk") => match args.next() {
                Some(path) => ramdisk = Some(PathBuf::from(path)),
                None => return usage_error("--ramdisk needs a file"),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some(flag) if flag.starts_with('-') => {
                return usage_error(&format!("unknown option {flag}"))
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [kernel, out_dir] = positional.as_slice() else {
        return usage_error("expected exactly two paths");
    };
    match continuum_boot::build_images(kernel, out_dir, ramdisk.as_deref()) {
        Ok(images) => {
            println!("BIOS image: {}", images.bios.display());
            println!("UEFI image: {}", images.uefi.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("continuum-boot: {error}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(why: &str) -> ExitCode {
    eprintln!("continuum-boot: {why}\n{USAGE}");
    ExitCode::from(2)
}
