//! `host-tap`: the reversal service on a Linux TAP device.
//!
//! Parses and checks the command line, opens (or creates) the TAP, and runs
//! the event loop until SIGINT/SIGTERM; see `host-tap --help`.

mod cli;
mod event_loop;
mod exit;
mod pcap;

use std::fmt;
use std::process::ExitCode;

use host_tap::settings::Settings;
use host_tap::signals::Signals;
use host_tap::tap::{TapDevice, TapError};
use reversal_core::server::ConfigError;
use smoltcp::phy::{PcapMode, PcapWriter};

use crate::cli::SettingsError;
use crate::event_loop::{End, LoopSettings, Outcome};
use crate::exit::Exit;
use crate::pcap::{PcapError, PcapFile};

/// Why `host-tap` could not serve.
#[derive(Debug)]
enum Failure {
    Settings(SettingsError),
    Tap(TapError),
    Pcap(PcapError),
    /// The core refused the configuration (the command-line checks should
    /// have caught it first).
    Config(ConfigError),
    /// The signal handlers could not be set up.
    Setup(&'static str, std::io::Error),
}

impl Failure {
    fn exit(&self) -> Exit {
        match self {
            Failure::Settings(error) => error.exit(),
            Failure::Tap(error) => Exit::of_tap_error(error),
            Failure::Pcap(_) => Exit::Pcap,
            Failure::Config(ConfigError::Port) => Exit::BadPort,
            // The sockets the memory holds, sized from the sessions.
            Failure::Config(
                ConfigError::Sessions { .. }
                | ConfigError::SpareSockets { .. }
                | ConfigError::UdpReplySockets,
            ) => Exit::BadSessions,
            Failure::Config(ConfigError::Session(_)) => Exit::BadMaxLine,
            Failure::Config(ConfigError::SendBuffer { .. }) => Exit::BadSocketBuffer,
            Failure::Setup(..) => Exit::TapSetup,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Settings(error) => error.fmt(f),
            Failure::Tap(error) => error.fmt(f),
            Failure::Pcap(error) => error.fmt(f),
            Failure::Config(error) => error.fmt(f),
            Failure::Setup(what, error) => write!(f, "cannot {what}: {error}"),
        }
    }
}

fn main() -> ExitCode {
    let args = cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let outcome = args
        .settings()
        .map_err(Failure::Settings)
        .and_then(|settings| serve(&settings));
    match outcome {
        Ok(outcome) => {
            // The summary is the program's last word, whatever RUST_LOG says.
            for line in outcome.to_string().lines() {
                eprintln!("host-tap: {line}");
            }
            match outcome.end {
                End::TapLost(_) => Exit::TapLost.into(),
                End::Stopped | End::ShutdownTimedOut { .. } | End::Forced { .. } => {
                    Exit::Stopped.into()
                }
            }
        }
        Err(failure) => {
            eprintln!("host-tap: error: {failure}");
            failure.exit().into()
        }
    }
}

fn serve(settings: &Settings) -> Result<Outcome, Failure> {
    // Before anything else, so that a signal during start-up stops us cleanly.
    let signals =
        Signals::register().map_err(|e| Failure::Setup("install the signal handlers", e))?;
    let tap = &settings.tap;
    let device = if tap.create {
        TapDevice::create_with(&tap.name, &tap.host_addresses, tap.options)
    } else {
        TapDevice::open_with(&tap.name, tap.options)
    }
    .map_err(Failure::Tap)?;
    if tap.create {
        log::info!("created TAP {}; it is removed on exit", device.name());
    }
    let loop_settings = LoopSettings {
        network: settings.network.clone(),
        server: settings.server,
        socket_buffer: settings.socket_buffer,
        shutdown_timeout: settings.shutdown_timeout,
    };
    let outcome = match &settings.pcap {
        None => {
            let mut device = device;
            event_loop::serve(&loop_settings, &mut device, &signals)
        }
        Some(path) => {
            let file = PcapFile::create(path).map_err(Failure::Pcap)?;
            log::info!("capturing every frame to {}", path.display());
            let mut device = PcapWriter::new(device, file, PcapMode::Both);
            event_loop::serve(&loop_settings, &mut device, &signals)
        }
    };
    outcome.map_err(Failure::Config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_config_errors_exit_as_the_matching_flag() {
        let exit = |error| Failure::Config(error).exit();
        assert_eq!(exit(ConfigError::Port), Exit::BadPort);
        assert_eq!(exit(ConfigError::Sessions { max: 64 }), Exit::BadSessions);
        let send_buffer = ConfigError::SendBuffer {
            needed: 2,
            capacity: 1,
        };
        assert_eq!(exit(send_buffer), Exit::BadSocketBuffer);
    }

    #[test]
    fn tap_errors_exit_by_kind() {
        let missing = Failure::Tap(TapError::TapMissing {
            name: "tap0".into(),
        });
        assert_eq!(missing.exit(), Exit::TapMissing);
        assert!(missing.to_string().contains("ip tuntap add name tap0"));
    }

    #[test]
    fn pcap_errors_exit_as_pcap() {
        let error = PcapFile::create("/nonexistent-host-tap/x.pcap").unwrap_err();
        assert_eq!(Failure::Pcap(error).exit(), Exit::Pcap);
    }
}
