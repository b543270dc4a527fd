//! The UDP reply sockets: each holds one reply until it leaves, so a reply
//! that waits for its sender's address holds up no other.
//!
//! smoltcp 0.14's UDP socket sends its queue in order and dequeues a packet
//! only once the interface has sent it (`dispatch` uses `dequeue_with`). A
//! packet whose neighbour does not answer (`NeighborPending`) stays at the
//! head, tried again every second (the socket's `DISCOVERY_SILENT_TIME`),
//! for good, and so does every packet behind it. With one socket for every
//! reply, one sender that vanished before its address resolved stopped
//! every later reply. So replies leave through reply sockets of their own,
//! bound to the server's port, each holding one reply at a time:
//!
//! - a reply that has waited [`UDP_REPLY_TIMEOUT`] is dropped;
//! - when every reply socket holds a reply that waits for its neighbour and
//!   another datagram is to be answered, the reply that has waited longest
//!   gives way to it;
//! - while the device is full (a pass in which it refused a frame), a reply
//!   that did not leave has not been tried: it is no neighbour's fault, it
//!   gives way to nothing, and the next datagram waits unread.
//!
//! The neighbour cache is private to smoltcp's interface, so whether an
//! address will resolve cannot be known before a reply is queued; a reply
//! is known to wait only once a transmit pass has left it in its socket.
//!
//! Dropping a reply is `close` and `bind` again, with the socket taken out
//! of the set and put back in its slot: smoltcp keeps per slot which
//! neighbour the socket waits for and keeps it silent for up to a second,
//! and a fresh slot sends the next reply at once.

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::Socket;
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata, UdpMetadata};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use super::super::deferred::Deferred;
use super::{bind, receives_nothing};

/// How long a UDP reply may wait for its sender's address to resolve
/// before it is dropped (and counted in
/// [`Counters::udp_dropped`](crate::Counters::udp_dropped)).
///
/// smoltcp asks for an unresolved neighbour when a packet for it is first
/// dispatched, then keeps the socket silent for a second before it asks
/// again (and the whole interface for a second after each request), so
/// three seconds give three requests a second apart: what Linux sends
/// (`mcast_solicit` 3, `retrans_time` 1 s) before it declares a neighbour
/// failed. A neighbour on the link answers the first in well under a
/// millisecond; the two more cover lost frames.
///
/// ```
/// use reversal_core::server::UDP_REPLY_TIMEOUT;
/// assert_eq!(UDP_REPLY_TIMEOUT.secs(), 3);
/// ```
pub const UDP_REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// One reply socket and the reply it holds.
#[derive(Debug)]
pub(in crate::server) struct ReplySocket {
    handle: SocketHandle,
    held: Option<Held>,
}

/// A reply in a reply socket.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The sender of the datagram it answers.
    to: IpEndpoint,
    /// When it was queued.
    since: Instant,
    /// A transmit pass in which the device took every frame left it in its
    /// socket: it waits for its neighbour (or a route).
    waits: bool,
}

impl Held {
    fn expires_at(&self) -> Instant {
        self.since + UDP_REPLY_TIMEOUT
    }
}

/// The reply sockets, after the receiving socket in the set: smoltcp hands
/// a datagram to the first socket bound to its port, so they never get one.
#[derive(Debug)]
pub(super) struct ReplySockets<'a> {
    sockets: &'a mut [Deferred<ReplySocket>],
    port: u16,
}

impl<'a> ReplySockets<'a> {
    /// A reply socket in each slot, over each pair of buffers (metadata for
    /// one reply, and its bytes), bound to `port` and added to `set`.
    pub(super) fn new(
        slots: &'a mut [Deferred<ReplySocket>],
        buffers: impl Iterator<Item = (&'a mut [PacketMetadata], &'a mut [u8])>,
        port: u16,
        set: &mut SocketSet<'a>,
    ) -> Self {
        for (slot, (meta, bytes)) in slots.iter_mut().zip(buffers) {
            // The receiving socket comes first in the set and takes every datagram.
            let mut socket = udp::Socket::new(receives_nothing(), PacketBuffer::new(meta, bytes));
            bind(&mut socket, port);
            slot.insert(ReplySocket {
                handle: set.add(socket),
                held: None,
            });
        }
        ReplySockets {
            sockets: slots,
            port,
        }
    }

    fn iter(&self) -> impl Iterator<Item = &ReplySocket> {
        self.sockets.iter().filter_map(Deferred::get)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut ReplySocket> {
        self.sockets.iter_mut().filter_map(Deferred::get_mut)
    }

    /// The reply sockets.
    pub(super) fn handles(&self) -> impl Iterator<Item = SocketHandle> + '_ {
        self.iter().map(|socket| socket.handle)
    }

    /// After a transmit pass: a socket whose reply left is free again; one
    /// whose reply stayed waits for its neighbour, unless the device was
    /// full.
    pub(super) fn transmitted(&mut self, set: &SocketSet<'_>, device_full: bool) {
        for socket in self.iter_mut() {
            let Some(held) = &mut socket.held else {
                continue;
            };
            // Room for one reply means its reply left: the bytes queued
            // cannot tell, as an empty datagram's reply has none.
            if set.get::<udp::Socket>(socket.handle).can_send() {
                socket.held = None;
            } else if !device_full {
                held.waits = true;
            }
        }
    }

    /// Drops every reply that has waited [`UDP_REPLY_TIMEOUT`] by `now`,
    /// calling `dropped` with the sender each answered.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        set: &mut SocketSet<'a>,
        mut dropped: impl FnMut(IpEndpoint),
    ) {
        let port = self.port;
        for socket in self.iter_mut() {
            if socket.held.is_some_and(|held| now >= held.expires_at())
                && let Some(to) = socket.reset(port, set)
            {
                dropped(to);
            }
        }
    }

    /// The reply socket to take the next reply: a free one, else the one
    /// whose reply has waited for its neighbour longest; `None` while every
    /// one holds a reply the device has had no room for yet.
    pub(super) fn choose(&self) -> Option<usize> {
        let free = self.iter().position(|socket| socket.held.is_none());
        free.or_else(|| {
            let waiting = self.iter().enumerate().filter_map(|(index, socket)| {
                let held = socket.held.filter(|held| held.waits)?;
                Some((index, held.since))
            });
            waiting
                .min_by_key(|&(_, since)| since)
                .map(|(index, _)| index)
        })
    }

    /// Queues `reply` to `meta`'s sender on the reply socket `index`
    /// (from [`choose`](Self::choose)), dropping the reply it held; returns
    /// the sender of that reply, if it held one.
    ///
    /// # Errors
    ///
    /// As [`udp::Socket::send_slice`]; the reply is not sent.
    pub(super) fn send(
        &mut self,
        index: usize,
        reply: &[u8],
        meta: UdpMetadata,
        now: Instant,
        set: &mut SocketSet<'a>,
    ) -> Result<Option<IpEndpoint>, udp::SendError> {
        let port = self.port;
        let socket = self
            .iter_mut()
            .nth(index)
            .expect("chosen among the reply sockets");
        let gave_way = socket.reset(port, set);
        set.get_mut::<udp::Socket>(socket.handle)
            .send_slice(reply, meta)?;
        socket.held = Some(Held {
            to: meta.endpoint,
            since: now,
            waits: false,
        });
        Ok(gave_way)
    }

    /// When the reply that has waited longest will have waited
    /// [`UDP_REPLY_TIMEOUT`], if a reply waits.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.iter()
            .filter_map(|socket| socket.held.map(|held| held.expires_at()))
            .min()
    }

    /// Drops every reply and stops sending.
    pub(super) fn close(&mut self, set: &mut SocketSet<'_>) {
        for socket in self.iter_mut() {
            set.get_mut::<udp::Socket>(socket.handle).close();
            socket.held = None;
        }
    }
}

impl ReplySocket {
    /// Drops the reply it holds, if any, and gives it a fresh slot, bound
    /// to `port`; returns the sender of the datagram that reply answered.
    fn reset(&mut self, port: u16, set: &mut SocketSet<'_>) -> Option<IpEndpoint> {
        let to = self.held.take()?.to;
        let mut socket = set.remove(self.handle);
        let Socket::Udp(udp) = &mut socket else {
            unreachable!("a reply socket is a UDP socket");
        };
        udp.close();
        bind(udp, port);
        // The slot just emptied is the first free one: the socket keeps its
        // place after the receiving socket.
        let handle = set.add(socket);
        debug_assert_eq!(handle, self.handle);
        self.handle = handle;
        Some(to)
    }
}
