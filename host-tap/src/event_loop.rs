//! The event loop: it polls the server until nothing moves, then sleeps on
//! the TAP until a frame arrives, a timer is due, or a signal comes.
//!
//! All of the server's memory is allocated once at start-up, exactly as
//! much as the settings ask for ([`settings::capacity`]).

use std::fmt;
use std::io;
use std::os::fd::AsFd;

use host_tap::clock::Clock;
use host_tap::interface;
use host_tap::settings::{self, NetworkSettings};
use host_tap::signals::Signals;
use host_tap::tap::{TapDevice, TapStats};
use reversal_core::server::ConfigError;
use reversal_core::{Capacity, Counters, HeapResources, Server, ServerConfig};
use smoltcp::phy::{Device, PcapSink, PcapWriter};

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
    /// Each session's TCP receive and send buffer, in bytes.
    pub socket_buffer: usize,
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
            "{}\ncounters: {}\nTAP: frames in {}, frames out {}, read errors {}, write errors {}, \
             tx drops {}, oversized frames dropped {}, bad checksums dropped {}, \
             fragments beyond reassembly dropped {}",
            self.end,
            self.counters,
            tap.frames_in,
            tap.frames_out,
            tap.read_errors,
            tap.write_errors,
            tap.tx_drops,
            tap.rx_oversized,
            tap.rx_bad_checksums,
            tap.rx_fragments_beyond_reassembly
        )
    }
}

/// Serves on `device` until a signal (then shuts down gracefully) or until
/// the TAP fails, in memory allocated for its [`settings::capacity`].
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
    let mut iface = interface::create(&settings.network, device, clock.now());
    let mut resources =
        HeapResources::new(settings::capacity(&settings.server, settings.socket_buffer));
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

fn log_ready(settings: &LoopSettings, capacity: Capacity, tap: &TapDevice) {
    let network = &settings.network;
    let addresses: Vec<String> = network.addresses.iter().map(ToString::to_string).collect();
    let udp = settings
        .server
        .udp_port
        .map_or_else(|| "off".to_owned(), |port| port.to_string());
    log::info!(
        "ready: {} (MTU {}, offloads: {}) as {} (MAC {}), TCP port {}, UDP port {}; \
         {} sessions with {} KiB socket buffers, {} KiB reserved",
        tap.name(),
        tap.mtu(),
        tap.offloads(),
        addresses.join(", "),
        network.mac,
        settings.server.port,
        udp,
        capacity.sessions,
        capacity.rx_buffer / 1024,
        capacity.memory() / 1024
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_states_the_reserved_memory() {
        let mib = |sessions| {
            let config = ServerConfig::new(sessions, 1024);
            let bytes = settings::capacity(&config, settings::DEFAULT_SOCKET_BUFFER).memory();
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
