//! PCI configuration space through the legacy mechanism #1 ports
//! 0xCF8/0xCFC (PCI Local Bus spec 3.0 §3.2.2.3.2), which QEMU's `pc` and
//! `q35` and real chipsets all provide, and a recursive bus scan.

use alloc::vec::Vec;
use virtio_drivers::transport::pci::bus::{
    Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, HeaderType, PciRoot,
};
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::instructions::port::Port;

/// Configuration access by I/O ports. The address/data pair is one shared
/// register, so each access runs with interrupts off.
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (df.bus as u32) << 16
        | (df.device as u32) << 11
        | (df.function as u32) << 8
        | (offset as u32 & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        without_interrupts(|| {
            // SAFETY: 0xCF8/0xCFC are the PCI configuration ports; reading a
            // config register has no side effect on memory.
            unsafe {
                Port::<u32>::new(0xcf8).write(address(df, offset));
                Port::<u32>::new(0xcfc).read()
            }
        })
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        without_interrupts(|| {
            // SAFETY: as above; callers only write registers they own
            // (command, BARs) of devices they drive.
            unsafe {
                Port::<u32>::new(0xcf8).write(address(df, offset));
                Port::<u32>::new(0xcfc).write(data);
            }
        })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// A function found on the bus.
#[derive(Clone, Debug)]
pub struct PciFunction {
    pub location: DeviceFunction,
    pub info: DeviceFunctionInfo,
    /// The legacy interrupt line the firmware assigned (an ISA IRQ), if any.
    pub interrupt_line: Option<u8>,
}

/// Bridges deeper than this are not followed (a loop in broken firmware
/// tables must not hang the boot).
const MAX_BRIDGE_DEPTH: usize = 8;

/// Every function on bus 0 and behind its PCI-to-PCI bridges.
pub fn scan(root: &PciRoot<PortCam>) -> Vec<PciFunction> {
    let mut found = Vec::new();
    scan_bus(root, 0, 0, &mut found);
    found
}

fn scan_bus(root: &PciRoot<PortCam>, bus: u8, depth: usize, found: &mut Vec<PciFunction>) {
    for (location, info) in root.enumerate_bus(bus) {
        let interrupt = PortCam.read_word(location, 0x3c);
        let (line, pin) = (interrupt as u8, (interrupt >> 8) as u8);
        let interrupt_line = (pin != 0 && line != 0xff && line < 16).then_some(line);
        if info.header_type == HeaderType::PciPciBridge && depth < MAX_BRIDGE_DEPTH {
            let secondary = (PortCam.read_word(location, 0x18) >> 8) as u8;
            if secondary > bus {
                scan_bus(root, secondary, depth + 1, found);
            }
        }
        found.push(PciFunction {
            location,
            info,
            interrupt_line,
        });
    }
}

/// Lets the device decode its memory BARs and master the bus (DMA).
pub fn enable(root: &mut PciRoot<PortCam>, location: DeviceFunction) {
    let (_, command) = root.get_status_command(location);
    root.set_command(
        location,
        command | Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER,
    );
}
