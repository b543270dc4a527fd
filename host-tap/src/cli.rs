//! The `host-tap` command line: clap's parsing, then the checks that turn the
//! text into a [`Settings`] or a [`SettingsError`] with its own exit code.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use host_tap::settings::{
    DEFAULT_ADDRESS, DEFAULT_MAC, DEFAULT_MAX_LINE, DEFAULT_SESSIONS, DEFAULT_SOCKET_BUFFER,
    DEFAULT_TAP, LINE_CAPACITY, MAX_ADDRESSES, MAX_SESSIONS, MAX_SOCKET_BUFFER, NetworkSettings,
    Settings, TapSettings, parse_bytes, parse_unicast_mac,
};
use host_tap::tap::TapOptions;
use reversal_core::listener::{ListenerConfig, WhenFull};
use reversal_core::session::DEFAULT_IDLE_FLUSH;
use reversal_core::{Mode, ServerConfig, SessionConfig};
use smoltcp::wire::{IpAddress, IpCidr, Ipv4Address, Ipv6Address};

use crate::exit::Exit;

/// The examples `--help` shows (the exit-code table follows them).
pub const EXAMPLES: &str = "\
Examples:
  # Once, as root: a network namespace of its own (keep TAPs out of the
  # machine's network), a TAP your user may open in it, and its kernel side
  sudo ip netns add rev
  sudo ip netns exec rev ip tuntap add name tap0 mode tap user $USER
  sudo ip netns exec rev ip addr add 192.168.69.100/24 dev tap0
  sudo ip netns exec rev ip link set tap0 up
  # Serves 192.168.69.1, TCP and UDP port 8888, as your user
  sudo ip netns exec rev sudo -u $USER host-tap
  # Another terminal: type a line, get it back reversed
  sudo ip netns exec rev nc 192.168.69.1 8888
  sudo ip netns exec rev reverse-client -i 192.168.69.1 -p 8888

  # As root in a fresh namespace, a TAP made for this run only (removed on
  # exit), IPv4 and IPv6
  sudo unshare --net host-tap --create-tap --tap tap1 \\
      --address 192.168.70.1/24 --host-address 192.168.70.100/24 \\
      --address fdaa::1/64 --host-address fdaa::100/64

  # Partial lines wait for their newline (or the end of input), even from
  # seed-style clients that send a message without one and wait
  host-tap --idle-flush off
  # A capture for Wireshark: tshark -r /tmp/host-tap.pcap
  host-tap --pcap /tmp/host-tap.pcap

SIGINT/SIGTERM: no new connections; open sessions get the replies to what they
sent (a partial line is answered as at end of input) and a FIN, for up to
--shutdown-timeout; then the counters are printed and host-tap exits 0.
A second signal stops at once.

Memory is fixed at start-up: each of the --sessions slots has a receive and a
send buffer of --socket-buffer bytes (default and largest 64 KiB - 1: larger
windows need TCP window scaling, which smoltcp 0.14 can stall) and a line
buffer of --max-line bytes; UDP has a receive buffer and four reply sockets
with a send buffer each of that size; the listen backlog has room for 4
connections per session waiting for one (--admission-wait).
The defaults reserve about 8.5 MiB, 1024 sessions about 131 MiB; the kernel
commits the pages as they are first written.

Offloads (--offload on, the default): TCP checksums and the cutting of TCP
segments are left to the kernel, through a virtio-net header on every
frame, as virtual NICs do; one TCP segment of up to 64 KiB crosses the TAP as
one frame while its MTU stays as it is. Whatever the kernel refuses is done in
smoltcp (logged once). --pcap records frames as they cross the TAP: with
offloads, TCP segments up to 64 KiB and TCP checksums left to the kernel;
--offload off for a capture of MTU-sized frames with every checksum.

Durations: 50ms, 300ms, 2s, 2m, 1h 30m; for timers `off` or 0 switches them off.
Logging: RUST_LOG=debug|info|warn (default info); one line per session open and close.
";

/// What a reply reverses, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Extended grapheme clusters: e + accent, flags, emoji with skin tone stay whole.
    Graphemes,
    /// Unicode scalar values, like Python's s[::-1].
    Chars,
    /// Raw bytes; any input, no UTF-8 check.
    Bytes,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Graphemes => Mode::Graphemes,
            ModeArg::Chars => Mode::Chars,
            ModeArg::Bytes => Mode::Bytes,
        }
    }
}

/// What becomes of a waiting connection that gives way to a newer one in a
/// full backlog, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BacklogFullArg {
    /// Forget it silently: the client sends its SYN again and queues again.
    Drop,
    /// Refuse it with a RST ("connection refused").
    Reset,
}

impl From<BacklogFullArg> for WhenFull {
    fn from(policy: BacklogFullArg) -> WhenFull {
        match policy {
            BacklogFullArg::Drop => WhenFull::Drop,
            BacklogFullArg::Reset => WhenFull::Reset,
        }
    }
}

/// A feature switched on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// A timer that can be switched off: `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer(pub Option<Duration>);

/// As [`parse_timer`] reads it: `off`, or a humantime duration.
impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(duration) => humantime::format_duration(duration).fmt(f),
        }
    }
}

/// `--idle-flush` when it is not given: the core's default.
fn default_idle_flush() -> Timer {
    Timer(Some(DEFAULT_IDLE_FLUSH.into()))
}

/// Parses `off`, `0`, or a humantime duration such as `50ms` or `2m`.
///
/// # Errors
///
/// The text is neither `off` nor a duration of at most [`MAX_DURATION`].
pub fn parse_timer(text: &str) -> Result<Timer, String> {
    if text == "off" {
        return Ok(Timer(None));
    }
    let duration = parse_duration(text)?;
    Ok(Timer(Some(duration).filter(|d| !d.is_zero())))
}

/// The longest duration accepted: a hundred years (of 365.25 days, as
/// humantime counts them), far from the overflow of a deadline computed from it.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

fn parse_size(text: &str) -> Result<usize, String> {
    parse_bytes(text).map_err(str::to_owned)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|error| format!("{error} (write e.g. 50ms, 5s, 2m)"))?;
    if duration > MAX_DURATION {
        return Err("longer than 100 years".to_owned());
    }
    Ok(duration)
}

/// Serve the line-reversal service on a Linux TAP device.
///
/// Every line a client sends over TCP is answered with its reversal; every
/// UDP datagram with one reversed datagram. smoltcp runs the TCP/IP stack in
/// one event loop with memory fixed at start-up; the kernel's side of the
/// TAP (or anything routed through it) is the client.
#[derive(Debug, Parser)]
#[command(name = "host-tap", version)]
pub struct Args {
    /// TAP device to attach to (create it first, see the examples; or use --create-tap).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TAP)]
    pub tap: String,

    /// Our address and prefix on the TAP's network, IPv4 or IPv6; repeat for more
    /// (up to 4) [default: 192.168.69.1/24].
    #[arg(long = "address", value_name = "CIDR")]
    pub addresses: Vec<String>,

    /// Default route for replies to hosts beyond the TAP's networks; at most one
    /// IPv4 and one IPv6 gateway.
    #[arg(long = "gateway", value_name = "IP")]
    pub gateways: Vec<String>,

    /// Our Ethernet address (unicast).
    #[arg(long, value_name = "MAC", default_value = DEFAULT_MAC)]
    pub mac: String,

    /// TCP port, as the seed's `thread_server -p 8888`.
    #[arg(short, long, value_name = "PORT", default_value_t = reversal_core::server::DEFAULT_PORT)]
    pub port: u16,

    /// UDP port [default: the TCP port].
    #[arg(long, value_name = "PORT", conflicts_with = "no_udp")]
    pub udp_port: Option<u16>,

    /// Serve TCP only.
    #[arg(long)]
    pub no_udp: bool,

    /// Concurrent sessions; one more client waits for one, then gets `ERR busy` (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SESSIONS)]
    pub sessions: usize,

    /// Longest line in bytes, terminator excluded; longer gets `ERR too-long` (1 to 8192).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE)]
    pub max_line: usize,

    /// What a reversal keeps whole.
    #[arg(long, value_enum, default_value_t = ModeArg::Graphemes)]
    pub mode: ModeArg,

    /// Each session's TCP receive and send buffer, e.g. 16K; it bounds the
    /// window each way. From --max-line + 2 to 65535 bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SOCKET_BUFFER, value_parser = parse_size)]
    pub socket_buffer: usize,

    /// Leave TCP checksums and TCP segmentation to the kernel (see below).
    #[arg(long, value_enum, value_name = "SWITCH", default_value_t = Switch::On)]
    pub offload: Switch,

    /// Close a session with `ERR idle-timeout` after this long with no bytes moved.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_timer)]
    pub idle_timeout: Timer,

    /// Answer a partial line (a message with no newline, as the seed's client
    /// sends) after this long with no new bytes, if the client's write ended
    /// there (PSH): a pause caused by loss never splits a line; `off` waits for
    /// the newline or the end of input.
    #[arg(long, value_name = "DURATION", default_value_t = default_idle_flush(), value_parser = parse_timer)]
    pub idle_flush: Timer,

    /// How long a connection that finds every session taken waits in the
    /// listen backlog for one before it is told `ERR busy` [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub admission_wait: Option<Duration>,

    /// When the listen backlog (4 connections per session) is full, the
    /// oldest waiting connection of a client that has not proved itself
    /// gives way: dropped silently (its client retries) or reset (refused).
    #[arg(long, value_enum, value_name = "POLICY", default_value_t = BacklogFullArg::Drop)]
    pub backlog_full: BacklogFullArg,

    /// How long a half-open handshake of a client that has not proved itself
    /// (no ARP, no completed handshake: a forged SYN) may hold a session
    /// while proven clients wait [default: 500ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub half_open_grace: Option<Duration>,

    /// On SIGINT/SIGTERM, how long open sessions get to receive their replies.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Write every frame in and out to this pcap file (tshark -r FILE).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Create the TAP (needs root); it is removed again on exit.
    #[arg(long)]
    pub create_tap: bool,

    /// With --create-tap: an address for the kernel's side of the TAP; repeatable.
    #[arg(long = "host-address", value_name = "CIDR", requires = "create_tap")]
    pub host_addresses: Vec<String>,
}

/// The command with its examples and exit-code table after the options.
pub fn command() -> clap::Command {
    Args::command().after_help(format!("{EXAMPLES}\n{}", Exit::table()))
}

/// Parses the process arguments; prints help, version or a usage error and
/// exits (code 0 or 2) as clap does.
pub fn parse() -> Args {
    let matches = command().get_matches();
    Args::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// A command-line value that clap accepted but that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    /// An address, CIDR, gateway or MAC that is not one.
    BadAddress {
        /// The flag, e.g. `--address`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// More `--address` values than smoltcp's interface holds.
    TooManyAddresses {
        /// How many were given.
        given: usize,
    },
    /// A port is 0.
    BadPort {
        /// The flag, `--port` or `--udp-port`.
        flag: &'static str,
    },
    /// `--sessions` out of range.
    BadSessions {
        /// The value given.
        given: usize,
    },
    /// `--max-line` out of range.
    BadMaxLine {
        /// The value given.
        given: usize,
    },
    /// `--socket-buffer` cannot hold the largest reply, or is too large.
    BadSocketBuffer {
        /// The value given.
        given: usize,
        /// The smallest that works with this `--max-line`.
        min: usize,
    },
}

impl SettingsError {
    /// The exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            SettingsError::BadAddress { .. } => Exit::BadAddress,
            SettingsError::TooManyAddresses { .. } => Exit::TooManyAddresses,
            SettingsError::BadPort { .. } => Exit::BadPort,
            SettingsError::BadSessions { .. } => Exit::BadSessions,
            SettingsError::BadMaxLine { .. } => Exit::BadMaxLine,
            SettingsError::BadSocketBuffer { .. } => Exit::BadSocketBuffer,
        }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::BadAddress {
                flag,
                value,
                reason,
            } => write!(f, "invalid {flag} {value:?}: {reason}"),
            SettingsError::TooManyAddresses { given } => write!(
                f,
                "{given} --address values given, but the interface holds at most {MAX_ADDRESSES}"
            ),
            SettingsError::BadPort { flag } => {
                write!(
                    f,
                    "{flag} 0 is not a port a client can reach: use 1 to 65535"
                )
            }
            SettingsError::BadSessions { given } => write!(
                f,
                "--sessions {given} is out of range: use 1 to {MAX_SESSIONS}"
            ),
            SettingsError::BadMaxLine { given } => write!(
                f,
                "--max-line {given} is out of range: use 1 to {LINE_CAPACITY} bytes"
            ),
            SettingsError::BadSocketBuffer { given, min } => write!(
                f,
                "--socket-buffer {given} is out of range: use {min} (the largest reply, \
                 --max-line + 2) to {MAX_SOCKET_BUFFER} bytes (a larger window needs TCP \
                 window scaling, which smoltcp 0.14 can stall)"
            ),
        }
    }
}

impl std::error::Error for SettingsError {}

impl Args {
    /// Checks every value and builds the settings.
    ///
    /// # Errors
    ///
    /// The first value that cannot work, as a [`SettingsError`].
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let addresses = if self.addresses.is_empty() {
            vec![DEFAULT_ADDRESS.to_owned()]
        } else {
            self.addresses.clone()
        };
        if addresses.len() > MAX_ADDRESSES {
            return Err(SettingsError::TooManyAddresses {
                given: addresses.len(),
            });
        }
        let addresses = addresses
            .iter()
            .map(|text| {
                let (address, prefix) = parse_cidr("--address", text)?;
                Ok(IpCidr::new(IpAddress::from(address), prefix))
            })
            .collect::<Result<Vec<_>, SettingsError>>()?;
        let host_addresses = self
            .host_addresses
            .iter()
            .map(|text| parse_cidr("--host-address", text))
            .collect::<Result<Vec<_>, _>>()?;
        let (ipv4_gateway, ipv6_gateway) = parse_gateways(&self.gateways)?;
        let mac = parse_unicast_mac(&self.mac)
            .map_err(|reason| bad_address("--mac", &self.mac, reason))?;

        if self.port == 0 {
            return Err(SettingsError::BadPort { flag: "--port" });
        }
        if self.udp_port == Some(0) {
            return Err(SettingsError::BadPort { flag: "--udp-port" });
        }
        if !(1..=MAX_SESSIONS).contains(&self.sessions) {
            return Err(SettingsError::BadSessions {
                given: self.sessions,
            });
        }
        if !(1..=LINE_CAPACITY).contains(&self.max_line) {
            return Err(SettingsError::BadMaxLine {
                given: self.max_line,
            });
        }

        let session = SessionConfig::new(self.max_line)
            .with_mode(self.mode.into())
            .with_idle_timeout(self.idle_timeout.0.map(Into::into))
            .with_idle_flush(self.idle_flush.0.map(Into::into));
        let mut listener = ListenerConfig::new().with_when_full(self.backlog_full.into());
        if let Some(wait) = self.admission_wait {
            listener = listener.with_admission_wait(wait.into());
        }
        if let Some(grace) = self.half_open_grace {
            listener = listener.with_half_open_grace(grace.into());
        }
        let min = session.max_reply_len();
        if !(min..=MAX_SOCKET_BUFFER).contains(&self.socket_buffer) {
            return Err(SettingsError::BadSocketBuffer {
                given: self.socket_buffer,
                min,
            });
        }
        let server = ServerConfig::new(self.sessions, self.max_line)
            .with_port(self.port)
            .with_udp_port((!self.no_udp).then_some(self.udp_port.unwrap_or(self.port)))
            .with_session(session)
            .with_listener(listener);
        Ok(Settings {
            tap: TapSettings {
                name: self.tap.clone(),
                create: self.create_tap,
                host_addresses,
                options: TapOptions::new().with_offload(self.offload == Switch::On),
            },
            network: NetworkSettings {
                mac,
                addresses,
                ipv4_gateway,
                ipv6_gateway,
            },
            server,
            socket_buffer: self.socket_buffer,
            shutdown_timeout: self.shutdown_timeout,
            pcap: self.pcap.clone(),
        })
    }
}

fn bad_address(flag: &'static str, value: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::BadAddress {
        flag,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `address/prefix` with a unicast address.
fn parse_cidr(flag: &'static str, text: &str) -> Result<(IpAddr, u8), SettingsError> {
    let Some((address, prefix)) = text.split_once('/') else {
        return Err(bad_address(
            flag,
            text,
            "expected ADDRESS/PREFIX, e.g. 192.168.69.1/24 or fdaa::1/64",
        ));
    };
    let address = parse_unicast(flag, text, address)?;
    let max_prefix = if address.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(prefix) if prefix <= max_prefix => Ok((address, prefix)),
        _ => Err(bad_address(
            flag,
            text,
            format!("the prefix length must be 0 to {max_prefix}"),
        )),
    }
}

/// Parses an address a host can have (not multicast, broadcast or unspecified).
fn parse_unicast(flag: &'static str, text: &str, address: &str) -> Result<IpAddr, SettingsError> {
    let parsed: IpAddr = address
        .parse()
        .map_err(|_| bad_address(flag, text, format!("{address:?} is not an IP address")))?;
    // smoltcp panics on an interface address that is not unicast.
    if !IpAddress::from(parsed).is_unicast() {
        return Err(bad_address(
            flag,
            text,
            format!("{parsed} is not a unicast address"),
        ));
    }
    Ok(parsed)
}

fn parse_gateways(
    gateways: &[String],
) -> Result<(Option<Ipv4Address>, Option<Ipv6Address>), SettingsError> {
    let mut ipv4 = None;
    let mut ipv6 = None;
    for text in gateways {
        let duplicate = match parse_unicast("--gateway", text, text)? {
            IpAddr::V4(address) => ipv4.replace(address).is_some(),
            IpAddr::V6(address) => ipv6.replace(address).is_some(),
        };
        if duplicate {
            return Err(bad_address(
                "--gateway",
                text,
                "give at most one IPv4 and one IPv6 gateway",
            ));
        }
    }
    Ok((ipv4, ipv6))
}

#[cfg(test)]
mod tests {
    use smoltcp::wire::EthernetAddress;

    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("host-tap").chain(extra.iter().copied()))
            .expect("clap accepts the arguments")
    }

    fn settings(extra: &[&str]) -> Result<Settings, SettingsError> {
        args(extra).settings()
    }

    fn exit_of(extra: &[&str]) -> Exit {
        settings(extra).expect_err("rejected").exit()
    }

    #[test]
    fn defaults_serve_the_readme_example() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.tap.name, "tap0");
        assert!(!s.tap.create);
        assert_eq!(s.network.addresses, vec![DEFAULT_ADDRESS.parse().unwrap()]);
        assert_eq!(s.network.mac, EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!((s.server.port, s.server.udp_port), (8888, Some(8888)));
        assert_eq!(s.server.sessions, 64);
        assert_eq!(s.server.session.max_line, 1024);
        assert_eq!(s.server.session.mode, Mode::Graphemes);
        assert_eq!(
            s.server.session.idle_timeout,
            Some(smoltcp::time::Duration::from_secs(120))
        );
        assert_eq!(s.server.session.idle_flush, Some(DEFAULT_IDLE_FLUSH));
        assert_eq!(s.shutdown_timeout, Duration::from_secs(5));
        assert_eq!(s.pcap, None);
        assert_eq!(s.socket_buffer, DEFAULT_SOCKET_BUFFER);
        assert!(s.tap.options.offload);
    }

    #[test]
    fn help_shows_the_readme_example_and_the_exit_codes() {
        let help = command().render_long_help().to_string();
        assert!(
            help.contains("sudo ip netns exec rev ip tuntap add name tap0 mode tap user $USER")
        );
        assert!(help.contains("nc 192.168.69.1 8888"));
        assert!(help.contains(&Exit::table()), "{help}");
    }

    #[test]
    fn help_states_the_default_sizes() {
        assert_eq!(DEFAULT_SOCKET_BUFFER, 64 * 1024 - 1);
        assert!(EXAMPLES.contains("--socket-buffer bytes (default and largest 64 KiB - 1"));
        assert!(EXAMPLES.contains("line\nbuffer of --max-line bytes"));
        assert!(EXAMPLES.contains(&format!("{MAX_SESSIONS} sessions about")));
    }

    #[test]
    fn socket_buffer_takes_sizes_from_the_largest_reply_up() {
        assert_eq!(
            settings(&["--socket-buffer", "16K"]).unwrap().socket_buffer,
            16 * 1024
        );
        assert!(settings(&["--socket-buffer", "65535"]).is_ok());
        assert_eq!(exit_of(&["--socket-buffer", "64K"]), Exit::BadSocketBuffer);
        let small = settings(&["--max-line", "1024", "--socket-buffer", "1025"]);
        assert_eq!(
            small,
            Err(SettingsError::BadSocketBuffer {
                given: 1025,
                min: 1026
            })
        );
        assert_eq!(small.unwrap_err().exit(), Exit::BadSocketBuffer);
        let error = Args::try_parse_from(["host-tap", "--socket-buffer", "big"]).unwrap_err();
        assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()));
    }

    #[test]
    fn offload_can_be_switched_off() {
        let s = settings(&["--offload", "off"]).unwrap();
        assert!(!s.tap.options.offload);
    }

    #[test]
    fn short_p_is_the_port_as_in_the_seed() {
        assert_eq!(settings(&["-p", "9999"]).unwrap().server.port, 9999);
    }

    #[test]
    fn udp_port_defaults_to_the_tcp_port() {
        let s = settings(&["--port", "7000"]).unwrap();
        assert_eq!(s.server.udp_port, Some(7000));
    }

    #[test]
    fn udp_port_can_differ() {
        let s = settings(&["--udp-port", "7001"]).unwrap();
        assert_eq!((s.server.port, s.server.udp_port), (8888, Some(7001)));
    }

    #[test]
    fn no_udp_switches_udp_off() {
        assert_eq!(settings(&["--no-udp"]).unwrap().server.udp_port, None);
    }

    #[test]
    fn no_udp_with_a_udp_port_is_a_usage_error() {
        let error = Args::try_parse_from(["host-tap", "--no-udp", "--udp-port", "1"]).unwrap_err();
        assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()));
    }

    #[test]
    fn addresses_replace_the_default_and_take_ipv6() {
        let s = settings(&["--address", "10.0.0.1/8", "--address", "fdaa::1/64"]).unwrap();
        let shown: Vec<String> = s
            .network
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.1/8", "fdaa::1/64"]);
    }

    #[test]
    fn four_addresses_fit_five_do_not() {
        let four = ["--address", "10.0.0.1/8"].repeat(4);
        assert_eq!(settings(&four).unwrap().network.addresses.len(), 4);
        let five = ["--address", "10.0.0.1/8"].repeat(5);
        assert_eq!(
            settings(&five),
            Err(SettingsError::TooManyAddresses { given: 5 })
        );
    }

    #[test]
    fn address_without_prefix_is_a_bad_address() {
        assert_eq!(exit_of(&["--address", "192.168.69.1"]), Exit::BadAddress);
    }

    #[test]
    fn address_with_a_too_long_prefix_is_a_bad_address() {
        assert_eq!(exit_of(&["--address", "192.168.69.1/33"]), Exit::BadAddress);
        assert_eq!(exit_of(&["--address", "fdaa::1/129"]), Exit::BadAddress);
    }

    #[test]
    fn address_that_is_no_ip_is_a_bad_address() {
        let error = settings(&["--address", "300.1.2.3/24"]).unwrap_err();
        assert_eq!(error.exit(), Exit::BadAddress);
        assert!(
            error
                .to_string()
                .contains("\"300.1.2.3\" is not an IP address"),
            "{error}"
        );
    }

    #[test]
    fn multicast_broadcast_and_unspecified_addresses_are_bad() {
        for cidr in [
            "224.0.0.1/4",
            "255.255.255.255/32",
            "0.0.0.0/0",
            "ff02::1/64",
            "::/0",
        ] {
            assert_eq!(exit_of(&["--address", cidr]), Exit::BadAddress, "{cidr}");
        }
    }

    #[test]
    fn host_address_needs_create_tap() {
        let error = Args::try_parse_from(["host-tap", "--host-address", "10.0.0.2/8"]).unwrap_err();
        assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()));
    }

    #[test]
    fn host_addresses_are_parsed() {
        let s = settings(&["--create-tap", "--host-address", "fdaa::100/64"]).unwrap();
        assert_eq!(
            s.tap.host_addresses,
            vec![("fdaa::100".parse().unwrap(), 64)]
        );
    }

    #[test]
    fn bad_host_address_is_a_bad_address() {
        assert_eq!(
            exit_of(&["--create-tap", "--host-address", "10.0.0.2/40"]),
            Exit::BadAddress
        );
    }

    #[test]
    fn one_gateway_per_family() {
        let s = settings(&["--gateway", "192.168.69.254", "--gateway", "fdaa::fe"]).unwrap();
        assert_eq!(
            s.network.ipv4_gateway,
            Some(Ipv4Address::new(192, 168, 69, 254))
        );
        assert_eq!(s.network.ipv6_gateway, Some("fdaa::fe".parse().unwrap()));
        assert_eq!(
            exit_of(&["--gateway", "10.0.0.1", "--gateway", "10.0.0.2"]),
            Exit::BadAddress
        );
    }

    #[test]
    fn gateway_that_is_no_ip_is_a_bad_address() {
        assert_eq!(exit_of(&["--gateway", "router"]), Exit::BadAddress);
    }

    #[test]
    fn mac_accepts_colons_and_dashes() {
        let s = settings(&["--mac", "02-AB-cd-00-00-09"]).unwrap();
        assert_eq!(s.network.mac, EthernetAddress([2, 0xab, 0xcd, 0, 0, 9]));
    }

    #[test]
    fn mac_octets_may_drop_a_leading_zero_as_in_smoltcp() {
        let s = settings(&["--mac", "2:0:0:0:0:1"]).unwrap();
        assert_eq!(s.network.mac, EthernetAddress([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn malformed_mac_is_a_bad_address() {
        for mac in [
            "02:00:00:00:00",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:01:00",
        ] {
            assert_eq!(exit_of(&["--mac", mac]), Exit::BadAddress, "{mac}");
        }
    }

    #[test]
    fn multicast_mac_is_a_bad_address() {
        assert_eq!(exit_of(&["--mac", "01:00:5e:00:00:01"]), Exit::BadAddress);
        assert_eq!(exit_of(&["--mac", "ff:ff:ff:ff:ff:ff"]), Exit::BadAddress);
    }

    #[test]
    fn port_zero_is_a_bad_port() {
        assert_eq!(
            settings(&["--port", "0"]),
            Err(SettingsError::BadPort { flag: "--port" })
        );
        assert_eq!(
            settings(&["--udp-port", "0"]),
            Err(SettingsError::BadPort { flag: "--udp-port" })
        );
    }

    #[test]
    fn port_beyond_u16_is_a_usage_error() {
        let error = Args::try_parse_from(["host-tap", "--port", "65536"]).unwrap_err();
        assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()));
    }

    #[test]
    fn sessions_range_is_one_to_the_capacity() {
        assert_eq!(exit_of(&["--sessions", "0"]), Exit::BadSessions);
        assert_eq!(exit_of(&["--sessions", "1025"]), Exit::BadSessions);
        assert_eq!(settings(&["--sessions", "1"]).unwrap().server.sessions, 1);
        assert_eq!(
            settings(&["--sessions", "1024"]).unwrap().server.sessions,
            1024
        );
    }

    #[test]
    fn max_line_range_is_one_to_the_line_capacity() {
        assert_eq!(exit_of(&["--max-line", "0"]), Exit::BadMaxLine);
        assert_eq!(exit_of(&["--max-line", "8193"]), Exit::BadMaxLine);
        assert_eq!(
            settings(&["--max-line", "8192"])
                .unwrap()
                .server
                .session
                .max_line,
            8192
        );
    }

    #[test]
    fn mode_is_passed_on() {
        let s = settings(&["--mode", "bytes"]).unwrap();
        assert_eq!(s.server.session.mode, Mode::Bytes);
    }

    #[test]
    fn timers_take_durations_and_off() {
        let s = settings(&["--idle-timeout", "300ms", "--idle-flush", "50ms"]).unwrap();
        assert_eq!(
            s.server.session.idle_timeout,
            Some(smoltcp::time::Duration::from_millis(300))
        );
        assert_eq!(
            s.server.session.idle_flush,
            Some(smoltcp::time::Duration::from_millis(50))
        );
        let off = settings(&["--idle-timeout", "off", "--idle-flush", "0"]).unwrap();
        assert_eq!(off.server.session.idle_timeout, None);
        assert_eq!(off.server.session.idle_flush, None);
    }

    #[test]
    fn duration_beyond_a_hundred_years_is_a_usage_error() {
        for flag in ["--idle-timeout", "--idle-flush", "--shutdown-timeout"] {
            let error = Args::try_parse_from(["host-tap", flag, "101y"]).unwrap_err();
            assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()), "{flag}");
        }
        assert!(settings(&["--idle-timeout", "100y"]).is_ok());
    }

    #[test]
    fn timers_are_off_zero_or_a_duration() {
        assert_eq!(parse_timer("2m"), Ok(Timer(Some(Duration::from_secs(120)))));
        assert_eq!(parse_timer("off"), Ok(Timer(None)));
        assert_eq!(parse_timer("0"), Ok(Timer(None)));
    }

    #[test]
    fn admission_flags_reach_the_listener_and_default_to_the_cores() {
        let defaults = settings(&[]).unwrap().server.listener;
        assert_eq!(defaults, ListenerConfig::new());
        let help = command().render_long_help().to_string();
        for (flag, default) in [
            ("admission", defaults.admission_wait),
            ("handshake", defaults.half_open_grace),
        ] {
            let shown = format!("[default: {}]", humantime::format_duration(default.into()));
            let line = help.lines().skip_while(|l| !l.contains(flag)).take(4);
            assert!(line.clone().any(|l| l.contains(&shown)), "{flag}: {shown}");
        }
        let s = settings(&[
            "--admission-wait",
            "250ms",
            "--half-open-grace",
            "2s",
            "--backlog-full",
            "reset",
        ])
        .unwrap();
        let listener = s.server.listener;
        assert_eq!(
            listener.admission_wait,
            smoltcp::time::Duration::from_millis(250)
        );
        assert_eq!(
            listener.half_open_grace,
            smoltcp::time::Duration::from_secs(2)
        );
        assert_eq!(listener.when_full, WhenFull::Reset);
    }

    #[test]
    fn bad_duration_is_a_usage_error() {
        let error = Args::try_parse_from(["host-tap", "--idle-timeout", "soon"]).unwrap_err();
        assert_eq!(error.exit_code(), i32::from(Exit::Usage.code()));
    }
}
