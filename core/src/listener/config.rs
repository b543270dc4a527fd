//! The listener's knobs.

use core::fmt;

use smoltcp::time::Duration;

/// What becomes of an attempt that gives way to a newer one when the
/// backlog is full.
///
/// ```
/// use reversal_core::listener::WhenFull;
/// assert_eq!(WhenFull::default(), WhenFull::Drop);
/// assert_eq!(WhenFull::Reset.to_string(), "reset");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WhenFull {
    /// Forgotten without a word, as Linux drops a SYN its full queue cannot
    /// take: the client sends its SYN again after its retransmission
    /// timeout (1 s, then 3 s, 7 s, ... on Linux) and queues again. No
    /// client is refused because a burst came at once. The default.
    #[default]
    Drop,
    /// Refused with a RST at once, as a stack without a backlog answers:
    /// the client sees "connection refused" instead of waiting.
    Reset,
}

impl fmt::Display for WhenFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WhenFull::Drop => "drop",
            WhenFull::Reset => "reset",
        })
    }
}

/// How a [`Listener`](super::Listener) admits connections.
///
/// It can grow: build it with [`new`](Self::new) and the `with_*` methods
/// (all `const`), or assign its fields.
///
/// ```
/// use reversal_core::listener::{ListenerConfig, WhenFull};
/// use smoltcp::time::Duration;
///
/// const CONFIG: ListenerConfig = ListenerConfig::new()
///     .with_admission_wait(Duration::from_millis(500))
///     .with_when_full(WhenFull::Reset);
/// assert_eq!(CONFIG.half_open_grace, ListenerConfig::new().half_open_grace);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ListenerConfig {
    /// How long an attempt waits in the backlog for a serving socket
    /// before a refusing socket may take it (the reversal server's busy
    /// sockets, which answer `ERR busy`). Without refusing sockets an
    /// attempt waits until a serving socket takes it or it gives way to
    /// newer ones. Default 1 s (BENCHMARKS.md, "Admission"): three clients
    /// per session churning were all served with any wait from 20 ms up on
    /// a clean link; over links losing 5 % of their frames, where a closing
    /// session may wait out a 1 s retransmission, the share served grows
    /// with the wait (61 % with none, 75 % at 1 s, 85 % at 2 s), while every
    /// client of a burst waits that long for its refusal. A second covers
    /// one retransmission and is well inside any client's connect timeout.
    pub admission_wait: Duration,
    /// How long a half-open handshake of a peer that has not proved
    /// itself may hold a socket while a proven peer's attempt waits for
    /// one. A real client on the link completes its handshake in one round
    /// trip, or proves itself by answering the ARP the SYN-ACK needs; a
    /// forged SYN does neither. Default 500 ms: a new on-link client gets a
    /// socket within it however many silent SYNs hold them (0.50 s after
    /// 100 of them in BENCHMARKS.md, "Admission"), and a real handshake
    /// that cannot prove itself (a client behind a gateway) gets that long.
    pub half_open_grace: Duration,
    /// What becomes of an attempt that gives way when the backlog is full.
    pub when_full: WhenFull,
}

impl ListenerConfig {
    /// The defaults: a 1 s admission wait, a 500 ms grace for unproven
    /// half-open handshakes, and [`WhenFull::Drop`].
    ///
    /// ```
    /// use reversal_core::listener::ListenerConfig;
    /// use smoltcp::time::Duration;
    /// assert_eq!(ListenerConfig::new().admission_wait, Duration::from_secs(1));
    /// ```
    pub const fn new() -> Self {
        ListenerConfig {
            admission_wait: Duration::from_secs(1),
            half_open_grace: Duration::from_millis(500),
            when_full: WhenFull::Drop,
        }
    }

    /// With an admission wait of `wait`.
    ///
    /// ```
    /// use reversal_core::listener::ListenerConfig;
    /// use smoltcp::time::Duration;
    /// let config = ListenerConfig::new().with_admission_wait(Duration::ZERO);
    /// assert_eq!(config.admission_wait, Duration::ZERO);
    /// ```
    #[must_use]
    pub const fn with_admission_wait(self, wait: Duration) -> Self {
        ListenerConfig {
            admission_wait: wait,
            ..self
        }
    }

    /// With a grace of `grace` for unproven half-open handshakes.
    ///
    /// ```
    /// use reversal_core::listener::ListenerConfig;
    /// use smoltcp::time::Duration;
    /// let config = ListenerConfig::new().with_half_open_grace(Duration::from_secs(2));
    /// assert_eq!(config.half_open_grace, Duration::from_secs(2));
    /// ```
    #[must_use]
    pub const fn with_half_open_grace(self, grace: Duration) -> Self {
        ListenerConfig {
            half_open_grace: grace,
            ..self
        }
    }

    /// With `policy` for attempts that give way.
    ///
    /// ```
    /// use reversal_core::listener::{ListenerConfig, WhenFull};
    /// let config = ListenerConfig::new().with_when_full(WhenFull::Reset);
    /// assert_eq!(config.when_full, WhenFull::Reset);
    /// ```
    #[must_use]
    pub const fn with_when_full(self, policy: WhenFull) -> Self {
        ListenerConfig {
            when_full: policy,
            ..self
        }
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self::new()
    }
}
