//! The reversal service on a Linux TAP device: the pieces the `host-tap`
//! binaries share.

// Lint policy: `[workspace.lints]` in the top-level Cargo.toml. Everything
// that needs `unsafe` (ioctls, poll) is confined to `tap::sys`.
pub mod tap;

pub mod cli;
pub mod event_loop;
pub mod exit;
pub mod pcap;
