//! The only part of an Ethernet frame (IEEE 802.3 §3.1.1) the switch reads:
//! destination and source MAC addresses.

/// A 48-bit MAC address.
pub type Mac = [u8; 6];

/// Destination + source MAC; anything shorter is not a frame.
pub const MIN_FRAME_BYTES: usize = 14;
/// Largest datagram accepted from a port. QEMU's dgram netdev sends one frame
/// per datagram without offloads, so real frames are ≤ 1518 bytes; the bound
/// leaves room for jumbo frames and refuses anything absurd.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// Destination MAC of `frame`, if it is long enough to be a frame.
pub fn destination(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6)?.try_into().ok()
}

/// Source MAC of `frame`.
pub fn source(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12)?.try_into().ok()
}

/// Group (broadcast or multicast) addresses have the I/G bit set.
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
