//! A `no_std`, allocation-free line-reversal server core over smoltcp.
//!
//! Every line a client sends is answered with its reversal (by grapheme
//! clusters, scalar values or bytes), over TCP and UDP, with the behaviour
//! contract of the project's SPEC: framing at LF with CR LF kept, `ERR` lines
//! for too-long and invalid input, busy and idle-timeout, backpressure that
//! never loses a reply, and no growth under any input.
//!
//! Layers, from the bottom; the first four know nothing of sockets:
//! - [`reverse`]: reversal of one message into a caller's buffer;
//! - [`reply`]: the `ERR` replies;
//! - [`session`]: one conversation as a pure state machine driven by `now`;
//! - [`datagram`]: one UDP message and the no-amplification rule;
//! - `ingress` (crate-private): every incoming frame at the device level,
//!   before smoltcp takes it in; it keeps repeated SYNs of connections a
//!   socket already holds away from the listeners, and records where each
//!   session's client ended its writes (PSH), the only places where the
//!   idle flush answers a partial line;
//! - [`listener`]: a listen backlog for any smoltcp server, also at the
//!   device level: SYNs that find no free socket wait instead of being
//!   reset, forged half-open handshakes give way to real clients;
//! - [`server`]: the sessions on smoltcp sockets, one file per job: session
//!   slots and their phases, busy sockets, UDP, the poll loop (with a
//!   [`Listener`](listener::Listener) in front of its sessions), and the
//!   memory the caller lends, sized at run time ([`StaticResources`] in a
//!   board's `static`, `HeapResources` on a host);
//! - [`client`]: a non-blocking (`nb`) line client for tests and boards.
//!
//! Features: `graphemes` (default; the Unicode tables), `ipv6` (default),
//! `log` or `defmt` for logging, and `alloc` for `HeapResources`; without
//! `alloc` the core never allocates.
#![cfg_attr(not(test), no_std)]
// Lint policy: `[workspace.lints]` in the top-level Cargo.toml (no `unsafe`,
// every public item documented, curated clippy lints).

#[cfg(feature = "alloc")]
extern crate alloc;

pub(crate) mod fmt;
mod ingress;

pub mod client;
pub mod datagram;
pub mod listener;
pub mod reply;
pub mod reverse;
pub mod server;
pub mod session;

pub use reply::ErrorCode;
pub use reverse::Mode;

#[cfg(feature = "alloc")]
pub use server::HeapResources;
pub use server::{Capacity, Counters, Server, ServerConfig, ServerResources, StaticResources};
pub use session::{Progress, Session, SessionConfig, SessionStats};
