//! A Linux TAP device as a smoltcp [`Device`].
//!
//! smoltcp's own `phy::TunTapInterface` panics when a read fails (a TAP whose
//! link was deleted) and allocates a `Vec` for every frame. [`TapDevice`]
//! survives read and write errors (it counts them in [`TapStats`] and logs
//! once per outage), reads and writes frames through two buffers allocated
//! once at open, and lets the event loop sleep in [`TapDevice::wait`].
//!
//! This is the only module of the crate with `unsafe` code: every Linux
//! ioctl and `poll(2)` lives here.
//!
//! # Example
//!
//! Serve smoltcp sockets on `tap0`, made beforehand with
//! `sudo ip tuntap add name tap0 mode tap user $USER` (so no root is needed
//! here), sleeping until a frame arrives or a smoltcp timer is due:
//!
//! ```no_run
//! use host_tap::tap::TapDevice;
//! use smoltcp::iface::{Config, Interface, SocketSet};
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};
//!
//! let mut device = TapDevice::open("tap0")?;
//! let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x01]).into());
//! let mut iface = Interface::new(config, &mut device, Instant::now());
//! iface.update_ip_addrs(|addrs| {
//!     addrs.push(IpCidr::new(Ipv4Address::new(192, 168, 69, 1).into(), 24)).unwrap();
//! });
//! let mut sockets = SocketSet::new(vec![]);
//! loop {
//!     let now = Instant::now();
//!     iface.poll(now, &mut device, &mut sockets);
//!     // ... serve the sockets ...
//!     device.wait(iface.poll_delay(now, &sockets).map(Into::into))?;
//! }
//! # #[allow(unreachable_code)]
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::{c_char, c_int, c_short};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::Command;
use std::time::Duration;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The clone device every TUN/TAP file descriptor is opened from.
const TUN_DEVICE: &str = "/dev/net/tun";

/// An Ethernet II header: destination, source, `EtherType`. Linux reports the IP
/// MTU; smoltcp wants the whole frame, FCS excluded.
const ETHERNET_HEADER_LEN: usize = 14;

/// Ethernet frames, without the 4-byte packet-information prefix.
const TAP_FLAGS: c_short = (libc::IFF_TAP | libc::IFF_NO_PI) as c_short;

/// Counters of a [`TapDevice`] since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames read from the TAP and handed to smoltcp.
    pub frames_in: u64,
    /// Frames smoltcp built that the kernel accepted.
    pub frames_out: u64,
    /// Reads that failed with something other than "no frame queued"
    /// (e.g. `EBADFD` once the interface was deleted).
    pub read_errors: u64,
    /// Writes that failed for a reason that is not transient (e.g. `EIO`
    /// while the link is down); the frame is lost.
    pub write_errors: u64,
    /// Frames dropped because the kernel had no room for them (`EAGAIN`,
    /// `ENOBUFS`); TCP retransmits them.
    pub tx_drops: u64,
}

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
    /// No interface of that name exists ([`TapDevice::open`] only attaches).
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
    /// [`TapDevice::create`] found an interface of that name already there.
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

/// A TAP interface carrying Ethernet frames between the kernel and smoltcp.
///
/// Frames go through one receive and one transmit buffer of
/// [`mtu()`](Self::mtu) + 14 bytes each, allocated when the device is opened.
/// The descriptor is non-blocking; [`wait`](Self::wait) sleeps until a frame
/// arrives.
pub struct TapDevice {
    file: File,
    name: String,
    mtu: usize,
    rx_frame: Box<[u8]>,
    tx_frame: Box<[u8]>,
    stats: TapStats,
    read_failures: FailureStreak,
    write_failures: FailureStreak,
}

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
        let interface = InterfaceName::new(name)?;
        let tun = open_tun_device()?;
        let control = ControlSocket::open()?;
        // Without this check an unprivileged caller would get EPERM (TUNSETIFF
        // tries to create the missing TAP) and root would create it silently.
        if !control.exists(&interface)? {
            return Err(TapError::TapMissing {
                name: name.to_owned(),
            });
        }
        set_interface(&tun, &interface, TAP_FLAGS)
            .map_err(|error| classify(Step::Attach, error, name))?;
        // If the TAP was deleted after the check, a root caller has just created
        // a fresh non-persistent one; dropping `tun` removes it again.
        if !is_persistent(&tun).map_err(|source| TapError::Io {
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
        let requested = InterfaceName::new(name)?;
        let tun = open_tun_device()?;
        let control = ControlSocket::open()?;
        // IFF_TUN_EXCL: fail on an existing interface instead of attaching to it,
        // which would leave a persistent TAP behind on drop.
        let interface = set_interface(&tun, &requested, TAP_FLAGS | libc::IFF_TUN_EXCL as c_short)
            .map_err(|error| classify(Step::Create, error, name))?;
        let created = interface.to_string_lossy();
        for (address, prefix_len) in host_cidrs {
            let cidr = format!("{address}/{prefix_len}");
            let mut args = vec!["addr", "add", cidr.as_str(), "dev", created.as_str()];
            if address.is_ipv6() {
                args.push("nodad");
            }
            run_ip(&args)?;
        }
        run_ip(&["link", "set", "dev", created.as_str(), "up"])?;
        TapDevice::attached(tun, interface, &control)
    }

    /// Finishes opening: reads the MTU and allocates the frame buffers.
    fn attached(
        file: File,
        interface: InterfaceName,
        control: &ControlSocket,
    ) -> Result<TapDevice, TapError> {
        let mtu = control.mtu(&interface)?;
        let frame_len = mtu + ETHERNET_HEADER_LEN;
        Ok(TapDevice {
            file,
            name: interface.to_string_lossy(),
            mtu,
            rx_frame: vec![0; frame_len].into_boxed_slice(),
            tx_frame: vec![0; frame_len].into_boxed_slice(),
            stats: TapStats::default(),
            read_failures: FailureStreak::default(),
            write_failures: FailureStreak::default(),
        })
    }

    /// The interface name, as the kernel knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's IP MTU as Linux reports it (`ip link` shows the same);
    /// frames are up to 14 bytes longer.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The counters since the device was opened.
    pub fn stats(&self) -> TapStats {
        self.stats
    }

    /// Sleeps until a frame can be read or `timeout` has passed, and tells
    /// whether a frame can be read.
    ///
    /// `None` waits for ever; a zero timeout (a smoltcp deadline already
    /// passed) only checks. A signal ends the wait with `Ok(false)`, so the
    /// caller can look at a flag its signal handler set. Timeouts are rounded
    /// up to whole milliseconds, so a wait never ends just before a deadline.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] when the interface was deleted while
    /// attached: it will never carry frames again. Any other `poll(2)` error
    /// as it is.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.wait_for_frame(None, timeout)
    }

    /// Like [`wait`](Self::wait), but also wakes up as soon as `wakeup` is
    /// readable, e.g. the read end of a self-pipe that a signal handler
    /// writes to: unlike an interrupted `poll(2)`, that cannot miss a signal
    /// which arrives just before the sleep begins. Reading `wakeup` is left
    /// to the caller.
    ///
    /// ```no_run
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    ///
    /// let device = host_tap::tap::TapDevice::open("tap0")?;
    /// let (wakeup, signal_handler_end) = UnixStream::pair()?;
    /// // A signal handler would write a byte to `signal_handler_end`.
    /// device.wait_or_wakeup(wakeup.as_fd(), Some(Duration::from_secs(1)))?;
    /// # drop(signal_handler_end);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`wait`](Self::wait).
    pub fn wait_or_wakeup(
        &self,
        wakeup: BorrowedFd<'_>,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        self.wait_for_frame(Some(wakeup), timeout)
    }

    fn wait_for_frame(
        &self,
        wakeup: Option<BorrowedFd<'_>>,
        timeout: Option<Duration>,
    ) -> io::Result<bool> {
        let readable = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // poll(2) ignores an entry with a negative descriptor.
        let mut poll_fds = [
            readable(self.file.as_raw_fd()),
            readable(wakeup.map_or(-1, |fd| fd.as_raw_fd())),
        ];
        // SAFETY: `poll_fds` is an array of valid `pollfd`s for the whole call,
        // and nfds is its length.
        let ready = unsafe {
            libc::poll(
                poll_fds.as_mut_ptr(),
                poll_fds.len() as libc::nfds_t,
                poll_timeout_ms(timeout),
            )
        };
        let poll_fd = poll_fds[0];
        if ready < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::Interrupted => Ok(false),
                _ => Err(error),
            };
        }
        if poll_fd.revents & libc::POLLIN != 0 {
            return Ok(true);
        }
        // A deleted TAP reports POLLERR on every poll; treating it as "readable"
        // would spin the event loop.
        if poll_fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("TAP device {} was deleted while in use", self.name),
            ));
        }
        Ok(false)
    }

    /// Reads one queued frame into the receive buffer, returning its length.
    fn read_frame(&mut self) -> Option<usize> {
        match retrying_interrupts(|| self.file.read(&mut self.rx_frame)) {
            Ok(len) => {
                self.stats.frames_in += 1;
                self.read_failures.succeeded(&self.name, "read");
                Some(len)
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => None,
            Err(error) => {
                self.stats.read_errors += 1;
                self.read_failures.failed(&self.name, "read", &error);
                None
            }
        }
    }
}

impl fmt::Debug for TapDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapDevice")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("fd", &self.file.as_raw_fd())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AsRawFd for TapDevice {
    /// The TAP descriptor, e.g. to wait on it together with other descriptors.
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl Device for TapDevice {
    type RxToken<'a> = TapRxToken<'a>;
    type TxToken<'a> = TapTxToken<'a>;

    /// Reads one frame if one is queued; read errors are counted and logged,
    /// never returned.
    fn receive(&mut self, _timestamp: Instant) -> Option<(TapRxToken<'_>, TapTxToken<'_>)> {
        let len = self.read_frame()?;
        let TapDevice {
            file,
            name,
            rx_frame,
            tx_frame,
            stats,
            write_failures,
            ..
        } = self;
        let rx = TapRxToken {
            frame: &rx_frame[..len],
        };
        let tx = TapTxToken {
            file,
            name,
            frame: tx_frame,
            stats,
            failures: write_failures,
        };
        Some((rx, tx))
    }

    /// Always offers a token: a TAP accepts writes whenever the link is up,
    /// and a failed write costs one frame, never a wait.
    fn transmit(&mut self, _timestamp: Instant) -> Option<TapTxToken<'_>> {
        let TapDevice {
            file,
            name,
            tx_frame,
            stats,
            write_failures,
            ..
        } = self;
        Some(TapTxToken {
            file,
            name,
            frame: tx_frame,
            stats,
            failures: write_failures,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = self.mtu + ETHERNET_HEADER_LEN;
        capabilities
    }
}

/// One received frame, lent to smoltcp from the device's receive buffer.
#[derive(Debug)]
pub struct TapRxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for TapRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Room for one frame in the device's transmit buffer; consuming it writes
/// the frame to the TAP.
#[derive(Debug)]
pub struct TapTxToken<'a> {
    file: &'a File,
    name: &'a str,
    frame: &'a mut [u8],
    stats: &'a mut TapStats,
    failures: &'a mut FailureStreak,
}

impl phy::TxToken for TapTxToken<'_> {
    /// Lets `f` build a `len`-byte frame, then writes it. A failed write is
    /// counted and logged; the frame is lost and TCP retransmits it.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the device's `max_transmission_unit`, which smoltcp
    /// never asks for.
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let frame = &mut self.frame[..len];
        let result = f(frame);
        match write_frame(self.file, frame) {
            Ok(()) => {
                self.stats.frames_out += 1;
                self.failures.succeeded(self.name, "write");
            }
            Err(error) if is_transient_write_error(&error) => {
                self.stats.tx_drops += 1;
                log::debug!("TAP {}: frame dropped: {error}", self.name);
            }
            Err(error) => {
                self.stats.write_errors += 1;
                self.failures.failed(self.name, "write", &error);
            }
        }
        result
    }
}

/// Writes one whole frame; a TAP takes a frame whole or not at all.
fn write_frame(mut file: &File, frame: &[u8]) -> io::Result<()> {
    retrying_interrupts(|| file.write(frame)).map(drop)
}

/// Repeats `operation` while a signal interrupts it.
fn retrying_interrupts<T>(mut operation: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match operation() {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// The kernel had no room for the frame right now; the next one may fit.
fn is_transient_write_error(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock || error.raw_os_error() == Some(libc::ENOBUFS)
}

/// Consecutive failures in one direction, so that a down or deleted link logs
/// once per outage (and per new errno), not once per frame.
#[derive(Debug, Default)]
struct FailureStreak {
    count: u64,
    last_errno: Option<i32>,
}

impl FailureStreak {
    /// Records a failure; returns whether it was logged.
    fn failed(&mut self, device: &str, operation: &str, error: &io::Error) -> bool {
        self.count += 1;
        let errno = error.raw_os_error();
        let first_of_its_kind = self.count == 1 || errno != self.last_errno;
        self.last_errno = errno;
        if first_of_its_kind {
            log::warn!(
                "TAP {device}: {operation} failed: {error}; further failures are only \
                 counted until a {operation} succeeds"
            );
        }
        first_of_its_kind
    }

    /// Records a success; returns whether it ended a streak (and logged that).
    fn succeeded(&mut self, device: &str, operation: &str) -> bool {
        if self.count == 0 {
            return false;
        }
        log::info!(
            "TAP {device}: {operation} works again after {} failures",
            self.count
        );
        *self = FailureStreak::default();
        true
    }
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

/// Which step of opening failed, to tell what an errno means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `open("/dev/net/tun")`.
    OpenTunDevice,
    /// `TUNSETIFF` on an existing interface.
    Attach,
    /// `TUNSETIFF` with `IFF_TUN_EXCL`, creating the interface.
    Create,
}

/// Maps the errno of a failed `step` to the error that says how to fix it.
fn classify(step: Step, error: io::Error, name: &str) -> TapError {
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

fn open_tun_device() -> Result<File, TapError> {
    // std opens with O_CLOEXEC: child processes (`ip`) must not keep the TAP alive.
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(TUN_DEVICE)
        .map_err(|error| classify(Step::OpenTunDevice, error, ""))
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

/// A network interface name in the form the kernel takes it: NUL-padded to
/// `IFNAMSIZ` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InterfaceName([c_char; libc::IFNAMSIZ]);

impl InterfaceName {
    /// Checks `name` by the kernel's rules (`dev_valid_name`), so a bad name
    /// is reported as such and not as a puzzling ioctl errno.
    fn new(name: &str) -> Result<InterfaceName, TapError> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() < libc::IFNAMSIZ
            && name != "."
            && name != ".."
            && !bytes.iter().any(|&byte| {
                byte == b'/' || byte == b':' || byte == 0 || byte.is_ascii_whitespace()
            });
        if !valid {
            return Err(TapError::InvalidName {
                name: name.to_owned(),
            });
        }
        let mut raw = [0; libc::IFNAMSIZ];
        for (slot, &byte) in raw.iter_mut().zip(bytes) {
            *slot = byte as c_char;
        }
        Ok(InterfaceName(raw))
    }

    fn to_string_lossy(self) -> String {
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
        // SAFETY: `ifreq` holds only integers, byte arrays and a raw pointer in
        // a union; all-zero bytes are a valid value of each.
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        request.ifr_name = self.0;
        request
    }
}

/// Runs an ioctl that reads and writes one `ifreq`.
fn ifreq_ioctl(fd: RawFd, request: libc::Ioctl, ifreq: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request passed here (TUNSETIFF, TUNGETIFF, SIOCGIFINDEX,
    // SIOCGIFMTU) accesses exactly one `ifreq`, which `ifreq` points to for
    // the whole call.
    let result = unsafe { libc::ioctl(fd, request, std::ptr::from_mut(ifreq)) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TUNSETIFF: binds `tun` to the interface, creating it if it does not exist.
/// Returns the name the kernel used (it expands templates such as `tap%d`).
fn set_interface(
    tun: &File,
    interface: &InterfaceName,
    flags: c_short,
) -> io::Result<InterfaceName> {
    let mut request = interface.request();
    request.ifr_ifru.ifru_flags = flags;
    ifreq_ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut request)?;
    Ok(InterfaceName(request.ifr_name))
}

/// TUNGETIFF: whether the interface `tun` is bound to outlives its descriptors.
fn is_persistent(tun: &File) -> io::Result<bool> {
    // SAFETY: as in `InterfaceName::request`.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    ifreq_ioctl(tun.as_raw_fd(), libc::TUNGETIFF, &mut request)?;
    // SAFETY: TUNGETIFF fills `ifru_flags`; any bit pattern is a valid c_short.
    let flags = unsafe { request.ifr_ifru.ifru_flags };
    Ok(flags & libc::IFF_PERSIST as c_short != 0)
}

/// A datagram socket, needed only as a handle for interface ioctls; it sends
/// nothing. It looks in the caller's network namespace, unlike
/// `/sys/class/net`, which shows the namespace sysfs was mounted in.
struct ControlSocket(OwnedFd);

impl ControlSocket {
    fn open() -> Result<ControlSocket, TapError> {
        // SAFETY: plain socket(2) call; no pointers.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(TapError::Io {
                context: "open a socket for interface ioctls",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        Ok(ControlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// SIOCGIFINDEX: whether an interface of this name exists.
    fn exists(&self, interface: &InterfaceName) -> Result<bool, TapError> {
        let mut request = interface.request();
        match ifreq_ioctl(self.0.as_raw_fd(), libc::SIOCGIFINDEX, &mut request) {
            Ok(()) => Ok(true),
            Err(error) if error.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(source) => Err(TapError::Io {
                context: "look up the interface (SIOCGIFINDEX)",
                source,
            }),
        }
    }

    /// SIOCGIFMTU: the interface's IP MTU.
    fn mtu(&self, interface: &InterfaceName) -> Result<usize, TapError> {
        let mut request = interface.request();
        ifreq_ioctl(self.0.as_raw_fd(), libc::SIOCGIFMTU, &mut request).map_err(|source| {
            TapError::Io {
                context: "read the MTU (SIOCGIFMTU)",
                source,
            }
        })?;
        // SAFETY: SIOCGIFMTU fills `ifru_mtu`; any bit pattern is a valid c_int.
        let mtu = unsafe { request.ifr_ifru.ifru_mtu };
        usize::try_from(mtu).map_err(|_| TapError::Io {
            context: "read the MTU (SIOCGIFMTU)",
            source: io::Error::new(io::ErrorKind::InvalidData, format!("negative MTU {mtu}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn name_of_fifteen_bytes_is_valid() {
        let name = InterfaceName::new("abcdefghijklmno").unwrap();
        assert_eq!(name.to_string_lossy(), "abcdefghijklmno");
    }

    #[test]
    fn name_of_sixteen_bytes_is_invalid() {
        assert!(matches!(
            InterfaceName::new("abcdefghijklmnop"),
            Err(TapError::InvalidName { name }) if name == "abcdefghijklmnop"
        ));
    }

    #[test]
    fn empty_and_dot_names_are_invalid() {
        for name in ["", ".", ".."] {
            assert!(InterfaceName::new(name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn names_with_slash_colon_space_or_nul_are_invalid() {
        for name in ["tap/0", "tap:0", "tap 0", "tap\t0", "tap\x000"] {
            assert!(InterfaceName::new(name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn kernel_name_template_is_valid() {
        assert!(InterfaceName::new("tap%d").is_ok());
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

    #[test]
    fn first_failure_is_logged() {
        let mut streak = FailureStreak::default();
        assert!(streak.failed("tap0", "read", &os_error(libc::EIO)));
    }

    #[test]
    fn repeated_failure_is_only_counted() {
        let mut streak = FailureStreak::default();
        streak.failed("tap0", "write", &os_error(libc::EIO));
        assert!(!streak.failed("tap0", "write", &os_error(libc::EIO)));
        assert_eq!(streak.count, 2);
    }

    #[test]
    fn failure_with_a_new_errno_is_logged() {
        let mut streak = FailureStreak::default();
        streak.failed("tap0", "write", &os_error(libc::EIO));
        assert!(streak.failed("tap0", "write", &os_error(libc::EBADFD)));
    }

    #[test]
    fn success_ends_a_streak_once() {
        let mut streak = FailureStreak::default();
        streak.failed("tap0", "read", &os_error(libc::EIO));
        assert!(streak.succeeded("tap0", "read"));
        assert!(!streak.succeeded("tap0", "read"));
        assert!(streak.failed("tap0", "read", &os_error(libc::EIO)));
    }

    #[test]
    fn transient_write_errors_are_eagain_and_enobufs() {
        assert!(is_transient_write_error(&os_error(libc::EAGAIN)));
        assert!(is_transient_write_error(&os_error(libc::ENOBUFS)));
        assert!(!is_transient_write_error(&os_error(libc::EIO)));
    }
}
