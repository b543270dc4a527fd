//! [`TapDevice`]: the safe smoltcp `Device` over a TAP descriptor, its
//! tokens and counters, and the wait for the next frame.

use std::fmt;
use std::io;
use std::num::NonZeroU16;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium, PacketMeta};
use smoltcp::time::Instant;

use super::fragments;
use super::sys::{self, Tun};
use super::vnet::{self, Offloads, VnetHeader};

/// An Ethernet II header: destination, source, `EtherType`. Linux reports the IP
/// MTU; smoltcp wants the whole frame, FCS excluded.
const ETHERNET_HEADER_LEN: usize = 14;

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
    /// Frames read that were longer than the receive buffer (the kernel cut
    /// them); dropped.
    pub rx_oversized: u64,
    /// TCP segments read whose checksum was wrong, or could not be checked
    /// (a fragment), with checksum offload on (the device checks what the
    /// kernel did not); dropped. UDP checksums are smoltcp's to check.
    pub rx_bad_checksums: u64,
    /// IPv4 fragments that end beyond the datagram size smoltcp reassembles
    /// here (16 KiB); dropped.
    pub rx_fragments_beyond_reassembly: u64,
}

/// A TAP interface carrying Ethernet frames between the kernel and smoltcp.
///
/// Frames go through one receive and one transmit buffer, allocated when the
/// device is opened: [`mtu()`](Self::mtu) + 14 bytes each, or 64 KiB + 14
/// with segmentation offload, plus the virtio-net header when the TAP was
/// opened with one ([`offloads`](Self::offloads)). The descriptor is
/// non-blocking; [`wait`](Self::wait) sleeps until a frame arrives.
pub struct TapDevice {
    tun: Tun,
    name: String,
    mtu: usize,
    /// Bytes of virtio-net header before each frame: 0 or `vnet::HEADER_LEN`.
    header_len: usize,
    offloads: Offloads,
    /// The header (if any), then the frame.
    rx_buffer: Box<[u8]>,
    tx_buffer: Box<[u8]>,
    stats: TapStats,
    read_failures: FailureStreak,
    write_failures: FailureStreak,
    /// An oversized frame was logged already.
    oversized_logged: bool,
}

impl TapDevice {
    /// A device on `tun`, bound to the interface `name` of IP MTU `mtu`,
    /// with `header_len` bytes of virtio-net header and `offloads`:
    /// allocates the buffers.
    pub(super) fn new(
        tun: Tun,
        name: String,
        mtu: usize,
        header_len: usize,
        offloads: Offloads,
    ) -> TapDevice {
        let mut frame_len = mtu + ETHERNET_HEADER_LEN;
        if offloads.segmentation {
            frame_len = frame_len.max(vnet::MAX_SUPER_FRAME);
        }
        let buffer = || vec![0; header_len + frame_len].into_boxed_slice();
        TapDevice {
            tun,
            name,
            mtu,
            header_len,
            offloads,
            rx_buffer: buffer(),
            tx_buffer: buffer(),
            stats: TapStats::default(),
            read_failures: FailureStreak::default(),
            write_failures: FailureStreak::default(),
            oversized_logged: false,
        }
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

    /// The offloads the kernel agreed to when the device was opened.
    pub fn offloads(&self) -> Offloads {
        self.offloads
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
        let [tap, _] = match sys::poll_readable([Some(self.tun.as_fd()), wakeup], timeout) {
            Ok(readiness) => readiness,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(error) => return Err(error),
        };
        if tap.readable() {
            return Ok(true);
        }
        // A deleted TAP reports POLLERR on every poll; treating it as "readable"
        // would spin the event loop.
        if tap.failed() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("TAP device {} was deleted while in use", self.name),
            ));
        }
        Ok(false)
    }

    /// Reads one queued frame into the receive buffer and returns the length
    /// of the frame smoltcp may take: 0 for a frame the device drops
    /// (smoltcp drops an empty frame as malformed, and goes on reading).
    fn read_frame(&mut self) -> Option<usize> {
        let read = match retrying_interrupts(|| self.tun.read(&mut self.rx_buffer)) {
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
            Err(error) => {
                self.stats.read_errors += 1;
                self.read_failures.failed(&self.name, "read", &error);
                return None;
            }
        };
        self.stats.frames_in += 1;
        self.read_failures.succeeded(&self.name, "read");
        // The kernel cuts a frame to the buffer but reports its whole length.
        if read > self.rx_buffer.len() || read < self.header_len {
            self.stats.rx_oversized += 1;
            if !std::mem::replace(&mut self.oversized_logged, true) {
                log::warn!(
                    "TAP {}: dropped a frame of {read} bytes, longer than the {} bytes of the \
                     receive buffer (was gso_max_size raised?); further ones are only counted",
                    self.name,
                    self.rx_buffer.len()
                );
            }
            return Some(0);
        }
        let (header, frame) = self.rx_buffer[..read].split_at_mut(self.header_len);
        if fragments::ends_beyond_reassembly(frame) {
            self.stats.rx_fragments_beyond_reassembly += 1;
            return Some(0);
        }
        if self.offloads.checksum
            && let Ok(header) = <&[u8; vnet::HEADER_LEN]>::try_from(&*header)
            && !vnet::rx_accept(&VnetHeader::parse(header), frame)
        {
            self.stats.rx_bad_checksums += 1;
            return Some(0);
        }
        Some(frame.len())
    }

    /// The receive buffer, and a transmit token beside it.
    fn split(&mut self) -> (&[u8], TapTxToken<'_>) {
        let tx = TapTxToken {
            tun: &self.tun,
            name: &self.name,
            buffer: &mut self.tx_buffer,
            header_len: self.header_len,
            offloads: self.offloads,
            gso_size: None,
            stats: &mut self.stats,
            failures: &mut self.write_failures,
        };
        (&self.rx_buffer, tx)
    }
}

impl Drop for TapDevice {
    /// Leaves a persistent TAP without offloads, as the next program to
    /// open it (without a virtio-net header) expects.
    fn drop(&mut self) {
        if self.offloads != Offloads::NONE
            && let Err(error) = self.tun.set_offload(0)
        {
            log::warn!("TAP {}: cannot switch offloads off: {error}", self.name);
        }
    }
}

impl fmt::Debug for TapDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapDevice")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("fd", &self.tun.as_raw_fd())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AsRawFd for TapDevice {
    /// The TAP descriptor, e.g. to wait on it together with other descriptors.
    fn as_raw_fd(&self) -> RawFd {
        self.tun.as_raw_fd()
    }
}

impl Device for TapDevice {
    type RxToken<'a> = TapRxToken<'a>;
    type TxToken<'a> = TapTxToken<'a>;

    /// Reads one frame if one is queued; read errors are counted and logged,
    /// never returned. A frame the device drops (see [`TapStats`]) reaches
    /// smoltcp empty.
    fn receive(&mut self, _timestamp: Instant) -> Option<(TapRxToken<'_>, TapTxToken<'_>)> {
        let len = self.read_frame()?;
        let start = if len == 0 { 0 } else { self.header_len };
        let (rx_buffer, tx) = self.split();
        let rx = TapRxToken {
            frame: &rx_buffer[start..start + len],
        };
        Some((rx, tx))
    }

    /// Always offers a token: a TAP accepts writes whenever the link is up,
    /// and a failed write costs one frame, never a wait.
    fn transmit(&mut self, _timestamp: Instant) -> Option<TapTxToken<'_>> {
        Some(self.split().1)
    }

    /// An Ethernet link of the TAP's MTU (smoltcp advertises its MSS from
    /// it), with what the [`offloads`](Self::offloads) leave to the kernel.
    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = self.mtu + ETHERNET_HEADER_LEN;
        self.offloads.apply(&mut capabilities);
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
    tun: &'a Tun,
    name: &'a str,
    /// The virtio-net header (if any), then the frame.
    buffer: &'a mut [u8],
    header_len: usize,
    offloads: Offloads,
    /// smoltcp's segment is larger than the MSS, which this is.
    gso_size: Option<NonZeroU16>,
    stats: &'a mut TapStats,
    failures: &'a mut FailureStreak,
}

impl phy::TxToken for TapTxToken<'_> {
    /// Lets `f` build a `len`-byte frame, then writes it (with its
    /// virtio-net header, which leaves checksums and segmentation to the
    /// kernel as the offloads allow). A failed write is counted and logged;
    /// the frame is lost and TCP retransmits it.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the device's `max_transmission_unit` (or, with
    /// segmentation offload, 64 KiB + 14), which smoltcp never asks for.
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let (header, rest) = self.buffer.split_at_mut(self.header_len);
        let frame = &mut rest[..len];
        let result = f(frame);
        if let Ok(header) = header.try_into() {
            let vnet = if self.offloads.checksum {
                vnet::tx_header(frame, self.gso_size)
            } else {
                VnetHeader::NONE
            };
            vnet.emit(header);
        }
        match write_frame(self.tun, &self.buffer[..self.header_len + len]) {
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

    fn set_meta(&mut self, meta: PacketMeta) {
        self.gso_size = meta.segmentation_offload_size;
    }
}

/// Writes one whole frame; a TAP takes a frame whole or not at all.
fn write_frame(tun: &Tun, frame: &[u8]) -> io::Result<()> {
    retrying_interrupts(|| tun.write(frame)).map(drop)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
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
