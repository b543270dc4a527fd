//! Every raw Linux call of the TAP device, each behind a safe function: the
//! `/dev/net/tun` descriptor and its ioctls, the interface ioctls on a
//! control socket, and `poll(2)`. The only module of the crate with `unsafe`.
//!
//! An ioctl's argument type depends on its request number, so no safe
//! function here takes a request number: each request has a function of its
//! own that fixes the number and builds the argument that belongs to it, and
//! the raw calls are `unsafe fn`s whose callers state why their request
//! takes that argument: [`ifreq_ioctl`] (an `ifreq`), [`int_ioctl`] (a
//! pointer to one `int`: `TUNGETFEATURES`, `TUNSETVNETHDRSZ`) and
//! [`value_ioctl`] (a plain value: `TUNSETOFFLOAD`). A TUN flag such as
//! `IFF_VNET_HDR` or `IFF_MULTI_QUEUE` is one more bit for
//! [`Tun::set_interface`].
//!
//! libc rather than rustix or nix: their typed ioctls are `unsafe` to call
//! too and know no TUN requests, so they would add a dependency without
//! removing an `unsafe` block; libc already has `ifreq`, `TUNSETIFF` and the
//! `IFF_*` flags.

use std::ffi::{c_char, c_int, c_short, c_uint, c_ulong};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

/// The clone device every TUN/TAP file descriptor is opened from.
pub(super) const TUN_DEVICE: &str = "/dev/net/tun";

/// [`Tun::set_interface`] flags: Ethernet frames, without the 4-byte
/// packet-information prefix.
pub(super) const TAP_FLAGS: c_short = (libc::IFF_TAP | libc::IFF_NO_PI) as c_short;

/// [`Tun::set_interface`] flag: fail on an existing interface instead of
/// attaching to it.
pub(super) const EXCLUSIVE: c_short = libc::IFF_TUN_EXCL as c_short;

/// [`Tun::set_interface`] flag: every frame read or written starts with a
/// `struct virtio_net_hdr` (see `vnet.rs`).
pub(super) const VNET_HEADER: c_short = libc::IFF_VNET_HDR as c_short;

/// [`Tun::set_offload`] flags: the kernel may leave TCP and UDP checksums to
/// us and write TCP segments of up to 64 KiB (IPv4 and IPv6).
pub(super) const OFFLOAD_CHECKSUM: c_uint = libc::TUN_F_CSUM;
pub(super) const OFFLOAD_TSO: c_uint = libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// A network interface name in the form the kernel takes it: NUL-padded to
/// `IFNAMSIZ` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InterfaceName([c_char; libc::IFNAMSIZ]);

impl InterfaceName {
    /// Checks `name` by the kernel's rules (`dev_valid_name`), so a bad name
    /// is reported as such and not as a puzzling ioctl errno.
    pub(super) fn new(name: &str) -> Option<InterfaceName> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() < libc::IFNAMSIZ
            && name != "."
            && name != ".."
            && !bytes.iter().any(|&byte| {
                byte == b'/' || byte == b':' || byte == 0 || byte.is_ascii_whitespace()
            });
        if !valid {
            return None;
        }
        let mut raw = [0; libc::IFNAMSIZ];
        for (slot, &byte) in raw.iter_mut().zip(bytes) {
            *slot = byte as c_char;
        }
        Some(InterfaceName(raw))
    }

    pub(super) fn to_string_lossy(self) -> String {
        let bytes: Vec<u8> = self
            .0
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// An `ifreq` for this interface, all other fields zero.
    fn request(self) -> libc::ifreq {
        let mut request = zeroed_ifreq();
        request.ifr_name = self.0;
        request
    }
}

/// An `ifreq` of all zeroes: no name, no flags.
fn zeroed_ifreq() -> libc::ifreq {
    // SAFETY: `ifreq` holds only integers, byte arrays and a raw pointer in
    // a union; all-zero bytes are a valid value of each.
    unsafe { std::mem::zeroed() }
}

/// ioctl(2) with a pointer to one `ifreq`.
///
/// # Safety
///
/// `request` must be a request whose argument is a pointer to one `ifreq`
/// and that accesses no other memory of ours.
unsafe fn ifreq_ioctl(
    fd: BorrowedFd<'_>,
    request: libc::Ioctl,
    ifreq: &mut libc::ifreq,
) -> io::Result<()> {
    // SAFETY: the caller guarantees that `request` takes a pointer to one
    // `ifreq`; `ifreq` is valid and exclusively borrowed for the whole call,
    // and `fd` is open while borrowed.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), request, std::ptr::from_mut(ifreq)) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioctl(2) with a pointer to one `int`.
///
/// # Safety
///
/// `request` must be a request whose argument is a pointer to one `c_int`
/// and that accesses no other memory of ours.
unsafe fn int_ioctl(fd: BorrowedFd<'_>, request: libc::Ioctl, value: &mut c_int) -> io::Result<()> {
    // SAFETY: the caller guarantees that `request` takes a pointer to one
    // `c_int`; `value` is valid and exclusively borrowed for the whole call.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), request, std::ptr::from_mut(value)) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioctl(2) with a plain value as its argument.
///
/// # Safety
///
/// `request` must be a request that takes its argument by value and
/// accesses no memory of ours.
unsafe fn value_ioctl(fd: BorrowedFd<'_>, request: libc::Ioctl, value: c_ulong) -> io::Result<()> {
    // SAFETY: the caller guarantees that `request` reads no memory through
    // its argument; `fd` is open while borrowed.
    let result = unsafe { libc::ioctl(fd.as_raw_fd(), request, value) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A descriptor of `/dev/net/tun`, non-blocking and close-on-exec; bound to
/// an interface by [`set_interface`](Tun::set_interface).
#[derive(Debug)]
pub(super) struct Tun(File);

impl Tun {
    /// Opens the clone device.
    pub(super) fn open() -> io::Result<Tun> {
        // std opens with O_CLOEXEC: child processes (`ip`) must not keep the TAP alive.
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(TUN_DEVICE)
            .map(Tun)
    }

    /// TUNSETIFF: binds this descriptor to the interface, creating it if it
    /// does not exist. Returns the name the kernel used (it expands templates
    /// such as `tap%d`).
    pub(super) fn set_interface(
        &self,
        interface: &InterfaceName,
        flags: c_short,
    ) -> io::Result<InterfaceName> {
        let mut request = interface.request();
        request.ifr_ifru.ifru_flags = flags;
        // SAFETY: TUNSETIFF reads the name and flags of one `ifreq` and
        // writes the name back.
        unsafe { ifreq_ioctl(self.0.as_fd(), libc::TUNSETIFF, &mut request) }?;
        Ok(InterfaceName(request.ifr_name))
    }

    /// TUNGETFEATURES: the `IFF_*` flags this kernel's TUN driver takes.
    pub(super) fn features(&self) -> io::Result<c_int> {
        let mut features = 0;
        // SAFETY: TUNGETFEATURES writes one `unsigned int` (the size of a `c_int`).
        unsafe { int_ioctl(self.0.as_fd(), libc::TUNGETFEATURES, &mut features) }?;
        Ok(features)
    }

    /// TUNSETVNETHDRSZ: the length of the header before each frame, on a
    /// descriptor bound with [`VNET_HEADER`]. The length belongs to the
    /// interface, so a persistent TAP keeps what its last user set.
    pub(super) fn set_vnet_header_len(&self, len: usize) -> io::Result<()> {
        let mut len = c_int::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "header too long"))?;
        // SAFETY: TUNSETVNETHDRSZ reads one `int`.
        unsafe { int_ioctl(self.0.as_fd(), libc::TUNSETVNETHDRSZ, &mut len) }
    }

    /// TUNSETOFFLOAD: which offloads (`TUN_F_*`) the kernel may use in the
    /// frames it writes to us; it refuses flags it does not know with
    /// `EINVAL`. Like the header length, they belong to the interface.
    pub(super) fn set_offload(&self, flags: c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its flags by value.
        unsafe { value_ioctl(self.0.as_fd(), libc::TUNSETOFFLOAD, c_ulong::from(flags)) }
    }

    /// TUNGETIFF: whether the interface this descriptor is bound to
    /// outlives its descriptors.
    pub(super) fn is_persistent(&self) -> io::Result<bool> {
        let mut request = zeroed_ifreq();
        // SAFETY: TUNGETIFF writes the name and flags of one `ifreq`.
        unsafe { ifreq_ioctl(self.0.as_fd(), libc::TUNGETIFF, &mut request) }?;
        // SAFETY: TUNGETIFF filled `ifru_flags`; any bit pattern is a valid c_short.
        let flags = unsafe { request.ifr_ifru.ifru_flags };
        Ok(flags & libc::IFF_PERSIST as c_short != 0)
    }

    /// Reads one frame; [`io::ErrorKind::WouldBlock`] when none is queued.
    pub(super) fn read(&self, frame: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(frame)
    }

    /// Writes one whole frame; a TAP takes a frame whole or not at all.
    pub(super) fn write(&self, frame: &[u8]) -> io::Result<usize> {
        (&self.0).write(frame)
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A datagram socket, needed only as a handle for interface ioctls; it sends
/// nothing. It looks in the caller's network namespace, unlike
/// `/sys/class/net`, which shows the namespace sysfs was mounted in.
#[derive(Debug)]
pub(super) struct ControlSocket(OwnedFd);

impl ControlSocket {
    pub(super) fn open() -> io::Result<ControlSocket> {
        // SAFETY: plain socket(2) call; no pointers.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        Ok(ControlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// SIOCGIFINDEX: whether an interface of this name exists.
    pub(super) fn exists(&self, interface: &InterfaceName) -> io::Result<bool> {
        let mut request = interface.request();
        // SAFETY: SIOCGIFINDEX reads the name of one `ifreq` and writes its index.
        match unsafe { ifreq_ioctl(self.0.as_fd(), libc::SIOCGIFINDEX, &mut request) } {
            Ok(()) => Ok(true),
            Err(error) if error.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// SIOCGIFMTU: the interface's IP MTU.
    pub(super) fn mtu(&self, interface: &InterfaceName) -> io::Result<usize> {
        let mut request = interface.request();
        // SAFETY: SIOCGIFMTU reads the name of one `ifreq` and writes its MTU.
        unsafe { ifreq_ioctl(self.0.as_fd(), libc::SIOCGIFMTU, &mut request) }?;
        // SAFETY: SIOCGIFMTU filled `ifru_mtu`; any bit pattern is a valid c_int.
        let mtu = unsafe { request.ifr_ifru.ifru_mtu };
        usize::try_from(mtu)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("negative MTU {mtu}")))
    }
}

/// What `poll(2)` reported for one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Readiness(c_short);

impl Readiness {
    /// Data can be read.
    pub(super) fn readable(self) -> bool {
        self.0 & libc::POLLIN != 0
    }

    /// An error or hang-up: reading will never succeed again.
    pub(super) fn failed(self) -> bool {
        self.0 & (libc::POLLERR | libc::POLLHUP) != 0
    }
}

/// `poll(2)`: waits until one of `fds` (a `None` is ignored) is readable or
/// `timeout` has passed (`None`: for ever). A signal ends the wait with
/// [`io::ErrorKind::Interrupted`].
pub(super) fn poll_readable<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: Option<Duration>,
) -> io::Result<[Readiness; N]> {
    // poll(2) ignores an entry with a negative descriptor.
    let mut poll_fds = fds.map(|fd| libc::pollfd {
        fd: fd.map_or(-1, |fd| fd.as_raw_fd()),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `poll_fds` is an array of valid `pollfd`s for the whole call,
    // and nfds is its length.
    let ready = unsafe {
        libc::poll(
            poll_fds.as_mut_ptr(),
            poll_fds.len() as libc::nfds_t,
            poll_timeout_ms(timeout),
        )
    };
    if ready < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(poll_fds.map(|poll_fd| Readiness(poll_fd.revents)))
}

/// `poll(2)`'s timeout in milliseconds: -1 for ever; otherwise rounded up, so
/// the loop never wakes just before a deadline and spins until it passes.
fn poll_timeout_ms(timeout: Option<Duration>) -> c_int {
    match timeout {
        None => -1,
        Some(timeout) => {
            let ms = timeout.as_nanos().div_ceil(1_000_000);
            c_int::try_from(ms).unwrap_or(c_int::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_of_fifteen_bytes_is_valid() {
        let name = InterfaceName::new("abcdefghijklmno").unwrap();
        assert_eq!(name.to_string_lossy(), "abcdefghijklmno");
    }

    #[test]
    fn name_of_sixteen_bytes_is_invalid() {
        assert_eq!(InterfaceName::new("abcdefghijklmnop"), None);
    }

    #[test]
    fn empty_and_dot_names_are_invalid() {
        for name in ["", ".", ".."] {
            assert!(InterfaceName::new(name).is_none(), "{name:?} accepted");
        }
    }

    #[test]
    fn names_with_slash_colon_space_or_nul_are_invalid() {
        for name in ["tap/0", "tap:0", "tap 0", "tap\t0", "tap\x000"] {
            assert!(InterfaceName::new(name).is_none(), "{name:?} accepted");
        }
    }

    #[test]
    fn kernel_name_template_is_valid() {
        assert!(InterfaceName::new("tap%d").is_some());
    }

    #[test]
    fn name_is_nul_padded_for_the_kernel() {
        let InterfaceName(raw) = InterfaceName::new("tap0").unwrap();
        assert_eq!(
            &raw[..5],
            &[
                b't' as c_char,
                b'a' as c_char,
                b'p' as c_char,
                b'0' as c_char,
                0
            ]
        );
        assert!(raw[4..].iter().all(|&c| c == 0));
    }

    #[test]
    fn poll_tells_which_descriptor_is_readable() {
        use std::os::unix::net::UnixStream;

        let (quiet, _quiet_peer) = UnixStream::pair().unwrap();
        let (ready, mut ready_peer) = UnixStream::pair().unwrap();
        ready_peer.write_all(b"x").unwrap();
        let fds = [Some(quiet.as_fd()), None, Some(ready.as_fd())];
        let [quiet, ignored, ready] = poll_readable(fds, Some(Duration::ZERO)).unwrap();
        assert!(!quiet.readable() && !quiet.failed());
        assert!(!ignored.readable() && !ignored.failed());
        assert!(ready.readable());
    }

    #[test]
    fn poll_reports_a_hang_up_as_failed() {
        use std::os::unix::net::UnixStream;

        let (hung_up, peer) = UnixStream::pair().unwrap();
        drop(peer);
        let [hung_up] = poll_readable([Some(hung_up.as_fd())], Some(Duration::ZERO)).unwrap();
        assert!(hung_up.failed());
    }

    #[test]
    fn no_timeout_polls_for_ever() {
        assert_eq!(poll_timeout_ms(None), -1);
    }

    #[test]
    fn zero_timeout_only_checks() {
        assert_eq!(poll_timeout_ms(Some(Duration::ZERO)), 0);
    }

    #[test]
    fn sub_millisecond_timeout_rounds_up() {
        assert_eq!(poll_timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(poll_timeout_ms(Some(Duration::from_micros(1_001))), 2);
    }

    #[test]
    fn whole_milliseconds_are_kept() {
        assert_eq!(poll_timeout_ms(Some(Duration::from_millis(250))), 250);
    }

    #[test]
    fn huge_timeout_saturates() {
        assert_eq!(
            poll_timeout_ms(Some(Duration::from_secs(u64::MAX))),
            c_int::MAX
        );
    }
}
