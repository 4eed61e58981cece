//! Disk images for the Continuum kernel.
//!
//! The `bootloader` crate compiles its BIOS stages and UEFI application once,
//! in its build script; turning a kernel ELF into an image afterwards is a
//! file copy into a FAT partition, well under a second. So the images are
//! made by this small host tool at run time, not by a build script that
//! would rebuild them whenever the kernel changes.
//!
//! Two kinds of image:
//! * [`build_images`]: the plain kernel, for QEMU, which hands each node its
//!   config through `fw_cfg`.
//! * [`build_node_images`]: one node's **USB stick**, with that node's
//!   config (identity, secret key, peers, addresses) baked in as the
//!   bootloader's ramdisk. The config is validated here with the kernel's
//!   own parser ([`load_node_config`]), so a typo is caught on the desk,
//!   not on the console of a machine in a rack, and sealed with a checksum
//!   (`continuum_config::ramdisk`) so a damaged stick is caught at boot.
//!   The images hold the secret key: they are created readable by their
//!   owner only, and nothing here prints a key.
//!
//! Each kind comes as a BIOS (MBR) and a UEFI (GPT) image; the `bootloader`
//! crate cannot make one hybrid image.
//!
//! The bootloader's own serial and framebuffer logging are turned off: the
//! console belongs to the kernel, and the extra lines cost ~0.3 s under TCG.

use bootloader::{BootConfig, DiskImageBuilder};
use continuum_config::{Config, ConfigError, Ipv4Cidr, NodeId};
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
    /// An image file could not be created with owner-only permissions.
    OutputFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The bootloader crate failed to write an image.
    Image { kind: &'static str, error: String },
    /// The node config file does not exist or cannot be read.
    ConfigUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The node config does not parse (the kernel would refuse it too).
    ConfigInvalid { path: PathBuf, error: ConfigError },
    /// `node-<N>.conf` of a cluster directory configures another node.
    ConfigNodeMismatch {
        path: PathBuf,
        expected: NodeId,
        found: NodeId,
    },
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
            BootError::OutputFile { path, error } => {
                write!(f, "cannot create image file {}: {error}", path.display())
            }
            BootError::Image { kind, error } => write!(f, "writing the {kind} image failed: {error}"),
            BootError::ConfigUnreadable { path, error } => {
                write!(f, "cannot read node config {}: {error}", path.display())
            }
            BootError::ConfigInvalid { path, error } => write!(
                f,
                "{}: {error}; no image written (the node would refuse to start with it)",
                path.display()
            ),
            BootError::ConfigNodeMismatch {
                path,
                expected,
                found,
            } => write!(
                f,
                "{} configures node_id {found}, not node {expected}; no image written",
                path.display()
            ),
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

/// The name the `bootloader` 0.11.15 loaders (BIOS stage 2 and the UEFI
/// application) look for in the FAT partition and hand to the kernel as
/// `BootInfo::ramdisk_*`; `DiskImageBuilder::set_ramdisk` uses it too.
/// Setting the contents directly keeps the secret-bearing config out of yet
/// another file on disk.
const RAMDISK_FILE: &str = "ramdisk";

fn builder(kernel: &Path) -> Result<DiskImageBuilder, BootError> {
    check_elf(kernel)?;
    let mut config = BootConfig::default();
    config.serial_logging = false;
    config.frame_buffer_logging = false;
    let mut builder = DiskImageBuilder::new(kernel.to_owned());
    builder.set_boot_config(&config);
    Ok(builder)
}

fn create_dir(out_dir: &Path) -> Result<(), BootError> {
    std::fs::create_dir_all(out_dir).map_err(|error| BootError::OutputDir {
        path: out_dir.to_owned(),
        error,
    })
}

fn write_images(builder: &DiskImageBuilder, images: &Images) -> Result<(), BootError> {
    builder
        .create_bios_image(&images.bios)
        .map_err(|error| BootError::Image {
            kind: "BIOS",
            error: format!("{error:#}"),
        })?;
    builder
        .create_uefi_image(&images.uefi)
        .map_err(|error| BootError::Image {
            kind: "UEFI",
            error: format!("{error:#}"),
        })
}

/// Writes `continuum-bios.img` and `continuum-uefi.img` for `kernel` into
/// `out_dir`, without a config (QEMU passes one through `fw_cfg`).
pub fn build_images(kernel: &Path, out_dir: &Path) -> Result<Images, BootError> {
    let builder = builder(kernel)?;
    create_dir(out_dir)?;
    let images = Images {
        bios: out_dir.join("continuum-bios.img"),
        uefi: out_dir.join("continuum-uefi.img"),
    };
    write_images(&builder, &images)?;
    Ok(images)
}

/// A node config read from a file and accepted by the kernel's parser.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub path: PathBuf,
    /// The file's bytes, baked into the image unchanged.
    pub text: Vec<u8>,
    pub config: Config,
}

/// Reads and validates a node config file.
pub fn load_node_config(path: &Path) -> Result<NodeConfig, BootError> {
    let text = std::fs::read(path).map_err(|error| BootError::ConfigUnreadable {
        path: path.to_owned(),
        error,
    })?;
    let config = Config::parse(&text).map_err(|error| BootError::ConfigInvalid {
        path: path.to_owned(),
        error,
    })?;
    Ok(NodeConfig {
        path: path.to_owned(),
        text,
        config,
    })
}

/// Where `continuum cluster init --dir DIR` puts node `node`'s config.
pub fn cluster_node_config_path(cluster_dir: &Path, node: NodeId) -> PathBuf {
    cluster_dir.join(format!("node-{node}.conf"))
}

/// Reads node `node`'s config from a cluster directory and checks that it
/// really is that node's.
pub fn load_cluster_node_config(cluster_dir: &Path, node: NodeId) -> Result<NodeConfig, BootError> {
    let path = cluster_node_config_path(cluster_dir, node);
    let node_config = load_node_config(&path)?;
    if node_config.config.node_id != node {
        return Err(BootError::ConfigNodeMismatch {
            path,
            expected: node,
            found: node_config.config.node_id,
        });
    }
    Ok(node_config)
}

fn cidr_text(cidr: &Ipv4Cidr) -> String {
    let [a, b, c, d] = cidr.address;
    format!("{a}.{b}.{c}.{d}/{}", cidr.prefix_len)
}

impl NodeConfig {
    /// One line about the node, safe to print: no key material.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let lan = match &c.lan_ip {
            Some(cidr) => format!(
                "replication LAN {} with {} peer(s)",
                cidr_text(cidr),
                c.peers().count()
            ),
            None => "no replication LAN".to_owned(),
        };
        let [a, b, g, d] = c.client_gateway;
        format!(
            "node {} of cluster {}, mode {}: {lan}, client network {} via {a}.{b}.{g}.{d}, secret key {}",
            c.node_id,
            c.cluster_id,
            c.mode,
            cidr_text(&c.client_ip),
            if c.secret_key.is_some() {
                "present"
            } else {
                "absent"
            }
        )
    }

    /// Things that parse but are probably not meant for a real machine.
    pub fn warnings(&self) -> Vec<String> {
        let c = &self.config;
        let defaults = Config::default();
        let mut warnings = Vec::new();
        if c.client_ip == defaults.client_ip && c.client_gateway == defaults.client_gateway {
            warnings.push(format!(
                "client_ip {} and client_gateway are QEMU user networking's defaults; set them for a real network",
                cidr_text(&c.client_ip)
            ));
        }
        if c.lan_ip.is_some() && c.secret_key.is_none() {
            warnings.push(
                "lan_ip is set but secret_key is not: the node will run without its replication LAN"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// Creates `path` empty and readable by its owner only (the bootloader
/// crate then writes into it without changing the mode).
fn create_private(path: &Path) -> Result<(), BootError> {
    let io_error = |error| BootError::OutputFile {
        path: path.to_owned(),
        error,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode on open: tighten it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error)?;
        }
    }
    options.open(path).map(drop).map_err(io_error)
}

/// Writes `node-<id>-bios.img` and `node-<id>-uefi.img` into `out_dir`:
/// `kernel` with `node`'s config baked in as the sealed ramdisk. The files
/// are readable by their owner only (they hold the node's secret key).
pub fn build_node_images(
    kernel: &Path,
    node: &NodeConfig,
    out_dir: &Path,
) -> Result<Images, BootError> {
    let mut builder = builder(kernel)?;
    let header =
        continuum_config::ramdisk::header(&node.text).map_err(|error| BootError::Image {
            kind: "config ramdisk",
            error: error.to_string(),
        })?;
    let mut ramdisk = header.to_vec();
    ramdisk.extend_from_slice(&node.text);
    builder.set_file_contents(RAMDISK_FILE.to_owned(), ramdisk);
    create_dir(out_dir)?;
    let id = node.config.node_id;
    let images = Images {
        bios: out_dir.join(format!("node-{id}-bios.img")),
        uefi: out_dir.join(format!("node-{id}-uefi.img")),
    };
    create_private(&images.bios)?;
    create_private(&images.uefi)?;
    write_images(&builder, &images)?;
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory per test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("continuum-boot-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The smallest file `check_elf` accepts: an x86_64 ELF header. The
    /// bootloader crate copies the kernel without loading it, so images
    /// can be built around it (booting them is the QEMU tests' business).
    fn fake_kernel(dir: &Path) -> PathBuf {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[16] = 2;
        elf[18] = 62;
        let path = dir.join("kernel");
        std::fs::write(&path, elf).unwrap();
        path
    }

    const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    fn node_text(id: NodeId) -> String {
        format!(
            "node_id = {id}\ncluster_id = 42\nsecret_key = {SECRET}\nlan_ip = 10.7.0.{id}/24\n\
             peer = 9 10.7.0.9 3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\n\
             client_ip = 192.168.1.{id}/24\nclient_gateway = 192.168.1.254\n"
        )
    }

    #[test]
    fn an_invalid_config_is_refused_with_its_line() {
        let scratch = Scratch::new("invalid");
        let path = scratch.0.join("node.conf");
        std::fs::write(&path, "node_id = 2\nheap_mib = lots\n").unwrap();
        let error = load_node_config(&path).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, BootError::ConfigInvalid { .. }),
            "{message}"
        );
        assert!(message.contains("config line 2"), "{message}");
        assert!(message.contains("no image written"), "{message}");
        let missing = load_node_config(&scratch.0.join("absent.conf")).unwrap_err();
        assert!(matches!(missing, BootError::ConfigUnreadable { .. }));
    }

    #[test]
    fn a_cluster_directory_file_must_configure_its_node() {
        let scratch = Scratch::new("mismatch");
        std::fs::write(cluster_node_config_path(&scratch.0, 2), node_text(3)).unwrap();
        match load_cluster_node_config(&scratch.0, 2) {
            Err(BootError::ConfigNodeMismatch {
                expected: 2,
                found: 3,
                ..
            }) => {}
            other => panic!("expected a node mismatch, got {other:?}"),
        }
        std::fs::write(cluster_node_config_path(&scratch.0, 3), node_text(3)).unwrap();
        let node = load_cluster_node_config(&scratch.0, 3).expect("node 3's own file");
        assert_eq!(node.config.node_id, 3);
    }

    #[test]
    fn the_summary_and_warnings_never_show_the_key() {
        let scratch = Scratch::new("summary");
        let path = scratch.0.join("node.conf");
        std::fs::write(&path, node_text(1)).unwrap();
        let node = load_node_config(&path).unwrap();
        let summary = node.summary();
        assert!(summary.contains("node 1 of cluster 42"), "{summary}");
        assert!(summary.contains("10.7.0.1/24 with 1 peer(s)"), "{summary}");
        assert!(summary.contains("secret key present"), "{summary}");
        assert!(!summary.contains(SECRET));
        assert!(node.warnings().is_empty(), "{:?}", node.warnings());

        std::fs::write(&path, "node_id = 1\nlan_ip = 10.7.0.1/24\n").unwrap();
        let bare = load_node_config(&path).unwrap();
        let warnings = bare.warnings().join("\n");
        assert!(warnings.contains("QEMU user networking"), "{warnings}");
        assert!(warnings.contains("secret_key is not"), "{warnings}");
    }

    #[test]
    fn node_images_carry_the_sealed_config_and_are_private() {
        let scratch = Scratch::new("images");
        let kernel = fake_kernel(&scratch.0);
        let path = scratch.0.join("node.conf");
        std::fs::write(&path, node_text(5)).unwrap();
        let node = load_node_config(&path).unwrap();
        let out = scratch.0.join("out");
        let images = build_node_images(&kernel, &node, &out).expect("images are written");
        assert_eq!(images.bios, out.join("node-5-bios.img"));
        assert_eq!(images.uefi, out.join("node-5-uefi.img"));
        let mut sealed = continuum_config::ramdisk::header(&node.text)
            .unwrap()
            .to_vec();
        sealed.extend_from_slice(&node.text);
        for image in [&images.bios, &images.uefi] {
            let bytes = std::fs::read(image).unwrap();
            let at = bytes
                .windows(sealed.len())
                .position(|w| w == sealed.as_slice())
                .unwrap_or_else(|| panic!("{} lacks the sealed config", image.display()));
            assert_eq!(
                continuum_config::ramdisk::open(&bytes[at..at + sealed.len()]),
                Ok(node.text.as_slice())
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(image).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{} is mode {mode:o}", image.display());
            }
        }
        // Rewriting over a world-readable file leaves it private too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&images.bios, std::fs::Permissions::from_mode(0o644)).unwrap();
            build_node_images(&kernel, &node, &out).unwrap();
            let mode = std::fs::metadata(&images.bios)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_that_is_not_a_kernel_is_refused() {
        let scratch = Scratch::new("notelf");
        let bogus = scratch.0.join("kernel");
        std::fs::write(&bogus, b"#!/bin/sh\n").unwrap();
        assert!(matches!(
            build_images(&bogus, &scratch.0.join("out")),
            Err(BootError::NotAnElf { .. })
        ));
    }
}
