//! The session sockets: one slot per session with its socket, its
//! [`Session`] and its phase (listening, active, closing), and the byte
//! moving between a socket and its session.

use core::fmt;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use super::config::ServerConfig;
use super::context::Context;
use super::deferred::Deferred;
use super::push::note_write_end;
use super::socket::{NO_PEER, finish_connection, relisten, tcp_socket};
use crate::fmt::net_info;
use crate::session::{self, Finish, Session};

/// Keep-alive interval of a session while replies are unacknowledged; see
/// [`probe_while_unacknowledged`].
const STALL_PROBE: Duration = Duration::from_secs(1);

/// Why a session ended, for the close log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum CloseReason {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Phase {
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
pub(super) struct Slot<'a> {
    handle: SocketHandle,
    session: Session<'a>,
    phase: Phase,
    opened_at: Instant,
    peer: IpEndpoint,
    /// Send queue length after the last poll: a drop means bytes moved.
    queued: usize,
}

/// One session's buffers: socket receive and send buffer, line buffer.
pub(super) type SessionBuffers<'a> = (&'a mut [u8], &'a mut [u8], &'a mut [u8]);

/// The session slots in use, in the order of their sockets.
#[derive(Debug)]
pub(super) struct Sessions<'a> {
    slots: &'a mut [Deferred<Slot<'a>>],
}

impl<'a> Sessions<'a> {
    /// Fills the first `config.sessions` slots, each with a listening socket
    /// over its buffers, added to `sockets`.
    pub(super) fn new(
        slots: &'a mut [Deferred<Slot<'a>>],
        buffers: impl Iterator<Item = SessionBuffers<'a>>,
        sockets: &mut SocketSet<'a>,
        config: &ServerConfig,
    ) -> Result<Self, session::ConfigError> {
        let mut filled = 0;
        for (slot, (rx, tx, line)) in slots.iter_mut().zip(buffers).take(config.sessions) {
            let mut socket = tcp_socket(rx, tx);
            relisten(&mut socket, config);
            slot.insert(Slot {
                handle: sockets.add(socket),
                session: Session::with_config(config.session, line)?,
                phase: Phase::Listening,
                opened_at: Instant::ZERO,
                peer: NO_PEER,
                queued: 0,
            });
            filled += 1;
        }
        Ok(Sessions {
            slots: &mut slots[..filled],
        })
    }

    fn iter(&self) -> impl Iterator<Item = &Slot<'a>> {
        self.slots.iter().filter_map(Deferred::get)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Slot<'a>> {
        self.slots.iter_mut().filter_map(Deferred::get_mut)
    }

    /// The session sockets.
    pub(super) fn handles(&self) -> impl Iterator<Item = SocketHandle> {
        self.iter().map(|slot| slot.handle)
    }

    /// The sessions open now.
    pub(super) fn open(&self) -> impl Iterator<Item = &Session<'a>> {
        self.iter()
            .filter(|slot| slot.phase != Phase::Listening)
            .map(|slot| &slot.session)
    }

    /// Moves bytes between sockets and sessions; true if anything changed.
    pub(super) fn service(&mut self, sockets: &mut SocketSet<'_>, cx: &mut Context<'_>) -> bool {
        let mut moved = false;
        for (index, slot) in self.iter_mut().enumerate() {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            moved |= slot.service(index, socket, cx);
        }
        moved
    }

    /// Refuses connections not yet established. A connection established
    /// but not yet seen by `service` is a session and is served.
    pub(super) fn shutdown(&mut self, sockets: &mut SocketSet<'_>) {
        for slot in self.iter() {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            let connected = matches!(
                socket.state(),
                tcp::State::Established | tcp::State::CloseWait
            );
            if slot.phase == Phase::Listening && !connected {
                socket.abort();
            }
        }
    }

    /// When a session's timer next runs out, if ever.
    pub(super) fn deadline(&self, config: &ServerConfig) -> Option<Instant> {
        self.iter()
            .filter_map(|slot| match slot.phase {
                Phase::Listening => None,
                Phase::Active => slot.session.deadline(),
                Phase::Closing {
                    since,
                    reason,
                    fin_sent,
                } => closing_limit(config, reason, fin_sent).map(|limit| since + limit),
            })
            .min()
    }
}

impl Slot<'_> {
    /// Moves the session on by what its socket did, through as many phases
    /// as that takes; true if anything changed.
    fn service(
        &mut self,
        index: usize,
        socket: &mut tcp::Socket<'_>,
        cx: &mut Context<'_>,
    ) -> bool {
        let mut changed = false;
        loop {
            let state = socket.state();
            let over = matches!(state, tcp::State::Closed | tcp::State::TimeWait);
            match self.phase {
                Phase::Listening => match state {
                    tcp::State::Established | tcp::State::CloseWait => {
                        self.open(index, socket, cx);
                        changed = true;
                    }
                    tcp::State::Closed if !cx.shutting_down => {
                        relisten(socket, cx.config);
                        return true;
                    }
                    _ => return changed,
                },
                Phase::Active => {
                    if over {
                        self.end(index, socket, cx, CloseReason::Lost);
                        return true;
                    }
                    let moved = self.move_bytes(index, socket, cx);
                    probe_while_unacknowledged(socket);
                    let Some(finish) = self.session.finished() else {
                        return changed || moved;
                    };
                    let reason = match finish {
                        Finish::IdleTimeout => CloseReason::IdleTimeout,
                        Finish::EndOfInput if cx.shutting_down => CloseReason::Shutdown,
                        Finish::EndOfInput => CloseReason::EndOfInput,
                    };
                    self.phase = Phase::Closing {
                        since: cx.now,
                        reason,
                        fin_sent: false,
                    };
                    changed = true;
                }
                Phase::Closing {
                    mut since,
                    reason,
                    mut fin_sent,
                } => {
                    if over {
                        self.end(index, socket, cx, reason);
                        return true;
                    }
                    probe_while_unacknowledged(socket);
                    let queued = socket.send_queue();
                    let acknowledged = queued < self.queued;
                    if acknowledged {
                        since = cx.now;
                    }
                    self.queued = queued;
                    let send_fin = !fin_sent && queued == 0;
                    if send_fin {
                        socket.close();
                        fin_sent = true;
                        since = cx.now;
                    }
                    self.phase = Phase::Closing {
                        since,
                        reason,
                        fin_sent,
                    };
                    if closing_limit(cx.config, reason, fin_sent)
                        .is_some_and(|limit| cx.now >= since + limit)
                    {
                        socket.abort();
                        self.end(index, socket, cx, CloseReason::Abandoned);
                        return true;
                    }
                    return changed || acknowledged || send_fin;
                }
            }
        }
    }

    /// A connection was established: a new session starts.
    fn open(&mut self, index: usize, socket: &mut tcp::Socket<'_>, cx: &mut Context<'_>) {
        self.phase = Phase::Active;
        self.session.restart(cx.now);
        self.opened_at = cx.now;
        self.peer = socket.remote_endpoint().unwrap_or(NO_PEER);
        self.queued = 0;
        // The handshake is over: from here the idle timeout watches the peer.
        socket.set_timeout(None);
        cx.totals.connections += 1;
        net_info!("session {}: open from {}", index, self.peer);
    }

    /// Logs and counts a finished session and puts its socket back to work.
    fn end(
        &mut self,
        index: usize,
        socket: &mut tcp::Socket<'_>,
        cx: &mut Context<'_>,
        reason: CloseReason,
    ) {
        let stats = self.session.stats();
        cx.totals.add_session(&stats);
        net_info!(
            "session {}: closed {} ({}) after {} ms: {} lines, {} bytes in, {} bytes out, {} errors",
            index,
            self.peer,
            reason,
            (cx.now - self.opened_at).total_millis(),
            stats.lines,
            stats.bytes_in,
            stats.bytes_out,
            stats.errors()
        );
        self.phase = Phase::Listening;
        finish_connection(socket, cx.config, cx.shutting_down);
    }

    /// Feeds the session from its socket and queues its replies; true if
    /// any byte moved. Input is read only as far as its replies fit in the
    /// send buffer, so a client that does not read sees its window close.
    fn move_bytes(
        &mut self,
        index: usize,
        socket: &mut tcp::Socket<'_>,
        cx: &mut Context<'_>,
    ) -> bool {
        let (now, session) = (cx.now, &mut self.session);
        if socket.send_queue() < self.queued {
            // The peer acknowledged replies: bytes moved.
            session.note_activity(now);
        }
        let mut moved = false;
        loop {
            let out = free_output(socket, cx.scratch);
            let progress = if socket.can_recv() {
                socket
                    .recv(|rx| {
                        let p = session.receive(now, rx, out);
                        (p.consumed, p)
                    })
                    .unwrap_or_default()
            } else if !socket.may_recv() || cx.shutting_down {
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
        // Timers (idle flush, idle timeout) also run while input is flowing;
        // the flush only where the client's write ended.
        note_write_end(&mut cx.write_ends, index, socket, session);
        let out = free_output(socket, cx.scratch);
        let progress = session.poll(now, out);
        if progress.produced > 0 {
            let _ = socket.send_slice(&out[..progress.produced]);
            moved = true;
        }
        self.queued = socket.send_queue();
        moved
    }
}

/// How long a closing session may go without progress: the idle timeout
/// while replies wait for a live peer, the close timeout once the FIN is out
/// or when the peer already sat silent through the idle timeout.
fn closing_limit(config: &ServerConfig, reason: CloseReason, fin_sent: bool) -> Option<Duration> {
    if fin_sent || reason == CloseReason::IdleTimeout {
        Some(config.close_timeout)
    } else {
        config.session.idle_timeout
    }
}

/// Keeps keep-alive probes on while replies wait for acknowledgement.
///
/// smoltcp 0.14's fast retransmit sends a whole segment even past a peer
/// window smaller than one, counts the part the peer cut off as sent, and
/// leaves no retransmission timer running for it: against a client with a
/// 1 KiB window the last replies could wait for the idle timeout. A
/// keep-alive probe draws a duplicate ACK; the third one makes smoltcp
/// retransmit from the first unacknowledged byte. Off again once every
/// reply is acknowledged, so idle sessions send nothing.
fn probe_while_unacknowledged(socket: &mut tcp::Socket<'_>) {
    let wanted = (socket.send_queue() > 0).then_some(STALL_PROBE);
    if socket.keep_alive() != wanted {
        socket.set_keep_alive(wanted);
    }
}

/// The part of `scratch` that the socket's free send space can take.
fn free_output<'s>(socket: &tcp::Socket<'_>, scratch: &'s mut [u8]) -> &'s mut [u8] {
    let free = socket.send_capacity() - socket.send_queue();
    let len = free.min(scratch.len());
    &mut scratch[..len]
}
