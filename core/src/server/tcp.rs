//! The session sockets: each session slot's phase machine (listening,
//! active, closing) and the byte moving between a socket and its session.

use core::fmt;

use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpAddress, IpEndpoint, Ipv4Address};

use super::{Server, ServerConfig};
use crate::fmt::net_info;
use crate::fmt::net_warn;
use crate::session::{Finish, Session};

/// Why a session ended, for the close log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) enum CloseReason {
    EndOfInput,
    IdleTimeout,
    Shutdown,
    /// The connection went away under us (reset, or the TCP timeout).
    Lost,
    /// The peer did not finish the close within the close timeout.
    Abandoned,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::EndOfInput => "end of input",
            CloseReason::IdleTimeout => "idle timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Lost => "connection lost",
            CloseReason::Abandoned => "close not completed in time",
        })
    }
}

// repr(u8): `Listening` is tag 0 (no niche in CloseReason), see ServerResources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub(super) enum Phase {
    Listening,
    Active,
    /// `since`: when the peer last acknowledged anything; `fin_sent`: the
    /// FIN goes out only once every reply is acknowledged, so it never rides
    /// on data (smoltcp 0.14's fast retransmit can send a segment beyond the
    /// peer's window, and a smoltcp peer then takes such a FIN too early).
    Closing {
        since: Instant,
        reason: CloseReason,
        fin_sent: bool,
    },
}

/// One session's state next to its socket.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Slot<const LINE: usize> {
    pub(super) session: Session<LINE>,
    pub(super) phase: Phase,
    pub(super) opened_at: Instant,
    pub(super) peer: IpEndpoint,
    /// Send queue length after the last poll: a drop means bytes moved.
    pub(super) queued: usize,
}

pub(super) const NO_PEER: IpEndpoint = IpEndpoint {
    addr: IpAddress::Ipv4(Ipv4Address::UNSPECIFIED),
    port: 0,
};

impl<const LINE: usize> Slot<LINE> {
    pub(super) const fn new() -> Self {
        Slot {
            session: Session::unconfigured(),
            phase: Phase::Listening,
            opened_at: Instant::ZERO,
            peer: NO_PEER,
            queued: 0,
        }
    }
}

pub(super) fn tcp_socket<'a>(rx: &'a mut [u8], tx: &'a mut [u8]) -> tcp::Socket<'a> {
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    // Replies are whole lines already: Nagle and delayed ACKs only add latency
    // to pipelined request/response traffic.
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
    socket
}

/// Takes a socket whose connection is over back to listening, or leaves it
/// closed. A socket that was just aborted stays closed until the next pass
/// (the `Closed` arm of the listening phase re-listens it): `listen` would
/// forget the connection before smoltcp sends the peer its RST.
pub(super) fn finish_connection(
    socket: &mut tcp::Socket<'_>,
    config: &ServerConfig,
    shutting_down: bool,
) {
    if shutting_down {
        socket.abort();
    } else if socket.state() != tcp::State::Closed {
        relisten(socket, config);
    }
}

/// Puts a socket back to listening. Only fails for port 0, checked at start.
pub(super) fn relisten(socket: &mut tcp::Socket<'_>, config: &ServerConfig) {
    if socket.is_open() {
        socket.abort();
    }
    socket.set_timeout(Some(config.tcp_timeout));
    if socket.listen(config.port).is_err() {
        net_warn!("cannot listen on port {}", config.port);
    }
}

impl<'a, const SESSIONS: usize, const LINE: usize> Server<'a, SESSIONS, LINE> {
    pub(super) fn service_session(&mut self, index: usize, now: Instant) -> bool {
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handles[index]);
        let slot = &mut self.slots[index];
        let state = socket.state();
        match slot.phase {
            Phase::Listening => match state {
                tcp::State::Established | tcp::State::CloseWait => {
                    slot.phase = Phase::Active;
                    slot.session.restart(now);
                    slot.opened_at = now;
                    slot.peer = socket.remote_endpoint().unwrap_or(NO_PEER);
                    slot.queued = 0;
                    // The handshake is over: from here the idle timeout watches the peer.
                    socket.set_timeout(None);
                    self.totals.connections += 1;
                    net_info!("session {}: open from {}", index, slot.peer);
                    self.service_session(index, now);
                    true
                }
                tcp::State::Closed if !self.shutting_down => {
                    relisten(socket, &self.config);
                    true
                }
                _ => false,
            },
            Phase::Active => {
                if matches!(state, tcp::State::Closed | tcp::State::TimeWait) {
                    self.end_session(index, now, CloseReason::Lost);
                    return true;
                }
                let moved = move_bytes(socket, slot, self.scratch, now, self.shutting_down);
                if let Some(finish) = slot.session.finished() {
                    let reason = match finish {
                        Finish::IdleTimeout => CloseReason::IdleTimeout,
                        Finish::EndOfInput if self.shutting_down => CloseReason::Shutdown,
                        Finish::EndOfInput => CloseReason::EndOfInput,
                    };
                    slot.phase = Phase::Closing {
                        since: now,
                        reason,
                        fin_sent: false,
                    };
                    self.service_session(index, now);
                    return true;
                }
                moved
            }
            Phase::Closing {
                mut since,
                reason,
                mut fin_sent,
            } => {
                if matches!(state, tcp::State::Closed | tcp::State::TimeWait) {
                    self.end_session(index, now, reason);
                    return true;
                }
                let queued = socket.send_queue();
                let acknowledged = queued < slot.queued;
                if acknowledged {
                    since = now;
                }
                slot.queued = queued;
                let send_fin = !fin_sent && queued == 0;
                if send_fin {
                    socket.close();
                    fin_sent = true;
                    since = now;
                }
                slot.phase = Phase::Closing {
                    since,
                    reason,
                    fin_sent,
                };
                if closing_limit(&self.config, reason, fin_sent)
                    .is_some_and(|limit| now >= since + limit)
                {
                    socket.abort();
                    self.end_session(index, now, CloseReason::Abandoned);
                    return true;
                }
                acknowledged || send_fin
            }
        }
    }

    /// Logs and counts a finished session and puts its socket back to work.
    pub(super) fn end_session(&mut self, index: usize, now: Instant, reason: CloseReason) {
        let slot = &mut self.slots[index];
        let stats = slot.session.stats();
        self.totals.add_session(&stats);
        net_info!(
            "session {}: closed {} ({}) after {} ms: {} lines, {} bytes in, {} bytes out, {} errors",
            index,
            slot.peer,
            reason,
            (now - slot.opened_at).total_millis(),
            stats.lines,
            stats.bytes_in,
            stats.bytes_out,
            stats.errors()
        );
        slot.phase = Phase::Listening;
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handles[index]);
        finish_connection(socket, &self.config, self.shutting_down);
    }
}

/// How long a closing session may go without progress: the idle timeout
/// while replies wait for a live peer, the close timeout once the FIN is out
/// or when the peer already sat silent through the idle timeout.
pub(super) fn closing_limit(
    config: &ServerConfig,
    reason: CloseReason,
    fin_sent: bool,
) -> Option<Duration> {
    if fin_sent || reason == CloseReason::IdleTimeout {
        Some(config.close_timeout)
    } else {
        config.session.idle_timeout
    }
}

/// Feeds a session from its socket and queues its replies; true if any
/// byte moved. Input is read only as far as its replies fit in the send
/// buffer, so a client that does not read sees its window close.
fn move_bytes<const LINE: usize>(
    socket: &mut tcp::Socket<'_>,
    slot: &mut Slot<LINE>,
    scratch: &mut [u8],
    now: Instant,
    shutting_down: bool,
) -> bool {
    let session = &mut slot.session;
    if socket.send_queue() < slot.queued {
        // The peer acknowledged replies: bytes moved.
        session.note_activity(now);
    }
    let mut moved = false;
    loop {
        let out = free_output(socket, scratch);
        let progress = if socket.can_recv() {
            socket
                .recv(|rx| {
                    let p = session.receive(now, rx, out);
                    (p.consumed, p)
                })
                .unwrap_or_default()
        } else if !socket.may_recv() || shutting_down {
            session.end_of_input(now, out)
        } else {
            break;
        };
        if progress.produced > 0 {
            // Fits: `out` was no longer than the free space.
            let _ = socket.send_slice(&out[..progress.produced]);
        }
        if progress.is_empty() || session.finished().is_some() {
            moved |= !progress.is_empty();
            break;
        }
        moved = true;
    }
    // Timers (idle flush, idle timeout) also run while input is flowing.
    let out = free_output(socket, scratch);
    let progress = session.poll(now, out);
    if progress.produced > 0 {
        let _ = socket.send_slice(&out[..progress.produced]);
        moved = true;
    }
    slot.queued = socket.send_queue();
    moved
}

/// The part of `scratch` that the socket's free send space can take.
fn free_output<'s>(socket: &tcp::Socket<'_>, scratch: &'s mut [u8]) -> &'s mut [u8] {
    let free = socket.send_capacity() - socket.send_queue();
    let len = free.min(scratch.len());
    &mut scratch[..len]
}
