//! The kernel images the VMs boot and where cargo put them: prebuilt by
//! `qemu/build.sh` into `target/images`, checked for freshness against the
//! sources they are built from; the OVMF firmware; host binaries of this
//! workspace built on demand.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Paths of the built artefacts.
#[derive(Clone, Debug)]
pub struct Images {
    pub kernel: PathBuf,
    pub bios: PathBuf,
    pub uefi: PathBuf,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate lives inside the workspace")
        .to_owned()
}

/// The kernel images the QEMU tests boot: `target/images`, built by
/// `qemu/build.sh` (which `qemu/test.sh` runs first). Tests never build
/// images themselves: a build inside a test ran under that test's timeout,
/// and with `CARGO_TARGET_DIR` set it could wait for ever on cargo's lock.
/// Panics with the command to run when the images are missing or older than
/// a source file they are built from.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = workspace_root().join("target/images");
        let images = prebuilt_images(&dir).unwrap_or_else(|e| panic!("{e}"));
        if let Some(newer) = newer_source_than(&images) {
            panic!(
                "the kernel images in {} are older than {}: rebuild them with qemu/build.sh \
                 (qemu/test.sh does that before the tests)",
                dir.display(),
                newer.display()
            );
        }
        images
    })
}

/// The crates whose sources end up in the kernel image.
const IMAGE_SOURCES: &[&str] = &[
    "kernel/src",
    "kernel/Cargo.toml",
    "kernel/Cargo.lock",
    "boot/src",
    "bank/src",
    "clock/src",
    "config/src",
    "net/src",
    "node/src",
    "raft/src",
    "storage/src",
];

/// A source file modified after the oldest of the images, if any.
fn newer_source_than(images: &Images) -> Option<PathBuf> {
    let built = [&images.kernel, &images.bios, &images.uefi]
        .iter()
        .map(|path| modified(path))
        .min()
        .flatten()?;
    let root = workspace_root();
    let mut pending: Vec<PathBuf> = IMAGE_SOURCES.iter().map(|p| root.join(p)).collect();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if modified(&path).is_some_and(|t| t > built) {
            return Some(path);
        }
    }
    None
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The cargo target directory this process was built in (`target/` unless
/// the user set `CARGO_TARGET_DIR` or `build.target-dir`), found from the
/// running executable: test binaries live in `<target>/<profile>/deps/`,
/// binaries in `<target>/<profile>/`.
pub fn cargo_target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable has a path");
    let mut dir = exe.parent();
    if dir
        .and_then(Path::file_name)
        .is_some_and(|name| name == "deps")
    {
        dir = dir.and_then(Path::parent);
    }
    dir.and_then(Path::parent)
        .map(Path::to_owned)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `cargo build <args>` of a host binary of this workspace into
/// [`cargo_target_dir`], returning the path of `<profile>/<binary>`. The
/// target dir is passed explicitly: cargo hands test processes a
/// `CARGO_TARGET_DIR` meant for the bootloader's nested builds
/// (`.cargo/config.toml`).
pub fn cargo_build_bin(package: &str, binary: &str, release: bool) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = cargo_target_dir();
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "-q", "-p", package, "--target-dir"])
        .arg(&target);
    if release {
        command.arg("--release");
    }
    run_checked(&mut command);
    target
        .join(if release { "release" } else { "debug" })
        .join(binary)
}

/// File names of the images inside an image directory (`continuum-boot`'s output).
pub const BIOS_IMAGE: &str = "continuum-bios.img";
pub const UEFI_IMAGE: &str = "continuum-uefi.img";

/// Images already built into `dir` (by `qemu/build.sh`), without building.
/// Fails with a message naming the missing file and how to build it.
pub fn prebuilt_images(dir: &Path) -> Result<Images, String> {
    let images = Images {
        kernel: workspace_root().join("kernel/target/x86_64-unknown-none/release/continuum-kernel"),
        bios: dir.join(BIOS_IMAGE),
        uefi: dir.join(UEFI_IMAGE),
    };
    for image in [&images.bios, &images.uefi] {
        if !image.is_file() {
            return Err(format!(
                "no kernel image {}: build the images with qemu/build.sh",
                image.display()
            ));
        }
    }
    Ok(images)
}

fn run_checked(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    if !output.status.success() {
        panic!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The OVMF firmware image, from the usual Debian/Ubuntu/Fedora locations
/// or `CONTINUUM_OVMF`.
pub fn ovmf() -> PathBuf {
    if let Ok(path) = std::env::var("CONTINUUM_OVMF") {
        return path.into();
    }
    [
        "/usr/share/ovmf/OVMF.fd",
        "/usr/share/OVMF/OVMF.fd",
        "/usr/share/edk2/ovmf/OVMF.fd",
        "/usr/share/qemu/OVMF.fd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("OVMF.fd not found: run qemu/setup.sh or set CONTINUUM_OVMF")
}
