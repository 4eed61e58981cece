//! virtio-net (virtio 1.x §5.1) as a [`Nic`], through `virtio-drivers`.
//!
//! Receive buffers live on the heap (physically contiguous, see `memory`)
//! and are recycled to the device as soon as a frame is copied out. Sending
//! waits for the device to finish the one request (QEMU completes it during
//! the notify), so no transmit buffer outlives the call.

use super::virtio::KernelHal;
use continuum_net::nic::{Nic, NicError, MAX_FRAME_BYTES};
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::pci::PciTransport;

/// Descriptors per virtqueue. 16 receive buffers of 2 KiB absorb a burst of
/// peer traffic between two polls; a power of two as the spec requires.
const QUEUE_SIZE: usize = 16;
/// Receive buffer size: a full frame plus the 12-byte virtio-net header.
const BUFFER_BYTES: usize = 2048;

pub struct VirtioNic {
    device: VirtIONet<KernelHal, PciTransport, QUEUE_SIZE>,
    mac: [u8; 6],
}

impl VirtioNic {
    pub fn new(transport: PciTransport) -> Result<VirtioNic, virtio_drivers::Error> {
        let mut device = VirtIONet::new(transport, BUFFER_BYTES)?;
        device.enable_interrupts();
        let mac = device.mac_address();
        Ok(VirtioNic { device, mac })
    }
}

impl Nic for VirtioNic {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
        loop {
            let rx = self.device.receive().ok()?;
            let frame = rx.packet();
            let len = frame.len();
            let fits = len <= MAX_FRAME_BYTES;
            if fits {
                buf[..len].copy_from_slice(frame);
            }
            if let Err(error) = self.device.recycle_rx_buffer(rx) {
                log::error!("virtio-net: recycling a receive buffer failed: {error}");
            }
            if fits {
                return Some(len);
            }
            // An oversized frame (no jumbo frames negotiated) is dropped.
        }
    }

    fn can_transmit(&mut self) -> bool {
        self.device.can_send()
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(NicError::FrameTooLarge);
        }
        let mut tx = self.device.new_tx_buffer(frame.len());
        tx.packet_mut().copy_from_slice(frame);
        self.device.send(tx).map_err(|error| match error {
            virtio_drivers::Error::QueueFull => NicError::QueueFull,
            _ => NicError::Device,
        })
    }

    fn ack_interrupt(&mut self) {
        self.device.ack_interrupt();
    }
}
