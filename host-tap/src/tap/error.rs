//! Why a TAP cannot be opened or created, and what each errno means at the
//! step where it came.

use std::fmt;
use std::io;

use super::sys::TUN_DEVICE;

/// Why a TAP device could not be opened or created; each message says how to
/// fix it.
#[derive(Debug)]
pub enum TapError {
    /// The name is empty, longer than 15 bytes, `.`, `..`, or holds `/`,
    /// `:`, whitespace or NUL.
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// `/dev/net/tun` does not exist, or the `tun` driver is not available.
    NoTunDevice,
    /// `/dev/net/tun` exists but this user may not open it.
    TunDeviceDenied,
    /// The kernel refused to attach to or create the TAP: it belongs to
    /// another user, or creating one needs `CAP_NET_ADMIN`.
    NoPermission {
        /// The interface name.
        name: String,
    },
    /// No interface of that name exists ([`TapDevice::open`](super::TapDevice::open) only attaches).
    TapMissing {
        /// The interface name.
        name: String,
    },
    /// An interface of that name exists but is not a TAP (a TUN, a NIC, ...).
    NotATap {
        /// The interface name.
        name: String,
    },
    /// Another process holds the TAP open.
    Busy {
        /// The interface name.
        name: String,
    },
    /// [`TapDevice::create`](super::TapDevice::create) found an interface of that name already there.
    AlreadyExists {
        /// The interface name.
        name: String,
    },
    /// The `ip` command (iproute2) is not installed or not on `PATH`.
    IpToolMissing,
    /// An `ip` command configuring a created TAP failed.
    IpCommandFailed {
        /// The command line that failed.
        command: String,
        /// What `ip` printed on standard error.
        stderr: String,
    },
    /// Any other operating-system error.
    Io {
        /// What was being done.
        context: &'static str,
        /// The error the operating system reported.
        source: io::Error,
    },
}

impl fmt::Display for TapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapError::InvalidName { name } => write!(
                f,
                "invalid interface name {name:?}: use 1 to 15 bytes, not `.` or `..`, \
                 without `/`, `:` or whitespace"
            ),
            TapError::NoTunDevice => write!(
                f,
                "{TUN_DEVICE} is missing: load the tun driver (`sudo modprobe tun`), or in a \
                 container pass the device in (e.g. `--device /dev/net/tun`)"
            ),
            TapError::TunDeviceDenied => write!(
                f,
                "permission denied opening {TUN_DEVICE}: give it its usual mode \
                 (`sudo chmod 0666 {TUN_DEVICE}`) or run as root"
            ),
            TapError::NoPermission { name } => write!(
                f,
                "not allowed to use TAP device {name} (it belongs to another user, or creating \
                 it needs CAP_NET_ADMIN): let your user own it with \
                 `sudo ip tuntap add name {name} mode tap user $USER`, or run as root"
            ),
            TapError::TapMissing { name } => write!(
                f,
                "TAP device {name} does not exist: create it with \
                 `sudo ip tuntap add name {name} mode tap user $USER`, then \
                 `sudo ip link set {name} up` and give it a host address with \
                 `sudo ip addr add <address>/<prefix> dev {name}`"
            ),
            TapError::NotATap { name } => write!(
                f,
                "interface {name} exists but is not a TAP device: pick another name, or \
                 recreate it with `mode tap` (`sudo ip link delete {name}`, then \
                 `sudo ip tuntap add name {name} mode tap user $USER`)"
            ),
            TapError::Busy { name } => write!(
                f,
                "TAP device {name} is in use by another process (is a server already \
                 running on it?): stop that process or use another TAP"
            ),
            TapError::AlreadyExists { name } => write!(
                f,
                "interface {name} already exists: attach to it with `open`, remove it with \
                 `sudo ip link delete {name}`, or pick another name"
            ),
            TapError::IpToolMissing => write!(
                f,
                "the `ip` command was not found: install iproute2 \
                 (e.g. `sudo apt-get install iproute2`)"
            ),
            TapError::IpCommandFailed { command, stderr } => write!(
                f,
                "`{command}` failed: {stderr} (check the host addresses; the TAP was removed again)"
            ),
            TapError::Io { context, source } => write!(f, "could not {context}: {source}"),
        }
    }
}

impl std::error::Error for TapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TapError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Which step of opening failed, to tell what an errno means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// `open("/dev/net/tun")`.
    OpenTunDevice,
    /// `TUNSETIFF` on an existing interface.
    Attach,
    /// `TUNSETIFF` with `IFF_TUN_EXCL`, creating the interface.
    Create,
}

/// Maps the errno of a failed `step` to the error that says how to fix it.
pub(super) fn classify(step: Step, error: io::Error, name: &str) -> TapError {
    let name = name.to_owned();
    match (step, error.raw_os_error()) {
        // ENODEV/ENXIO: the node exists but no tun driver answers behind it.
        (Step::OpenTunDevice, Some(libc::ENOENT | libc::ENODEV | libc::ENXIO)) => {
            TapError::NoTunDevice
        }
        (Step::OpenTunDevice, Some(libc::EACCES | libc::EPERM)) => TapError::TunDeviceDenied,
        (Step::Attach | Step::Create, Some(libc::EACCES | libc::EPERM)) => {
            TapError::NoPermission { name }
        }
        // Attaching to a TAP that has a queue already, without IFF_MULTI_QUEUE.
        (Step::Attach, Some(libc::EBUSY)) => TapError::Busy { name },
        // The interface exists but was not made by the tun driver in TAP mode.
        (Step::Attach, Some(libc::EINVAL)) => TapError::NotATap { name },
        // IFF_TUN_EXCL and the name is taken.
        (Step::Create, Some(libc::EBUSY)) => TapError::AlreadyExists { name },
        (Step::OpenTunDevice, _) => TapError::Io {
            context: "open /dev/net/tun",
            source: error,
        },
        (Step::Attach, _) => TapError::Io {
            context: "attach to the TAP (TUNSETIFF)",
            source: error,
        },
        (Step::Create, _) => TapError::Io {
            context: "create the TAP (TUNSETIFF)",
            source: error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn missing_tun_device_is_no_tun_device() {
        for errno in [libc::ENOENT, libc::ENODEV] {
            let error = classify(Step::OpenTunDevice, os_error(errno), "");
            assert!(
                matches!(error, TapError::NoTunDevice),
                "errno {errno}: {error:?}"
            );
        }
    }

    #[test]
    fn denied_tun_device_is_tun_device_denied() {
        let error = classify(Step::OpenTunDevice, os_error(libc::EACCES), "");
        assert!(matches!(error, TapError::TunDeviceDenied));
    }

    #[test]
    fn eperm_on_attach_or_create_is_no_permission() {
        for step in [Step::Attach, Step::Create] {
            let error = classify(step, os_error(libc::EPERM), "tap0");
            assert!(
                matches!(&error, TapError::NoPermission { name } if name == "tap0"),
                "{step:?}"
            );
        }
    }

    #[test]
    fn ebusy_on_attach_is_busy() {
        let error = classify(Step::Attach, os_error(libc::EBUSY), "tap0");
        assert!(matches!(error, TapError::Busy { .. }));
    }

    #[test]
    fn ebusy_on_create_is_already_exists() {
        let error = classify(Step::Create, os_error(libc::EBUSY), "tap0");
        assert!(matches!(error, TapError::AlreadyExists { .. }));
    }

    #[test]
    fn einval_on_attach_is_not_a_tap() {
        let error = classify(Step::Attach, os_error(libc::EINVAL), "eth0");
        assert!(matches!(error, TapError::NotATap { .. }));
    }

    #[test]
    fn other_errno_is_io_with_its_source() {
        let error = classify(Step::Attach, os_error(libc::ENOMEM), "tap0");
        assert!(
            matches!(&error, TapError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOMEM))
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn tap_missing_message_gives_the_command_that_makes_it() {
        let message = TapError::TapMissing {
            name: "tap7".into(),
        }
        .to_string();
        assert!(
            message.contains("sudo ip tuntap add name tap7 mode tap user $USER"),
            "{message}"
        );
    }

    #[test]
    fn no_permission_message_names_the_tap_and_the_fix() {
        let message = TapError::NoPermission {
            name: "tap7".into(),
        }
        .to_string();
        assert!(message.contains("tap7"), "{message}");
        assert!(message.contains("user $USER"), "{message}");
    }

    #[test]
    fn no_tun_device_message_says_modprobe() {
        assert!(TapError::NoTunDevice.to_string().contains("modprobe tun"));
    }

    #[test]
    fn tun_device_denied_message_says_chmod() {
        assert!(
            TapError::TunDeviceDenied
                .to_string()
                .contains("chmod 0666 /dev/net/tun")
        );
    }

    #[test]
    fn ip_command_failure_message_quotes_command_and_stderr() {
        let error = TapError::IpCommandFailed {
            command: "ip addr add 1.2.3.4/99 dev tap0".into(),
            stderr: "Error: invalid prefix".into(),
        };
        let message = error.to_string();
        assert!(
            message.contains("`ip addr add 1.2.3.4/99 dev tap0`"),
            "{message}"
        );
        assert!(message.contains("Error: invalid prefix"), "{message}");
    }

    #[test]
    fn ip_tool_missing_message_says_iproute2() {
        assert!(TapError::IpToolMissing.to_string().contains("iproute2"));
    }

    #[test]
    fn io_message_says_what_failed_and_why() {
        let error = TapError::Io {
            context: "read the MTU (SIOCGIFMTU)",
            source: os_error(libc::ENODEV),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("could not read the MTU (SIOCGIFMTU): "),
            "{message}"
        );
        assert!(message.contains("No such device"), "{message}");
    }
}
