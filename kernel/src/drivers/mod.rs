//! Device drivers: the glue between hardware (through `arch`) and the
//! portable traits the rest of the node uses.
//!
//! [`probe`] runs once at boot: it reads the interrupt routing from ACPI,
//! scans PCI, and keeps what it found for the drivers to claim.

pub mod e1000;
pub mod nic;
pub mod virtio;
pub mod virtio_blk;
pub mod virtio_net;

use crate::arch::x86_64::acpi::{self, Madt};
use crate::arch::x86_64::device_irq::DeviceIrq;
use crate::arch::x86_64::ioapic;
use crate::arch::x86_64::pci::{self, PciFunction, PortCam};
use alloc::vec::Vec;
use spin::Mutex;
use virtio_drivers::transport::pci::bus::{BarInfo, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::DeviceType;

struct Bus {
    root: PciRoot<PortCam>,
    functions: Vec<PciFunction>,
    madt: Option<Madt>,
}

static BUS: Mutex<Option<Bus>> = Mutex::new(None);

/// Reads ACPI interrupt routing and scans PCI. `rsdp` is the physical
/// address of the ACPI RSDP, if the bootloader found one.
pub fn probe(rsdp: Option<u64>) {
    let madt = rsdp.and_then(acpi::madt);
    match &madt {
        Some(madt) => ioapic::init(madt),
        None => log::warn!("acpi: no usable MADT; devices will be polled"),
    }
    let root = PciRoot::new(PortCam);
    let functions = pci::scan(&root);
    for f in &functions {
        let kind = match e1000::Model::from_pci_ids(f.info.vendor_id, f.info.device_id) {
            Some(model) => alloc::string::String::from(model.name()),
            None => virtio_device_type(&f.info).map_or(
                alloc::format!("class {:02x}.{:02x}", f.info.class, f.info.subclass),
                |t| alloc::format!("virtio {t:?}"),
            ),
        };
        log::info!(
            "pci: {:02x}:{:02x}.{} {:04x}:{:04x} {kind}, irq {:?}",
            f.location.bus,
            f.location.device,
            f.location.function,
            f.info.vendor_id,
            f.info.device_id,
            f.interrupt_line
        );
    }
    *BUS.lock() = Some(Bus {
        root,
        functions,
        madt,
    });
}

/// A claimed virtio device: its transport and, when routable, its interrupt.
pub struct VirtioDevice {
    pub transport: PciTransport,
    pub irq: Option<DeviceIrq>,
    /// Where it sits, for log lines.
    pub location: (u8, u8, u8),
}

/// Claims every virtio device of `kind`, in PCI order: enables it (memory
/// decoding, bus mastering), builds its transport, routes its interrupt.
pub fn claim_virtio(kind: DeviceType) -> Vec<VirtioDevice> {
    let mut guard = BUS.lock();
    let Some(bus) = guard.as_mut() else {
        return Vec::new();
    };
    let matching: Vec<PciFunction> = bus
        .functions
        .iter()
        .filter(|f| virtio_device_type(&f.info) == Some(kind))
        .cloned()
        .collect();
    matching
        .iter()
        .filter_map(|f| claim_virtio_function(bus, f))
        .collect()
}

/// Claims every network card the kernel has a driver for — virtio-net and
/// Intel e1000-class — in PCI order, which decides the roles they get.
pub fn claim_nics() -> Vec<nic::ClaimedNic> {
    let mut guard = BUS.lock();
    let Some(bus) = guard.as_mut() else {
        return Vec::new();
    };
    let functions = bus.functions.clone();
    let mut claimed = Vec::new();
    for f in &functions {
        if virtio_device_type(&f.info) == Some(DeviceType::Network) {
            claimed.extend(claim_virtio_function(bus, f).map(nic::ClaimedNic::virtio));
            continue;
        }
        let Some(model) = e1000::Model::from_pci_ids(f.info.vendor_id, f.info.device_id) else {
            continue;
        };
        let l = f.location;
        let location = (l.bus, l.device, l.function);
        // BAR 0 is the memory-mapped register window on every model.
        let bar = bus.root.bar_info(l, 0);
        let Ok(Some(BarInfo::Memory { address, size, .. })) = bar else {
            log::error!(
                "e1000: {:02x}:{:02x}.{}: BAR 0 is not a memory BAR ({bar:?}); skipped",
                l.bus,
                l.device,
                l.function
            );
            continue;
        };
        pci::enable(&mut bus.root, l);
        let irq = route_irq(bus, f);
        claimed.push(nic::ClaimedNic::e1000(model, address, size, irq, location));
    }
    claimed
}

fn route_irq(bus: &Bus, f: &PciFunction) -> Option<DeviceIrq> {
    match (&bus.madt, f.interrupt_line) {
        (Some(madt), Some(line)) => DeviceIrq::route(madt.isa_irq_to_gsi(line)),
        _ => None,
    }
}

fn claim_virtio_function(bus: &mut Bus, f: &PciFunction) -> Option<VirtioDevice> {
    let l = f.location;
    pci::enable(&mut bus.root, l);
    let transport = match PciTransport::new::<virtio::KernelHal, _>(&mut bus.root, l) {
        Ok(t) => t,
        Err(error) => {
            log::error!(
                "virtio: {:02x}:{:02x}.{}: {error}",
                l.bus,
                l.device,
                l.function
            );
            return None;
        }
    };
    Some(VirtioDevice {
        transport,
        irq: route_irq(bus, f),
        location: (l.bus, l.device, l.function),
    })
}
