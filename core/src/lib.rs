//! A `no_std`, allocation-free line-reversal server core over smoltcp.
//!
//! Every line a client sends is answered with its reversal (by grapheme
//! clusters, scalar values or bytes), over TCP and UDP, with the behaviour
//! contract of the project's SPEC: framing at LF with CR LF kept, `ERR` lines
//! for too-long and invalid input, busy and idle-timeout, backpressure that
//! never loses a reply, and no growth under any input.
//!
//! Layers, from the bottom:
//! - [`reverse`]: reversal of one message into a caller's buffer;
//! - [`reply`]: the `ERR` replies;
//! - [`session`]: one conversation as a pure state machine driven by `now`;
//! - [`datagram`]: one UDP message and the no-amplification rule;
//! - [`server`]: the thin smoltcp glue, all memory handed in by the caller;
//! - [`client`]: a non-blocking (`nb`) line client for tests and boards.
#![cfg_attr(not(test), no_std)]

#[cfg(feature = "alloc")]
extern crate alloc;
// Lint policy: `[workspace.lints]` in the top-level Cargo.toml (no `unsafe`,
// every public item documented, curated clippy lints).

pub(crate) mod fmt;
mod ingress;

pub mod client;
pub mod datagram;
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
