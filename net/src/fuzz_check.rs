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
use crate::http::{self, Head, MAX_HEAD_BYTES};
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

/// Node 2 of a fixed 3-node cluster, once per authenticator scheme: the
/// receiver [`peer_open_on`] feeds. Deriving its link keys costs Ed25519
/// work, so a fuzz target builds it once and reuses it: opening refused
/// bytes changes nothing but the reject counters.
pub struct PeerOpenFixture {
    receivers: alloc::vec::Vec<PeerAuth>,
}

impl PeerOpenFixture {
    /// Three members' keys and receivers, built once.
    pub fn new() -> PeerOpenFixture {
        let keys = [1u8, 2, 3].map(|seed| SigningKey::from_bytes(&[seed; 32]));
        let members = [
            (1, keys[0].verifying_key()),
            (2, keys[1].verifying_key()),
            (3, keys[2].verifying_key()),
        ];
        let receivers = [AuthScheme::HmacSha256, AuthScheme::Ed25519]
            .into_iter()
            .map(|scheme| {
                PeerAuth::new(PeerConfig {
                    cluster_id: 7,
                    me: 2,
                    epoch: 1,
                    scheme,
                    signing_key: &keys[1],
                    members: &members,
                })
                .expect("fixed membership is valid")
            })
            .collect();
        PeerOpenFixture { receivers }
    }
}

impl Default for PeerOpenFixture {
    fn default() -> PeerOpenFixture {
        PeerOpenFixture::new()
    }
}

/// The full receive path of node 2 in a fixed 3-node cluster: arbitrary bytes
/// must be refused without panicking (accepting would mean a forgery).
pub fn peer_open_on(fixture: &mut PeerOpenFixture, bytes: &[u8]) {
    for auth in &mut fixture.receivers {
        assert!(auth.open(bytes).is_err(), "arbitrary bytes authenticated");
        assert_eq!(auth.counters().accepted, 0);
    }
}

/// [`peer_open_on`] with a fresh fixture.
pub fn peer_open(bytes: &[u8]) {
    peer_open_on(&mut PeerOpenFixture::new(), bytes);
}

/// The status server's request-head parser: never panics, and the decision
/// does not depend on how the bytes were split into TCP segments — every
/// prefix is `Incomplete` or already the final answer. A complete head ends
/// in CRLF CRLF within [`MAX_HEAD_BYTES`] and routes without panicking.
pub fn http_head(bytes: &[u8]) {
    let full = http::parse_head(bytes);
    if let Head::Complete(head) = full {
        assert!(head.len <= bytes.len() && head.len <= MAX_HEAD_BYTES);
        assert!(bytes[..head.len].ends_with(b"\r\n\r\n"));
        let _ = http::route(&head);
    }
    for end in 0..bytes.len().min(MAX_HEAD_BYTES + 1) {
        match http::parse_head(&bytes[..end]) {
            Head::Incomplete => {}
            early => assert_eq!(early, full, "a prefix of {end} bytes decided otherwise"),
        }
    }
}
