//! The I/O APIC: routes a global system interrupt (GSI) to a vector on the
//! boot CPU, and masks it while a task services the device (82093AA
//! datasheet §3.2.4, redirection table entries).

use super::acpi::Madt;
use crate::memory;
use spin::Mutex;

const IOREGSEL: usize = 0x00;
const IOWIN: usize = 0x10;
const IOAPICVER: u32 = 0x01;
const REDIRECTION_BASE: u32 = 0x10;
const MASKED: u32 = 1 << 16;
const LEVEL_TRIGGERED: u32 = 1 << 15;

struct Chip {
    base: u64,
    gsi_base: u32,
    pins: u32,
}

static CHIPS: Mutex<[Option<Chip>; 4]> = Mutex::new([None, None, None, None]);

/// Maps every I/O APIC the MADT lists and masks all their pins.
pub fn init(madt: &Madt) {
    let mut chips = CHIPS.lock();
    for (slot, ioapic) in madt.ioapics[..madt.ioapic_count].iter().enumerate() {
        let base = memory::map_mmio(ioapic.address, 0x20);
        let pins = ((read(base, IOAPICVER) >> 16) & 0xff) + 1;
        for pin in 0..pins {
            write(base, REDIRECTION_BASE + 2 * pin, MASKED);
        }
        log::info!(
            "ioapic: {:#x}, GSIs {}..{}",
            ioapic.address,
            ioapic.gsi_base,
            ioapic.gsi_base + pins
        );
        chips[slot] = Some(Chip {
            base,
            gsi_base: ioapic.gsi_base,
            pins,
        });
    }
}

fn read(base: u64, register: u32) -> u32 {
    // SAFETY: `base` maps an I/O APIC's register window (IOREGSEL at +0,
    // IOWIN at +0x10, both 32-bit); indirect access needs the select first.
    unsafe {
        core::ptr::write_volatile((base as usize + IOREGSEL) as *mut u32, register);
        core::ptr::read_volatile((base as usize + IOWIN) as *const u32)
    }
}

fn write(base: u64, register: u32, value: u32) {
    // SAFETY: as in `read`.
    unsafe {
        core::ptr::write_volatile((base as usize + IOREGSEL) as *mut u32, register);
        core::ptr::write_volatile((base as usize + IOWIN) as *mut u32, value);
    }
}

/// Applies `f(base, pin)` to the chip that owns `gsi`; false if none does.
/// Runs `f` on the chip that owns `gsi`, with interrupts off: the device
/// interrupt handler masks pins through here too, so a task holding the
/// lock when an interrupt arrives would otherwise deadlock its own CPU (seen
/// under load: a node hung in `on_interrupt` spinning on this lock), and
/// the select-then-access register pair must not be split by the handler.
fn with_pin(gsi: u32, f: impl FnOnce(u64, u32)) -> bool {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let chips = CHIPS.lock();
        for chip in chips.iter().flatten() {
            if (chip.gsi_base..chip.gsi_base + chip.pins).contains(&gsi) {
                f(chip.base, gsi - chip.gsi_base);
                return true;
            }
        }
        false
    })
}

/// Routes `gsi` to `vector` on the boot CPU (APIC id 0), level-triggered
/// as PCI INTx is, left masked. False if no I/O APIC owns the GSI.
pub fn route_level(gsi: u32, vector: u8) -> bool {
    with_pin(gsi, |base, pin| {
        write(base, REDIRECTION_BASE + 2 * pin + 1, 0); // destination APIC id 0
        write(
            base,
            REDIRECTION_BASE + 2 * pin,
            MASKED | LEVEL_TRIGGERED | vector as u32,
        );
    })
}

pub fn set_masked(gsi: u32, masked: bool) {
    with_pin(gsi, |base, pin| {
        let low = read(base, REDIRECTION_BASE + 2 * pin);
        let low = if masked { low | MASKED } else { low & !MASKED };
        write(base, REDIRECTION_BASE + 2 * pin, low);
    });
}
