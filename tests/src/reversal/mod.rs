//! Scenario support for the reversal server: the core's [`Server`] as a
//! [`Party`], and clients that hold conversations through the core's
//! non-blocking [`LineClient`].
//!
//! - A [`ServerParty`] owns a [`Server`], its smoltcp `Interface` and the
//!   [`Port`] it runs on. Each poll runs the server once, so it answers, and
//!   its timers (idle flush, idle timeout, close timeout) fire, in virtual
//!   time.
//! - A [`ClientParty`] is a [`Host`] with any number of
//!   [`Conversation`]s: one TCP connection each, driven by a [`Script`] of
//!   steps (send bytes, wait, close) while every reply line is collected
//!   with the virtual time it arrived.
//! - A [`SeedClient`] is the lecture's own client: a message with no
//!   newline, then wait for the answer.
//! - A [`Network`] puts them together: a server and any number of client
//!   hosts on one segment, with helpers to hold a conversation and run
//!   until it has its replies or has ended. Most tests start here.
//!
//! Misbehaving clients (ones that never read, reset, or vanish) are best
//! written with raw smoltcp sockets on a plain [`Host`]
//! ([`Network::raw_client`]).
//!
//! # Example
//!
//! A server with two sessions answers a client that sends two lines, one of
//! them with CR LF, then half-closes.
//!
//! ```
//! use reversal_core::{Capacity, HeapResources, ServerConfig};
//! use reversal_sim::reversal::{ClientParty, Script, ServerParty};
//! use reversal_sim::{Host, PortConfig, Sim};
//! use smoltcp::time::Duration;
//! use smoltcp::wire::{IpAddress, IpCidr};
//!
//! let mut sim = Sim::new(1);
//! // The server borrows its memory for as long as it lives: leak it.
//! let capacity = Capacity::new(2, 1024, 128).with_spare_sockets(1);
//! let resources = Box::leak(Box::new(HeapResources::new(capacity)));
//! let server_address = IpCidr::new(IpAddress::v4(10, 0, 0, 1), 24);
//! let server = ServerParty::new(
//!     sim.attach(PortConfig::default()),
//!     server_address,
//!     sim.now(),
//!     ServerConfig::new(2, 128),
//!     resources,
//! )
//! .unwrap();
//! let server = sim.add(server);
//!
//! let host = Host::new(
//!     sim.attach(PortConfig::default()),
//!     &[IpCidr::new(IpAddress::v4(10, 0, 0, 2), 24)],
//!     sim.now(),
//! );
//! let mut client = ClientParty::new(host);
//! let script = Script::new().send_line("hello").send("각👍🏽\r\n").close();
//! let talk = client.connect((server_address.address(), 8888), 40_000, script).unwrap();
//! let client = sim.add(client);
//!
//! sim.run_until(Duration::from_secs(10), |sim| sim[client].conversation(talk).is_ended())
//!     .unwrap();
//! let talk = sim[client].conversation(talk);
//! assert_eq!(talk.reply_text(), ["olleh\n", "👍🏽각\r\n"]);
//! assert!(!talk.was_reset());
//! assert_eq!(sim[server].counters().lines, 2);
//! ```

#[cfg(doc)]
use crate::{Host, Party, Port};
#[cfg(doc)]
use reversal_core::{Server, client::LineClient};

mod client;
mod network;
mod script;
mod seed_client;
mod server;

pub use client::{
    CONVERSATION_BUFFER, ClientParty, Conversation, ConversationError, ConversationId,
    REPLY_CAPACITY, Reply,
};
pub use network::{Network, Talk};
pub use script::Script;
pub use seed_client::{Answer, SeedClient};
pub use server::ServerParty;
