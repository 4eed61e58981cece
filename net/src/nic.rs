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
//!
//! [`arp_request`] builds the frame a caller sends itself to resolve one
//! neighbour. smoltcp 0.14 rate-limits address resolution for the whole
//! interface (one request per second, `neighbor::Cache::SILENT_TIME`), not
//! per address: while one neighbour never answers (a dead or partitioned
//! peer), its socket's request goes out every second and every other
//! unresolved neighbour is starved for good (smoltcp issue 1101; the tests
//! below show it). smoltcp fills its cache from any ARP packet aimed at the
//! interface's address, so a reply to a request sent this way resolves the
//! neighbour for smoltcp too.

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

/// Bytes of an Ethernet frame carrying an IPv4-over-Ethernet ARP packet.
pub const ARP_FRAME_BYTES: usize = 14 + 28;

/// A broadcast ARP request (RFC 826) from `mac`/`ip` asking for `target`'s
/// hardware address.
pub fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> [u8; ARP_FRAME_BYTES] {
    use smoltcp::wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
        Ipv4Address,
    };
    let mut bytes = [0u8; ARP_FRAME_BYTES];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    frame.set_dst_addr(EthernetAddress::BROADCAST);
    frame.set_src_addr(EthernetAddress(mac));
    frame.set_ethertype(EthernetProtocol::Arp);
    ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: Ipv4Address::from(ip),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: Ipv4Address::from(target),
    }
    .emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    bytes
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
    /// Frames received.
    pub rx_frames: u64,
    /// Frames handed to the NIC.
    pub tx_frames: u64,
    /// Frames the NIC refused.
    pub tx_errors: u64,
}

/// A [`Nic`] as a smoltcp device.
pub struct NicDevice<N: Nic> {
    /// The driver.
    pub nic: N,
    /// What passed through it.
    pub counters: NicCounters,
}

impl<N: Nic> NicDevice<N> {
    /// Wraps `nic` with zeroed counters.
    pub fn new(nic: N) -> Self {
        NicDevice {
            nic,
            counters: NicCounters::default(),
        }
    }
}

/// smoltcp's receive token: one frame already copied out of the NIC.
pub struct RxToken {
    frame: [u8; MAX_FRAME_BYTES],
    len: usize,
}

/// smoltcp's transmit token: sends one frame through the NIC.
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

    /// One host on a simulated LAN: our interface (10.9.0.1) with a UDP
    /// socket per peer, as the kernel's network task has them.
    struct Lan {
        device: NicDevice<QueueNic>,
        iface: smoltcp::iface::Interface,
        sockets: smoltcp::iface::SocketSet<'static>,
        handles: Vec<smoltcp::iface::SocketHandle>,
    }

    const US: [u8; 4] = [10, 9, 0, 1];
    const US_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    /// Peer .2 never answers (down or partitioned); peer .3 answers.
    const DEAD: [u8; 4] = [10, 9, 0, 2];
    const ALIVE: [u8; 4] = [10, 9, 0, 3];
    const ALIVE_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];

    impl Lan {
        fn new() -> Lan {
            use smoltcp::iface::{Config, Interface, SocketSet};
            use smoltcp::socket::udp;
            use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
            let mut device = NicDevice::new(QueueNic {
                inbound: VecDeque::new(),
                outbound: Vec::new(),
                room: 64,
            });
            let config = Config::new(EthernetAddress(US_MAC).into());
            let mut iface = Interface::new(config, &mut device, Instant::from_millis(0));
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(
                    IpAddress::from(smoltcp::wire::Ipv4Address::from(US)),
                    24,
                ));
            });
            let mut sockets = SocketSet::new(Vec::new());
            let mut handles = Vec::new();
            for (port, peer) in [(49_154u16, DEAD), (49_155, ALIVE)] {
                let buffer = || {
                    udp::PacketBuffer::new(
                        alloc::vec![udp::PacketMetadata::EMPTY; 8],
                        alloc::vec![0; 4096],
                    )
                };
                let mut socket = udp::Socket::new(buffer(), buffer());
                socket.bind(port).unwrap();
                let to = (smoltcp::wire::Ipv4Address::from(peer), 7000);
                socket.send_slice(b"ping", to).unwrap();
                handles.push(sockets.add(socket));
            }
            Lan {
                device,
                iface,
                sockets,
                handles,
            }
        }

        /// Runs `seconds` of 100 ms polls. The live peer answers every ARP
        /// request for its address; with `own_requests` the caller also sends
        /// its own request for each peer every second. Returns whether the
        /// datagram to the live peer left.
        fn run(&mut self, seconds: u64, own_requests: bool) -> bool {
            use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame};
            for step in 0..seconds * 10 {
                let now = Instant::from_millis(step as i64 * 100);
                if own_requests && step % 10 == 0 {
                    for peer in [DEAD, ALIVE] {
                        let frame = arp_request(US_MAC, US, peer);
                        self.device.nic.transmit(&frame).unwrap();
                    }
                }
                self.iface.poll(now, &mut self.device, &mut self.sockets);
                for frame in core::mem::take(&mut self.device.nic.outbound) {
                    let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
                    if eth.ethertype() == smoltcp::wire::EthernetProtocol::Ipv4 {
                        if eth.dst_addr() == EthernetAddress(ALIVE_MAC) {
                            return true;
                        }
                        continue;
                    }
                    let Ok(ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Request,
                        target_protocol_addr,
                        ..
                    }) = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap())
                    else {
                        continue;
                    };
                    if target_protocol_addr.octets() == ALIVE {
                        self.device.nic.inbound.push_back(arp_reply_to_us());
                    }
                }
            }
            false
        }
    }

    fn arp_reply_to_us() -> Vec<u8> {
        use smoltcp::wire::{
            ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
            Ipv4Address,
        };
        let mut bytes = alloc::vec![0u8; ARP_FRAME_BYTES];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        frame.set_dst_addr(EthernetAddress(US_MAC));
        frame.set_src_addr(EthernetAddress(ALIVE_MAC));
        frame.set_ethertype(EthernetProtocol::Arp);
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(ALIVE_MAC),
            source_protocol_addr: Ipv4Address::from(ALIVE),
            target_hardware_addr: EthernetAddress(US_MAC),
            target_protocol_addr: Ipv4Address::from(US),
        }
        .emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
        bytes
    }

    #[test]
    fn smoltcp_starves_a_live_neighbour_behind_a_dead_one() {
        // Why the kernel sends its own requests: if this starts passing
        // (smoltcp rate-limits per address), the workaround can go.
        let mut lan = Lan::new();
        assert!(
            !lan.run(30, false),
            "smoltcp resolved the live peer by itself"
        );
        assert_eq!(lan.handles.len(), 2);
    }

    #[test]
    fn own_arp_requests_resolve_the_live_neighbour() {
        let mut lan = Lan::new();
        assert!(lan.run(3, true), "the live peer was never sent to");
    }

    #[test]
    fn arp_request_parses_back() {
        use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame};
        let bytes = arp_request(US_MAC, US, ALIVE);
        let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(frame.src_addr(), EthernetAddress(US_MAC));
        let repr = ArpRepr::parse(&ArpPacket::new_checked(frame.payload()).unwrap()).unwrap();
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } = repr
        else {
            panic!("{repr:?}")
        };
        assert_eq!(operation, ArpOperation::Request);
        assert_eq!(source_hardware_addr, EthernetAddress(US_MAC));
        assert_eq!(source_protocol_addr.octets(), US);
        assert_eq!(target_protocol_addr.octets(), ALIVE);
    }
}
