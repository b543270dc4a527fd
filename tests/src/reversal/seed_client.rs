//! The lecture's own client, as a party: a message with no newline, then
//! wait for the answer.

use core::fmt;
use std::collections::VecDeque;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::time::Instant;

use crate::host::Host;
use crate::sim::Party;

/// One answer a [`SeedClient`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The message it answers, as sent.
    pub message: Vec<u8>,
    /// The answer's bytes: as many as the message's.
    pub bytes: Vec<u8>,
    /// When the message was written.
    pub sent_at: Instant,
    /// When the last byte of the answer was read.
    pub at: Instant,
}

/// The seed's `thread_client` (`s.sendall(input().encode());
/// print(s.recv(4096))`) on a smoltcp socket: for each message, writes it
/// whole with no newline, waits for as many bytes as it has (a reversal is
/// exactly as long as its message), then writes the next; when all are
/// answered it half-closes. Nothing in it knows about lines: it is answered
/// only by a server that takes a pause at the end of a write as the end of
/// a message.
///
/// ```
/// use reversal_core::{Capacity, HeapResources, ServerConfig};
/// use reversal_sim::reversal::Network;
/// use smoltcp::time::Duration;
///
/// let resources = Box::leak(Box::new(HeapResources::new(Capacity::new(1, 1024, 128))));
/// let mut net = Network::new(0, ServerConfig::new(1, 128), resources).unwrap();
/// let client = net.seed_client(&["Hello World!!!", "HAHAHAHAH"]);
/// net.sim.run_until(Duration::from_secs(10), |sim| sim[client].is_done()).unwrap();
/// let answers: Vec<_> = net.sim[client].answers().iter().map(|a| a.bytes.clone()).collect();
/// assert_eq!(answers, [&b"!!!dlroW olleH"[..], b"HAHAHAHAH"]);
/// ```
pub struct SeedClient {
    host: Host,
    socket: SocketHandle,
    messages: VecDeque<Vec<u8>>,
    /// The message waiting for its answer, the answer so far, when sent.
    waiting: Option<(Vec<u8>, Vec<u8>, Instant)>,
    answers: Vec<Answer>,
    closed: bool,
}

impl SeedClient {
    /// A client on `host` whose TCP socket `socket` connects (or is
    /// connected) to the server, with `messages` to send in turn.
    ///
    /// # Panics
    ///
    /// When a message is longer than the socket's send buffer: it could
    /// not be written whole.
    pub fn new(host: Host, socket: SocketHandle, messages: &[&str]) -> SeedClient {
        let mut client = SeedClient {
            host,
            socket,
            messages: messages.iter().map(|m| m.as_bytes().to_vec()).collect(),
            waiting: None,
            answers: Vec::new(),
            closed: false,
        };
        let capacity = client.host.tcp(socket).send_capacity();
        assert!(
            client.messages.iter().all(|m| m.len() <= capacity),
            "a message does not fit the send buffer of {capacity} bytes"
        );
        client
    }

    /// The answers so far, in order.
    pub fn answers(&self) -> &[Answer] {
        &self.answers
    }

    /// Whether every message is answered.
    pub fn is_done(&self) -> bool {
        self.messages.is_empty() && self.waiting.is_none()
    }

    /// The socket, e.g. to see how the connection ended.
    pub fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.host.tcp(self.socket)
    }

    /// The host, e.g. to find its port.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Reads, and writes the next message; true if anything moved.
    fn advance(&mut self, now: Instant) -> bool {
        let socket = self.host.tcp(self.socket);
        let mut moved = false;
        if let Some((message, answer, sent_at)) = &mut self.waiting {
            while answer.len() < message.len() && socket.can_recv() {
                let want = message.len() - answer.len();
                let _ = socket.recv(|rx| {
                    let take = rx.len().min(want);
                    answer.extend_from_slice(&rx[..take]);
                    (take, ())
                });
                moved = true;
            }
            if answer.len() == message.len() {
                self.answers.push(Answer {
                    message: core::mem::take(message),
                    bytes: core::mem::take(answer),
                    sent_at: *sent_at,
                    at: now,
                });
                self.waiting = None;
            }
        }
        if self.waiting.is_none() && socket.may_send() {
            if let Some(message) = self.messages.front() {
                if socket.send_capacity() - socket.send_queue() >= message.len() {
                    // Fits: checked just above.
                    let _ = socket.send_slice(message);
                    let message = self.messages.pop_front().unwrap_or_default();
                    self.waiting = Some((message, Vec::new(), now));
                    moved = true;
                }
            } else if !self.closed {
                socket.close();
                self.closed = true;
                moved = true;
            }
        }
        moved
    }
}

impl Party for SeedClient {
    fn poll(&mut self, now: Instant) -> Option<Instant> {
        loop {
            let deadline = self.host.poll(now);
            if !self.advance(now) {
                return deadline;
            }
        }
    }
}

impl fmt::Debug for SeedClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedClient")
            .field("host", &self.host)
            .field("answers", &self.answers.len())
            .field("left", &self.messages.len())
            .finish_non_exhaustive()
    }
}
