//! How the server listens and behaves, and why a configuration is refused.

use core::fmt;

use smoltcp::time::Duration;

use crate::listener::ListenerConfig;
use crate::session::{self, SessionConfig};

/// How the server listens and behaves.
///
/// It can grow: build it with [`new`](Self::new) and the `with_*`
/// methods (all `const`), or assign its fields.
///
/// ```
/// use reversal_core::ServerConfig;
///
/// const CONFIG: ServerConfig = ServerConfig::new(4, 512).with_port(7).with_udp_port(None);
/// assert_eq!((CONFIG.port, CONFIG.udp_port, CONFIG.session.max_line), (7, None, 512));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ServerConfig {
    /// TCP port (default 8888).
    pub port: u16,
    /// UDP port (default: the TCP port); `None` switches UDP off.
    pub udp_port: Option<u16>,
    /// Concurrent sessions served; at most the resources' `sessions`.
    pub sessions: usize,
    /// Behaviour of every session.
    pub session: SessionConfig,
    /// Handshake timeout (smoltcp's TCP timeout on a listening socket): a
    /// half-open connection that goes silent this long loses its slot. Open
    /// sessions are not subject to it (smoltcp's zero-window probes back off
    /// past any short timeout); a dead peer there is found by the idle timeout.
    pub tcp_timeout: Duration,
    /// Once the server has sent its FIN, how long the peer has to finish the
    /// close before the socket is reset and reused; also how long an idle
    /// session gets to deliver its `ERR idle-timeout`, and a busy socket its
    /// `ERR busy` and FIN. While other replies
    /// are still unacknowledged the idle timeout applies instead, counted
    /// from the last reply the peer acknowledged.
    pub close_timeout: Duration,
    /// Socket slots kept for the caller's own sockets (a DHCP client, DNS),
    /// added with [`Server::add_socket`](super::Server::add_socket); taken
    /// from the resources' spare sockets, which must keep at least one for
    /// a busy socket. Default 0.
    pub caller_sockets: usize,
    /// How connections are admitted while every session is taken: the
    /// admission wait before `ERR busy`, the grace of unproven half-open
    /// handshakes, and what a full backlog does (see [`crate::listener`]).
    /// The backlog's size is part of the resources' [`Capacity`](super::Capacity).
    pub listener: ListenerConfig,
}

/// The port the seed's `thread_server` uses.
pub const DEFAULT_PORT: u16 = 8888;

impl ServerConfig {
    /// Port 8888 for TCP and UDP, `sessions` sessions with lines up to
    /// `max_line` bytes, a 10 s handshake timeout and a 30 s close timeout
    /// (room for three backed-off retransmissions of a lost FIN).
    ///
    /// ```
    /// let config = reversal_core::ServerConfig::new(3, 512);
    /// assert_eq!((config.port, config.udp_port), (8888, Some(8888)));
    /// ```
    pub const fn new(sessions: usize, max_line: usize) -> Self {
        ServerConfig {
            port: DEFAULT_PORT,
            udp_port: Some(DEFAULT_PORT),
            sessions,
            session: SessionConfig::new(max_line),
            tcp_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(30),
            caller_sockets: 0,
            listener: ListenerConfig::new(),
        }
    }

    /// With TCP on `port`; the UDP port stays as it is.
    ///
    /// ```
    /// let config = reversal_core::ServerConfig::new(3, 512).with_port(7);
    /// assert_eq!((config.port, config.udp_port), (7, Some(8888)));
    /// ```
    #[must_use]
    pub const fn with_port(self, port: u16) -> Self {
        ServerConfig { port, ..self }
    }

    /// With UDP on `port`, or (`None`) without UDP.
    ///
    /// ```
    /// let config = reversal_core::ServerConfig::new(3, 512).with_udp_port(None);
    /// assert_eq!(config.udp_port, None);
    /// ```
    #[must_use]
    pub const fn with_udp_port(self, port: Option<u16>) -> Self {
        ServerConfig {
            udp_port: port,
            ..self
        }
    }

    /// With `session` for every session.
    ///
    /// ```
    /// use reversal_core::{Mode, ServerConfig, SessionConfig};
    ///
    /// let config = ServerConfig::new(3, 512).with_session(SessionConfig::new(80).with_mode(Mode::Bytes));
    /// assert_eq!((config.session.max_line, config.session.mode), (80, Mode::Bytes));
    /// ```
    #[must_use]
    pub const fn with_session(self, session: SessionConfig) -> Self {
        ServerConfig { session, ..self }
    }

    /// With a handshake timeout of `timeout`.
    ///
    /// ```
    /// use smoltcp::time::Duration;
    /// let config = reversal_core::ServerConfig::new(3, 512).with_tcp_timeout(Duration::from_secs(5));
    /// assert_eq!(config.tcp_timeout, Duration::from_secs(5));
    /// ```
    #[must_use]
    pub const fn with_tcp_timeout(self, timeout: Duration) -> Self {
        ServerConfig {
            tcp_timeout: timeout,
            ..self
        }
    }

    /// With a close timeout of `timeout`.
    ///
    /// ```
    /// use smoltcp::time::Duration;
    /// let config = reversal_core::ServerConfig::new(3, 512).with_close_timeout(Duration::from_secs(60));
    /// assert_eq!(config.close_timeout, Duration::from_secs(60));
    /// ```
    #[must_use]
    pub const fn with_close_timeout(self, timeout: Duration) -> Self {
        ServerConfig {
            close_timeout: timeout,
            ..self
        }
    }

    /// With `count` socket slots kept for the caller's own sockets.
    ///
    /// ```
    /// let config = reversal_core::ServerConfig::new(3, 512).with_caller_sockets(1);
    /// assert_eq!(config.caller_sockets, 1);
    /// ```
    #[must_use]
    pub const fn with_caller_sockets(self, count: usize) -> Self {
        ServerConfig {
            caller_sockets: count,
            ..self
        }
    }

    /// With `listener` for admitting connections.
    ///
    /// ```
    /// use reversal_core::ServerConfig;
    /// use reversal_core::listener::ListenerConfig;
    /// use smoltcp::time::Duration;
    ///
    /// let admission = ListenerConfig::new().with_admission_wait(Duration::from_millis(200));
    /// let config = ServerConfig::new(3, 512).with_listener(admission);
    /// assert_eq!(config.listener.admission_wait, Duration::from_millis(200));
    /// ```
    #[must_use]
    pub const fn with_listener(self, listener: ListenerConfig) -> Self {
        ServerConfig { listener, ..self }
    }
}

/// A server configuration that does not fit the resources or cannot work.
///
/// ```
/// use reversal_core::server::ConfigError;
/// assert!(ConfigError::Sessions { max: 4 }.to_string().contains("1 to 4"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// A port is 0.
    Port,
    /// `sessions` is 0 or more than the resources hold.
    Sessions {
        /// The most sessions these resources can serve.
        max: usize,
    },
    /// The resources' spare sockets cannot hold the caller's sockets and
    /// at least one busy socket.
    SpareSockets {
        /// Spare sockets needed: the caller's and one busy socket.
        needed: usize,
        /// The resources' spare sockets.
        capacity: usize,
    },
    /// The session configuration does not fit the line buffer.
    Session(session::ConfigError),
    /// UDP is on but the resources have no UDP reply socket.
    UdpReplySockets,
    /// The send buffer cannot hold the largest reply.
    SendBuffer {
        /// Bytes the largest reply needs.
        needed: usize,
        /// The send buffer size (the resources' `tx_buffer`).
        capacity: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Port => f.write_str("port 0 is not a port a client can reach"),
            ConfigError::Sessions { max } => write!(f, "sessions must be 1 to {max}"),
            ConfigError::SpareSockets { needed, capacity } => write!(
                f,
                "{capacity} spare sockets cannot hold the caller's sockets and a busy socket: {needed} needed"
            ),
            ConfigError::UdpReplySockets => {
                f.write_str("UDP needs at least one UDP reply socket in the resources")
            }
            ConfigError::Session(e) => e.fmt(f),
            ConfigError::SendBuffer { needed, capacity } => write!(
                f,
                "send buffer of {capacity} bytes cannot hold a reply of {needed} bytes: lower the maximum line length"
            ),
        }
    }
}

impl From<session::ConfigError> for ConfigError {
    fn from(e: session::ConfigError) -> Self {
        ConfigError::Session(e)
    }
}
