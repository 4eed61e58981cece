//! The Continuum kernel: one image, every node.
//!
//! Boot order, and why it is this order:
//!
//! 1. **Console** first, so every later failure can be reported.
//! 2. **GDT/TSS and IDT**, so a fault during bring-up prints an address
//!    instead of triple-faulting into a silent reset.
//! 3. **Config** from the bootloader ramdisk (a USB image written by
//!    `continuum-boot`), else QEMU's `fw_cfg`, else defaults; parsed without
//!    a heap, because the heap size comes from it. A bad config is reported
//!    and the node halts.
//! 4. **Memory**: frame allocator from the bootloader's map, then the heap.
//! 5. **Time**: TSC calibrated against CPUID or the PIT, wall clock from the
//!    CMOS RTC, the local APIC timer as the one interrupt that wakes us.
//! 6. **Executor**: from here on everything is a task; the CPU halts when no
//!    task is runnable. In `mode = node`: claim the NICs
//!    (`network::Network::claim`), build the consensus node
//!    (`consensus::start`, which needs to know whether the LAN is
//!    authenticated), then spawn the network task, the console shell
//!    (`shell`) and the heartbeat.
//!
//! Hardware-facing code lives under `arch/x86_64/`; what is left at the top
//! level (executor, console formatting, self-tests) is portable in spirit.
#![no_std]
#![no_main]
#![feature(abi_x86_interrupt)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod arch;
mod consensus;
mod console;
mod disk;
mod drivers;
mod executor;
mod memory;
mod metrics;
mod netbench;
mod network;
mod selftest;
mod shell;
mod time;

use arch::x86_64::{debug_exit, fw_cfg, gdt, interrupts};
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::{entry_point, BootInfo};
use continuum_config::{Config, Mode};

/// Virtual addresses from here up belong to the kernel (heap, MMIO windows);
/// the bootloader places its dynamic mappings below. See `memory`.
pub const KERNEL_REGION_START: u64 = 0xffff_a000_0000_0000;

pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.dynamic_range_start = Some(0xffff_8000_0000_0000);
    config.mappings.dynamic_range_end = Some(KERNEL_REGION_START - 1);
    config.kernel_stack_size = 256 * 1024;
    config
};

entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    let entry_tsc = time::rdtsc();
    console::init();
    log::info!("continuum {}: kernel entry", env!("CARGO_PKG_VERSION"));

    gdt::init();
    interrupts::init_idt();

    let config = load_config(boot_info);
    console::set_level(config.log_level);
    if config.mode != Mode::Node {
        // From here on a panic or CPU exception ends the QEMU run with a code
        // the host test harness understands, instead of halting forever.
        debug_exit::arm();
    }
    log::info!(
        "node {} of cluster {}, mode {}, heap {} MiB",
        config.node_id,
        config.cluster_id,
        config.mode,
        config.heap_mib
    );

    let boot_info_rsdp = boot_info.rsdp_addr.into_option();
    memory::init(boot_info, config.heap_mib);
    time::init(entry_tsc);
    interrupts::init_timer();
    drivers::probe(boot_info_rsdp);
    let store = disk::open_at_boot(&config);

    let ready_ns = time::monotonic_ns();
    log::info!(
        "ready: kernel entry -> ready {}.{:03} ms, wall clock {} (unix s)",
        ready_ns / 1_000_000,
        (ready_ns / 1_000) % 1_000,
        time::wall_clock_secs()
    );

    match config.mode {
        Mode::SelfTest => selftest::run_and_exit(),
        Mode::SelfTestPageFault => selftest::provoke_page_fault(),
        Mode::NetBenchRaw => {
            netbench::start_raw(&config);
            executor::spawn(shell::run_shell());
            executor::spawn(heartbeat());
            executor::run()
        }
        Mode::Node | Mode::NetBench => {
            // In `mode = node` the consensus node takes the disk; the
            // benchmark leaves it alone.
            let store = store.filter(|_| config.mode == Mode::Node);
            // The node is built before the network task starts, once the
            // ports are claimed: it runs only with an authenticated LAN.
            // Offline (no usable NIC) neither runs.
            if let Some(network) = network::Network::claim(&config, store.is_some()) {
                if config.mode == Mode::Node {
                    consensus::start(&config, store, network.lan_authenticated());
                }
                network.spawn();
            }
            executor::spawn(shell::run_shell());
            executor::spawn(heartbeat());
            executor::run()
        }
        Mode::WalExercise | Mode::WalBench => {
            let Some(store) = store else {
                halt_with(format_args!("mode {} needs a disk", config.mode))
            };
            if config.mode == Mode::WalBench {
                disk::bench::run_and_exit(store)
            }
            executor::spawn(disk::exercise::run(store));
            executor::spawn(heartbeat());
            executor::run()
        }
    }
}

/// Finds the node config: the ramdisk the bootloader loaded (USB images
/// carry the config there, sealed by `continuum_config::ramdisk`), else
/// QEMU's `fw_cfg`, else the defaults; the console says which. A config
/// that is present but bad or damaged halts the node: a node that guesses
/// its identity can split a cluster.
///
/// Runs before `memory::init`: the ramdisk lies in memory the bootloader
/// reserved for it, and nothing of it is kept once the config is parsed.
fn load_config(boot_info: &BootInfo) -> Config {
    if let Some(addr) = boot_info.ramdisk_addr.into_option() {
        let len = boot_info.ramdisk_len as usize;
        // SAFETY: the bootloader mapped `ramdisk_len` bytes of the loaded
        // ramdisk file at `ramdisk_addr` and does not change them; the slice
        // is only read, and dropped before this function returns.
        let ramdisk = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
        let text = match continuum_config::ramdisk::open(ramdisk) {
            Ok(text) => text,
            Err(error) => halt_with(format_args!(
                "config: the boot image's config ramdisk ({len} bytes) is unusable: {error}; refusing to start"
            )),
        };
        return match Config::parse(text) {
            Ok(config) => {
                log::info!(
                    "config: {} bytes from the boot image (bootloader ramdisk), checksum ok",
                    text.len()
                );
                config
            }
            Err(error) => halt_with(format_args!(
                "{error} (in the boot image's config ramdisk); refusing to start"
            )),
        };
    }
    let mut buffer = [0u8; continuum_config::MAX_CONFIG_BYTES];
    let bytes = match fw_cfg::read_file("opt/continuum/config", &mut buffer) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            log::info!(
                "config: none in fw_cfg, using defaults (the boot image has no config ramdisk)"
            );
            return Config::default();
        }
        Err(error) => halt_with(format_args!("config: cannot read fw_cfg: {error}")),
    };
    match Config::parse(bytes) {
        Ok(config) => {
            log::info!("config: {} bytes from fw_cfg", bytes.len());
            config
        }
        Err(error) => halt_with(format_args!("{error}; refusing to start")),
    }
}

/// Reports a fatal condition on the console and stops this CPU for good.
pub fn halt_with(message: core::fmt::Arguments) -> ! {
    log::error!("{message}");
    log::error!("halted");
    arch::x86_64::halt_forever()
}

/// The node's pulse: proves on the console that time, interrupts and the
/// executor keep running.
async fn heartbeat() {
    let mut beats = 0u64;
    loop {
        executor::sleep(core::time::Duration::from_secs(10)).await;
        beats += 1;
        log::info!(
            "heartbeat {beats}: up {} s, {} timer interrupts",
            time::monotonic_ns() / 1_000_000_000,
            interrupts::timer_interrupts()
        );
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    console::emergency_write(format_args!("\nKERNEL PANIC: {info}\n"));
    debug_exit::exit_if_armed(debug_exit::ExitCode::Failure);
    arch::x86_64::halt_forever()
}
