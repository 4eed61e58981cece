//! x86_64 platform code: descriptor tables, interrupts, timers, firmware
//! interfaces and port I/O.

pub mod acpi;
pub mod apic;
pub mod cmos;
pub mod debug_exit;
pub mod device_irq;
pub mod fw_cfg;
pub mod gdt;
pub mod interrupts;
pub mod ioapic;
pub mod pci;
pub mod pit;

/// Stops this CPU for good. Interrupts are disabled first so not even the
/// timer wakes it; NMIs would, hence the loop.
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
