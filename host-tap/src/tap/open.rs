//! Attaching to an existing TAP or creating one: the checks around
//! `TUNSETIFF` that turn each failure into the [`TapError`] that says how to
//! fix it.

use std::net::IpAddr;

use super::error::{Step, classify};
use super::sys::{ControlSocket, EXCLUSIVE, InterfaceName, TAP_FLAGS, Tun};
use super::{TapDevice, TapError, ip};

impl TapDevice {
    /// Attaches to the existing TAP interface `name`.
    ///
    /// Made beforehand with `sudo ip tuntap add name tap0 mode tap user $USER`,
    /// the TAP can then be used without root. `open` never creates an
    /// interface: a missing one is [`TapError::TapMissing`]. The MTU is read
    /// from the interface once, here; change it before opening, not after.
    ///
    /// ```no_run
    /// use host_tap::tap::{TapDevice, TapError};
    ///
    /// match TapDevice::open("tap0") {
    ///     Ok(device) => println!("{} up, MTU {}", device.name(), device.mtu()),
    ///     Err(error @ TapError::TapMissing { .. }) => eprintln!("{error}"),
    ///     Err(error) => return Err(error.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`TapError`] naming the cause and its fix: [`InvalidName`],
    /// [`NoTunDevice`], [`TunDeviceDenied`], [`TapMissing`], [`NoPermission`]
    /// (the TAP belongs to another user), [`NotATap`], [`Busy`], or [`Io`].
    ///
    /// [`InvalidName`]: TapError::InvalidName
    /// [`NoTunDevice`]: TapError::NoTunDevice
    /// [`TunDeviceDenied`]: TapError::TunDeviceDenied
    /// [`TapMissing`]: TapError::TapMissing
    /// [`NoPermission`]: TapError::NoPermission
    /// [`NotATap`]: TapError::NotATap
    /// [`Busy`]: TapError::Busy
    /// [`Io`]: TapError::Io
    pub fn open(name: &str) -> Result<TapDevice, TapError> {
        let interface = interface_name(name)?;
        let tun = open_tun()?;
        let control = open_control_socket()?;
        // Without this check an unprivileged caller would get EPERM (TUNSETIFF
        // tries to create the missing TAP) and root would create it silently.
        let exists = control.exists(&interface).map_err(|source| TapError::Io {
            context: "look up the interface (SIOCGIFINDEX)",
            source,
        })?;
        if !exists {
            return Err(TapError::TapMissing {
                name: name.to_owned(),
            });
        }
        tun.set_interface(&interface, TAP_FLAGS)
            .map_err(|error| classify(Step::Attach, error, name))?;
        // If the TAP was deleted after the check, a root caller has just created
        // a fresh non-persistent one; dropping `tun` removes it again.
        if !tun.is_persistent().map_err(|source| TapError::Io {
            context: "read the TAP flags (TUNGETIFF)",
            source,
        })? {
            return Err(TapError::TapMissing {
                name: name.to_owned(),
            });
        }
        TapDevice::attached(tun, interface, &control)
    }

    /// Creates the TAP interface `name`, brings it up and gives the host side
    /// the addresses `host_cidrs` (address, prefix length); needs root or
    /// `CAP_NET_ADMIN` and the `ip` command (iproute2).
    ///
    /// The name may be a kernel template such as `"tap%d"`; [`name`](Self::name)
    /// then tells the name the kernel chose. IPv6 addresses are added with
    /// `nodad`, so they work at once instead of after duplicate detection.
    ///
    /// The interface is created non-persistent: the kernel deletes it, with
    /// its addresses and routes, when its last descriptor closes. That is
    /// when this device drops, and also when the process dies, so nothing is
    /// left behind even after a crash. (Our descriptor is close-on-exec, so
    /// the `ip` children cannot keep the interface alive.)
    ///
    /// ```no_run
    /// use host_tap::tap::TapDevice;
    ///
    /// let host = [("192.168.69.100".parse()?, 24), ("fd00:69::100".parse()?, 64)];
    /// let device = TapDevice::create("tap%d", &host)?;
    /// println!("created {}", device.name());
    /// drop(device); // the interface is gone again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`TapError`] naming the cause and its fix: [`InvalidName`],
    /// [`NoTunDevice`], [`TunDeviceDenied`], [`NoPermission`] (not root),
    /// [`AlreadyExists`], [`IpToolMissing`], [`IpCommandFailed`], or [`Io`].
    /// When configuring fails, the half-made TAP is removed again.
    ///
    /// [`InvalidName`]: TapError::InvalidName
    /// [`NoTunDevice`]: TapError::NoTunDevice
    /// [`TunDeviceDenied`]: TapError::TunDeviceDenied
    /// [`NoPermission`]: TapError::NoPermission
    /// [`AlreadyExists`]: TapError::AlreadyExists
    /// [`IpToolMissing`]: TapError::IpToolMissing
    /// [`IpCommandFailed`]: TapError::IpCommandFailed
    /// [`Io`]: TapError::Io
    pub fn create(name: &str, host_cidrs: &[(IpAddr, u8)]) -> Result<TapDevice, TapError> {
        let requested = interface_name(name)?;
        let tun = open_tun()?;
        let control = open_control_socket()?;
        // IFF_TUN_EXCL: fail on an existing interface instead of attaching to it,
        // which would leave a persistent TAP behind on drop.
        let interface = tun
            .set_interface(&requested, TAP_FLAGS | EXCLUSIVE)
            .map_err(|error| classify(Step::Create, error, name))?;
        ip::configure(&interface.to_string_lossy(), host_cidrs)?;
        TapDevice::attached(tun, interface, &control)
    }

    /// Finishes opening: reads the MTU and allocates the frame buffers.
    fn attached(
        tun: Tun,
        interface: InterfaceName,
        control: &ControlSocket,
    ) -> Result<TapDevice, TapError> {
        let mtu = control.mtu(&interface).map_err(|source| TapError::Io {
            context: "read the MTU (SIOCGIFMTU)",
            source,
        })?;
        Ok(TapDevice::new(tun, interface.to_string_lossy(), mtu))
    }
}

/// `name` as the kernel takes it, or [`TapError::InvalidName`].
fn interface_name(name: &str) -> Result<InterfaceName, TapError> {
    InterfaceName::new(name).ok_or_else(|| TapError::InvalidName {
        name: name.to_owned(),
    })
}

fn open_tun() -> Result<Tun, TapError> {
    Tun::open().map_err(|error| classify(Step::OpenTunDevice, error, ""))
}

fn open_control_socket() -> Result<ControlSocket, TapError> {
    ControlSocket::open().map_err(|source| TapError::Io {
        context: "open a socket for interface ioctls",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_create_refuse_an_invalid_name() {
        let long = "abcdefghijklmnop";
        for result in [TapDevice::open(long), TapDevice::create(long, &[])] {
            assert!(matches!(result, Err(TapError::InvalidName { name }) if name == long));
        }
    }
}
