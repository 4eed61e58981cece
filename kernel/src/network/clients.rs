//! The client server: UDP on `client_port`, requests in the
//! `continuum_net::client` format.
//!
//! With a consensus node running, every well-formed request for this
//! cluster goes to it ([`crate::consensus::on_client`]) while its admission
//! budget lasts; the rest waits in the socket for the next pass (bounded by
//! the socket's buffer, see `port::udp_socket`). Without a node (no disk,
//! no authenticated LAN) a request is answered `Unavailable`. Malformed
//! requests and requests for another cluster are counted and dropped. The
//! node's replies come back from [`crate::consensus::drive`] and leave
//! through [`ClientServer::send_replies`].
//!
//! This module decodes and encodes; it never decides an answer itself
//! beyond `Unavailable` when no node runs.

use super::port::{udp_socket, Port};
use super::STATUS;
use crate::consensus::Replies;
use continuum_net::client::{ClientReply, ClientRequest, ReplyBody, ReplyError};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp;

pub(super) struct ClientServer {
    socket: SocketHandle,
    node_id: continuum_config::NodeId,
    cluster_id: u64,
    /// Client datagrams were left in the socket because the node's
    /// admission budget was spent: the next pass starts without sleeping.
    backlog: bool,
}

impl ClientServer {
    /// Binds `client_port` on the client network; `None` (and the reason
    /// on the console) when the port cannot be bound.
    pub(super) fn bind(
        client: &mut Port,
        client_port: u16,
        node_id: continuum_config::NodeId,
        cluster_id: u64,
    ) -> Option<ClientServer> {
        let mut socket = udp_socket();
        match socket.bind(client_port) {
            Ok(()) => Some(ClientServer {
                socket: client.sockets.add(socket),
                node_id,
                cluster_id,
                backlog: false,
            }),
            Err(error) => {
                log::error!("net: cannot bind client UDP port {client_port}: {error}");
                None
            }
        }
    }

    /// Whether requests were left waiting for the node's next pass.
    pub(super) fn backlog(&self) -> bool {
        self.backlog
    }

    /// Takes the requests that arrived, within the node's admission budget.
    pub(super) fn serve(&mut self, client: &mut Port) {
        let socket = client.sockets.get_mut::<udp::Socket>(self.socket);
        let mut answered = 0;
        let mut rejected = 0;
        let running = crate::consensus::running();
        self.backlog = false;
        while socket.can_recv() {
            // Signature checks are budgeted per pass (~526 µs each under
            // TCG): the rest waits in the socket, bounded by its buffer.
            if running && !crate::consensus::can_admit() {
                self.backlog = true;
                break;
            }
            let Ok((datagram, meta)) = socket.recv() else {
                break;
            };
            let request = match ClientRequest::decode(datagram) {
                Ok(request) if request.cluster_id == self.cluster_id => request,
                Ok(_) | Err(_) => {
                    rejected += 1;
                    continue;
                }
            };
            if running {
                crate::consensus::on_client(meta.endpoint, request);
                answered += 1;
                continue;
            }
            let reply = ClientReply {
                cluster_id: self.cluster_id,
                node: self.node_id,
                request_id: request.request_id,
                body: ReplyBody::Error(ReplyError::Unavailable),
            };
            if let Ok(bytes) = reply.encode() {
                let _ = socket.send_slice(&bytes, meta.endpoint);
                answered += 1;
            }
        }
        if answered + rejected > 0 {
            if let Some(status) = STATUS.lock().as_mut() {
                status.client_requests += answered;
                status.client_rejected += rejected;
            }
        }
    }

    /// Queues the node's replies (a full socket drops one; the client
    /// retries).
    pub(super) fn send_replies(&mut self, client: &mut Port, replies: Replies) {
        let socket = client.sockets.get_mut::<udp::Socket>(self.socket);
        for (endpoint, reply) in replies {
            if let Ok(bytes) = reply.encode() {
                let _ = socket.send_slice(&bytes, endpoint);
            }
        }
    }
}
