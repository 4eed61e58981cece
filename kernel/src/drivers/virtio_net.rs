//! virtio-net (virtio 1.x §5.1) as a [`Nic`], through `virtio-drivers`'
//! raw (non-blocking) device.
//!
//! Nothing here waits for the device. Receive buffers are posted once and
//! re-posted as soon as a frame is copied out. Transmit uses a ring of
//! [`TX_SLOTS`] buffers: a frame is copied into a free slot and handed to
//! the device; completed slots are reclaimed on the next transmit or
//! `can_transmit`. When every slot is in flight the NIC reports
//! `QueueFull` and smoltcp keeps the packet in its socket buffer.
//!
//! Why not the blocking `VirtIONet::send`: it spins until the device has
//! consumed the frame. When QEMU's backend cannot send (the fabric's socket
//! is full), that spin freezes the whole single-CPU guest — including the
//! receive path that would let the backend drain. A frozen node is worse
//! than a dropped frame.

use super::virtio::KernelHal;
use alloc::boxed::Box;
use alloc::vec::Vec;
use continuum_net::nic::{Nic, NicError, MAX_FRAME_BYTES};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::pci::PciTransport;

/// Descriptors per virtqueue (a power of two, as the spec requires). Every
/// buffer is one descriptor (header and frame together), so 16 receive
/// buffers absorb a burst of peer traffic between two polls and 16 frames
/// can be in flight on transmit.
const QUEUE_SIZE: usize = 16;
/// Transmit buffers; one per transmit descriptor.
const TX_SLOTS: usize = QUEUE_SIZE;
/// Buffer size: a full frame plus the 12-byte virtio-net header.
const BUFFER_BYTES: usize = 2048;

type Buffer = Box<[u8; BUFFER_BYTES]>;

pub struct VirtioNic {
    device: VirtIONetRaw<KernelHal, PciTransport, QUEUE_SIZE>,
    mac: [u8; 6],
    /// Receive buffers and the device token each is posted under.
    rx: Vec<(Buffer, Option<u16>)>,
    /// Transmit buffers: (buffer, in-flight token and length).
    tx: Vec<(Buffer, Option<(u16, usize)>)>,
}

impl VirtioNic {
    pub fn new(transport: PciTransport) -> Result<VirtioNic, virtio_drivers::Error> {
        let mut device = VirtIONetRaw::new(transport)?;
        let mac = device.mac_address();
        let mut rx: Vec<(Buffer, Option<u16>)> = (0..QUEUE_SIZE)
            .map(|_| (Box::new([0u8; BUFFER_BYTES]), None))
            .collect();
        for (buffer, token) in rx.iter_mut() {
            // SAFETY: the buffer is heap memory owned by `self.rx` for as
            // long as the device may write it; it is only read again after
            // `receive_complete` returned it.
            *token = Some(unsafe { device.receive_begin(&mut buffer[..])? });
        }
        let tx = (0..TX_SLOTS)
            .map(|_| (Box::new([0u8; BUFFER_BYTES]), None))
            .collect();
        device.enable_interrupts();
        Ok(VirtioNic {
            device,
            mac,
            rx,
            tx,
        })
    }

    /// Returns transmit slots whose frames the device has consumed.
    fn reclaim(&mut self) {
        while let Some(done) = self.device.poll_transmit() {
            let Some((buffer, in_flight)) = self
                .tx
                .iter_mut()
                .find(|(_, in_flight)| in_flight.is_some_and(|(token, _)| token == done))
            else {
                // A token we did not issue: the device is broken. Stop
                // reclaiming rather than loop on it.
                log::error!("virtio-net: device completed unknown transmit token {done}");
                return;
            };
            let (token, len) = in_flight.take().expect("matched an in-flight slot");
            // SAFETY: same buffer and length as given to `transmit_begin`.
            if let Err(error) = unsafe { self.device.transmit_complete(token, &buffer[..len]) } {
                log::error!("virtio-net: completing a transmit failed: {error}");
            }
        }
    }
}

impl Nic for VirtioNic {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
        loop {
            let done = self.device.poll_receive()?;
            let Some((buffer, token)) = self.rx.iter_mut().find(|(_, token)| *token == Some(done))
            else {
                log::error!("virtio-net: device completed unknown receive token {done}");
                return None;
            };
            *token = None;
            // SAFETY: `buffer` is the one posted under `done`.
            let received = unsafe { self.device.receive_complete(done, &mut buffer[..]) };
            let copied = match received {
                Ok((header, len)) if len <= MAX_FRAME_BYTES => {
                    buf[..len].copy_from_slice(&buffer[header..header + len]);
                    Some(len)
                }
                // An oversized frame (no jumbo frames negotiated) is dropped.
                Ok(_) => None,
                Err(error) => {
                    log::error!("virtio-net: completing a receive failed: {error}");
                    None
                }
            };
            // SAFETY: as in `new`: the buffer stays owned by `self.rx`.
            match unsafe { self.device.receive_begin(&mut buffer[..]) } {
                Ok(again) => *token = Some(again),
                Err(error) => {
                    log::error!("virtio-net: re-posting a receive buffer failed: {error}")
                }
            }
            if copied.is_some() {
                return copied;
            }
        }
    }

    fn can_transmit(&mut self) -> bool {
        self.reclaim();
        self.tx.iter().any(|(_, in_flight)| in_flight.is_none())
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(NicError::FrameTooLarge);
        }
        self.reclaim();
        let Some((buffer, in_flight)) = self.tx.iter_mut().find(|(_, f)| f.is_none()) else {
            return Err(NicError::QueueFull);
        };
        let header = self
            .device
            .fill_buffer_header(&mut buffer[..])
            .map_err(|_| NicError::Device)?;
        let len = header + frame.len();
        buffer[header..len].copy_from_slice(frame);
        // SAFETY: the slot is not touched again until `reclaim` sees its
        // token completed and calls `transmit_complete` with the same slice.
        match unsafe { self.device.transmit_begin(&buffer[..len]) } {
            Ok(token) => {
                *in_flight = Some((token, len));
                Ok(())
            }
            Err(virtio_drivers::Error::QueueFull) => Err(NicError::QueueFull),
            Err(_) => Err(NicError::Device),
        }
    }

    fn ack_interrupt(&mut self) {
        self.device.ack_interrupt();
    }
}
