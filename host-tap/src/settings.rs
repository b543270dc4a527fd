//! What a server on the TAP runs with: the memory sizes, the defaults of
//! `host-tap`'s command line, and the checked settings that the
//! command line produces and the event loop consumes.
//!
//! `tap-echo` and `reversal-bench` take their sizes and defaults from here
//! too, so that they measure against the same figures.
//!
//! ```
//! use host_tap::settings::{DEFAULT_MAC, NetworkSettings, parse_unicast_mac};
//!
//! let network = NetworkSettings {
//!     mac: parse_unicast_mac(DEFAULT_MAC).unwrap(),
//!     addresses: vec!["192.168.69.1/24".parse().unwrap()],
//!     ipv4_gateway: None,
//!     ipv6_gateway: None,
//! };
//! assert_eq!(network.mac.0, [2, 0, 0, 0, 0, 1]);
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use reversal_core::{Capacity, ServerConfig, SessionConfig};
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address, Ipv6Address};

use crate::tap::TapOptions;

/// Most sessions a server can be started with.
pub const MAX_SESSIONS: usize = 1024;
/// Each session's TCP receive and send buffer when no `--socket-buffer` is
/// given, in bytes: the largest (a window of 64 KiB carries one segment of
/// 64 KiB each way with segmentation offload).
pub const DEFAULT_SOCKET_BUFFER: usize = MAX_SOCKET_BUFFER;
/// The largest `--socket-buffer`: 64 KiB - 1, the largest window without
/// TCP window scaling. smoltcp 0.14 rounds a scaled window down, so its
/// right edge moves left under segments in flight, and then ignores the
/// acknowledgements of segments beyond its zero window: a client that
/// reads in bursts (Linux, `reversal-bench`'s bulk) can stall for good
/// (`tests/tests/large_windows.rs`, BENCHMARKS.md).
pub const MAX_SOCKET_BUFFER: usize = 64 * 1024 - 1;
/// The largest `--max-line`.
pub const LINE_CAPACITY: usize = 8 * 1024;
/// Addresses smoltcp's interface holds (feature `iface-max-addr-count-4`).
pub const MAX_ADDRESSES: usize = 4;
// The largest reply (a full line and CR LF) must fit the default send
// buffer, or the defaults would refuse the largest `--max-line`.
const _: () = assert!(SessionConfig::new(LINE_CAPACITY).max_reply_len() <= DEFAULT_SOCKET_BUFFER);

/// UDP reply sockets: replies to this many senders whose addresses have not
/// resolved yet may wait for them at once (the core's default is one; each
/// costs a socket slot and a send buffer as large as a session's, whose pages
/// the kernel commits only as far as replies fill them).
pub const UDP_REPLY_SOCKETS: usize = 4;

/// The memory a server with `config` runs in, allocated once at start: a
/// slot per session, each with receive and send buffers of `socket_buffer`
/// bytes and a line buffer as long as the longest line, [`UDP_REPLY_SOCKETS`],
/// a listen backlog of [`BACKLOG_PER_SESSION`] connections per session, and
/// as many proven peers as sessions.
///
/// ```
/// let config = reversal_core::ServerConfig::new(64, 1024);
/// let capacity = host_tap::settings::capacity(&config, 64 * 1024);
/// assert_eq!((capacity.sessions, capacity.line_buffer), (64, 1024));
/// assert_eq!((capacity.rx_buffer, capacity.tx_buffer), (65536, 65536));
/// assert_eq!(capacity.udp_reply_sockets, host_tap::settings::UDP_REPLY_SOCKETS);
/// assert_eq!(capacity.backlog, 256);
/// ```
pub fn capacity(config: &ServerConfig, socket_buffer: usize) -> Capacity {
    let capacity = Capacity::new(config.sessions, socket_buffer, config.session.max_line)
        .with_udp_reply_sockets(UDP_REPLY_SOCKETS);
    capacity
        .with_backlog(capacity.backlog.max(BACKLOG_PER_SESSION * config.sessions))
        .with_known_peers(capacity.known_peers.max(config.sessions))
}

/// Connections the listen backlog holds per session: a burst of four
/// times the sessions, while every one is taken, waits without a SYN
/// dropped.
pub const BACKLOG_PER_SESSION: usize = 4;

/// The TAP attached to when no `--tap` is given.
pub const DEFAULT_TAP: &str = "tap0";
/// The address served when no `--address` is given.
pub const DEFAULT_ADDRESS: &str = "192.168.69.1/24";
/// Our Ethernet address when no `--mac` is given (locally administered).
pub const DEFAULT_MAC: &str = "02:00:00:00:00:01";
/// Concurrent sessions when no `--sessions` is given.
pub const DEFAULT_SESSIONS: usize = 64;
/// Longest line when no `--max-line` is given, terminator excluded.
pub const DEFAULT_MAX_LINE: usize = 1024;

/// Where the TAP comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapSettings {
    /// Interface name (a `tap%d` template with `create`).
    pub name: String,
    /// Create the interface instead of attaching to an existing one.
    pub create: bool,
    /// Addresses of the kernel's side of a created TAP.
    pub host_addresses: Vec<(IpAddr, u8)>,
    /// What to ask of the TAP (offloads).
    pub options: TapOptions,
}

/// smoltcp's side of the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Our Ethernet address.
    pub mac: EthernetAddress,
    /// Our addresses (at most [`MAX_ADDRESSES`]).
    pub addresses: Vec<IpCidr>,
    /// The IPv4 default gateway.
    pub ipv4_gateway: Option<Ipv4Address>,
    /// The IPv6 default gateway.
    pub ipv6_gateway: Option<Ipv6Address>,
}

/// Everything `host-tap` needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The TAP device.
    pub tap: TapSettings,
    /// Our side of the network.
    pub network: NetworkSettings,
    /// The server.
    pub server: ServerConfig,
    /// Each session's TCP receive and send buffer, in bytes.
    pub socket_buffer: usize,
    /// How long a shutdown may wait for open sessions.
    pub shutdown_timeout: Duration,
    /// Capture file.
    pub pcap: Option<PathBuf>,
}

/// Parses a size in bytes: a number, optionally followed by `K`/`KiB` or
/// `M`/`MiB` (powers of 1024). Written here: one flag, ten lines, where a
/// crate would bring SI units and fractions it does not need.
///
/// ```
/// use host_tap::settings::parse_bytes;
///
/// assert_eq!(parse_bytes("65536"), Ok(65536));
/// assert_eq!(parse_bytes("256K"), Ok(256 * 1024));
/// assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
/// assert!(parse_bytes("1.5M").is_err());
/// ```
///
/// # Errors
///
/// The text is not such a size, or it overflows.
pub fn parse_bytes(text: &str) -> Result<usize, &'static str> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = match &text[digits.len()..] {
        "" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        _ => return Err("use a number of bytes, optionally with K or M (KiB, MiB)"),
    };
    let number: usize = digits
        .parse()
        .map_err(|_| "use a number of bytes, optionally with K or M (KiB, MiB)")?;
    number.checked_mul(scale).ok_or("too large")
}

/// Parses an Ethernet address a host can have, in smoltcp's notation (six
/// hex octets joined by `:` or by `-`).
///
/// ```
/// use host_tap::settings::parse_unicast_mac;
///
/// assert_eq!(parse_unicast_mac("02-AB-cd-00-00-09").unwrap().0, [2, 0xab, 0xcd, 0, 0, 9]);
/// assert!(parse_unicast_mac("02:00:00:00:00").is_err());
/// assert!(parse_unicast_mac("ff:ff:ff:ff:ff:ff").is_err());
/// ```
///
/// # Errors
///
/// What is wrong with the text, in words: it is not an Ethernet address, or
/// it is a multicast or broadcast one.
pub fn parse_unicast_mac(text: &str) -> Result<EthernetAddress, &'static str> {
    let mac: EthernetAddress = text
        .parse()
        .map_err(|()| "expected six hex octets, e.g. 02:00:00:00:00:01")?;
    // smoltcp panics on an interface MAC that is not unicast.
    if !mac.is_unicast() {
        return Err(
            "a multicast or broadcast address cannot be a host's (the first octet must be even)",
        );
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_k_and_m_and_nothing_else() {
        assert_eq!(parse_bytes("16k"), Ok(16 * 1024));
        assert_eq!(parse_bytes("2M"), Ok(2 << 20));
        for bad in [
            "",
            "K",
            "12 K",
            "12G",
            "-1",
            "1.5M",
            "99999999999999999999M",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults_are_valid_settings() {
        assert!(parse_unicast_mac(DEFAULT_MAC).is_ok());
        assert!(DEFAULT_ADDRESS.parse::<IpCidr>().is_ok());
        assert!((1..=MAX_SESSIONS).contains(&DEFAULT_SESSIONS));
        assert!((1..=LINE_CAPACITY).contains(&DEFAULT_MAX_LINE));
    }

    #[test]
    fn malformed_macs_are_refused() {
        for mac in [
            "02:00:00:00:00",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:01:00",
            "02:00-00:00:00:01",
            "002:00:00:00:00:01",
        ] {
            assert!(parse_unicast_mac(mac).is_err(), "{mac}");
        }
    }
}
