//! One network port: a claimed NIC behind smoltcp's `Interface`, its
//! socket set and its interrupt.
//!
//! Owns the NIC's bring-up on the console (`net: <role> on ...`), the
//! interface address and default route, and smoltcp's clock (the kernel's
//! monotonic time). It knows nothing about what the sockets carry: the
//! peer, client and status servers add their sockets and read them.

use super::{fmt_cidr, fmt_mac};
use crate::arch::x86_64::device_irq::DeviceIrq;
use crate::drivers::nic::{AnyNic, ClaimedNic};
use crate::time;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use continuum_config::Ipv4Cidr;
use continuum_net::nic::{Nic, NicDevice};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address};

/// UDP socket buffers: datagrams in flight per direction, and their bytes.
const UDP_PACKETS: usize = 64;
const UDP_BYTES: usize = 64 * 1024;

pub(super) struct Port {
    pub(super) device: NicDevice<AnyNic>,
    pub(super) iface: Interface,
    pub(super) sockets: SocketSet<'static>,
    pub(super) irq: Option<DeviceIrq>,
}

/// smoltcp's notion of now: the kernel's monotonic clock.
pub(super) fn now() -> Instant {
    Instant::from_micros((time::monotonic_ns() / 1_000) as i64)
}

pub(super) fn ipv4(a: [u8; 4]) -> Ipv4Address {
    Ipv4Address::new(a[0], a[1], a[2], a[3])
}

/// A UDP socket with [`UDP_PACKETS`] datagrams / [`UDP_BYTES`] bytes per
/// direction, not yet bound.
pub(super) fn udp_socket() -> udp::Socket<'static> {
    let rx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
        vec![0; UDP_BYTES],
    );
    let tx = udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
        vec![0; UDP_BYTES],
    );
    udp::Socket::new(rx, tx)
}

impl Port {
    /// Starts the next claimed NIC as the `role` port with address `cidr`
    /// (and a default route through `gateway`), and says so on the
    /// console. `None` when there is no NIC left or it failed to start.
    pub(super) fn claim(
        nics: &mut impl Iterator<Item = ClaimedNic>,
        role: &str,
        cidr: Ipv4Cidr,
        gateway: Option<[u8; 4]>,
    ) -> Option<(Port, [u8; 6])> {
        let device = nics.next()?;
        let (b, d, f) = device.location;
        let model = device.model();
        match device.start() {
            Ok((nic, irq)) => {
                let mac = nic.mac();
                log::info!(
                    "net: {role} on {b:02x}:{d:02x}.{f} ({model}), mac {}, {}, {}",
                    fmt_mac(mac),
                    fmt_cidr(cidr),
                    irq.as_ref()
                        .map_or(String::from("polled"), |i| alloc::format!(
                            "irq gsi {}",
                            i.gsi()
                        ))
                );
                Some((Port::new(nic, irq, cidr, gateway), mac))
            }
            Err(error) => {
                log::error!("net: {role} NIC {b:02x}:{d:02x}.{f} failed to start: {error}");
                None
            }
        }
    }

    fn new(nic: AnyNic, irq: Option<DeviceIrq>, cidr: Ipv4Cidr, gateway: Option<[u8; 4]>) -> Port {
        let mut device = NicDevice::new(nic);
        let mut config =
            IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(device.nic.mac())));
        config.random_seed = time::rdtsc();
        let mut iface = Interface::new(config, &mut device, now());
        iface.update_ip_addrs(|addrs| {
            let address = IpAddress::Ipv4(ipv4(cidr.address));
            // One address per interface: the push cannot overflow.
            let _ = addrs.push(IpCidr::new(address, cidr.prefix_len));
        });
        if let Some(gateway) = gateway {
            let _ = iface.routes_mut().add_default_ipv4_route(ipv4(gateway));
        }
        Port {
            device,
            iface,
            sockets: SocketSet::new(Vec::new()),
            irq,
        }
    }

    /// Acknowledges the NIC's interrupt (clearing a level-triggered line)
    /// and lets smoltcp move frames both ways.
    pub(super) fn ack_and_poll(&mut self) {
        self.device.nic.ack_interrupt();
        self.poll();
    }

    pub(super) fn poll(&mut self) {
        self.iface.poll(now(), &mut self.device, &mut self.sockets);
    }
}
