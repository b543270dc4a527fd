//! `tap-echo`: the raw ceiling of smoltcp over our TAP code.
//!
//! The same [`TapDevice`], smoltcp interface, TCP socket buffers and socket
//! options as `host-tap`, and the same event loop shape (poll until nothing
//! moves, then sleep in the TAP's `wait`), but every byte received is sent
//! back as it is: no lines, no reversal, no sessions. `reversal-bench`
//! measures `host-tap` against it to tell what the server costs on top of
//! smoltcp and the TAP.
//!
//! ```text
//! sudo ip tuntap add name tap0 mode tap user $USER
//! sudo ip addr add 192.168.69.100/24 dev tap0 && sudo ip link set tap0 up
//! tap-echo --tap tap0 &
//! echo hello | nc -N 192.168.69.1 8888
//! ```

use std::fmt;
use std::os::fd::AsFd;
use std::process::ExitCode;

use clap::Parser;
use host_tap::clock::Clock;
use host_tap::interface;
use host_tap::settings::{
    DEFAULT_ADDRESS, DEFAULT_MAC, DEFAULT_SESSIONS, DEFAULT_SOCKET_BUFFER, DEFAULT_TAP,
    MAX_SESSIONS, MAX_SOCKET_BUFFER, NetworkSettings, parse_bytes, parse_unicast_mac,
};
use host_tap::signals::Signals;
use host_tap::tap::{TapDevice, TapError, TapOptions};
use reversal_core::server::{DEFAULT_PORT, MAX_ROUNDS};
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpCidr};

/// Echo every byte back over TCP on a Linux TAP device, through smoltcp.
#[derive(Debug, Parser)]
#[command(name = "tap-echo", version)]
struct Args {
    /// TAP device to attach to (it must exist, as for `host-tap`).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TAP)]
    tap: String,

    /// Our address and prefix on the TAP's network.
    #[arg(long, value_name = "CIDR", default_value = DEFAULT_ADDRESS,
          value_parser = parse_cidr)]
    address: IpCidr,

    /// Our Ethernet address.
    #[arg(long, value_name = "MAC", default_value = DEFAULT_MAC, value_parser = parse_mac)]
    mac: EthernetAddress,

    /// TCP port.
    #[arg(short, long, value_name = "PORT", default_value_t = DEFAULT_PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,

    /// Concurrent connections (one listening socket each).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SESSIONS,
          value_parser = parse_sessions)]
    sessions: usize,

    /// Each socket's receive and send buffer, as host-tap's `--socket-buffer`.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SOCKET_BUFFER,
          value_parser = parse_socket_buffer)]
    socket_buffer: usize,

    /// Offloads, as host-tap's `--offload`.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_switch,
          action = clap::ArgAction::Set)]
    offload: bool,
}

fn parse_socket_buffer(text: &str) -> Result<usize, String> {
    match parse_bytes(text) {
        Ok(bytes @ 1..=MAX_SOCKET_BUFFER) => Ok(bytes),
        Ok(_) => Err(format!("use 1 to {MAX_SOCKET_BUFFER} bytes")),
        Err(reason) => Err(reason.to_owned()),
    }
}

fn parse_switch(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("use on or off".to_owned()),
    }
}

fn parse_cidr(text: &str) -> Result<IpCidr, String> {
    text.parse()
        .map_err(|()| format!("{text:?} is not ADDRESS/PREFIX, e.g. 192.168.69.1/24"))
}

fn parse_mac(text: &str) -> Result<EthernetAddress, String> {
    parse_unicast_mac(text).map_err(|reason| format!("{text:?}: {reason}"))
}

fn parse_sessions(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(sessions @ 1..=MAX_SESSIONS) => Ok(sessions),
        _ => Err(format!("use 1 to {MAX_SESSIONS}")),
    }
}

/// Why `tap-echo` stopped other than by a signal.
#[derive(Debug)]
enum EchoError {
    Signals(std::io::Error),
    Tap(TapError),
    TapLost(std::io::Error),
}

impl fmt::Display for EchoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EchoError::Signals(error) => write!(f, "cannot install the signal handlers: {error}"),
            EchoError::Tap(error) => error.fmt(f),
            EchoError::TapLost(error) => write!(f, "the TAP device failed: {error}"),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tap-echo: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Echoes until SIGINT or SIGTERM.
fn serve(args: &Args) -> Result<(), EchoError> {
    let signals = Signals::register().map_err(EchoError::Signals)?;
    let options = TapOptions::new().with_offload(args.offload);
    let mut device = TapDevice::open_with(&args.tap, options).map_err(EchoError::Tap)?;
    let clock = Clock::start();

    let network = NetworkSettings {
        mac: args.mac,
        addresses: vec![args.address],
        ipv4_gateway: None,
        ipv6_gateway: None,
    };
    let mut iface = interface::create(&network, &mut device, clock.now());

    let mut sockets = SocketSet::new(Vec::new());
    let handles: Vec<SocketHandle> = (0..args.sessions)
        .map(|_| sockets.add(echo_socket(args.port, args.socket_buffer)))
        .collect();
    let mut scratch = vec![0u8; args.socket_buffer];
    log::info!(
        "ready: echoing on {} (MTU {}, offloads: {}) as {}, TCP port {}, {} sockets with {} KiB buffers",
        device.name(),
        device.mtu(),
        device.offloads(),
        args.address,
        args.port,
        args.sessions,
        args.socket_buffer / 1024
    );

    while signals.take() == 0 {
        let now = clock.now();
        let mut busy = true;
        for _ in 0..MAX_ROUNDS {
            iface.poll(now, &mut device, &mut sockets);
            let mut moved = false;
            for &handle in &handles {
                moved |= echo(sockets.get_mut(handle), &mut scratch, args.port);
            }
            if !moved {
                busy = false;
                break;
            }
        }
        let sleep = if busy {
            // Send what the last round echoed and come back at once.
            iface.poll(now, &mut device, &mut sockets);
            Some(std::time::Duration::ZERO)
        } else {
            // Nothing was echoed since the last poll, so nothing of ours waits
            // to be sent: sleep until a frame arrives or a smoltcp timer is due.
            iface.poll_delay(now, &sockets).map(Into::into)
        };
        device
            .wait_or_wakeup(signals.as_fd(), sleep)
            .map_err(EchoError::TapLost)?;
    }
    log::info!("signal received: stopping");
    Ok(())
}

/// A listening socket with buffers of `buffer` bytes, no Nagle and no
/// delayed ACK, as `host-tap`'s (host-tap's timeouts only guard its slots;
/// an echo for measurements needs none).
fn echo_socket(port: u16, buffer: usize) -> tcp::Socket<'static> {
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; buffer]),
        tcp::SocketBuffer::new(vec![0; buffer]),
    );
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    listen(&mut socket, port);
    socket
}

fn listen(socket: &mut tcp::Socket<'_>, port: u16) {
    if socket.listen(port).is_err() {
        log::warn!("cannot listen on port {port}");
    }
}

/// Sends back what fits of what was received, closes after the peer's FIN
/// once everything is echoed, and listens again when closed. True if
/// anything changed.
fn echo(socket: &mut tcp::Socket<'_>, scratch: &mut [u8], port: u16) -> bool {
    match socket.state() {
        tcp::State::Closed => {
            listen(socket, port);
            return true;
        }
        // The peer's FIN came and nothing is left to echo.
        tcp::State::CloseWait if !socket.can_recv() => {
            socket.close();
            return true;
        }
        _ => {}
    }
    let free = socket.send_capacity() - socket.send_queue();
    let want = free.min(socket.recv_queue()).min(scratch.len());
    if want == 0 {
        return false;
    }
    match socket.recv_slice(&mut scratch[..want]) {
        Ok(received) => {
            // Fits: no more than the free send space was taken.
            let _ = socket.send_slice(&scratch[..received]);
            received > 0
        }
        Err(_) => false,
    }
}
