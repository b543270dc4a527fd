//! The exit codes of `host-tap`: one per kind of failure, so that scripts can
//! tell a missing TAP from a bad argument without reading the message.

use std::fmt::Write as _;

use host_tap::tap::TapError;

/// Why `host-tap` ended; [`code`](Exit::code) is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by SIGINT or SIGTERM (also when the shutdown ran out of time).
    Stopped,
    /// The TAP device failed while serving, e.g. it was deleted.
    TapLost,
    /// clap could not parse the command line (its own code).
    Usage,
    /// An address, prefix, gateway or MAC that is not one.
    BadAddress,
    /// More `--address` values than the interface holds.
    TooManyAddresses,
    /// Port 0.
    BadPort,
    /// `--sessions` out of range.
    BadSessions,
    /// `--max-line` out of range.
    BadMaxLine,
    /// `--socket-buffer` out of range.
    BadSocketBuffer,
    /// Not allowed to open `/dev/net/tun`, attach to the TAP, or create one.
    NoPermission,
    /// The TAP device does not exist.
    TapMissing,
    /// `/dev/net/tun` is missing: no tun driver.
    NoTunDevice,
    /// Another process holds the TAP.
    TapBusy,
    /// The interface name is invalid, taken, or not a TAP.
    TapUnusable,
    /// Configuring a created TAP, or another system call, failed.
    TapSetup,
    /// The `--pcap` file cannot be created.
    Pcap,
}

impl Exit {
    /// Every exit, in the order of the table.
    pub const ALL: [Exit; 16] = [
        Exit::Stopped,
        Exit::TapLost,
        Exit::Usage,
        Exit::BadAddress,
        Exit::TooManyAddresses,
        Exit::BadPort,
        Exit::BadSessions,
        Exit::BadMaxLine,
        Exit::BadSocketBuffer,
        Exit::NoPermission,
        Exit::TapMissing,
        Exit::NoTunDevice,
        Exit::TapBusy,
        Exit::TapUnusable,
        Exit::TapSetup,
        Exit::Pcap,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Stopped => 0,
            Exit::TapLost => 1,
            Exit::Usage => 2,
            Exit::BadAddress => 3,
            Exit::TooManyAddresses => 4,
            Exit::BadPort => 5,
            Exit::BadSessions => 6,
            Exit::BadMaxLine => 7,
            Exit::BadSocketBuffer => 8,
            Exit::NoPermission => 10,
            Exit::TapMissing => 11,
            Exit::NoTunDevice => 12,
            Exit::TapBusy => 13,
            Exit::TapUnusable => 14,
            Exit::TapSetup => 15,
            Exit::Pcap => 16,
        }
    }

    /// What the code means, for `--help`.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Stopped => "stopped by SIGINT/SIGTERM (counters printed)",
            Exit::TapLost => "the TAP device failed while serving (e.g. it was deleted)",
            Exit::Usage => {
                "command line not understood (unknown flag, missing value, not a number or duration)"
            }
            Exit::BadAddress => "bad --address, --host-address, --gateway or --mac",
            Exit::TooManyAddresses => "more --address values than the interface holds",
            Exit::BadPort => "--port or --udp-port is 0",
            Exit::BadSessions => "--sessions out of range",
            Exit::BadMaxLine => "--max-line out of range",
            Exit::BadSocketBuffer => "--socket-buffer out of range (or below --max-line + 2)",
            Exit::NoPermission => "no permission for /dev/net/tun or the TAP device",
            Exit::TapMissing => "the TAP device does not exist",
            Exit::NoTunDevice => "/dev/net/tun is missing (no tun driver)",
            Exit::TapBusy => "the TAP device is in use by another process",
            Exit::TapUnusable => "invalid interface name, name taken, or not a TAP",
            Exit::TapSetup => "setting up the TAP failed (`ip` command, system call)",
            Exit::Pcap => "the --pcap file cannot be created",
        }
    }

    /// The exit-code table shown by `--help`.
    pub fn table() -> String {
        let mut table = String::from("Exit codes:\n");
        for exit in Exit::ALL {
            // Writing to a String cannot fail.
            let _ = writeln!(table, "  {:>2}  {}", exit.code(), exit.meaning());
        }
        table
    }

    /// The exit for a TAP that cannot be opened or created.
    pub fn of_tap_error(error: &TapError) -> Exit {
        match error {
            TapError::TunDeviceDenied | TapError::NoPermission { .. } => Exit::NoPermission,
            TapError::TapMissing { .. } => Exit::TapMissing,
            TapError::NoTunDevice => Exit::NoTunDevice,
            TapError::Busy { .. } => Exit::TapBusy,
            TapError::InvalidName { .. }
            | TapError::NotATap { .. }
            | TapError::AlreadyExists { .. } => Exit::TapUnusable,
            TapError::IpToolMissing | TapError::IpCommandFailed { .. } | TapError::Io { .. } => {
                Exit::TapSetup
            }
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|exit| exit.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
    }

    #[test]
    fn usage_is_clap_s_code() {
        assert_eq!(
            Exit::Usage.code() as i32,
            clap::Error::new(clap::error::ErrorKind::UnknownArgument).exit_code()
        );
    }

    #[test]
    fn table_lists_every_code_with_its_meaning() {
        let table = Exit::table();
        for exit in Exit::ALL {
            let row = format!("{:>2}  {}", exit.code(), exit.meaning());
            assert!(table.contains(&row), "{row:?} missing from\n{table}");
        }
    }

    #[test]
    fn permission_errors_share_no_permission() {
        let denied = Exit::of_tap_error(&TapError::TunDeviceDenied);
        let not_owner = Exit::of_tap_error(&TapError::NoPermission {
            name: "tap0".into(),
        });
        assert_eq!(
            (denied, not_owner),
            (Exit::NoPermission, Exit::NoPermission)
        );
    }

    #[test]
    fn table_rows_read_code_then_meaning() {
        assert_eq!(Exit::TapMissing.code(), 11);
        let table = Exit::table();
        assert!(
            table
                .lines()
                .any(|row| row == "  11  the TAP device does not exist"),
            "{table}"
        );
    }

    #[test]
    fn missing_tap_is_tap_missing() {
        let exit = Exit::of_tap_error(&TapError::TapMissing {
            name: "tap0".into(),
        });
        assert_eq!(exit, Exit::TapMissing);
    }
}
