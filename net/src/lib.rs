//! Continuum's wire format and peer authentication: everything between a UDP
//! datagram's payload and a typed, authenticated message.
//!
//! The crate is `no_std` + `alloc` and pure: no sockets, no clock, no global
//! state. The kernel (and host tests) hand it bytes and get typed messages
//! back, or an error that says exactly why the bytes were refused.
//!
//! # Datagram layout (all integers big-endian)
//!
//! Every datagram starts with the common [`header`]:
//!
//! ```text
//!  0..4   magic "CTNM"          4      version (2)       5  kind
//!  6..8   payload length (u16)  8..16  cluster id        16..24 sender id
//! ```
//!
//! *Peer* messages (node to node, [`peer`]) continue with a peer header —
//! authenticator scheme (u8), receiver id, receiver boot epoch as the sender
//! knows it, sender boot epoch, sequence number — then the payload, then the MAC (32-byte HMAC-SHA256 or
//! 64-byte Ed25519 signature) over everything before it. *Client* messages
//! ([`client`]) carry the payload right after the common header; they are not
//! authenticated here because the commands inside them are signed by the
//! account owner (checked by the bank when the entry is applied) and the
//! reply is informational.
//!
//! A datagram never exceeds [`MAX_DATAGRAM_BYTES`] (1472: the UDP payload of
//! one 1500-byte Ethernet frame, so no IP fragmentation is ever needed). Raft
//! must chunk AppendEntries so that an encoded Raft message fits in
//! [`MAX_PEER_PAYLOAD_BYTES`].
//!
//! # Decoding contract
//!
//! Every decoder is total: any byte string yields `Ok` or `Err`, never a
//! panic, and never allocates a size read from the input. Unknown magic,
//! version, kind, scheme or status codes, short or trailing bytes are errors.
//! Each message has exactly one valid encoding: `encode(decode(b)) == b`
//! whenever `decode(b)` succeeds (checked by property tests and fuzzing).
//!
//! # Driving it (the node's view)
//!
//! ```text
//! boot:     epoch = above every epoch used before (the kernel: the WAL generation)
//!           auth = PeerAuth::new(PeerConfig { cluster_id, me, epoch, scheme, .. })
//! send:     auth.seal(to, &PeerBody::Node(bytes), &mut datagram)  -> UDP send
//! receive:  match auth.open(&datagram) {
//!               Ok(msg)  => node.on_peer(msg.from, msg.body),  // a Ping: seal a Pong
//!               Err(why) => {}   // already counted in auth.counters()
//!           }
//! clients:  ClientRequest::decode(&datagram) / ClientReply::encode(..)
//! ```
//!
//! The epoch contract: a node's boot epoch must be strictly greater than any
//! epoch it used before, never 0, and durable *before* the first message of
//! the new boot is sent. Receivers accept a higher epoch from a peer (and
//! reset that peer's replay window) but reject any lower one, so
//! (epoch, sequence) pairs are never reused across restarts of the sender.
//! Every message also names the receiver's epoch as the sender learned it
//! from the receiver's own messages, and a receiver refuses any but a ping
//! naming another epoch than its own, so a datagram recorded before the
//! *receiver* restarted is not accepted after it either (the replay windows
//! are lost with its RAM); the ping round after a restart teaches each side
//! the other's epoch ([`peer_auth`] has the details). The kernel takes the
//! epoch from the disk (the WAL generation, [`persisted_boot_epoch`]);
//! without a disk, the RTC wall clock in milliseconds at boot, which keeps
//! the contract only while the RTC never steps back by more than a reboot
//! takes.
#![no_std]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod client;
pub mod fuzz_check;
pub mod header;
pub mod hmac;
pub mod http;
pub mod keys;
pub mod nic;
pub mod peer;
pub mod peer_auth;
pub mod replay;

pub use client::{ClientReply, ClientRequest, ReplyBody, ReplyError, RequestOp};
pub use header::{
    ClusterId, DecodeError, EncodeError, Header, Kind, NodeId, HEADER_BYTES, MAGIC,
    MAX_CLIENT_PAYLOAD_BYTES, MAX_DATAGRAM_BYTES, MAX_PEER_PAYLOAD_BYTES, VERSION,
};
pub use keys::{derive_link_keys, KeyError, LinkKeys};
pub use peer::{AuthScheme, PeerBody, PeerFrame, PEER_HEADER_BYTES};
pub use peer_auth::{
    persisted_boot_epoch, PeerAuth, PeerConfig, PeerMessage, PeerReject, RejectCounters, SealError,
    MAX_CLUSTER_MEMBERS, PERSISTED_EPOCH_BIT,
};
pub use replay::{ReplayError, ReplayWindow, REPLAY_WINDOW_BITS};
