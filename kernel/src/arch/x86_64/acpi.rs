//! Just enough ACPI to route device interrupts: find the MADT through the
//! RSDP the bootloader hands over, and read the I/O APICs and the ISA
//! interrupt source overrides from it (ACPI 6.5 §5.2.5 RSDP, §5.2.8 XSDT,
//! §5.2.12 MADT). Every table's length is bounded and its checksum checked;
//! a bad table is ignored, not trusted.

use crate::memory::phys_to_virt;

/// Largest table we will read; real MADTs are a few hundred bytes.
const MAX_TABLE_BYTES: u32 = 64 * 1024;
/// I/O APICs and overrides we keep; PCs have one or two I/O APICs.
const MAX_IOAPICS: usize = 4;
const MAX_OVERRIDES: usize = 16;

#[derive(Clone, Copy, Debug, Default)]
pub struct IoApic {
    pub address: u64,
    pub gsi_base: u32,
}

/// ISA IRQ `source` arrives at `gsi`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Override {
    pub source: u8,
    pub gsi: u32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Madt {
    pub ioapics: [IoApic; MAX_IOAPICS],
    pub ioapic_count: usize,
    pub overrides: [Override; MAX_OVERRIDES],
    pub override_count: usize,
}

impl Madt {
    /// The GSI that ISA IRQ `irq` is wired to (identity unless overridden).
    pub fn isa_irq_to_gsi(&self, irq: u8) -> u32 {
        self.overrides[..self.override_count]
            .iter()
            .find(|o| o.source == irq)
            .map_or(irq as u32, |o| o.gsi)
    }
}

fn bytes(phys: u64, len: usize) -> &'static [u8] {
    // SAFETY: ACPI tables live in firmware-reserved RAM below 4 GiB, which
    // the bootloader maps in the physical window; callers bound `len` by the
    // table's own (checked) length, and the tables are never written.
    unsafe { core::slice::from_raw_parts(phys_to_virt(phys) as *const u8, len) }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u32_at(b, at) as u64 | (u32_at(b, at + 4) as u64) << 32
}

fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |sum, &x| sum.wrapping_add(x)) == 0
}

/// A whole SDT at `phys` if its length is sane and its checksum adds up.
fn table(phys: u64) -> Option<&'static [u8]> {
    let length = u32_at(bytes(phys, 8), 4);
    if !(36..=MAX_TABLE_BYTES).contains(&length) {
        return None;
    }
    let table = bytes(phys, length as usize);
    checksum_ok(table).then_some(table)
}

/// Reads the MADT; `None` if there is no valid RSDP, root table or MADT.
pub fn madt(rsdp: u64) -> Option<Madt> {
    let head = bytes(rsdp, 20);
    if &head[..8] != b"RSD PTR " || !checksum_ok(head) {
        return None;
    }
    let revision = head[15];
    let (root, entry_size) = if revision >= 2 {
        (u64_at(bytes(rsdp, 36), 24), 8)
    } else {
        (u32_at(head, 16) as u64, 4)
    };
    let root = table(root)?;
    let madt = root[36..]
        .chunks_exact(entry_size)
        .map(|e| {
            if entry_size == 8 {
                u64_at(e, 0)
            } else {
                u32_at(e, 0) as u64
            }
        })
        .filter_map(table)
        .find(|t| &t[..4] == b"APIC")?;

    let mut out = Madt::default();
    let mut at = 44;
    while at + 2 <= madt.len() {
        let (kind, len) = (madt[at], madt[at + 1] as usize);
        if len < 2 || at + len > madt.len() {
            break;
        }
        let entry = &madt[at..at + len];
        match kind {
            1 if len >= 12 && out.ioapic_count < MAX_IOAPICS => {
                out.ioapics[out.ioapic_count] = IoApic {
                    address: u32_at(entry, 4) as u64,
                    gsi_base: u32_at(entry, 8),
                };
                out.ioapic_count += 1;
            }
            2 if len >= 10 && out.override_count < MAX_OVERRIDES => {
                out.overrides[out.override_count] = Override {
                    source: entry[3],
                    gsi: u32_at(entry, 4),
                };
                out.override_count += 1;
            }
            _ => {}
        }
        at += len;
    }
    Some(out)
}
