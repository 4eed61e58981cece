//! Every network card the kernel drives, behind one type.
//!
//! The network roles (replication LAN, client network) take NICs in PCI
//! order, whatever their make: a QEMU guest has virtio-net, a real PC an
//! Intel e1000-class card, and a machine may mix them. [`super::claim_nics`]
//! finds them; [`ClaimedNic::start`] brings one up as an [`AnyNic`], which
//! is a [`Nic`] like each driver. An enum rather than a trait object: the
//! set of drivers is closed, and the hot path stays free of indirection.

use super::e1000::{self, E1000};
use super::virtio_net::VirtioNic;
use super::VirtioDevice;
use crate::arch::x86_64::device_irq::DeviceIrq;
use alloc::boxed::Box;
use continuum_net::nic::{Nic, NicError, MAX_FRAME_BYTES};
use core::fmt;
use virtio_drivers::transport::pci::PciTransport;

/// A running NIC of any supported kind.
pub enum AnyNic {
    /// Boxed: `VirtIONet` keeps its queue state inline (~2 KiB).
    Virtio(Box<VirtioNic>),
    E1000(E1000),
}

impl Nic for AnyNic {
    fn mac(&self) -> [u8; 6] {
        match self {
            AnyNic::Virtio(nic) => nic.mac(),
            AnyNic::E1000(nic) => nic.mac(),
        }
    }

    fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
        match self {
            AnyNic::Virtio(nic) => nic.receive(buf),
            AnyNic::E1000(nic) => nic.receive(buf),
        }
    }

    fn can_transmit(&mut self) -> bool {
        match self {
            AnyNic::Virtio(nic) => nic.can_transmit(),
            AnyNic::E1000(nic) => nic.can_transmit(),
        }
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        match self {
            AnyNic::Virtio(nic) => nic.transmit(frame),
            AnyNic::E1000(nic) => nic.transmit(frame),
        }
    }

    fn ack_interrupt(&mut self) {
        match self {
            AnyNic::Virtio(nic) => nic.ack_interrupt(),
            AnyNic::E1000(nic) => nic.ack_interrupt(),
        }
    }
}

enum Hardware {
    Virtio(PciTransport),
    E1000 {
        model: e1000::Model,
        bar_address: u64,
        bar_size: u64,
    },
}

/// A NIC found on the bus and enabled (memory decoding, bus mastering,
/// interrupt routed), not yet started.
pub struct ClaimedNic {
    /// Where it sits (bus, device, function), for log lines.
    pub location: (u8, u8, u8),
    hardware: Hardware,
    irq: Option<DeviceIrq>,
}

/// Why a claimed NIC did not start.
#[derive(Debug)]
pub enum StartError {
    Virtio(virtio_drivers::Error),
    E1000(e1000::InitError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Virtio(error) => write!(f, "virtio-net: {error}"),
            StartError::E1000(error) => write!(f, "e1000: {error}"),
        }
    }
}

impl ClaimedNic {
    pub(super) fn virtio(device: VirtioDevice) -> ClaimedNic {
        ClaimedNic {
            location: device.location,
            hardware: Hardware::Virtio(device.transport),
            irq: device.irq,
        }
    }

    pub(super) fn e1000(
        model: e1000::Model,
        bar_address: u64,
        bar_size: u64,
        irq: Option<DeviceIrq>,
        location: (u8, u8, u8),
    ) -> ClaimedNic {
        ClaimedNic {
            location,
            hardware: Hardware::E1000 {
                model,
                bar_address,
                bar_size,
            },
            irq,
        }
    }

    /// What kind of card this is, for log lines.
    pub fn model(&self) -> &'static str {
        match &self.hardware {
            Hardware::Virtio(_) => "virtio-net",
            Hardware::E1000 { model, .. } => model.name(),
        }
    }

    /// Resets and starts the card; returns it with its interrupt line
    /// (`None`: not routable, the caller polls).
    pub fn start(self) -> Result<(AnyNic, Option<DeviceIrq>), StartError> {
        let nic = match self.hardware {
            Hardware::Virtio(transport) => AnyNic::Virtio(Box::new(
                VirtioNic::new(transport).map_err(StartError::Virtio)?,
            )),
            Hardware::E1000 {
                model,
                bar_address,
                bar_size,
            } => {
                AnyNic::E1000(E1000::new(model, bar_address, bar_size).map_err(StartError::E1000)?)
            }
        };
        Ok((nic, self.irq))
    }
}
