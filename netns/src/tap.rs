//! TAPs and the `ip` commands (iproute2) that make and inspect them, in the
//! caller's namespace.

use std::fs;
use std::io;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use crate::SetupError;
use crate::process::{COMMAND_LIMIT, run};

/// Runs `ip args` (split at whitespace), which must succeed: panics
/// otherwise, with what `ip` said.
pub fn ip(args: &str) {
    if let Err(error) = try_ip(args) {
        panic!("{error}");
    }
}

/// Runs `ip args`, which must succeed, and returns its standard output.
///
/// # Errors
///
/// [`SetupError::Ip`] with what `ip` printed on standard error.
///
/// # Panics
///
/// `ip` cannot be started or takes longer than [`COMMAND_LIMIT`].
pub fn try_ip(args: &str) -> Result<String, SetupError> {
    let output = run_ip(args);
    if !output.status.success() {
        return Err(SetupError::Ip {
            command: format!("ip {args}"),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `ip args`, whatever it ends in.
pub fn run_ip(args: &str) -> Output {
    run(
        Command::new("ip").args(args.split_whitespace()),
        b"",
        COMMAND_LIMIT,
    )
}

/// Whether an interface of that name exists in this namespace.
pub fn interface_exists(name: &str) -> bool {
    run_ip(&format!("link show dev {name}")).status.success()
}

/// A persistent TAP in this namespace; it goes when the namespace goes.
#[derive(Debug)]
pub struct Tap {
    name: String,
}

impl Tap {
    /// Creates TAP `name` with `mtu`, gives the kernel's side `host_cidr`
    /// and brings it up. A server attaches to it with `--tap name`.
    ///
    /// # Errors
    ///
    /// An `ip` command failed (the half-made TAP is deleted again).
    pub fn create(name: &str, mtu: u32, host_cidr: &str) -> Result<Tap, SetupError> {
        try_ip(&format!("tuntap add name {name} mode tap"))?;
        let tap = Tap {
            name: name.to_owned(),
        };
        try_ip(&format!("link set dev {name} mtu {mtu}"))?;
        try_ip(&format!("addr add {host_cidr} dev {name}"))?;
        try_ip(&format!("link set dev {name} up"))?;
        Ok(tap)
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames the kernel received from the TAP so far: the frames the
    /// server wrote.
    ///
    /// # Errors
    ///
    /// `/proc/net/dev` could not be read or has no line for the TAP.
    pub fn frames_from_server(&self) -> io::Result<u64> {
        let table = fs::read_to_string("/proc/net/dev")?;
        received_packets(&table, &self.name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no receive counter for {} in /proc/net/dev", self.name),
            )
        })
    }

    /// Waits until a process holds the TAP open (the link has a carrier),
    /// at most `limit`.
    ///
    /// # Errors
    ///
    /// Nobody attached in time, or `ip` failed.
    pub fn wait_for_carrier(&self, limit: Duration) -> Result<(), SetupError> {
        let deadline = Instant::now() + limit;
        loop {
            let link = try_ip(&format!("-o link show dev {}", self.name))?;
            if link.contains("LOWER_UP") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SetupError::NoCarrier {
                    tap: self.name.clone(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The receive packet counter of `interface` in a `/proc/net/dev` table.
fn received_packets(table: &str, interface: &str) -> Option<u64> {
    // "  name: rx_bytes rx_packets rx_errs ..."
    table.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != interface {
            return None;
        }
        counters.split_whitespace().nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_packets_are_the_second_counter_of_the_interface_line() {
        let table = "Inter-|   Receive |  Transmit\n \
                     face |bytes packets errs|bytes packets\n    \
                     lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n\
                     tapbench: 5000 42 0 0 0 0 0 0 7000 43 0 0 0 0 0 0\n";
        assert_eq!(received_packets(table, "tapbench"), Some(42));
        assert_eq!(received_packets(table, "lo"), Some(2));
        assert_eq!(received_packets(table, "tap"), None);
    }
}
