//! Looking at a running cluster from outside: fields of a node's
//! `/status`, addresses as text, and hand-made frames to inject into the
//! fabric as if a member sent them.

use crate::NodeId;

pub fn ip_text(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether node status `s` reports peer `peer` reachable.
pub fn peer_reachable(s: &serde_json::Value, peer: NodeId) -> bool {
    peer_field(s, peer, "reachable").and_then(|v| v.as_bool()) == Some(true)
}

pub fn peer_field<'a>(
    s: &'a serde_json::Value,
    peer: NodeId,
    field: &str,
) -> Option<&'a serde_json::Value> {
    s["peers"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == peer)?
        .get(field)
}

/// An Ethernet + IPv4 + UDP frame carrying `payload` (for injection).
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    port: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(42 + payload.len());
    frame.extend_from_slice(&dst_mac);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = ip
        .chunks(2)
        .fold(0u32, |s, w| s + u16::from_be_bytes([w[0], w[1]]) as u32);
    let folded = !(((sum & 0xffff) + (sum >> 16)) as u16);
    ip[10..12].copy_from_slice(&folded.to_be_bytes());
    frame.extend_from_slice(&ip);
    let udp_len = (8 + payload.len()) as u16;
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // no checksum (allowed for UDP over IPv4, RFC 768)
    frame.extend_from_slice(payload);
    frame
}
