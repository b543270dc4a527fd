//! Every incoming frame, at the device level, before smoltcp takes it in.
//!
//! smoltcp hands an incoming segment to the first socket in the set that
//! accepts it, and keeps no state of its own between a socket and the wire.
//! What the server must know or decide about a segment before any socket
//! sees it happens here: [`Ingress`] wraps the caller's `phy::Device` for
//! one batch of frames, parses each incoming frame that carries a TCP
//! segment and shows it to a filter, which passes it on or drops it.
//!
//! - [`Ingress`] (`device.rs`): the wrapper, a `phy::Device` itself;
//! - [`Segment`](segment::Segment) (`segment.rs`): the few fields of a TCP
//!   segment a filter looks at, parsed with smoltcp's wire types;
//! - [`Filter`](filter::Filter) (`filter.rs`): what a filter is, and its
//!   verdict on a segment;
//! - [`HeldConnections`] (`held.rs`): keeps repeated SYNs of connections a
//!   socket already holds away from the listeners;
//! - [`StreamMark`](mark::StreamMark) (`mark.rs`): where a segment starts
//!   its sender's byte stream (SYN) or ends one of its writes (PSH), read
//!   only from segments whose checksums hold;
//! - [`WriteEnds`] (`push.rs`): records, for each session socket's
//!   connection, where the sender's writes end, so that the idle flush
//!   answers a partial line only there and loss never splits a line. It
//!   runs after `HeldConnections` (a pair of filters runs in turn) and
//!   drops nothing.
//!
//! A filter owns its state, in memory the caller lends it, and the server
//! refreshes that state from its sockets before each batch. More
//! device-level work (another filter, more fields per segment) fits in
//! without changing the wrapper.

mod device;
mod filter;
mod held;
mod mark;
mod push;
mod segment;

pub(crate) use device::Ingress;
pub(crate) use held::HeldConnections;
pub(crate) use push::{Stream, WriteEnds};
pub(crate) use segment::{Connection, Segment};
