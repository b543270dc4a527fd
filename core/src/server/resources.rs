//! All the memory a server uses, handed in by the caller.

use core::fmt;

use smoltcp::iface::SocketStorage;
use smoltcp::socket::udp;

use super::busy::{BUSY_RX, BUSY_SOCKETS};
use super::tcp::Slot;
use super::udp::UDP_PACKETS;
use crate::ingress::Connection;
use crate::reply::MAX_ERROR_REPLY;

/// All the memory a [`Server`] uses, handed in by the caller.
///
/// - `SESSIONS`: most concurrent sessions;
/// - `SOCKETS`: socket slots, at least `SESSIONS + 2` (a busy and the UDP
///   socket); up to [`BUSY_SOCKETS`] - 1 more serve bursts of rejections;
/// - `RX`, `TX`: each session's TCP receive and send buffer (also the UDP
///   buffers); `TX` must hold the largest reply (`max_line + 2`, at least 64);
/// - `LINE`: each session's line buffer, the largest `max_line`.
///
/// RAM is about `SESSIONS * (RX + TX + LINE) + 2 * (RX + TX)` plus smoltcp's
/// socket state; [`core::mem::size_of`] tells exactly. Every byte of
/// `new()` is zero or uninitialised, so a `static` of it goes to `.bss` and
/// costs no flash; smoltcp's socket slots are filled in by [`Server::new`].
///
/// ```
/// use reversal_core::ServerResources;
///
/// // In a static on a board: no stack copy, no heap.
/// static mut RESOURCES: ServerResources<'static, 3, 5, 1024, 1024, 512> = ServerResources::new();
/// let heap_or_stack = ServerResources::<'_, 2, 4, 256, 256, 128>::new();
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerResources<
    'a,
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> {
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub(super) sockets: Deferred<[SocketStorage<'a>; SOCKETS]>,
    pub(super) session_rx: [[u8; RX]; SESSIONS],
    pub(super) session_tx: [[u8; TX]; SESSIONS],
    pub(super) slots: [Slot<LINE>; SESSIONS],
    pub(super) scratch: [u8; TX],
    pub(super) busy_rx: [[u8; BUSY_RX]; BUSY_SOCKETS],
    pub(super) busy_tx: [[u8; MAX_ERROR_REPLY]; BUSY_SOCKETS],
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub(super) udp_rx_meta: heapless::Vec<udp::PacketMetadata, UDP_PACKETS>,
    pub(super) udp_rx: [u8; RX],
    #[cfg_attr(feature = "defmt", defmt(Debug2Format))]
    pub(super) udp_tx_meta: heapless::Vec<udp::PacketMetadata, UDP_PACKETS>,
    pub(super) udp_tx: [u8; TX],
    /// The connections the sockets hold, for the ingress filter.
    pub(super) held: [Connection; SOCKETS],
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> fmt::Debug for ServerResources<'_, SESSIONS, SOCKETS, RX, TX, LINE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerResources")
            .field("sessions", &SESSIONS)
            .field("sockets", &SOCKETS)
            .field("rx", &RX)
            .field("tx", &TX)
            .field("line", &LINE)
            .finish_non_exhaustive()
    }
}

impl<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> Default for ServerResources<'_, SESSIONS, SOCKETS, RX, TX, LINE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
    'a,
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
> ServerResources<'a, SESSIONS, SOCKETS, RX, TX, LINE>
{
    /// Empty resources, usable in a `static`.
    ///
    /// ```
    /// let resources = reversal_core::ServerResources::<'_, 1, 3, 128, 128, 64>::new();
    /// ```
    pub const fn new() -> Self {
        ServerResources {
            sockets: Deferred::Empty,
            session_rx: [[0; RX]; SESSIONS],
            session_tx: [[0; TX]; SESSIONS],
            slots: [const { Slot::new() }; SESSIONS],
            scratch: [0; TX],
            busy_rx: [[0; BUSY_RX]; BUSY_SOCKETS],
            busy_tx: [[0; MAX_ERROR_REPLY]; BUSY_SOCKETS],
            udp_rx_meta: heapless::Vec::new(),
            udp_rx: [0; RX],
            udp_tx_meta: heapless::Vec::new(),
            udp_tx: [0; TX],
            held: [Connection::NONE; SOCKETS],
        }
    }
}

/// A value filled in at run time whose empty state is all zero bytes.
///
/// smoltcp's empty socket slot has non-zero bytes (an enum niche), which
/// would put a whole `static ServerResources` into `.data`, copied from
/// flash. With an explicit tag and no niche, `Empty` is zero and the static
/// stays in `.bss`.
#[derive(Debug)]
#[repr(C, u8)]
pub(super) enum Deferred<T> {
    Empty,
    Ready(T),
}

impl<T> Deferred<T> {
    pub(super) fn insert(&mut self, value: T) -> &mut T {
        *self = Deferred::Ready(value);
        match self {
            Deferred::Ready(value) => value,
            Deferred::Empty => unreachable!("just filled"),
        }
    }
}

/// Fills `slots` up to its capacity with `empty()` (a fresh server's slots).
pub(super) fn fill<T, const N: usize>(slots: &mut heapless::Vec<T, N>, empty: impl Fn() -> T) {
    slots.clear();
    while slots.push(empty()).is_ok() {}
}
