//! A non-blocking line client over a smoltcp TCP socket.
//!
//! Every operation returns [`nb::Result`]: `WouldBlock` means "not yet, poll
//! the interface and try again", so the client works with `nb::block!`, in a
//! polling loop on a board, or inside a simulated network's run loop.

use core::fmt;

use heapless::Vec;
use smoltcp::iface::{Context, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::IpEndpoint;

/// Sending failed for good.
///
/// ```
/// assert_eq!(reversal_core::client::SendError::Closed.to_string(), "connection closed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendError {
    /// The connection can no longer send.
    Closed,
    /// The line and its LF are larger than the whole send buffer.
    TooLong,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed => "connection closed",
            SendError::TooLong => "line larger than the send buffer",
        })
    }
}

/// Receiving a reply failed for good (or needs a bigger buffer).
///
/// ```
/// let e = reversal_core::client::RecvError::BufferTooSmall { needed: 9 };
/// assert!(e.to_string().contains("9"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecvError {
    /// The server closed and every reply has been read.
    Closed,
    /// A reply is longer than the client's line buffer (`LINE`).
    LineTooLong,
    /// The reply is ready but the caller's buffer is too small; it is kept.
    BufferTooSmall {
        /// The reply's length.
        needed: usize,
    },
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("connection closed"),
            RecvError::LineTooLong => f.write_str("reply longer than the client's line buffer"),
            RecvError::BufferTooSmall { needed } => write!(f, "reply needs {needed} bytes"),
        }
    }
}

/// Connecting failed at once (bad endpoint, socket in use).
///
/// ```
/// let e = reversal_core::client::ConnectError::Refused;
/// assert_eq!(e.to_string(), "connection refused or reset");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectError {
    /// smoltcp refused to start the connection.
    Start(tcp::ConnectError),
    /// The server reset the connection (for example nothing listens).
    Refused,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Start(e) => write!(f, "cannot connect: {e}"),
            ConnectError::Refused => f.write_str("connection refused or reset"),
        }
    }
}

/// A line client on one TCP socket of the caller's `SocketSet`.
///
/// `LINE` is the longest reply it can assemble, terminator included.
///
/// ```
/// use reversal_core::client::LineClient;
/// use smoltcp::iface::SocketSet;
/// use smoltcp::socket::tcp;
///
/// let mut sockets = SocketSet::new(vec![]);
/// let socket = tcp::Socket::new(
///     tcp::SocketBuffer::new(vec![0; 1024]),
///     tcp::SocketBuffer::new(vec![0; 1024]),
/// );
/// let mut client = LineClient::<128>::new(sockets.add(socket));
/// // Not connected yet: nothing to read, and sending is refused.
/// assert!(client.send_line(&mut sockets, b"hello").is_err());
/// ```
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineClient<const LINE: usize> {
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    handle: SocketHandle,
    reply: Vec<u8, LINE>,
    /// The reply buffer holds a whole line (it ends with LF, or input ended).
    complete: bool,
}

impl<const LINE: usize> LineClient<LINE> {
    /// A client for the TCP socket `handle`.
    ///
    /// See the [`LineClient`] example.
    pub const fn new(handle: SocketHandle) -> Self {
        LineClient {
            handle,
            reply: Vec::new(),
            complete: false,
        }
    }

    /// The socket this client drives.
    ///
    /// See the [`LineClient`] example.
    pub const fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// Starts connecting to `remote` from `local_port`; poll
    /// [`is_connected`](Self::is_connected) (or just send: sending waits).
    ///
    /// See the [`LineClient`] example.
    pub fn connect(
        &mut self,
        sockets: &mut SocketSet<'_>,
        cx: &mut Context,
        remote: IpEndpoint,
        local_port: u16,
    ) -> Result<(), ConnectError> {
        self.reply.clear();
        self.complete = false;
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        socket
            .connect(cx, remote, local_port)
            .map_err(ConnectError::Start)
    }

    /// `Ok` once the connection is established, `WouldBlock` while it is
    /// being set up.
    ///
    /// See the [`LineClient`] example.
    pub fn is_connected(&self, sockets: &SocketSet<'_>) -> nb::Result<(), ConnectError> {
        let socket = sockets.get::<tcp::Socket>(self.handle);
        match socket.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Err(nb::Error::WouldBlock),
            tcp::State::Closed | tcp::State::Listen => Err(nb::Error::Other(ConnectError::Refused)),
            _ => Ok(()),
        }
    }

    /// Sends `line` and an LF, all at once or not at all.
    ///
    /// See the [`LineClient`] example.
    pub fn send_line(
        &mut self,
        sockets: &mut SocketSet<'_>,
        line: &[u8],
    ) -> nb::Result<(), SendError> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        let needed = line.len() + 1;
        if needed > socket.send_capacity() {
            return Err(nb::Error::Other(SendError::TooLong));
        }
        ready_to_send(socket)?;
        if socket.send_capacity() - socket.send_queue() < needed {
            return Err(nb::Error::WouldBlock);
        }
        // Both fit: the free space was checked above.
        let _ = socket.send_slice(line);
        let _ = socket.send_slice(b"\n");
        Ok(())
    }

    /// Sends as much of `bytes` as fits now, as they are (no LF added).
    ///
    /// See the [`LineClient`] example.
    pub fn send(
        &mut self,
        sockets: &mut SocketSet<'_>,
        bytes: &[u8],
    ) -> nb::Result<usize, SendError> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        ready_to_send(socket)?;
        match socket.send_slice(bytes) {
            Ok(0) if !bytes.is_empty() => Err(nb::Error::WouldBlock),
            Ok(n) => Ok(n),
            Err(_) => Err(nb::Error::Other(SendError::Closed)),
        }
    }

    /// Reads the next reply line into `out` and returns its length, its
    /// terminator included. After the server's FIN, an unterminated last
    /// reply is returned as it is.
    ///
    /// Reads from the socket only up to the end of the reply, and never more
    /// than the line buffer holds.
    ///
    /// See the [`LineClient`] example.
    pub fn recv_line(
        &mut self,
        sockets: &mut SocketSet<'_>,
        out: &mut [u8],
    ) -> nb::Result<usize, RecvError> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        if matches!(
            socket.state(),
            tcp::State::SynSent | tcp::State::SynReceived
        ) {
            return Err(nb::Error::WouldBlock);
        }
        while !self.complete && socket.can_recv() {
            let room = LINE - self.reply.len();
            if room == 0 {
                return Err(nb::Error::Other(RecvError::LineTooLong));
            }
            let reply = &mut self.reply;
            let complete = &mut self.complete;
            let _ = socket.recv(|rx| {
                let window = &rx[..rx.len().min(room)];
                let take = match window.iter().position(|&b| b == b'\n') {
                    Some(lf) => {
                        *complete = true;
                        lf + 1
                    }
                    None => window.len(),
                };
                // Fits: take <= room.
                let _ = reply.extend_from_slice(&window[..take]);
                (take, ())
            });
        }
        if !self.complete {
            if socket.may_recv() {
                return Err(nb::Error::WouldBlock);
            }
            if self.reply.is_empty() {
                return Err(nb::Error::Other(RecvError::Closed));
            }
        }
        let len = self.reply.len();
        let Some(out) = out.get_mut(..len) else {
            return Err(nb::Error::Other(RecvError::BufferTooSmall { needed: len }));
        };
        out.copy_from_slice(&self.reply);
        self.reply.clear();
        self.complete = false;
        Ok(len)
    }

    /// Half-closes: `WouldBlock` until the server has acknowledged all that
    /// was sent, then sends FIN. Replies can still be read afterwards.
    ///
    /// The FIN goes out on its own because smoltcp 0.14's fast retransmit
    /// can send a segment beyond the peer's window, and a smoltcp peer then
    /// accepts a FIN riding on it before the data it cut off.
    ///
    /// See the [`LineClient`] example.
    pub fn close(
        &mut self,
        sockets: &mut SocketSet<'_>,
    ) -> nb::Result<(), core::convert::Infallible> {
        let socket = sockets.get_mut::<tcp::Socket>(self.handle);
        if socket.may_send() && socket.send_queue() > 0 {
            return Err(nb::Error::WouldBlock);
        }
        socket.close();
        Ok(())
    }

    /// Whether the connection is fully closed (both directions).
    ///
    /// See the [`LineClient`] example.
    pub fn is_closed(&self, sockets: &SocketSet<'_>) -> bool {
        matches!(
            sockets.get::<tcp::Socket>(self.handle).state(),
            tcp::State::Closed | tcp::State::TimeWait
        )
    }
}

fn ready_to_send(socket: &tcp::Socket<'_>) -> nb::Result<(), SendError> {
    match socket.state() {
        tcp::State::SynSent | tcp::State::SynReceived => Err(nb::Error::WouldBlock),
        _ if socket.may_send() => Ok(()),
        _ => Err(nb::Error::Other(SendError::Closed)),
    }
}
