//! The benchmark's own network namespace and the TAP inside it.
//!
//! The namespace is made with `unshare(CLONE_NEWNET)` before any thread or
//! child exists, so everything the benchmark starts lives in it and nothing
//! touches the host's network. The kernel deletes the namespace, with the
//! TAP, when the last of its processes exits, even after a crash.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Why the benchmark's network could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// Not root, no `/dev/net/tun`, or no `ip` command.
    Unavailable(String),
    /// `unshare(CLONE_NEWNET)` failed or did not change the namespace.
    Namespace(String),
    /// An `ip` command failed.
    Ip {
        /// The command line.
        command: String,
        /// What it printed on standard error, or why it could not run.
        stderr: String,
    },
    /// A kernel setting under `/proc/sys` could not be written.
    Sysctl {
        /// The file.
        path: &'static str,
        /// Why.
        source: io::Error,
    },
    /// No process attached to the TAP in time.
    NoCarrier {
        /// The TAP's name.
        tap: String,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Unavailable(why) => write!(f, "cannot run here: {why}"),
            SetupError::Namespace(why) => write!(f, "cannot make a network namespace: {why}"),
            SetupError::Ip { command, stderr } => write!(f, "`{command}` failed: {stderr}"),
            SetupError::Sysctl { path, source } => write!(f, "cannot write {path}: {source}"),
            SetupError::NoCarrier { tap } => {
                write!(
                    f,
                    "no server attached to {tap} in time (see its output above)"
                )
            }
        }
    }
}

impl std::error::Error for SetupError {}

/// Why the benchmark cannot run on this machine, if it cannot.
pub fn why_unavailable() -> Option<String> {
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing (load the tun driver)".into());
    }
    if !is_root() {
        return Some("not root (the network namespace and the TAP need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is not installed".into());
    }
    None
}

fn is_root() -> bool {
    // "Uid:\treal\teffective\tsaved\tfs"
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Moves this process into a new, empty network namespace, brings its
/// loopback up and lets the kernel-side clients open connections quickly.
///
/// Must run before any other thread is started: a namespace change applies
/// to the calling thread only, and threads started later inherit it.
///
/// # Errors
///
/// The namespace cannot be made, or its loopback or settings cannot be set.
pub fn enter_own() -> Result<(), SetupError> {
    let namespace = || {
        fs::read_link("/proc/thread-self/ns/net").map_err(|e| {
            SetupError::Namespace(format!("cannot read /proc/thread-self/ns/net: {e}"))
        })
    };
    let before = namespace()?;
    // SAFETY: unshare(2) takes a flag word and touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(SetupError::Namespace(
            io::Error::last_os_error().to_string(),
        ));
    }
    if namespace()? == before {
        return Err(SetupError::Namespace("still in the old namespace".into()));
    }
    ip(&["link", "set", "dev", "lo", "up"])?;
    // Clients close first, so their side keeps TIME_WAIT for a minute; churn
    // and the RSS runs open 100k connections. Both settings apply to this
    // namespace only.
    sysctl("/proc/sys/net/ipv4/ip_local_port_range", "1024 65535")?;
    sysctl("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0")?;
    Ok(())
}

fn sysctl(path: &'static str, value: &str) -> Result<(), SetupError> {
    fs::write(path, value).map_err(|source| SetupError::Sysctl { path, source })
}

/// Runs `ip args`, which must succeed.
fn ip(args: &[&str]) -> Result<String, SetupError> {
    let command = format!("ip {}", args.join(" "));
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| SetupError::Ip {
            command: command.clone(),
            stderr: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(SetupError::Ip {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A persistent TAP in the benchmark's namespace, deleted on drop.
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
        ip(&["tuntap", "add", "name", name, "mode", "tap"])?;
        let tap = Tap {
            name: name.to_owned(),
        };
        ip(&["link", "set", "dev", name, "mtu", &mtu.to_string()])?;
        ip(&["addr", "add", host_cidr, "dev", name])?;
        ip(&["link", "set", "dev", name, "up"])?;
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
            let link = ip(&["-o", "link", "show", "dev", &self.name])?;
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

impl Drop for Tap {
    fn drop(&mut self) {
        // The namespace takes the TAP with it anyway; this is only tidiness.
        let _ = ip(&["link", "delete", "dev", &self.name]);
    }
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
