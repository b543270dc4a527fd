//! Attaching to an existing TAP or creating one: the checks around
//! `TUNSETIFF` that turn each failure into the [`TapError`] that says how to
//! fix it.

use std::ffi::c_uint;
use std::io;
use std::net::IpAddr;

use super::error::{Step, classify};
use super::sys::{
    ControlSocket, EXCLUSIVE, InterfaceName, OFFLOAD_CHECKSUM, OFFLOAD_TSO, TAP_FLAGS, Tun,
    VNET_HEADER,
};
use super::vnet::{self, Offloads};
use super::{TapDevice, TapError, ip};

/// What [`TapDevice::open_with`] and [`TapDevice::create_with`] ask of the
/// TAP. It can grow: build it with [`new`](Self::new) and the `with_*`
/// methods.
///
/// ```
/// use host_tap::tap::TapOptions;
///
/// let options = TapOptions::new().with_offload(false);
/// assert!(!options.offload);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TapOptions {
    /// Ask the kernel for checksum and TCP segmentation offload (through a
    /// virtio-net header on every frame); whatever it refuses is done in
    /// smoltcp, as without. Default on.
    pub offload: bool,
}

impl TapOptions {
    /// The defaults: offloads on.
    pub const fn new() -> TapOptions {
        TapOptions { offload: true }
    }

    /// With offloads on or off.
    #[must_use]
    pub const fn with_offload(self, offload: bool) -> TapOptions {
        TapOptions { offload }
    }
}

impl Default for TapOptions {
    fn default() -> TapOptions {
        TapOptions::new()
    }
}

impl TapDevice {
    /// Attaches to the existing TAP interface `name`.
    ///
    /// Made beforehand with `sudo ip tuntap add name tap0 mode tap user $USER`,
    /// the TAP can then be used without root. `open` never creates an
    /// interface: a missing one is [`TapError::TapMissing`]. The MTU is read
    /// from the interface once, here; change it before opening, not after.
    /// Offloads are asked for and agreed here too ([`TapOptions::new`];
    /// [`open_with`](Self::open_with) chooses), and the TAP is left without
    /// them when the device drops.
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
        TapDevice::open_with(name, TapOptions::new())
    }

    /// Like [`open`](Self::open), with `options`.
    ///
    /// ```no_run
    /// use host_tap::tap::{TapDevice, TapOptions};
    ///
    /// let device = TapDevice::open_with("tap0", TapOptions::new().with_offload(false))?;
    /// assert_eq!(device.offloads(), host_tap::tap::Offloads::NONE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn open_with(name: &str, options: TapOptions) -> Result<TapDevice, TapError> {
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
        let vnet_header = options.offload && offers_vnet_header(&tun, name);
        tun.set_interface(&interface, tap_flags(vnet_header))
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
        TapDevice::attached(tun, interface, &control, vnet_header)
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
        TapDevice::create_with(name, host_cidrs, TapOptions::new())
    }

    /// Like [`create`](Self::create), with `options`.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    pub fn create_with(
        name: &str,
        host_cidrs: &[(IpAddr, u8)],
        options: TapOptions,
    ) -> Result<TapDevice, TapError> {
        let requested = interface_name(name)?;
        let tun = open_tun()?;
        let control = open_control_socket()?;
        let vnet_header = options.offload && offers_vnet_header(&tun, name);
        // IFF_TUN_EXCL: fail on an existing interface instead of attaching to it,
        // which would leave a persistent TAP behind on drop.
        let interface = tun
            .set_interface(&requested, tap_flags(vnet_header) | EXCLUSIVE)
            .map_err(|error| classify(Step::Create, error, name))?;
        ip::configure(&interface.to_string_lossy(), host_cidrs)?;
        TapDevice::attached(tun, interface, &control, vnet_header)
    }

    /// Finishes opening: reads the MTU, agrees on the offloads and allocates
    /// the frame buffers.
    fn attached(
        tun: Tun,
        interface: InterfaceName,
        control: &ControlSocket,
        vnet_header: bool,
    ) -> Result<TapDevice, TapError> {
        let mtu = control.mtu(&interface).map_err(|source| TapError::Io {
            context: "read the MTU (SIOCGIFMTU)",
            source,
        })?;
        let name = interface.to_string_lossy();
        let (header_len, offloads) = if vnet_header {
            // The length belongs to the interface: a persistent TAP keeps
            // what its last user (QEMU, say) set.
            tun.set_vnet_header_len(vnet::HEADER_LEN)
                .map_err(|source| TapError::Io {
                    context: "set the virtio-net header length (TUNSETVNETHDRSZ)",
                    source,
                })?;
            let (offloads, refusal) = negotiate(|flags| tun.set_offload(flags));
            if let Some(error) = refusal {
                log::warn!(
                    "TAP {name}: the kernel refused offloads ({error}); serving with offloads: {offloads}"
                );
            }
            (vnet::HEADER_LEN, offloads)
        } else {
            // A persistent TAP may still have offloads a former user asked
            // for: without a header to say so, its frames would come too
            // large and without checksums.
            if let Err(error) = tun.set_offload(0) {
                log::warn!("TAP {name}: cannot switch offloads off: {error}");
            }
            (0, Offloads::NONE)
        };
        Ok(TapDevice::new(tun, name, mtu, header_len, offloads))
    }
}

/// `TUNSETIFF` flags: a TAP without packet information, with a virtio-net
/// header on every frame or without.
fn tap_flags(vnet_header: bool) -> std::ffi::c_short {
    if vnet_header {
        TAP_FLAGS | VNET_HEADER
    } else {
        TAP_FLAGS
    }
}

/// Whether the TUN driver can put a virtio-net header before each frame
/// (every Linux since 2.6.27; logs once when not).
fn offers_vnet_header(tun: &Tun, name: &str) -> bool {
    match tun.features() {
        Ok(features) if features & libc::IFF_VNET_HDR != 0 => true,
        Ok(_) => {
            log::warn!(
                "TAP {name}: this kernel's TUN driver has no virtio-net header (IFF_VNET_HDR); \
                 serving without offloads"
            );
            false
        }
        Err(error) => {
            log::warn!(
                "TAP {name}: cannot read the TUN driver's features ({error}); serving without offloads"
            );
            false
        }
    }
}

/// Asks for checksum and segmentation offload, then for checksum offload
/// alone, then for none, through `set_offload` (`TUNSETOFFLOAD`), and
/// returns what the kernel agreed to, with its first refusal.
fn negotiate(
    mut set_offload: impl FnMut(c_uint) -> io::Result<()>,
) -> (Offloads, Option<io::Error>) {
    let wishes = [
        (
            OFFLOAD_CHECKSUM | OFFLOAD_TSO,
            Offloads {
                checksum: true,
                segmentation: true,
            },
        ),
        (
            OFFLOAD_CHECKSUM,
            Offloads {
                checksum: true,
                segmentation: false,
            },
        ),
    ];
    let mut refusal = None;
    for (flags, offloads) in wishes {
        match set_offload(flags) {
            Ok(()) => return (offloads, refusal),
            Err(error) => {
                refusal.get_or_insert(error);
            }
        }
    }
    // Nothing offloaded: the header stays, always empty. This request
    // cannot be refused for a flag the kernel does not know.
    let _ = set_offload(0);
    (Offloads::NONE, refusal)
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

    fn einval() -> io::Error {
        io::Error::from_raw_os_error(libc::EINVAL)
    }

    #[test]
    fn a_kernel_that_takes_everything_gets_checksums_and_segmentation() {
        let mut asked = Vec::new();
        let (offloads, refusal) = negotiate(|flags| {
            asked.push(flags);
            Ok(())
        });
        assert_eq!(asked, [OFFLOAD_CHECKSUM | OFFLOAD_TSO]);
        assert!(offloads.checksum && offloads.segmentation);
        assert!(refusal.is_none());
    }

    #[test]
    fn a_kernel_without_segmentation_offload_gets_checksums_alone() {
        let (offloads, refusal) = negotiate(|flags| {
            if flags & OFFLOAD_TSO == 0 {
                Ok(())
            } else {
                Err(einval())
            }
        });
        assert!(offloads.checksum && !offloads.segmentation);
        assert_eq!(refusal.unwrap().raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn a_kernel_that_refuses_every_offload_gets_none() {
        let mut asked = Vec::new();
        let (offloads, refusal) = negotiate(|flags| {
            asked.push(flags);
            if flags == 0 { Ok(()) } else { Err(einval()) }
        });
        assert_eq!(offloads, Offloads::NONE);
        assert!(refusal.is_some());
        assert_eq!(asked.last(), Some(&0), "the offloads are cleared");
    }

    #[test]
    fn open_and_create_refuse_an_invalid_name() {
        let long = "abcdefghijklmnop";
        for result in [TapDevice::open(long), TapDevice::create(long, &[])] {
            assert!(matches!(result, Err(TapError::InvalidName { name }) if name == long));
        }
    }
}
