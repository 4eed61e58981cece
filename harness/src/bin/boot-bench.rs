//! `cargo run --release -p continuum-harness --bin boot-bench [runs]`
//!
//! Boots the release image repeatedly (self-test mode, so QEMU exits by
//! itself) and prints the median and worst time from QEMU start to the first
//! kernel console line and to the `ready:` line, plus the kernel's own
//! entry -> ready figure and the image sizes.

use continuum_harness::{images, Exit, Firmware, Machine, VmConfig};
use std::time::Duration;

fn main() {
    let runs: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 5,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: boot-bench [runs > 0]");
            std::process::exit(2);
        }
    };
    let images = images();
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "kernel ELF {} bytes, BIOS image {} bytes, UEFI image {} bytes",
        size(&images.kernel),
        size(&images.bios),
        size(&images.uefi)
    );
    println!(
        "accelerator: {:?}, {runs} runs each, 256 MiB guest",
        continuum_harness::Accel::detect()
    );
    println!(
        "{:<14} {:>16} {:>16} {:>18}",
        "boot", "first line p50", "ready p50", "entry->ready p50"
    );
    for (firmware, machine) in [
        (Firmware::Bios, Machine::Q35),
        (Firmware::Bios, Machine::Pc),
        (Firmware::Uefi, Machine::Q35),
        (Firmware::Uefi, Machine::Pc),
    ] {
        let mut first = Vec::new();
        let mut ready = Vec::new();
        let mut kernel_ms = Vec::new();
        for i in 0..runs {
            let run = VmConfig::new(&format!("boot-bench-{firmware:?}-{machine:?}-{i}"))
                .firmware(firmware)
                .machine(machine)
                .node_config("mode = selftest\n")
                .run();
            run.assert_exit(Exit::Success);
            first.push(run.lines.first().expect("console has lines").0);
            ready.push(
                run.line_at("ready: kernel entry -> ready")
                    .expect("ready line"),
            );
            let line = &run
                .lines
                .iter()
                .find(|(_, l)| l.contains("ready: kernel entry"))
                .unwrap()
                .1;
            let ms: f64 = line
                .split("-> ready ")
                .nth(1)
                .and_then(|rest| rest.split(" ms").next())
                .and_then(|n| n.parse().ok())
                .expect("ready line carries a figure");
            kernel_ms.push(ms);
        }
        kernel_ms.sort_by(f64::total_cmp);
        println!(
            "{:<14} {:>16} {:>16} {:>15.1} ms",
            format!("{firmware:?} {machine:?}"),
            fmt(median(&mut first)),
            fmt(median(&mut ready)),
            kernel_ms[kernel_ms.len() / 2]
        );
    }
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}
