//! The reversal service on a Linux TAP device: the pieces the `host-tap`
//! binaries share.

// Everything that needs `unsafe` (ioctls, poll) is confined to `tap`.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod tap;

pub mod cli;
pub mod event_loop;
pub mod exit;
pub mod pcap;
