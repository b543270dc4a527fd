//! What every board of the reversal server shares.
//!
//! A board brings four things: its Ethernet controller as a [`Mac`] (a few
//! register-level operations; [`FrameDevice`] makes it a smoltcp `Device`
//! over fixed frame buffers), a [`WakeTimer`], its core clock frequency for
//! [`systick`], and its memory map (`memory.x`). Its `main` starts those and
//! calls [`run`], which never returns:
//!
//! - [`resources`]: the server's sizes and its memory, in `.bss`;
//! - [`address`]: the IPv4 address, leased by DHCP or fixed at build time;
//! - [`run`]: the poll loop, the heartbeat log, sleep until the next frame
//!   or deadline ([`sleep`]);
//! - [`systick`]: time from SysTick wraps (any Cortex-M), and the defmt
//!   timestamp;
//! - [`stack`]: the stack high-water mark the heartbeat logs;
//! - [`fault`]: panics and hard faults logged, then QEMU told to exit.
//!
//! The log is defmt over semihosting (`defmt-semihosting`), decoded on the
//! host by `defmt-print`.
#![no_std]

pub mod address;
pub mod fault;
pub mod frames;
mod heartbeat;
pub mod resources;
mod run;
pub mod sleep;
#[allow(unsafe_code)]
pub mod stack;
pub mod systick;

use defmt_semihosting as _;

pub use frames::{FRAME_CAPACITY, FrameDevice, Mac};
pub use run::run;
pub use sleep::WakeTimer;
