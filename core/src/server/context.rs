//! What servicing a socket reads from the server and counts back.

use smoltcp::time::Instant;

use super::config::ServerConfig;
use super::counters::Counters;
use crate::ingress::WriteEnds;

/// One pass over the sockets: the time, the configuration, the scratch
/// space replies are built in, and the counters the sockets add to.
#[derive(Debug)]
pub(super) struct Context<'c> {
    pub(super) now: Instant,
    pub(super) config: &'c ServerConfig,
    pub(super) shutting_down: bool,
    /// As large as a session's send buffer: one batch of replies, or one
    /// UDP answer.
    pub(super) scratch: &'c mut [u8],
    /// Counters of finished sessions plus server-level events.
    pub(super) totals: &'c mut Counters,
    /// Where each session's client ended its writes.
    pub(super) write_ends: WriteEnds<'c>,
}
