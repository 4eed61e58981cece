//! The status server: HTTP over TCP on `status_port` on the client
//! network, `GET /status` (JSON, [`status`]), `GET /metrics`
//! (Prometheus text, [`metrics`]) and `GET /trace?transfer=<hex>` (JSON,
//! [`trace`]).
//!
//! Request heads are parsed by `continuum_net::http` (junk `400`, heads
//! over 2 KiB `431`). A connection must send its head within
//! [`STATUS_HEAD_DEADLINE_MS`] and is aborted [`STATUS_EXCHANGE_DEADLINE_MS`]
//! after it opened, so slow or half-closed clients cannot hold the
//! [`STATUS_SOCKETS`]. Every answer closes its connection; an answer
//! larger than the socket's send buffer is sent in pieces as the peer
//! acknowledges (bounded: the pages are bounded, and so is the deadline).
//!
//! The pages only read: the network task's [`super::NetworkStatus`], the
//! consensus node through [`crate::consensus::with_node`], and the
//! histograms in [`crate::metrics`]. Nothing here changes the node.

pub mod metrics;
pub mod status;
pub mod trace;

use super::count_status;
use super::port::Port;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use continuum_net::http::{self, Head, Resource};
use core::fmt::Write;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

/// Listening status sockets: a closed connection sits in TIME-WAIT for
/// smoltcp's 10 s, so one socket alone would refuse status requests for
/// 10 s after each answer.
const STATUS_SOCKETS: usize = 8;
/// A status connection must deliver its whole request head within this
/// long after the handshake, or it is aborted (RST): a slow or silent
/// client cannot hold one of the [`STATUS_SOCKETS`].
pub const STATUS_HEAD_DEADLINE_MS: u64 = 2_000;
/// A status connection is aborted this long after the handshake whatever
/// its state (answer unread, FIN never acknowledged).
pub const STATUS_EXCHANGE_DEADLINE_MS: u64 = 5_000;

pub(super) struct StatusServer {
    port: u16,
    node_id: continuum_config::NodeId,
    cluster_id: u64,
    /// The [`STATUS_SOCKETS`] listening sockets.
    sockets: Vec<SocketHandle>,
    /// Per status socket: when its current connection left LISTEN, and
    /// whether it was answered.
    conns: Vec<StatusConn>,
}

/// One status connection's clock.
#[derive(Clone, Default)]
struct StatusConn {
    /// When the connection left LISTEN (first seen by the task).
    started_ms: Option<u64>,
    answered: bool,
    /// The rest of the answer, when it did not fit the socket's send
    /// buffer at once (`/metrics` outgrows it): sent as the peer acks.
    unsent: Vec<u8>,
}

impl StatusConn {
    /// When the task must look at this connection again.
    fn deadline_ms(&self) -> Option<u64> {
        let started = self.started_ms?;
        Some(if self.answered {
            started + STATUS_EXCHANGE_DEADLINE_MS
        } else {
            started + STATUS_HEAD_DEADLINE_MS
        })
    }
}

impl StatusServer {
    /// Adds the [`STATUS_SOCKETS`] to the client port; they start
    /// listening on `port` on the first [`StatusServer::serve`].
    pub(super) fn new(
        client: &mut Port,
        port: u16,
        node_id: continuum_config::NodeId,
        cluster_id: u64,
    ) -> StatusServer {
        let mut server = StatusServer {
            port,
            node_id,
            cluster_id,
            sockets: Vec::new(),
            conns: Vec::new(),
        };
        for _ in 0..STATUS_SOCKETS {
            let socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 16 * 1024]),
            );
            server.sockets.push(client.sockets.add(socket));
            server.conns.push(StatusConn::default());
        }
        server
    }

    /// The earliest connection deadline, if any connection is open.
    pub(super) fn next_deadline_ms(&self) -> Option<u64> {
        self.conns.iter().filter_map(StatusConn::deadline_ms).min()
    }

    pub(super) fn serve(&mut self, client: &mut Port) {
        let now_ms = crate::time::monotonic_ns() / 1_000_000;
        for i in 0..self.sockets.len() {
            self.serve_socket(client, i, now_ms);
        }
    }

    /// One status connection: parse the head (`continuum_net::http`),
    /// answer once, and abort whatever outlives its deadline or can no
    /// longer complete a request (the peer closed with a partial head).
    fn serve_socket(&mut self, client: &mut Port, i: usize, now_ms: u64) {
        let handle = self.sockets[i];
        let conn = &mut self.conns[i];
        let socket = client.sockets.get_mut::<tcp::Socket>(handle);
        if !socket.is_open() {
            *conn = StatusConn::default();
            let _ = socket.listen(self.port);
            return;
        }
        if socket.state() == tcp::State::Listen {
            // Also after a handshake the client reset: a fresh connection.
            *conn = StatusConn::default();
            return;
        }
        let started = *conn.started_ms.get_or_insert(now_ms);
        let age_ms = now_ms.saturating_sub(started);
        if conn.answered {
            if age_ms >= STATUS_EXCHANGE_DEADLINE_MS {
                socket.abort();
            } else if !conn.unsent.is_empty() {
                let sent = socket.send_slice(&conn.unsent).unwrap_or(0);
                conn.unsent.drain(..sent);
                if conn.unsent.is_empty() {
                    socket.close();
                }
            }
            return;
        }
        let mut request = [0u8; http::MAX_HEAD_BYTES];
        let len = socket.peek_slice(&mut request).unwrap_or(0);
        let head = http::parse_head(&request[..len]);
        if head == Head::Incomplete {
            // The peer closed (CLOSE-WAIT) or the deadline passed: the head
            // can never complete in time. Abort even with unread bytes. (A
            // socket still in the handshake cannot receive yet: only the
            // deadline applies to it.)
            let handshaking = socket.state() == tcp::State::SynReceived;
            let peer_closed =
                socket.state() == tcp::State::CloseWait || (!handshaking && !socket.may_recv());
            if peer_closed || age_ms >= STATUS_HEAD_DEADLINE_MS {
                socket.abort();
                count_status(|s| s.status_aborted += 1);
            }
            return;
        }
        let mut consumed = [0u8; http::MAX_HEAD_BYTES];
        let _ = socket.recv_slice(&mut consumed[..len]);
        let mut content_type = "application/json";
        let (code, body) = match head {
            Head::Complete(head) => match http::route(&head) {
                Ok(Resource::Status) => {
                    ("200 OK", status::status_json(self.node_id, self.cluster_id))
                }
                Ok(Resource::Metrics) => {
                    content_type = "text/plain; version=0.0.4";
                    let mut text = String::new();
                    metrics::metrics_text(&mut text, self.node_id);
                    ("200 OK", text)
                }
                Ok(Resource::Trace) => trace::trace_answer(head.query()),
                Err(error) => (
                    error.status(),
                    String::from(
                        "{\"error\":\"try GET /status, GET /metrics or GET /trace?transfer=<hex id>\"}",
                    ),
                ),
            },
            Head::Refused(error) => (error.status(), alloc::format!("{{\"error\":\"{error}\"}}")),
            Head::Incomplete => unreachable!("handled above"),
        };
        let mut response = String::new();
        let _ = write!(
            response,
            "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let sent = socket.send_slice(response.as_bytes()).unwrap_or(0);
        if sent == response.len() {
            socket.close();
        } else {
            conn.unsent = response.into_bytes().split_off(sent);
        }
        conn.answered = true;
        count_status(|s| s.status_requests += 1);
    }
}
