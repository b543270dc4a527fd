//! Prints the RAM a server needs for a few capacities, from `size_of` of the
//! real types (session state, line buffer, socket buffers, smoltcp sockets).
//!
//! Run: `cargo run -p reversal-core --example footprint`

use std::mem::size_of;

use reversal_core::{ServerResources, Session};
use smoltcp::iface::SocketStorage;

fn row<
    const SESSIONS: usize,
    const SOCKETS: usize,
    const RX: usize,
    const TX: usize,
    const LINE: usize,
>(
    name: &str,
) {
    let total = size_of::<ServerResources<'static, SESSIONS, SOCKETS, RX, TX, LINE>>();
    let per_session = size_of::<Session<LINE>>() + RX + TX + size_of::<SocketStorage<'static>>();
    println!(
        "| {name} | {SESSIONS} | {RX}/{TX} | {LINE} | {} | {per_session} | {total} |",
        size_of::<Session<LINE>>()
    );
}

fn main() {
    println!(
        "| configuration | sessions | rx/tx buffer | line buffer | session state (incl. line) | per session (state + rx + tx + socket) | whole ServerResources |"
    );
    println!("|---|---|---|---|---|---|---|");
    row::<3, 5, 1024, 1024, 512>("board (lm3s6965evb)");
    row::<8, 10, 2048, 2048, 1024>("small host");
    row::<64, 66, 4096, 4096, 1024>("64 sessions");
    println!();
    println!(
        "smoltcp SocketStorage (one TCP socket's state): {} bytes",
        size_of::<SocketStorage<'static>>()
    );
}
