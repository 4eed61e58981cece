//! `continuum-fabric --dir <run dir> --nodes N [--seed S]`: runs the switch
//! until SIGINT, SIGTERM or a control `shutdown`, then removes its sockets.

use continuum_base::NodeId;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use continuum_fabric::switch::MAX_PORTS;
use continuum_fabric::{Fabric, FabricConfig};

/// User-space Ethernet switch with seeded fault injection for QEMU VMs.
#[derive(Parser, Debug)]
#[command(name = "continuum-fabric", version)]
struct Args {
    /// Directory for the socket files (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Number of ports (one per node), numbered 1..=N.
    #[arg(long, value_parser = clap::value_parser!(NodeId).range(1..=MAX_PORTS))]
    nodes: NodeId,
    /// Seed of the fault generators; the same seed replays the same faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = FabricConfig {
        dir: args.dir,
        nodes: args.nodes,
        seed: args.seed,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("continuum-fabric: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let handle = match Fabric::start(config.clone()) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("continuum-fabric: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("control {}", config.control_path().display());
    for port in 1..=config.nodes {
        println!(
            "node {port} switch {} vm {}",
            config.switch_path(port).display(),
            config.vm_path(port).display()
        );
        println!(
            "node {port} qemu -netdev {}",
            config.qemu_netdev(port, &format!("n{port}"))
        );
    }
    println!("seed {}", config.seed);
    while !stop.load(Ordering::Relaxed) && handle.is_running() {
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.shutdown();
    eprintln!("continuum-fabric: stopped, sockets removed");
    ExitCode::SUCCESS
}
