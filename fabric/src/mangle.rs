//! Rewriting a byte of a frame's UDP payload (the `corrupt` fault) so that
//! the frame still passes the receiver's IPv4 and UDP checks.
//!
//! A flipped bit anywhere in a frame is caught by the guest's UDP checksum
//! (RFC 768) and never reaches the node's own message authentication. To test
//! that layer, the fabric rewrites one payload byte and recomputes the UDP
//! checksum over the IPv4 pseudo-header (RFC 768, RFC 1071), exactly as a
//! peer that corrupts its messages after sealing them would send. Only
//! untagged Ethernet II frames carrying IPv4 (EtherType 0x0800), protocol 17,
//! unfragmented, with a non-empty payload qualify.

/// Where the UDP payload of `frame` lies, if it is an IPv4/UDP frame the
/// fabric can corrupt: (start of the UDP header, start of the payload, end).
pub fn udp_payload(frame: &[u8]) -> Option<(usize, usize, usize)> {
    const ETH: usize = 14;
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let version_ihl = *frame.get(ETH)?;
    if version_ihl >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if ihl < 20 || *frame.get(ETH + 9)? != 17 {
        return None;
    }
    // More-fragments flag or a fragment offset: not a whole datagram.
    let flags_offset = u16::from_be_bytes([*frame.get(ETH + 6)?, *frame.get(ETH + 7)?]);
    if flags_offset & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([
        *frame.get(ETH + 2)?,
        *frame.get(ETH + 3)?,
    ]));
    let udp = ETH + ihl;
    let udp_len = usize::from(u16::from_be_bytes([
        *frame.get(udp + 4)?,
        *frame.get(udp + 5)?,
    ]));
    let end = udp.checked_add(udp_len)?;
    if udp_len <= 8 || ETH + total < end || end > frame.len() {
        return None;
    }
    Some((udp, udp + 8, end))
}

/// The UDP checksum of the datagram at `frame[udp..end]` (checksum field
/// taken as zero), with the IPv4 pseudo-header. Never 0 (0 means "none").
pub fn udp_checksum(frame: &[u8], udp: usize, end: usize) -> u16 {
    const ETH: usize = 14;
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&frame[ETH + 12..ETH + 20]); // source and destination address
    add(&[0, 17]);
    add(&((end - udp) as u16).to_be_bytes());
    add(&frame[udp..udp + 6]);
    add(&frame[udp + 8..end]);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    match !(sum as u16) {
        0 => 0xffff,
        checksum => checksum,
    }
}

/// XORs payload byte `position % payload length` with `mask` (non-zero) and
/// fixes the UDP checksum (left 0 if the sender sent none). Returns false,
/// leaving the frame unchanged, if it is not a corruptible IPv4/UDP frame.
pub fn corrupt_udp_payload(frame: &mut [u8], position: u64, mask: u8) -> bool {
    let Some((udp, payload, end)) = udp_payload(frame) else {
        return false;
    };
    if mask == 0 {
        return false;
    }
    let index = payload + (position % (end - payload) as u64) as usize;
    frame[index] ^= mask;
    if frame[udp + 6..udp + 8] != [0, 0] {
        let checksum = udp_checksum(frame, udp, end);
        frame[udp + 6..udp + 8].copy_from_slice(&checksum.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame with a correct checksum.
    pub(crate) fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00];
        let total = 20 + 8 + payload.len();
        f.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0]);
        f.extend_from_slice(&[64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let udp_len = 8 + payload.len();
        f.extend_from_slice(&[
            0x1f,
            0x90,
            0x1f,
            0x90,
            (udp_len >> 8) as u8,
            udp_len as u8,
            0,
            0,
        ]);
        f.extend_from_slice(payload);
        let end = f.len();
        let checksum = udp_checksum(&f, 34, end);
        f[40..42].copy_from_slice(&checksum.to_be_bytes());
        f
    }

    /// RFC 1071: a datagram with a correct checksum sums to 0xffff.
    fn verifies(frame: &[u8]) -> bool {
        let (udp, _, end) = udp_payload(frame).unwrap();
        let stored = u16::from_be_bytes([frame[udp + 6], frame[udp + 7]]);
        stored == udp_checksum(frame, udp, end)
    }

    #[test]
    fn corruption_changes_one_payload_byte_and_keeps_the_checksum_valid() {
        let original = udp_frame(b"sealed peer message, tag at the end");
        assert!(verifies(&original));
        let mut frame = original.clone();
        assert!(corrupt_udp_payload(&mut frame, 5, 0x10));
        let changed: Vec<usize> = (0..frame.len())
            .filter(|&i| frame[i] != original[i])
            .collect();
        // The payload byte and the checksum field, nothing else.
        assert!(changed.contains(&(42 + 5)), "{changed:?}");
        assert!(changed.iter().all(|&i| i == 47 || i == 40 || i == 41));
        assert!(verifies(&frame));
        // A naive flip without the fix-up would fail the check.
        let mut naive = original.clone();
        naive[47] ^= 0x10;
        assert!(!verifies(&naive));
    }

    #[test]
    fn non_udp_frames_are_left_alone() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 1, 0x08, 0x06]);
        arp.resize(60, 0);
        let copy = arp.clone();
        assert!(!corrupt_udp_payload(&mut arp, 3, 0xff));
        assert_eq!(arp, copy);
        // Truncated IPv4/UDP: the lengths do not fit the frame.
        let mut short = udp_frame(b"abcdef");
        short.truncate(44);
        assert!(!corrupt_udp_payload(&mut short, 0, 1));
        // Arbitrary bytes never panic.
        for len in 0..80 {
            let mut junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            if junk.len() > 13 {
                junk[12] = 0x08;
                junk[13] = 0x00;
            }
            let _ = corrupt_udp_payload(&mut junk, 7, 0x55);
        }
    }

    #[test]
    fn a_sender_without_checksum_keeps_none() {
        let mut frame = udp_frame(b"no checksum");
        frame[40] = 0;
        frame[41] = 0;
        assert!(corrupt_udp_payload(&mut frame, 0, 1));
        assert_eq!(&frame[40..42], &[0, 0]);
    }
}
