//! A plain smoltcp echo server with two sockets, and six clients that
//! connect at once, with and without a `Listener` in front of it.
//!
//! Without it, smoltcp resets the four clients that find no listening
//! socket; with it, they wait in the backlog and each is echoed as soon as
//! a socket is free again. Everything runs on smoltcp's `Loopback` device,
//! clients and server on one interface, in virtual time.
//!
//! Run: `cargo run -p reversal-core --example listener`

use reversal_core::listener::{Listener, ListenerConfig, ListenerStorage, Role};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{AnySocket, tcp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

const PORT: u16 = 7;
const SERVER_SOCKETS: usize = 2;
const CLIENTS: u16 = 6;

/// How the clients' connections ended.
#[derive(Debug, Default)]
struct Tally {
    echoed: usize,
    refused: usize,
}

fn socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 256]),
        tcp::SocketBuffer::new(vec![0; 256]),
    )
}

/// Echoes what a server socket received; closes once its client has, and
/// listens again when the connection is over.
fn serve(socket: &mut tcp::Socket<'_>) {
    if socket.can_recv() {
        let mut data = [0; 256];
        let len = socket.recv_slice(&mut data).unwrap_or(0);
        let _ = socket.send_slice(&data[..len]);
    }
    if socket.state() == tcp::State::CloseWait && socket.send_queue() == 0 {
        socket.close();
    }
    if matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait) {
        socket.abort();
        let _ = socket.listen(PORT);
    }
}

/// Runs the six clients against the two server sockets for ten virtual
/// seconds, with a listener in front of smoltcp if `with_listener`.
fn run(with_listener: bool) -> Tally {
    let mut device = Loopback::new(Medium::Ip);
    let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, Instant::ZERO);
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8)).unwrap());
    let mut sockets = SocketSet::new(vec![]);
    // Serving sockets first: smoltcp offers a SYN to sockets in set order.
    let servers: Vec<SocketHandle> = (0..SERVER_SOCKETS)
        .map(|_| {
            let mut server = socket();
            server.listen(PORT).unwrap();
            sockets.add(server)
        })
        .collect();
    let clients: Vec<SocketHandle> = (0..CLIENTS)
        .map(|n| {
            let mut client = socket();
            let server = (IpAddress::v4(127, 0, 0, 1), PORT);
            client.connect(iface.context(), server, 40_000 + n).unwrap();
            sockets.add(client)
        })
        .collect();

    // A backlog of 8, 4 known peers, a table entry for each server socket.
    let mut storage = ListenerStorage::<8, 4, SERVER_SOCKETS>::new();
    let mut listener = Listener::new(PORT, ListenerConfig::new(), &mut storage);
    let mut tally = Tally::default();
    let mut sent = vec![false; clients.len()];
    let mut echoed = vec![false; clients.len()];
    let mut now = Instant::ZERO;
    while now < Instant::from_secs(10) {
        if with_listener {
            let shown = sockets.iter_mut().filter_map(|(handle, socket)| {
                let socket = tcp::Socket::downcast_mut(socket)?;
                servers.contains(&handle).then_some((Role::Serve, socket))
            });
            listener.update(now, shown);
            iface.poll(now, &mut listener.device(&mut device), &mut sockets);
        } else {
            iface.poll(now, &mut device, &mut sockets);
        }
        for &server in &servers {
            serve(sockets.get_mut::<tcp::Socket>(server));
        }
        for (n, &client) in clients.iter().enumerate() {
            let socket = sockets.get_mut::<tcp::Socket>(client);
            let line = format!("hello {n}");
            if !sent[n] && socket.may_send() {
                sent[n] = socket.send_slice(line.as_bytes()).is_ok();
            }
            if !echoed[n] && socket.recv_queue() >= line.len() {
                echoed[n] = true;
                tally.echoed += 1;
                socket.close();
            }
        }
        now += Duration::from_millis(10);
    }
    tally.refused = clients.len() - tally.echoed;
    tally
}

fn main() {
    let alone = run(false);
    let with = run(true);
    println!(
        "{CLIENTS} clients, {SERVER_SOCKETS} server sockets:\n  \
         smoltcp alone:     {} echoed, {} reset\n  \
         with a Listener:   {} echoed, {} reset",
        alone.echoed, alone.refused, with.echoed, with.refused
    );
    assert_eq!(
        with.echoed,
        usize::from(CLIENTS),
        "every client is served in turn"
    );
    assert!(
        alone.refused > 0,
        "smoltcp alone resets those it cannot take"
    );
}
