//! The reversal service on a Linux TAP device: the library under the
//! `host-tap` binary, holding what other crates need too (`tap-echo` and
//! `reversal-bench` in `bench/`, the TAP tests).
//!
//! - [`tap`]: the TAP device as a smoltcp `Device`, with every raw system
//!   call in its `sys` module;
//! - [`settings`]: the compiled memory sizes, the command line's defaults and
//!   the checked settings;
//! - [`interface`]: smoltcp's interface for those settings;
//! - [`clock`] and [`signals`]: what an event loop on a host sleeps and
//!   wakes by.
//!
//! The binary adds its command line (`cli.rs`), exit codes (`exit.rs`),
//! capture file (`pcap.rs`) and event loop (`event_loop.rs`).
//!
//! # The path of one frame
//!
//! The event loop (`event_loop.rs`) sleeps in
//! [`TapDevice::wait_or_wakeup`](tap::TapDevice::wait_or_wakeup)
//! (`tap/device.rs`; `poll(2)` in `tap/sys.rs`) until the kernel writes a
//! client's frame to the TAP, then calls the core's `Server::poll_delay`.
//! smoltcp's interface pulls the frame through the device's
//! `phy::Device::receive` (one `read(2)` into the device's receive buffer),
//! the core answers the line, and the reply leaves through a transmit token
//! (one `write(2)` from the transmit buffer, `tap/device.rs`). The loop
//! then sleeps again for as long as `poll_delay` said. With offloads
//! (`tap/vnet.rs`) a virtio-net header travels before each frame, and one
//! frame can carry a TCP segment of up to 64 KiB each way.

// Lint policy: `[workspace.lints]` in the top-level Cargo.toml. Everything
// that needs `unsafe` (ioctls, poll) is confined to `tap::sys`.
pub mod clock;
pub mod interface;
pub mod settings;
pub mod signals;
pub mod tap;
