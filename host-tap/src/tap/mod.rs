//! A Linux TAP device as a smoltcp [`Device`](smoltcp::phy::Device).
//!
//! smoltcp's own `phy::TunTapInterface` panics when a read fails (a TAP whose
//! link was deleted) and allocates a `Vec` for every frame. [`TapDevice`]
//! survives read and write errors (it counts them in [`TapStats`] and logs
//! once per outage), reads and writes frames through two buffers allocated
//! once at open, lets the event loop sleep in [`TapDevice::wait`], and
//! (unless told not to) leaves TCP checksums and the cutting of TCP
//! segments to the kernel, as virtual NICs do: one 64 KiB frame crosses
//! the TAP where 45 would at MTU 1500.
//!
//! Layers, from the top, as in smoltcp's `phy` with its `sys`:
//! - `device.rs`: [`TapDevice`], the safe `phy::Device`, its tokens and
//!   counters, and the wait for the next frame;
//! - `open.rs`: attaching to an existing TAP or creating one, and agreeing
//!   with the kernel on the offloads ([`TapOptions`]);
//! - `vnet.rs`: the virtio-net header before each frame, and what the
//!   [`Offloads`] do to each frame (checksums left to the kernel, TCP
//!   segments of up to 64 KiB both ways);
//! - `fragments.rs`: IPv4 fragments that end beyond what smoltcp
//!   reassembles here, dropped;
//! - `error.rs`: [`TapError`], and what each errno means at the step where
//!   it came;
//! - `ip.rs`: the `ip` commands that configure a created TAP;
//! - `sys.rs`: every raw system call (the TUN and interface ioctls, one safe
//!   function per request, and `poll(2)`); the only module of the crate
//!   with `unsafe` code.
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

mod device;
mod error;
mod fragments;
mod ip;
mod open;
// Lint policy: `unsafe` is allowed here only, each block with its SAFETY comment.
#[allow(unsafe_code)]
mod sys;
mod vnet;

pub use device::{TapDevice, TapRxToken, TapStats, TapTxToken};
pub use error::TapError;
pub use open::TapOptions;
pub use vnet::Offloads;
