//! The event loop: one thread polls the server until nothing moves, then
//! sleeps on the TAP until a frame arrives, a timer is due, or a signal comes.
//!
//! All of the server's memory is one [`Resources`] value on the event loop
//! thread's stack, made once at start-up; [`spawn`] sizes that stack for it.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::thread;

use host_tap::clock::Clock;
use host_tap::interface;
use host_tap::settings::{LINE_CAPACITY, NetworkSettings, SMALL_SESSIONS, SOCKET_BUFFER};
use host_tap::signals::Signals;
use host_tap::tap::{TapDevice, TapStats};
use reversal_core::server::ConfigError;
use reversal_core::{Counters, Server, ServerConfig, ServerResources};
use smoltcp::phy::{Device, PcapSink, PcapWriter};

/// Socket slots beyond the sessions: the UDP socket and the most busy
/// sockets the core uses, so a burst of rejected clients each get `ERR busy`.
pub const SPARE_SOCKETS: usize = 1 + reversal_core::server::BUSY_SOCKETS;

/// The server's memory for `SESSIONS` sessions (`SOCKETS` = `SESSIONS + SPARE_SOCKETS`).
pub type Resources<'a, const SESSIONS: usize, const SOCKETS: usize> =
    ServerResources<'a, SESSIONS, SOCKETS, SOCKET_BUFFER, SOCKET_BUFFER, LINE_CAPACITY>;

/// The compiled sets of resources; a server runs with the smallest that
/// holds its sessions, since making the resources touches all of their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// [`SMALL_SESSIONS`] session slots.
    Small,
    /// [`MAX_SESSIONS`](host_tap::settings::MAX_SESSIONS) session slots.
    Large,
}

impl Slots {
    /// The smallest set that holds `sessions`.
    pub const fn for_sessions(sessions: usize) -> Slots {
        if sessions <= SMALL_SESSIONS {
            Slots::Small
        } else {
            Slots::Large
        }
    }
}

/// Stack for the event loop thread: room for [`Resources`] twice (a debug
/// build may build it in a temporary first) and 8 MiB for everything else.
/// Only the pages touched become resident.
pub const fn stack_size<const SESSIONS: usize, const SOCKETS: usize>() -> usize {
    2 * size_of::<Resources<'static, SESSIONS, SOCKETS>>() + (8 << 20)
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

/// Runs [`serve`] on a thread whose stack holds the server's memory, and
/// waits for it.
///
/// # Errors
///
/// The thread cannot be started (no memory for its stack).
pub fn spawn<const SESSIONS: usize, const SOCKETS: usize, D>(
    settings: LoopSettings,
    mut device: D,
    signals: Signals,
) -> io::Result<Result<Outcome, ConfigError>>
where
    D: TapBacked + Send + 'static,
{
    let worker = thread::Builder::new()
        .name("event-loop".into())
        .stack_size(stack_size::<SESSIONS, SOCKETS>())
        .spawn(move || serve::<SESSIONS, SOCKETS, D>(&settings, &mut device, &signals))?;
    // The loop does not panic; if it did anyway, the process ends as for a panic.
    Ok(worker
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

/// Serves on `device` until a signal (then shuts down gracefully) or until
/// the TAP fails. Needs [`stack_size`] bytes of stack.
///
/// # Errors
///
/// The configuration does not fit these resources (the command line checks
/// prevent that).
pub fn serve<const SESSIONS: usize, const SOCKETS: usize, D: TapBacked>(
    settings: &LoopSettings,
    device: &mut D,
    signals: &Signals,
) -> Result<Outcome, ConfigError> {
    let clock = Clock::start();
    let mut iface = interface::create(&settings.network, device, clock.now());
    let mut resources = Resources::<SESSIONS, SOCKETS>::new();
    let mut server = Server::new(settings.server, &mut resources)?;
    log_ready::<SESSIONS, SOCKETS>(settings, device.tap());

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

        let mut sleep: Option<std::time::Duration> = server
            .poll_delay(clock.now(), &mut iface, device)
            .map(Into::into);
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
            sleep = Some(sleep.map_or(left, |sleep| sleep.min(left)));
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

fn log_ready<const SESSIONS: usize, const SOCKETS: usize>(
    settings: &LoopSettings,
    tap: &TapDevice,
) {
    let network = &settings.network;
    let addresses: Vec<String> = network.addresses.iter().map(ToString::to_string).collect();
    let udp = settings
        .server
        .udp_port
        .map_or_else(|| "off".to_owned(), |port| port.to_string());
    log::info!(
        "ready: {} (MTU {}) as {} (MAC {}), TCP port {}, UDP port {}; {} of {} session slots, \
         {} KiB reserved",
        tap.name(),
        tap.mtu(),
        addresses.join(", "),
        network.mac,
        settings.server.port,
        udp,
        settings.server.sessions,
        SESSIONS,
        size_of::<Resources<'static, SESSIONS, SOCKETS>>() / 1024
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_smallest_set_that_holds_the_sessions() {
        assert_eq!(Slots::for_sessions(64), Slots::Small);
        assert_eq!(Slots::for_sessions(65), Slots::Large);
    }

    #[test]
    fn stack_holds_the_resources_twice() {
        let resources = size_of::<Resources<'static, 64, 66>>();
        assert!(stack_size::<64, 66>() >= 2 * resources);
    }

    #[test]
    fn help_states_the_reserved_memory() {
        let mib = |bytes: usize| bytes as f64 / f64::from(1 << 20);
        let small = format!("{:.1} MiB", mib(size_of::<Resources<'static, 64, 66>>()));
        let large = format!(
            "{:.0} MiB",
            mib(size_of::<Resources<'static, 1024, 1026>>())
        );
        assert!(
            crate::cli::EXAMPLES.contains(&format!("about {small}")),
            "{small}"
        );
        assert!(
            crate::cli::EXAMPLES.contains(&format!("about {large}")),
            "{large}"
        );
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
