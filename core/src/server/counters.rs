//! What the server has done since it started.

use core::fmt;

use crate::listener::ListenerCounts;
use crate::reply::ErrorCode;
use crate::session::SessionStats;

/// Error replies sent, by code.
///
/// ```
/// let errors = reversal_core::server::ErrorCounts::default();
/// assert_eq!(errors.busy, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorCounts {
    /// `ERR too-long` (TCP and UDP).
    pub too_long: u64,
    /// `ERR utf8` (TCP and UDP).
    pub utf8: u64,
    /// `ERR busy`: connections rejected because every session was taken.
    pub busy: u64,
    /// Sessions closed by the idle timeout.
    pub idle_timeout: u64,
}

/// What the server has done since it started.
///
/// ```
/// let counters = reversal_core::Counters::default();
/// assert!(counters.to_string().contains("connections 0"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// TCP sessions opened.
    pub connections: u64,
    /// Messages answered over TCP (reversals and errors).
    pub lines: u64,
    /// Bytes read from TCP clients.
    pub bytes_in: u64,
    /// Reply bytes queued to TCP clients.
    pub bytes_out: u64,
    /// Error replies by code.
    pub errors: ErrorCounts,
    /// UDP datagrams answered or dropped.
    pub udp_datagrams: u64,
    /// UDP datagrams not answered: an error reply larger than the datagram
    /// (no amplification), no route to the sender, or a reply its sender's
    /// address did not resolve for: dropped after
    /// [`UDP_REPLY_TIMEOUT`](super::UDP_REPLY_TIMEOUT), or earlier to make
    /// room for the next datagram's reply when every UDP reply socket holds
    /// one that waits.
    pub udp_dropped: u64,
    /// What the listen backlog did: connections that waited for a session,
    /// attempts that gave way, half-open handshakes reclaimed.
    pub backlog: ListenerCounts,
}

impl ErrorCounts {
    pub(super) fn count(&mut self, code: ErrorCode) {
        match code {
            ErrorCode::TooLong => self.too_long += 1,
            ErrorCode::Utf8 => self.utf8 += 1,
            ErrorCode::Busy => self.busy += 1,
            ErrorCode::IdleTimeout => self.idle_timeout += 1,
        }
    }
}

impl Counters {
    pub(super) fn add_session(&mut self, stats: &SessionStats) {
        self.lines += stats.lines;
        self.bytes_in += stats.bytes_in;
        self.bytes_out += stats.bytes_out;
        self.errors.too_long += stats.too_long;
        self.errors.utf8 += stats.utf8;
        self.errors.idle_timeout += stats.idle_timeouts;
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.errors;
        write!(
            f,
            "connections {}, lines {}, bytes in {}, bytes out {}, errors too-long {} utf8 {} busy {} idle-timeout {}, udp datagrams {} dropped {}, backlog {}",
            self.connections,
            self.lines,
            self.bytes_in,
            self.bytes_out,
            e.too_long,
            e.utf8,
            e.busy,
            e.idle_timeout,
            self.udp_datagrams,
            self.udp_dropped,
            self.backlog
        )
    }
}
