//! Properties every decoder must keep, as functions that panic on violation.
//!
//! The cargo-fuzz targets in `net/fuzz/` and the property tests in
//! `net/tests/` call the same functions, so `cargo test` covers what the
//! fuzzer checks. Each one feeds arbitrary bytes to a decoder and, when the
//! decoder accepts, asserts the "one valid encoding" rule: re-encoding the
//! decoded value reproduces the input exactly.

use ed25519_dalek::SigningKey;

use crate::client::{ClientReply, ClientRequest};
use crate::header::Header;
use crate::peer::{AuthScheme, PeerFrame};
use crate::peer_auth::{PeerAuth, PeerConfig};

/// Common header: never panics; an accepted header re-encodes to its prefix.
pub fn header(bytes: &[u8]) {
    if let Ok(header) = Header::decode(bytes) {
        let mut out = alloc::vec::Vec::new();
        header.encode_into(&mut out);
        assert_eq!(out.as_slice(), &bytes[..out.len()]);
    }
}

/// Peer frame structure: an accepted frame re-encodes to the same bytes.
pub fn peer_frame(bytes: &[u8]) {
    if let Ok(frame) = PeerFrame::decode(bytes) {
        let again = frame.encode().expect("a decoded frame re-encodes");
        assert_eq!(again.as_slice(), bytes);
    }
}

/// Client request: an accepted request re-encodes to the same bytes.
pub fn client_request(bytes: &[u8]) {
    if let Ok(request) = ClientRequest::decode(bytes) {
        let again = request.encode().expect("a decoded request re-encodes");
        assert_eq!(again.as_slice(), bytes);
    }
}

/// Client reply: an accepted reply re-encodes to the same bytes.
pub fn client_reply(bytes: &[u8]) {
    if let Ok(reply) = ClientReply::decode(bytes) {
        let again = reply.encode().expect("a decoded reply re-encodes");
        assert_eq!(again.as_slice(), bytes);
    }
}

/// The full receive path of node 2 in a fixed 3-node cluster: arbitrary bytes
/// must be refused without panicking (accepting would mean a forgery).
pub fn peer_open(bytes: &[u8]) {
    for scheme in [AuthScheme::HmacSha256, AuthScheme::Ed25519] {
        let keys = [1u8, 2, 3].map(|seed| SigningKey::from_bytes(&[seed; 32]));
        let members = [
            (1, keys[0].verifying_key()),
            (2, keys[1].verifying_key()),
            (3, keys[2].verifying_key()),
        ];
        let mut auth = PeerAuth::new(PeerConfig {
            cluster_id: 7,
            me: 2,
            epoch: 1,
            scheme,
            signing_key: &keys[1],
            members: &members,
        })
        .expect("fixed membership is valid");
        assert!(auth.open(bytes).is_err(), "arbitrary bytes authenticated");
        assert_eq!(auth.counters().accepted, 0);
    }
}
