//! `cargo bench -p continuum-net`: per-message cost of encode+seal and
//! open+decode for both authenticators, plus the client codec.
//!
//! A plain `harness = false` timer: each case runs a fixed number of
//! messages (set `NET_BENCH_SCALE=N` to multiply them) and prints the mean
//! per message. Opening is timed over distinct sealed datagrams so every one
//! passes the replay window, exactly as on the real receive path.

use std::hint::black_box;
use std::time::Instant;

use continuum_net::*;
use ed25519_dalek::{SigningKey, VerifyingKey};

fn key(node: NodeId) -> SigningKey {
    SigningKey::from_bytes(&[node as u8 * 17; 32])
}

fn auth(me: NodeId, scheme: AuthScheme) -> PeerAuth {
    let members: Vec<(NodeId, VerifyingKey)> =
        (1..=3).map(|id| (id, key(id).verifying_key())).collect();
    PeerAuth::new(PeerConfig {
        cluster_id: 7,
        me,
        epoch: 1,
        scheme,
        signing_key: &key(me),
        members: &members,
    })
    .expect("valid membership")
}

fn per_message(label: &str, count: usize, elapsed: std::time::Duration) {
    let ns = elapsed.as_nanos() as f64 / count as f64;
    println!(
        "{label:<44} {:>10.2} µs/msg {:>12.0} msg/s",
        ns / 1000.0,
        1e9 / ns
    );
}

fn bench_peer(scheme: AuthScheme, payload_len: usize, count: usize) {
    let mut sender = auth(1, scheme);
    let mut receiver = auth(2, scheme);
    let payload = vec![0xa5u8; payload_len];
    let body = PeerBody::Node(&payload);

    let mut out = Vec::with_capacity(MAX_DATAGRAM_BYTES);
    let start = Instant::now();
    for _ in 0..count {
        sender.seal(2, black_box(&body), &mut out).expect("seal");
        black_box(&out);
    }
    per_message(
        &format!("seal {scheme:?} payload {payload_len} B"),
        count,
        start.elapsed(),
    );

    let mut sender = auth(1, scheme);
    // The bootstrap exchange: the sender learns the receiver's epoch, so
    // its Raft messages name it (otherwise they are StaleReceiverEpoch).
    let mut out = Vec::new();
    receiver
        .seal(1, &PeerBody::Ping { nonce: 0 }, &mut out)
        .expect("seal");
    sender.open(&out).expect("the bootstrap ping");
    let datagrams: Vec<Vec<u8>> = (0..count)
        .map(|_| {
            let mut out = Vec::new();
            sender.seal(2, &body, &mut out).expect("seal");
            out
        })
        .collect();
    let start = Instant::now();
    for datagram in &datagrams {
        let msg = receiver.open(black_box(datagram)).expect("open");
        black_box(msg);
    }
    per_message(
        &format!("open {scheme:?} payload {payload_len} B"),
        count,
        start.elapsed(),
    );
    assert_eq!(receiver.counters().accepted, count as u64);
}

fn bench_client(count: usize) {
    let request = ClientRequest {
        cluster_id: 7,
        client_id: 99,
        request_id: 1,
        op: RequestOp::Submit {
            entry: vec![1u8; 200],
        },
    };
    let start = Instant::now();
    for _ in 0..count {
        black_box(black_box(&request).encode().expect("encode"));
    }
    per_message(
        "encode client request (200 B command)",
        count,
        start.elapsed(),
    );
    let bytes = request.encode().expect("encode");
    let start = Instant::now();
    for _ in 0..count {
        black_box(ClientRequest::decode(black_box(&bytes)).expect("decode"));
    }
    per_message(
        "decode client request (200 B command)",
        count,
        start.elapsed(),
    );
}

/// One-time cost at boot: the X25519 + KDF derivation of one peer's keys.
fn bench_key_derivation(count: usize) {
    let (me, peer) = (key(1), key(2).verifying_key());
    let start = Instant::now();
    for _ in 0..count {
        black_box(derive_link_keys(7, 1, black_box(&me), 2, &peer).expect("derive"));
    }
    per_message(
        "derive link keys (once per peer at boot)",
        count,
        start.elapsed(),
    );
}

fn main() {
    let scale: usize = std::env::var("NET_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // cargo passes --bench; ignore other harness arguments.
    for payload_len in [64, 1024, MAX_PEER_PAYLOAD_BYTES] {
        bench_peer(AuthScheme::HmacSha256, payload_len, 20_000 * scale);
        bench_peer(AuthScheme::Ed25519, payload_len, 1_000 * scale);
    }
    bench_client(100_000 * scale);
    bench_key_derivation(500 * scale);
}
