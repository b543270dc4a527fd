//! The `ip` commands (iproute2) that configure a TAP this process created:
//! the kernel's side gets its addresses and the link goes up.

use std::io;
use std::net::IpAddr;
use std::process::Command;

use super::TapError;

/// Gives the kernel's side of `interface` the addresses `host_cidrs`
/// (address, prefix length) and brings the link up. IPv6 addresses are added
/// with `nodad`, so they work at once instead of after duplicate detection.
pub(super) fn configure(interface: &str, host_cidrs: &[(IpAddr, u8)]) -> Result<(), TapError> {
    for (address, prefix_len) in host_cidrs {
        let cidr = format!("{address}/{prefix_len}");
        let mut args = vec!["addr", "add", cidr.as_str(), "dev", interface];
        if address.is_ipv6() {
            args.push("nodad");
        }
        run_ip(&args)?;
    }
    run_ip(&["link", "set", "dev", interface, "up"])
}

/// Runs `ip args...`, turning a missing tool or a failure into a [`TapError`].
fn run_ip(args: &[&str]) -> Result<(), TapError> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => TapError::IpToolMissing,
            _ => TapError::Io {
                context: "run the `ip` command",
                source,
            },
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(TapError::IpCommandFailed {
        command: format!("ip {}", args.join(" ")),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}
