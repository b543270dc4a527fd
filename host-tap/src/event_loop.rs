//! The event loop: it polls the server until nothing moves, then sleeps on
//! the TAP until a frame arrives, a timer is due, or a signal comes.
//!
//! All of the server's memory is allocated once at start-up, exactly as
//! much as the settings ask for ([`capacity`]).

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reversal_core::server::ConfigError;
use reversal_core::{Capacity, Counters, HeapResources, Server, ServerConfig};
use smoltcp::iface::{Config, Interface};
use smoltcp::phy::{Device, PcapSink, PcapWriter};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::HardwareAddress;

use crate::cli::{NetworkSettings, SOCKET_BUFFER};
use crate::tap::{TapDevice, TapStats};

/// The memory a server with `config` needs: a slot per session, each with
/// [`SOCKET_BUFFER`]-byte socket buffers and a line buffer as long as the
/// longest line.
///
/// ```
/// let config = reversal_core::ServerConfig::new(64, 1024);
/// let capacity = host_tap::event_loop::capacity(&config);
/// assert_eq!((capacity.sessions, capacity.line_buffer), (64, 1024));
/// ```
pub fn capacity(config: &ServerConfig) -> Capacity {
    Capacity::new(config.sessions, SOCKET_BUFFER, config.session.max_line)
}

/// smoltcp's clock: wall-clock time at start-up (so that captures carry real
/// timestamps) advanced by the monotonic clock (so that it never jumps).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: std::time::Instant,
    started_at: Instant,
}

impl Clock {
    /// A clock that reads the wall-clock time now.
    ///
    /// ```
    /// let clock = host_tap::event_loop::Clock::start();
    /// assert!(clock.now() <= clock.now());
    /// ```
    pub fn start() -> Clock {
        Clock {
            started: std::time::Instant::now(),
            started_at: Instant::now(),
        }
    }

    /// The time now.
    pub fn now(&self) -> Instant {
        self.started_at + Duration::from(self.started.elapsed())
    }
}

/// SIGINT and SIGTERM, delivered through a self-pipe that the loop sleeps on,
/// so that a signal arriving just before the sleep is not missed.
#[derive(Debug)]
pub struct Signals {
    wakeup: UnixStream,
    /// Set by the handler before it writes to the pipe: the loop reads the
    /// pipe only when there is something in it (one syscall less per wake-up).
    pending: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers: from now on SIGINT and SIGTERM no longer end
    /// the process but are counted here.
    ///
    /// # Errors
    ///
    /// The socket pair or a handler cannot be set up.
    pub fn register() -> io::Result<Signals> {
        let (wakeup, handler_end) = UnixStream::pair()?;
        wakeup.set_nonblocking(true)?;
        let pending = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Actions run in the order registered: the flag before the byte.
            signal_hook::flag::register(signal, Arc::clone(&pending))?;
            signal_hook::low_level::pipe::register(signal, handler_end.try_clone()?)?;
        }
        Ok(Signals { wakeup, pending })
    }

    /// How many signals came since the last call.
    pub fn take(&self) -> usize {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return 0;
        }
        let mut count = 0;
        let mut buffer = [0u8; 16];
        // Each signal writes one byte; the stream is non-blocking.
        while let Ok(n @ 1..) = (&self.wakeup).read(&mut buffer) {
            count += n;
        }
        count
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wakeup.as_fd()
    }
}

/// A smoltcp device with a TAP underneath, to sleep on.
pub trait TapBacked: Device {
    /// The TAP device.
    fn tap(&self) -> &TapDevice;
}

impl TapBacked for TapDevice {
    fn tap(&self) -> &TapDevice {
        self
    }
}

impl<S: PcapSink> TapBacked for PcapWriter<TapDevice, S> {
    fn tap(&self) -> &TapDevice {
        self.get_ref()
    }
}

/// What the event loop is told.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// smoltcp's side of the network.
    pub network: NetworkSettings,
    /// The server.
    pub server: ServerConfig,
    /// How long a shutdown may wait for open sessions.
    pub shutdown_timeout: std::time::Duration,
}

/// Why the loop ended.
#[derive(Debug)]
pub enum End {
    /// A signal came and every session finished.
    Stopped,
    /// A signal came, but sessions were still open when the shutdown timeout passed.
    ShutdownTimedOut {
        /// Sessions cut off.
        open_sessions: usize,
    },
    /// A second signal came during the shutdown.
    Forced {
        /// Sessions cut off.
        open_sessions: usize,
    },
    /// The TAP cannot be waited on any more (e.g. it was deleted).
    TapLost(io::Error),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Stopped => f.write_str("stopped; every session finished"),
            End::ShutdownTimedOut { open_sessions } => write!(
                f,
                "stopped; shutdown timeout passed with {open_sessions} sessions still open"
            ),
            End::Forced { open_sessions } => write!(
                f,
                "stopped at once by a second signal; {open_sessions} sessions cut off"
            ),
            End::TapLost(error) => write!(f, "the TAP device failed: {error}"),
        }
    }
}

/// What the loop did, at its end.
#[derive(Debug)]
pub struct Outcome {
    /// Why it ended.
    pub end: End,
    /// The server's counters.
    pub counters: Counters,
    /// The TAP's counters.
    pub tap: TapStats,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tap = &self.tap;
        write!(
            f,
            "{}\ncounters: {}\nTAP: frames in {}, frames out {}, read errors {}, write errors {}, tx drops {}",
            self.end,
            self.counters,
            tap.frames_in,
            tap.frames_out,
            tap.read_errors,
            tap.write_errors,
            tap.tx_drops
        )
    }
}

/// Serves on `device` until a signal (then shuts down gracefully) or until
/// the TAP fails, in memory allocated for its [`capacity`].
///
/// # Errors
///
/// The core refuses the configuration (the command line checks prevent
/// that).
pub fn serve<D: TapBacked>(
    settings: &LoopSettings,
    device: &mut D,
    signals: &Signals,
) -> Result<Outcome, ConfigError> {
    let clock = Clock::start();
    let mut iface = interface(&settings.network, device, clock.now());
    let mut resources = HeapResources::new(capacity(&settings.server));
    let mut server = Server::new(settings.server, &mut resources)?;
    log_ready(settings, server.capacity(), device.tap());

    let mut shutdown_deadline = None;
    let end = loop {
        let received = signals.take();
        if received > 0 {
            if shutdown_deadline.is_some() || received > 1 {
                break End::Forced {
                    open_sessions: server.active_sessions(),
                };
            }
            log::info!(
                "signal received: shutting down; open sessions get their replies (waiting up to {}), \
                 a second signal stops at once",
                humantime::format_duration(settings.shutdown_timeout)
            );
            server.shutdown();
            shutdown_deadline = Some(std::time::Instant::now() + settings.shutdown_timeout);
        }

        let now = clock.now();
        let next = server.poll(now, &mut iface, device);

        let mut sleep = next.map(|at| if at > now { at - now } else { Duration::ZERO }.into());
        if let Some(deadline) = shutdown_deadline {
            if server.is_shut_down() {
                break End::Stopped;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break End::ShutdownTimedOut {
                    open_sessions: server.active_sessions(),
                };
            }
            sleep = Some(sleep.map_or(left, |sleep: std::time::Duration| sleep.min(left)));
        }
        if let Err(error) = device.tap().wait_or_wakeup(signals.as_fd(), sleep) {
            break End::TapLost(error);
        }
    };
    Ok(Outcome {
        end,
        counters: server.counters(),
        tap: device.tap().stats(),
    })
}

/// smoltcp's interface: our MAC, addresses and default routes.
fn interface<D: Device>(network: &NetworkSettings, device: &mut D, now: Instant) -> Interface {
    let mut config = Config::new(HardwareAddress::Ethernet(network.mac));
    // TCP initial sequence numbers and ephemeral ports must not be predictable.
    config.random_seed = random_seed();
    let mut iface = Interface::new(config, device, now);
    iface.update_ip_addrs(|addresses| {
        for &cidr in &network.addresses {
            if addresses.push(cidr).is_err() {
                log::warn!("address {cidr} left out: the interface is full");
            }
        }
    });
    if let Some(gateway) = network.ipv4_gateway
        && iface.routes_mut().add_default_ipv4_route(gateway).is_err()
    {
        log::warn!("IPv4 gateway {gateway} left out: the route table is full");
    }
    if let Some(gateway) = network.ipv6_gateway
        && iface.routes_mut().add_default_ipv6_route(gateway).is_err()
    {
        log::warn!("IPv6 gateway {gateway} left out: the route table is full");
    }
    iface
}

/// A random number from std's per-process random hash keys.
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::process::id())
}

fn log_ready(settings: &LoopSettings, capacity: Capacity, tap: &TapDevice) {
    let network = &settings.network;
    let addresses: Vec<String> = network.addresses.iter().map(ToString::to_string).collect();
    let udp = settings
        .server
        .udp_port
        .map_or_else(|| "off".to_owned(), |port| port.to_string());
    log::info!(
        "ready: {} (MTU {}) as {} (MAC {}), TCP port {}, UDP port {}; {} sessions, {} KiB reserved",
        tap.name(),
        tap.mtu(),
        addresses.join(", "),
        network.mac,
        settings.server.port,
        udp,
        capacity.sessions,
        capacity.memory() / 1024
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_starts_at_the_wall_clock_time() {
        let before = Instant::now();
        let clock = Clock::start();
        let after = Instant::now();
        let now = clock.now();
        assert!(now >= before, "{now} < {before}");
        assert!(now - after < Duration::from_secs(1));
    }

    #[test]
    fn clock_advances() {
        let clock = Clock::start();
        let first = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.now() - first >= Duration::from_millis(5));
    }

    #[test]
    fn signals_are_counted() {
        let signals = Signals::register().unwrap();
        assert_eq!(signals.take(), 0);
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert_eq!(signals.take(), 1);
        assert_eq!(signals.take(), 0);
    }

    #[test]
    fn help_states_the_reserved_memory() {
        let mib = |sessions| {
            let bytes = capacity(&ServerConfig::new(sessions, 1024)).memory();
            bytes as f64 / f64::from(1 << 20)
        };
        let default = format!("defaults reserve about {:.1} MiB", mib(64));
        let large = format!("1024 sessions about {:.0} MiB", mib(1024));
        assert!(crate::cli::EXAMPLES.contains(&default), "{default}");
        assert!(crate::cli::EXAMPLES.contains(&large), "{large}");
    }

    #[test]
    fn end_messages_say_what_happened() {
        let forced = End::Forced { open_sessions: 3 }.to_string();
        assert!(
            forced.contains("second signal") && forced.contains('3'),
            "{forced}"
        );
        let timed_out = End::ShutdownTimedOut { open_sessions: 2 }.to_string();
        assert!(timed_out.contains("timeout"), "{timed_out}");
    }
}
