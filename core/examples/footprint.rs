//! Prints the RAM a server needs for a few capacities: the memory
//! `HeapResources` allocates for a `Capacity` chosen at run time, and the
//! size of the matching `StaticResources` a board keeps in `.bss`.
//!
//! Run: `cargo run -p reversal-core --features alloc --example footprint`

use std::mem::size_of;

use reversal_core::listener::{Attempt, KnownPeer, TrackedSocket};
use reversal_core::{Capacity, HeapResources, StaticResources};
use smoltcp::iface::SocketStorage;

/// One table row: `capacity` on the heap, and as the static `S` (same sizes).
fn row<S>(name: &str, capacity: Capacity) {
    let heap = HeapResources::new(capacity);
    assert_eq!(heap.capacity(), capacity);
    let per_session = capacity.rx_buffer
        + capacity.tx_buffer
        + capacity.line_buffer
        + size_of::<SocketStorage<'static>>();
    println!(
        "| {name} | {} | {} | {}/{} | {} | {per_session} | {} | {} |",
        capacity.sessions,
        capacity.spare_sockets,
        capacity.rx_buffer,
        capacity.tx_buffer,
        capacity.line_buffer,
        capacity.memory(),
        size_of::<S>()
    );
}

fn main() {
    println!(
        "| configuration | sessions | busy sockets | rx/tx buffer | line buffer | per session (buffers + socket) | HeapResources | StaticResources |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    row::<StaticResources<'static, 3, 6, 1024, 1024, 512, 1, 10, 1, 1>>(
        "board (lm3s6965evb)",
        Capacity::new(3, 1024, 512)
            .with_spare_sockets(1)
            .with_backlog(10)
            .with_known_peers(1),
    );
    row::<StaticResources<'static, 8, 11, 2048, 2048, 1024>>(
        "small host",
        Capacity::new(8, 2048, 1024).with_spare_sockets(1),
    );
    // host-tap keeps four UDP reply sockets (its `UDP_REPLY_SOCKETS`) and
    // sizes its backlog and proven peers from its sessions.
    row::<StaticResources<'static, 64, 73, 65535, 65535, 1024, 4, 256, 64>>(
        "host-tap default (64 sessions, --socket-buffer 65535, --max-line 1024)",
        Capacity::new(64, 64 * 1024 - 1, 1024)
            .with_udp_reply_sockets(4)
            .with_backlog(256)
            .with_known_peers(64),
    );
    println!();
    println!(
        "smoltcp SocketStorage (one TCP socket's state): {} bytes",
        size_of::<SocketStorage<'static>>()
    );
    println!(
        "listen backlog: {} bytes an attempt, {} a known peer, {} a socket's entry \
         (with IPv6 addresses; the boards, without, 48, 8 and 16)",
        size_of::<Attempt>(),
        size_of::<KnownPeer>(),
        size_of::<TrackedSocket>()
    );
}
