//! Device drivers: the glue between hardware (through `arch`) and the
//! portable traits the rest of the node uses.
//!
//! [`probe`] runs once at boot: it reads the interrupt routing from ACPI,
//! scans PCI, and keeps what it found for the drivers to claim:
//! [`claim_nics`] (virtio-net, e1000 class) and [`claim_disks`]
//! (virtio-blk, NVMe, AHCI; each implements the store's `BlockDevice`,
//! what they share is in [`blockdev`]). Drivers never call up into the
//! node: the storage module wraps the disk it chose.

pub mod ahci;
pub mod blockdev;
pub mod e1000;
pub mod nic;
pub mod nvme;
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

/// PCI class codes of the disk controllers we drive (PCI Code and
/// Assignment spec §1.2: mass storage 01h; SATA 06h with AHCI 1.0
/// interface 01h; non-volatile memory 08h with NVM Express interface 02h).
const CLASS_MASS_STORAGE: u8 = 0x01;
const SUBCLASS_SATA: u8 = 0x06;
const PROG_IF_AHCI: u8 = 0x01;
const SUBCLASS_NVM: u8 = 0x08;
const PROG_IF_NVME: u8 = 0x02;

/// A disk a driver brought up, before the node decides whether to use it.
pub enum ClaimedDisk {
    Virtio(alloc::boxed::Box<virtio_blk::VirtioBlk>),
    Nvme(nvme::Nvme),
    Ahci(ahci::Ahci),
}

impl ClaimedDisk {
    pub fn info(&self) -> &blockdev::DiskInfo {
        match self {
            ClaimedDisk::Virtio(d) => d.info(),
            ClaimedDisk::Nvme(d) => d.info(),
            ClaimedDisk::Ahci(d) => d.info(),
        }
    }
}

/// Claims every disk the kernel has a driver for — virtio-blk, NVMe, AHCI
/// — in PCI order (AHCI disks in port order within their controller), and
/// brings each up. A controller that fails is logged and skipped. Disks
/// are only identified and read here; nothing is written to any of them.
pub fn claim_disks() -> Vec<ClaimedDisk> {
    let mut guard = BUS.lock();
    let Some(bus) = guard.as_mut() else {
        return Vec::new();
    };
    let functions = bus.functions.clone();
    let mut disks = Vec::new();
    let mut virtio_index = 0;
    for f in &functions {
        let l = f.location;
        let location = (l.bus, l.device, l.function);
        let place = alloc::format!("{:02x}:{:02x}.{}", l.bus, l.device, l.function);
        let class = (f.info.class, f.info.subclass, f.info.prog_if);
        if virtio_device_type(&f.info) == Some(DeviceType::Block) {
            let Some(device) = claim_virtio_function(bus, f) else {
                continue;
            };
            match virtio_blk::VirtioBlk::new(device.transport, location, virtio_index) {
                Ok(disk) => disks.push(ClaimedDisk::Virtio(alloc::boxed::Box::new(disk))),
                Err(error) => log::error!("storage: virtio-blk {place}: {error}; skipped"),
            }
            virtio_index += 1;
        } else if class == (CLASS_MASS_STORAGE, SUBCLASS_NVM, PROG_IF_NVME) {
            // NVMe 1.4 §2.1.10: the registers are BAR 0 (64-bit memory).
            let Some((address, size)) = memory_bar(bus, f, 0, "nvme") else {
                continue;
            };
            enable_polled(bus, l);
            match nvme::Nvme::new(address, size, location) {
                Ok(disk) => disks.push(ClaimedDisk::Nvme(disk)),
                Err(error) => log::error!("storage: nvme {place}: {error}; skipped"),
            }
        } else if class == (CLASS_MASS_STORAGE, SUBCLASS_SATA, PROG_IF_AHCI) {
            // AHCI 1.3.1 §2.1.11: ABAR is BAR 5.
            let Some((address, size)) = memory_bar(bus, f, 5, "ahci") else {
                continue;
            };
            enable_polled(bus, l);
            let (found, problems) = ahci::claim_controller(address, size, location);
            for problem in problems {
                log::error!(
                    "storage: ahci {place} port {}: {}; skipped",
                    problem.port,
                    problem.error
                );
            }
            disks.extend(found.into_iter().map(ClaimedDisk::Ahci));
        }
    }
    disks
}

/// The memory BAR `index` of `f`, or `None` (logged) if it is not one.
fn memory_bar(bus: &mut Bus, f: &PciFunction, index: u8, what: &str) -> Option<(u64, u64)> {
    let l = f.location;
    match bus.root.bar_info(l, index) {
        Ok(Some(BarInfo::Memory { address, size, .. })) if address != 0 => Some((address, size)),
        other => {
            log::error!(
                "storage: {what} {:02x}:{:02x}.{}: BAR {index} is not a usable memory BAR ({other:?}); skipped",
                l.bus,
                l.device,
                l.function
            );
            None
        }
    }
}

/// Enables memory decoding and bus mastering with INTx disabled: the disk
/// drivers poll (see their module docs), and a disk must not hold a shared
/// level-triggered line asserted.
fn enable_polled(bus: &mut Bus, l: virtio_drivers::transport::pci::bus::DeviceFunction) {
    pci::enable(&mut bus.root, l);
    let (_, command) = bus.root.get_status_command(l);
    bus.root.set_command(
        l,
        command | virtio_drivers::transport::pci::bus::Command::INTERRUPT_DISABLE,
    );
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
