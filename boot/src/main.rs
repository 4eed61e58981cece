//! `continuum-boot`: writes bootable disk images of the Continuum kernel.
//!
//! ```text
//! continuum-boot <kernel-elf> <out-dir>
//! continuum-boot --config FILE --out DIR [--kernel ELF]
//! continuum-boot usb --cluster-dir DIR --node N [--out DIR] [--kernel ELF]
//! ```
//!
//! See [`USAGE`]. Prints the paths of the images it wrote, and for a node
//! image a one-line summary of the config; never key material.

use continuum_boot::{BootError, Images, NodeConfig};
use continuum_config::{NodeId, MAX_NODE_ID};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  continuum-boot <kernel-elf> <out-dir>
      plain BIOS and UEFI images (under QEMU the config comes through fw_cfg)
  continuum-boot --config FILE --out DIR [--kernel ELF]
      one node's USB-stick images with FILE baked in:
      DIR/node-<id>-bios.img and DIR/node-<id>-uefi.img
  continuum-boot usb --cluster-dir DIR --node N [--out OUT] [--kernel ELF]
      the same for node N of a cluster directory, reading DIR/node-N.conf
      (as written by `continuum cluster init --dir DIR`); OUT defaults to DIR

The config is checked with the kernel's own parser first; an invalid one
writes nothing. Node images hold the node's secret key and are created
readable by you only. --kernel defaults to this checkout's release kernel
(build it with qemu/build.sh).";

/// The release kernel of the checkout this tool was built from.
fn default_kernel() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kernel/target/x86_64-unknown-none/release/continuum-kernel")
}

#[derive(Default)]
struct Args {
    usb: bool,
    positional: Vec<PathBuf>,
    config: Option<PathBuf>,
    out: Option<PathBuf>,
    kernel: Option<PathBuf>,
    cluster_dir: Option<PathBuf>,
    node: Option<String>,
}

enum Parsed {
    Help,
    Run(Args),
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let mut parsed = Args::default();
    let mut args = args.into_iter().peekable();
    if args.peek().and_then(|a| a.to_str()) == Some("usb") {
        parsed.usb = true;
        args.next();
    }
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.to_str() {
            Some("-h" | "--help") => return Ok(Parsed::Help),
            Some("--config") => parsed.config = Some(value("--config")?.into()),
            Some("--out") => parsed.out = Some(value("--out")?.into()),
            Some("--kernel") => parsed.kernel = Some(value("--kernel")?.into()),
            Some("--cluster-dir") => parsed.cluster_dir = Some(value("--cluster-dir")?.into()),
            Some("--node") => parsed.node = Some(value("--node")?.to_string_lossy().into_owned()),
            Some(flag) if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => parsed.positional.push(PathBuf::from(arg)),
        }
    }
    Ok(Parsed::Run(parsed))
}

/// What to do, once the arguments make sense together.
enum Job {
    Plain {
        kernel: PathBuf,
        out: PathBuf,
    },
    Node {
        kernel: PathBuf,
        out: PathBuf,
        node: Box<NodeConfig>,
    },
}

fn plan(args: Args) -> Result<Result<Job, BootError>, String> {
    if args.usb {
        if !args.positional.is_empty() || args.config.is_some() {
            return Err("`usb` takes --cluster-dir and --node, not a config or paths".into());
        }
        let dir = args.cluster_dir.ok_or("`usb` needs --cluster-dir DIR")?;
        let node = args.node.ok_or("`usb` needs --node N")?;
        let node: NodeId = match node.parse() {
            Ok(id) if (1..=MAX_NODE_ID).contains(&id) => id,
            _ => {
                return Err(format!(
                    "--node must be a node id from 1 to 255, not {node:?}"
                ))
            }
        };
        let out = args.out.unwrap_or_else(|| dir.clone());
        let kernel = args.kernel.unwrap_or_else(default_kernel);
        return Ok(
            continuum_boot::load_cluster_node_config(&dir, node).map(|node| Job::Node {
                kernel,
                out,
                node: Box::new(node),
            }),
        );
    }
    if args.cluster_dir.is_some() || args.node.is_some() {
        return Err("--cluster-dir and --node belong to the `usb` subcommand".into());
    }
    let (kernel, out) = match (args.positional.as_slice(), args.kernel, args.out) {
        ([kernel, out], None, None) => (kernel.clone(), out.clone()),
        ([], kernel, Some(out)) if args.config.is_some() => {
            (kernel.unwrap_or_else(default_kernel), out)
        }
        ([], _, None) if args.config.is_some() => return Err("--config needs --out DIR".into()),
        _ => return Err("expected <kernel-elf> <out-dir>, or --config FILE --out DIR".into()),
    };
    Ok(match args.config {
        None => Ok(Job::Plain { kernel, out }),
        Some(config) => continuum_boot::load_node_config(&config).map(|node| Job::Node {
            kernel,
            out,
            node: Box::new(node),
        }),
    })
}

fn run(job: Job) -> Result<(), BootError> {
    match job {
        Job::Plain { kernel, out } => {
            let images = continuum_boot::build_images(&kernel, &out)?;
            print_images(&images);
        }
        Job::Node { kernel, out, node } => {
            println!("{}: {}", node.path.display(), node.summary());
            for warning in node.warnings() {
                eprintln!("continuum-boot: warning: {warning}");
            }
            let images = continuum_boot::build_node_images(&kernel, &node, &out)?;
            print_images(&images);
            println!(
                "The images hold node {}'s secret key and are readable by you only.\n\
                 Write the BIOS image (legacy or CSM boot) or the UEFI one to a USB stick; \
                 check the device name first, everything on it is overwritten:\n  \
                 sudo dd if={} of=/dev/sdX bs=4M status=progress conv=fsync",
                node.config.node_id,
                images.bios.display()
            );
        }
    }
    Ok(())
}

fn print_images(images: &Images) {
    println!("BIOS image: {}", images.bios.display());
    println!("UEFI image: {}", images.uefi.display());
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(args)) => args,
        Err(why) => return usage_error(&why),
    };
    let job = match plan(args) {
        Ok(Ok(job)) => job,
        Ok(Err(error)) => return failure(&error),
        Err(why) => return usage_error(&why),
    };
    match run(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failure(&error),
    }
}

fn failure(error: &BootError) -> ExitCode {
    eprintln!("continuum-boot: {error}");
    ExitCode::FAILURE
}

fn usage_error(why: &str) -> ExitCode {
    eprintln!("continuum-boot: {why}\n{USAGE}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(args: &[&str]) -> Result<Result<Job, BootError>, String> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Help => Err("help".into()),
            Parsed::Run(args) => plan(args),
        }
    }

    #[test]
    fn the_plain_invocation_of_build_sh_still_works() {
        match plan_of(&["kernel.elf", "target/images"]) {
            Ok(Ok(Job::Plain { kernel, out })) => {
                assert_eq!(kernel, Path::new("kernel.elf"));
                assert_eq!(out, Path::new("target/images"));
            }
            _ => panic!("expected a plain job"),
        }
    }

    #[test]
    fn misused_arguments_are_usage_errors() {
        for (args, needle) in [
            (&["--config", "n.conf"][..], "--config needs --out"),
            (&["usb", "--node", "1"][..], "--cluster-dir"),
            (&["usb", "--cluster-dir", "d"][..], "--node"),
            (
                &["usb", "--cluster-dir", "d", "--node", "0"][..],
                "1 to 255",
            ),
            (
                &["usb", "--cluster-dir", "d", "--node", "x"][..],
                "1 to 255",
            ),
            (&["--node", "1", "k", "o"][..], "`usb` subcommand"),
            (&["kernel.elf"][..], "expected <kernel-elf>"),
            (&["--bogus"][..], "unknown option"),
            (&["--out"][..], "needs a value"),
        ] {
            match plan_of(args) {
                Err(why) => assert!(why.contains(needle), "{args:?}: {why}"),
                Ok(_) => panic!("{args:?} was accepted"),
            }
        }
        assert!(matches!(plan_of(&["--help"]), Err(why) if why == "help"));
    }

    #[test]
    fn usb_reads_the_cluster_directory() {
        let dir = std::env::temp_dir().join(format!("continuum-boot-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("node-2.conf"), "node_id = 2\n").unwrap();
        let dir_text = dir.to_str().unwrap();
        match plan_of(&["usb", "--cluster-dir", dir_text, "--node", "2"]) {
            Ok(Ok(Job::Node { out, node, .. })) => {
                assert_eq!(out, dir);
                assert_eq!(node.config.node_id, 2);
            }
            _ => panic!("expected node 2's job"),
        }
        match plan_of(&["usb", "--cluster-dir", dir_text, "--node", "3"]) {
            Ok(Err(BootError::ConfigUnreadable { path, .. })) => {
                assert_eq!(path, dir.join("node-3.conf"))
            }
            _ => panic!("node 3 has no file"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
