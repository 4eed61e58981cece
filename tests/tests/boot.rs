//! Boot the real kernel image in QEMU: both firmware paths, the in-kernel
//! self-tests, fault reporting, and config handling.

use continuum_harness::{Exit, Firmware, Machine, VmConfig};

const SELFTESTS: [&str; 7] = [
    "heap_large_allocation",
    "heap_many_small_allocations",
    "dma_frames_contiguous",
    "wall_clock_plausible",
    "hlc_strictly_increases",
    "timer_ticks_advance",
    "tasks_interleave",
];

fn assert_selftests_pass(firmware: Firmware, machine: Machine, name: &str) {
    let run = VmConfig::new(name)
        .firmware(firmware)
        .machine(machine)
        .node_config("node_id = 2\nmode = selftest\n")
        .run();
    run.assert_exit(Exit::Success);
    run.assert_line("node 2 of cluster 1, mode selftest");
    for test in SELFTESTS {
        run.assert_line(&format!("selftest {test} ... ok"));
    }
    run.assert_line("selftest: 7 passed, 0 failed");
}

#[test]
fn bios_boot_on_q35_passes_selftests() {
    assert_selftests_pass(Firmware::Bios, Machine::Q35, "bios-q35-selftest");
}

#[test]
fn bios_boot_on_pc_passes_selftests() {
    assert_selftests_pass(Firmware::Bios, Machine::Pc, "bios-pc-selftest");
}

#[test]
fn uefi_boot_on_q35_passes_selftests() {
    assert_selftests_pass(Firmware::Uefi, Machine::Q35, "uefi-q35-selftest");
}

#[test]
fn page_fault_is_reported_not_hung() {
    let run = VmConfig::new("page-fault")
        .node_config("mode = selftest-page-fault\n")
        .run();
    run.assert_exit(Exit::CpuException);
    run.assert_line("PAGE FAULT: address 0xdeadbeef000");
    run.assert_line("CPU EXCEPTION: page fault (error code 0x2)");
}

#[test]
fn node_without_config_boots_with_defaults() {
    let mut vm = VmConfig::new("no-config").start();
    vm.wait_for_line("config: none in fw_cfg, using defaults");
    vm.wait_for_line(&format!(
        "node 1 of cluster 1, mode node, heap {} MiB",
        continuum_config::Config::default().heap_mib
    ));
    let (_, ready) = vm.wait_for_line("ready: kernel entry -> ready");
    assert!(ready.contains(" ms, wall clock "), "{ready}");
}

#[test]
fn bad_config_is_reported_and_the_node_halts() {
    let mut vm = VmConfig::new("bad-config")
        .node_config("node_id = 3\nheap_mib = lots\n")
        .start();
    vm.wait_for_line(
        "config line 2: bad value, expected an integer from 1 to 1024; refusing to start",
    );
    vm.wait_for_line("halted");
    let console = vm.console_text();
    assert!(
        !console.contains("ready:"),
        "a node with a bad config must not come up:\n{console}"
    );
}

#[test]
fn unknown_config_key_is_refused() {
    let mut vm = VmConfig::new("unknown-key")
        .node_config("nodeid = 3\n")
        .start();
    vm.wait_for_line("config line 1: unknown key");
    vm.wait_for_line("halted");
}
