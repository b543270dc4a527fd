//! Scripted clients: conversations through the core's `LineClient`.

use core::fmt;
use std::collections::VecDeque;

use reversal_core::client::{ConnectError, LineClient, RecvError, SendError};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::IpEndpoint;

use super::script::{Script, Step};
use crate::clock::earliest;
use crate::host::Host;
use crate::sim::Party;

/// The longest reply line a [`Conversation`] can collect, terminator
/// included.
pub const REPLY_CAPACITY: usize = 4096;

/// Receive and send buffer size of each conversation's TCP socket.
pub const CONVERSATION_BUFFER: usize = 16 * 1024;

/// Rounds of "poll the interface, advance the conversations" in one
/// [`ClientParty`] poll before it yields and asks to be polled again.
const MAX_CLIENT_ROUNDS: usize = 64;

/// One reply line as the client received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The line with its terminator, or without one if the server closed
    /// after it.
    pub bytes: Vec<u8>,
    /// Virtual time when the client read it (at once, when it arrived).
    pub at: Instant,
}

/// Why a [`Conversation`] stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationError {
    /// The connection was refused or reset before it was established.
    Connect(ConnectError),
    /// Sending failed.
    Send(SendError),
    /// Reading a reply failed (other than the server closing).
    Recv(RecvError),
}

impl fmt::Display for ConversationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversationError::Connect(error) => write!(f, "connect: {error}"),
            ConversationError::Send(error) => write!(f, "send: {error}"),
            ConversationError::Recv(error) => write!(f, "receive: {error}"),
        }
    }
}

impl std::error::Error for ConversationError {}

/// One TCP connection of a [`ClientParty`]: a [`LineClient`] following a
/// [`Script`], with every reply it received.
///
/// When the server closes its side and every reply is read, the
/// conversation has ended: it closes its own side too, as `nc` does.
#[derive(Debug)]
pub struct Conversation {
    client: LineClient<REPLY_CAPACITY>,
    steps: VecDeque<Step>,
    /// Bytes of the current `Send` step already handed to the socket.
    sent: usize,
    /// When the current `Pause` step ends.
    resume_at: Option<Instant>,
    started_at: Option<Instant>,
    connected_at: Option<Instant>,
    replies: Vec<Reply>,
    ended_at: Option<Instant>,
    reset: bool,
    error: Option<ConversationError>,
}

impl Conversation {
    fn new(client: LineClient<REPLY_CAPACITY>, script: Script) -> Conversation {
        Conversation {
            client,
            steps: script.steps.into(),
            sent: 0,
            resume_at: None,
            started_at: None,
            connected_at: None,
            replies: Vec::new(),
            ended_at: None,
            reset: false,
            error: None,
        }
    }

    /// The TCP socket on the party's host.
    pub fn handle(&self) -> SocketHandle {
        self.client.handle()
    }

    /// Every reply so far, in order.
    pub fn replies(&self) -> &[Reply] {
        &self.replies
    }

    /// The replies' bytes, in order.
    pub fn reply_bytes(&self) -> Vec<&[u8]> {
        self.replies.iter().map(|reply| &reply.bytes[..]).collect()
    }

    /// The replies as text, invalid UTF-8 replaced (for readable
    /// assertions; compare [`reply_bytes`](Conversation::reply_bytes) where
    /// bytes matter).
    pub fn reply_text(&self) -> Vec<String> {
        self.replies
            .iter()
            .map(|reply| String::from_utf8_lossy(&reply.bytes).into_owned())
            .collect()
    }

    /// Virtual time of the conversation's first poll, when it began to
    /// connect.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }

    /// Virtual time the connection was seen established.
    pub fn connected_at(&self) -> Option<Instant> {
        self.connected_at
    }

    /// Virtual time the conversation ended: the server closed (or reset)
    /// the connection and every reply was read, or it failed.
    pub fn ended_at(&self) -> Option<Instant> {
        self.ended_at
    }

    /// Whether the conversation has ended.
    pub fn is_ended(&self) -> bool {
        self.ended_at.is_some()
    }

    /// Whether the connection ended with a reset (or a TCP timeout) rather
    /// than the server's FIN.
    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// Whether every step of the script is done.
    pub fn script_done(&self) -> bool {
        self.steps.is_empty()
    }

    /// Why the conversation stopped early, if it did.
    pub fn error(&self) -> Option<ConversationError> {
        self.error
    }

    /// Reads what arrived and runs the script as far as it can now.
    /// Returns whether anything moved, and when the script next needs time.
    fn advance(
        &mut self,
        host: &mut Host,
        now: Instant,
        buffer: &mut [u8],
    ) -> (bool, Option<Instant>) {
        self.started_at.get_or_insert(now);
        if self.ended_at.is_some() {
            return (false, None);
        }
        let mut moved = self.check_connection(host, now);
        moved |= self.read_replies(host, now, buffer);
        if self.ended_at.is_some() {
            return (true, None);
        }
        while let Some(step) = self.steps.front() {
            let done = match step {
                Step::Send(bytes) => {
                    match self.client.send(host.sockets(), &bytes[self.sent..]) {
                        Ok(n) => {
                            self.sent += n;
                            moved |= n > 0;
                        }
                        Err(nb::Error::WouldBlock) => {}
                        Err(nb::Error::Other(error)) => {
                            self.fail(ConversationError::Send(error), now);
                            return (true, None);
                        }
                    }
                    self.sent == bytes.len()
                }
                Step::Line(line) => match self.client.send_line(host.sockets(), line) {
                    Ok(()) => true,
                    Err(nb::Error::WouldBlock) => false,
                    Err(nb::Error::Other(error)) => {
                        self.fail(ConversationError::Send(error), now);
                        return (true, None);
                    }
                },
                Step::WaitAcked => host.tcp(self.handle()).send_queue() == 0,
                Step::Pause(duration) => {
                    let resume_at = *self.resume_at.get_or_insert(now + *duration);
                    if now < resume_at {
                        return (moved, Some(resume_at));
                    }
                    true
                }
                Step::AwaitReplies(total) => self.replies.len() >= *total,
                // Waits until everything sent is acknowledged, then sends FIN.
                Step::Close => self.client.close(host.sockets()).is_ok(),
            };
            if !done {
                break;
            }
            self.steps.pop_front();
            self.sent = 0;
            self.resume_at = None;
            moved = true;
        }
        (moved, None)
    }

    fn check_connection(&mut self, host: &mut Host, now: Instant) -> bool {
        if self.connected_at.is_some() {
            return false;
        }
        match self.client.is_connected(host.sockets()) {
            Ok(()) => {
                self.connected_at = Some(now);
                true
            }
            Err(nb::Error::WouldBlock) => false,
            Err(nb::Error::Other(error)) => {
                self.reset = true;
                self.fail(ConversationError::Connect(error), now);
                true
            }
        }
    }

    fn read_replies(&mut self, host: &mut Host, now: Instant, buffer: &mut [u8]) -> bool {
        if self.connected_at.is_none() {
            return false;
        }
        let mut moved = false;
        loop {
            match self.client.recv_line(host.sockets(), buffer) {
                Ok(len) => {
                    self.replies.push(Reply {
                        bytes: buffer[..len].to_vec(),
                        at: now,
                    });
                    moved = true;
                }
                Err(nb::Error::WouldBlock) => return moved,
                Err(nb::Error::Other(RecvError::Closed)) => {
                    // Right after a FIN the socket is still in CLOSE-WAIT,
                    // TIME-WAIT or CLOSING; only a reset or timeout leaves
                    // it CLOSED at once.
                    let socket = host.tcp(self.handle());
                    self.reset = socket.state() == tcp::State::Closed;
                    socket.close();
                    self.ended_at = Some(now);
                    return true;
                }
                Err(nb::Error::Other(error)) => {
                    self.fail(ConversationError::Recv(error), now);
                    return true;
                }
            }
        }
    }

    fn fail(&mut self, error: ConversationError, now: Instant) {
        self.error = Some(error);
        self.ended_at = Some(now);
    }
}

/// Identifies a [`Conversation`] of a [`ClientParty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationId(usize);

/// A [`Host`] holding scripted [`Conversation`]s with a server, as a
/// [`Party`].
///
/// Each poll runs the host's interface and every conversation until
/// nothing more moves at that instant, so a reply is read (and timed) as
/// soon as it arrives. See the [module example](super).
pub struct ClientParty {
    host: Host,
    conversations: Vec<Conversation>,
    reply_buffer: Vec<u8>,
    /// Receive and send buffer sizes of the sockets `connect` opens.
    socket_buffers: (usize, usize),
}

impl ClientParty {
    /// A party for `host`, with no conversation yet.
    pub fn new(host: Host) -> ClientParty {
        ClientParty {
            host,
            conversations: Vec::new(),
            reply_buffer: vec![0; REPLY_CAPACITY],
            socket_buffers: (CONVERSATION_BUFFER, CONVERSATION_BUFFER),
        }
    }

    /// Opens later connections with receive and send buffers of `rx_len`
    /// and `tx_len` bytes instead of [`CONVERSATION_BUFFER`]: an embedded
    /// client with a small window, say.
    ///
    /// ```
    /// use reversal_sim::reversal::ClientParty;
    /// use reversal_sim::{Host, PortConfig, Segment};
    /// use smoltcp::time::Instant;
    /// use smoltcp::wire::{IpAddress, IpCidr};
    ///
    /// let segment = Segment::new(0);
    /// let address = [IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)];
    /// let host = Host::new(segment.attach(PortConfig::default()), &address, Instant::ZERO);
    /// let mut board = ClientParty::new(host).socket_buffers(1024, 1024);
    /// let talk = board.connect((IpAddress::v4(10, 0, 0, 1), 8888), 40_000, Default::default()).unwrap();
    /// let handle = board.conversation(talk).handle();
    /// assert_eq!(board.host().tcp(handle).recv_capacity(), 1024);
    /// ```
    pub fn socket_buffers(mut self, rx_len: usize, tx_len: usize) -> ClientParty {
        self.socket_buffers = (rx_len, tx_len);
        self
    }

    /// Opens a connection from `local_port` to `server` on a new socket
    /// (buffers of [`CONVERSATION_BUFFER`] bytes unless set with
    /// [`socket_buffers`](ClientParty::socket_buffers), Nagle off) and starts
    /// `script` on it at the next poll.
    ///
    /// # Errors
    ///
    /// As [`tcp::Socket::connect`]: an unusable endpoint or local port.
    pub fn connect(
        &mut self,
        server: impl Into<IpEndpoint>,
        local_port: u16,
        script: Script,
    ) -> Result<ConversationId, tcp::ConnectError> {
        let handle = self
            .host
            .add_tcp_socket(self.socket_buffers.0, self.socket_buffers.1);
        self.host.tcp(handle).set_nagle_enabled(false);
        self.host.tcp_connect(handle, server, local_port)?;
        self.conversations
            .push(Conversation::new(LineClient::new(handle), script));
        Ok(ConversationId(self.conversations.len() - 1))
    }

    /// Appends `script`'s steps to those a conversation has yet to do, e.g.
    /// to close it once the test has seen enough.
    ///
    /// # Panics
    ///
    /// If `id` comes from another party.
    pub fn continue_with(&mut self, id: ConversationId, script: Script) {
        self.conversations[id.0].steps.extend(script.steps);
    }

    /// A conversation.
    ///
    /// # Panics
    ///
    /// If `id` comes from another party.
    pub fn conversation(&self, id: ConversationId) -> &Conversation {
        &self.conversations[id.0]
    }

    /// Every conversation, in the order they were opened.
    pub fn conversations(&self) -> &[Conversation] {
        &self.conversations
    }

    /// Whether every conversation has ended.
    pub fn all_ended(&self) -> bool {
        self.conversations.iter().all(Conversation::is_ended)
    }

    /// The host, e.g. to add sockets of its own.
    pub fn host(&mut self) -> &mut Host {
        &mut self.host
    }
}

impl Party for ClientParty {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        for _ in 0..MAX_CLIENT_ROUNDS {
            // Running the interface last in a round that moved nothing means
            // nothing it received is left unread.
            let interface_deadline = self.host.poll(now);
            let mut moved = false;
            let mut next = interface_deadline;
            for conversation in &mut self.conversations {
                let (progress, deadline) =
                    conversation.advance(&mut self.host, now, &mut self.reply_buffer);
                moved |= progress;
                next = earliest(next, deadline);
            }
            if !moved {
                return next;
            }
        }
        Some(now)
    }
}

impl fmt::Debug for ClientParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientParty")
            .field("host", &self.host)
            .field("conversations", &self.conversations)
            .finish_non_exhaustive()
    }
}
