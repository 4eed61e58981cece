//! One NIC trait, and the glue that lets smoltcp drive any NIC through it.
//!
//! Every network driver (the kernel's virtio-net and e1000/e1000e) implements [`Nic`]:
//! take a received frame, queue a frame for sending, acknowledge an
//! interrupt. [`NicDevice`] adapts any `Nic` to `smoltcp::phy::Device`, so a
//! second driver costs one file in the kernel and nothing here.
//!
//! Bounds: one frame is at most [`MAX_FRAME_BYTES`] (Ethernet without FCS
//! at the standard 1500-byte MTU); a received frame is copied once into the
//! token's fixed buffer, never into an allocation sized by the device.

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Largest Ethernet frame we send or accept: 14-byte header + 1500 MTU.
pub const MAX_FRAME_BYTES: usize = 1514;

/// Why a frame could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicError {
    /// The transmit queue is full; try again after the device catches up.
    QueueFull,
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    FrameTooLarge,
    /// The device reported an error.
    Device,
}

impl core::fmt::Display for NicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NicError::QueueFull => "transmit queue full",
            NicError::FrameTooLarge => "frame larger than the MTU",
            NicError::Device => "device error",
        })
    }
}

/// A network interface card, as drivers present it.
pub trait Nic {
    /// The card's Ethernet address.
    fn mac(&self) -> [u8; 6];
    /// Moves the next received frame into `buf` and returns its length, or
    /// `None` if nothing is waiting. Frames longer than `buf` are dropped.
    fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize>;
    /// True if a frame can be queued for sending now.
    fn can_transmit(&mut self) -> bool;
    /// Queues one frame for sending.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError>;
    /// Acknowledges the device's interrupt (required before a level-triggered
    /// line is unmasked again).
    fn ack_interrupt(&mut self);
}

/// Counters kept by the adapter, for the status page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicCounters {
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub tx_errors: u64,
}

/// A [`Nic`] as a smoltcp device.
pub struct NicDevice<N: Nic> {
    pub nic: N,
    pub counters: NicCounters,
}

impl<N: Nic> NicDevice<N> {
    pub fn new(nic: N) -> Self {
        NicDevice {
            nic,
            counters: NicCounters::default(),
        }
    }
}

pub struct RxToken {
    frame: [u8; MAX_FRAME_BYTES],
    len: usize,
}

pub struct TxToken<'a, N: Nic> {
    nic: &'a mut N,
    counters: &'a mut NicCounters,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.frame[..self.len])
    }
}

impl<N: Nic> phy::TxToken for TxToken<'_, N> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = [0u8; MAX_FRAME_BYTES];
        let len = len.min(MAX_FRAME_BYTES);
        let result = f(&mut frame[..len]);
        match self.nic.transmit(&frame[..len]) {
            Ok(()) => self.counters.tx_frames += 1,
            Err(_) => self.counters.tx_errors += 1,
        }
        result
    }
}

impl<N: Nic> phy::Device for NicDevice<N> {
    type RxToken<'a>
        = RxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, N>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_, N>)> {
        let mut frame = [0u8; MAX_FRAME_BYTES];
        let len = self.nic.receive(&mut frame)?;
        self.counters.rx_frames += 1;
        Some((
            RxToken { frame, len },
            TxToken {
                nic: &mut self.nic,
                counters: &mut self.counters,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_, N>> {
        if !self.nic.can_transmit() {
            return None;
        }
        Some(TxToken {
            nic: &mut self.nic,
            counters: &mut self.counters,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME_BYTES;
        caps.max_burst_size = Some(1);
        // No checksum offload is negotiated: smoltcp computes and verifies all.
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = Checksum::Both;
        checksum.udp = Checksum::Both;
        checksum.tcp = Checksum::Both;
        caps.checksum = checksum;
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;
    use smoltcp::phy::{Device, RxToken as _, TxToken as _};

    /// A NIC whose wire is a queue the test reads and writes.
    struct QueueNic {
        inbound: VecDeque<Vec<u8>>,
        outbound: Vec<Vec<u8>>,
        room: usize,
    }

    impl Nic for QueueNic {
        fn mac(&self) -> [u8; 6] {
            [2, 0, 0, 0, 0, 1]
        }
        fn receive(&mut self, buf: &mut [u8; MAX_FRAME_BYTES]) -> Option<usize> {
            let frame = self.inbound.pop_front()?;
            buf[..frame.len()].copy_from_slice(&frame);
            Some(frame.len())
        }
        fn can_transmit(&mut self) -> bool {
            self.outbound.len() < self.room
        }
        fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
            if self.outbound.len() == self.room {
                return Err(NicError::QueueFull);
            }
            self.outbound.push(frame.to_vec());
            Ok(())
        }
        fn ack_interrupt(&mut self) {}
    }

    #[test]
    fn frames_pass_both_ways_and_are_counted() {
        let nic = QueueNic {
            inbound: VecDeque::from([alloc::vec![7u8; 60]]),
            outbound: Vec::new(),
            room: 1,
        };
        let mut device = NicDevice::new(nic);
        let now = Instant::from_millis(0);
        let (rx, _tx) = device.receive(now).expect("one frame waiting");
        assert_eq!(rx.consume(|f| f.to_vec()), alloc::vec![7u8; 60]);
        assert!(device.receive(now).is_none());
        device
            .transmit(now)
            .expect("room for one")
            .consume(42, |f| f.fill(9));
        assert_eq!(device.nic.outbound, [alloc::vec![9u8; 42]]);
        assert!(
            device.transmit(now).is_none(),
            "a full queue offers no token"
        );
        assert_eq!(
            device.counters,
            NicCounters {
                rx_frames: 1,
                tx_frames: 1,
                tx_errors: 0
            }
        );
    }
}
