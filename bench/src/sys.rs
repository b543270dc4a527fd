//! The raw Linux calls of the benchmark, each behind a safe function: the
//! only module with `unsafe`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A packet socket bound to one interface: it writes whole Ethernet frames
/// onto that interface (the kernel's side of a TAP, so that they reach the
/// server behind it), as scapy's `L2socket` does.
#[derive(Debug)]
pub(crate) struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// A socket that sends on `interface`.
    pub(crate) fn bind(interface: &str) -> io::Result<PacketSocket> {
        let name = CString::new(interface).map_err(io::Error::other)?;
        // SAFETY: if_nametoindex reads the NUL-terminated name it is given.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(io::Error::last_os_error());
        }
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket(2) takes plain integers and returns a new
        // descriptor or -1.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor just opened and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain old data; all zero is a valid value.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = index as i32;
        let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        let pointer = (&raw const address).cast::<libc::sockaddr>();
        // SAFETY: bind(2) reads `len` bytes at `pointer`, the address above.
        if unsafe { libc::bind(fd.as_raw_fd(), pointer, len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket { fd })
    }

    /// Writes one Ethernet frame.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: send(2) reads `frame.len()` bytes from `frame`.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
