//! The server every board runs, and all of its memory.
//!
//! 3 sessions with 1 KiB socket buffers and 512-byte lines, UDP (a
//! receiving socket and one reply socket), one busy socket, a listen
//! backlog for a burst of ten clients, and (with `dhcp`) a slot for the
//! DHCP client: about 18 KiB, all of it in one `static` in `.bss` (zero at
//! reset, so no copy in flash) that is never built on the stack (a run-time
//! construction once peaked at 25 KiB of stack).

use reversal_core::{Server, ServerConfig, StaticResources};
use static_cell::ConstStaticCell;

/// Concurrent TCP sessions; more connections wait in the backlog for one,
/// then get `ERR busy`.
pub const SESSIONS: usize = 3;
/// Sockets of the board's own beside the server's: the DHCP client.
pub const CALLER_SOCKETS: usize = if cfg!(feature = "dhcp") { 1 } else { 0 };
/// Session sockets, the server's busy sockets and UDP sockets (the
/// receiving one and the reply sockets), and the board's.
pub const SOCKETS: usize = SESSIONS + BUSY + 1 + UDP_REPLY_SOCKETS + CALLER_SOCKETS;
/// Longest line, terminator excluded.
pub const MAX_LINE: usize = 512;
/// Each session's TCP receive buffer (also the UDP receive buffer).
pub const RX_LEN: usize = 1024;
/// Each session's TCP send buffer: must hold the largest reply, a full line
/// with CR LF.
pub const TX_LEN: usize = 1024;
/// Connections the listen backlog keeps while every session is taken: a
/// burst of ten clients beyond the sessions waits whole.
pub const BACKLOG: usize = 10;
/// Clients remembered as proven, to let them in first under a SYN flood:
/// a board's clients are few (behind QEMU's user network, one address).
pub const KNOWN_PEERS: usize = 1;

/// UDP reply sockets: one, as the SPEC asks (a reply waiting for a
/// neighbour holds up no other).
pub const UDP_REPLY_SOCKETS: usize = 1;
/// Busy sockets: one, to tell clients beyond the sessions `ERR busy`.
pub const BUSY: usize = 1;

/// The server's memory, every size fixed at compile time.
pub type Resources = StaticResources<
    'static,
    SESSIONS,
    SOCKETS,
    RX_LEN,
    TX_LEN,
    MAX_LINE,
    UDP_REPLY_SOCKETS,
    BACKLOG,
    KNOWN_PEERS,
    BUSY,
>;

/// The server every board runs, over [`Resources`].
pub type BoardServer = Server<'static>;

static RESOURCES: ConstStaticCell<Resources> = ConstStaticCell::new(Resources::new());

/// The server's memory, taken once.
///
/// # Panics
///
/// If called twice.
pub fn take() -> &'static mut Resources {
    RESOURCES.take()
}

/// Port 8888 for TCP and UDP, [`SESSIONS`] sessions, lines up to
/// [`MAX_LINE`] bytes, [`CALLER_SOCKETS`] slots for the board.
pub const fn server_config() -> ServerConfig {
    ServerConfig::new(SESSIONS, MAX_LINE).with_caller_sockets(CALLER_SOCKETS)
}
