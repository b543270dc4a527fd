//! How the server's TCP sockets are made, and put back to listening: the
//! same for session and busy sockets.

use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::config::ServerConfig;
use crate::fmt::net_warn;

/// The peer logged when a socket no longer knows its own.
pub(super) const NO_PEER: IpEndpoint = IpEndpoint {
    addr: IpAddress::Ipv4(Ipv4Address::UNSPECIFIED),
    port: 0,
};

/// A TCP socket over the caller's buffers, set up for request/response.
pub(super) fn tcp_socket<'a>(rx: &'a mut [u8], tx: &'a mut [u8]) -> tcp::Socket<'a> {
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    // Replies are whole lines already: Nagle and delayed ACKs only add latency
    // to pipelined request/response traffic.
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

/// Takes a socket whose connection is over back to listening, or leaves it
/// closed. A socket that was just aborted stays closed until the next pass
/// (the `Closed` arm of the listening phase re-listens it): `listen` would
/// forget the connection before smoltcp sends the peer its RST.
pub(super) fn finish_connection(
    socket: &mut tcp::Socket<'_>,
    config: &ServerConfig,
    shutting_down: bool,
) {
    if shutting_down {
        socket.abort();
    } else if socket.state() != tcp::State::Closed {
        relisten(socket, config);
    }
}

/// Puts a socket back to listening. Only fails for port 0, checked at start.
pub(super) fn relisten(socket: &mut tcp::Socket<'_>, config: &ServerConfig) {
    if socket.is_open() {
        socket.abort();
    }
    socket.set_timeout(Some(config.tcp_timeout));
    if socket.listen(config.port).is_err() {
        net_warn!("cannot listen on port {}", config.port);
    }
}
