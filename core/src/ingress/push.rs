//! Where each session's sender ended its writes: the only places where the
//! idle flush may answer a partial line.
//!
//! A pause in a client's bytes is a message boundary only if the client's
//! write ended there. TCP marks the end of a write with PSH (Linux at the
//! end of each `send`, smoltcp and BSD stacks when a segment empties the
//! send buffer), and a line cut by loss never has its readable data end
//! where a segment with PSH ended: the data stops before the hole, or
//! before the lost last segment. smoltcp does not keep PSH, so
//! [`WriteEnds`] watches every incoming segment before smoltcp does and
//! keeps, for the connection of each session socket:
//!
//! - where its byte stream starts, from the SYN (smoltcp does not tell its
//!   peer's initial sequence number);
//! - the furthest write end seen (the end of a segment with PSH), as an
//!   offset in the stream: 64 bits, so it never wraps;
//! - how far the write end before it lies behind it.
//!
//! The server asks, after taking bytes out of the socket, whether what it
//! has taken ends exactly at that write end with nothing more readable;
//! only then may the session flush.
//!
//! What is recorded, and what is not:
//! - only segments whose checksums hold (unless the device verified them):
//!   smoltcp drops a damaged one, and its fields may be anything;
//! - a write end must lie within the receive window past the data already
//!   taken: an old duplicate or a segment beyond the window cannot move it;
//! - retransmissions, duplicates and reordered segments may record a write
//!   end again or out of order: only the furthest one counts, and it is a
//!   true write end of the sender whatever smoltcp did with the segment,
//!   since the server compares it with the data smoltcp actually made
//!   readable;
//! - a RST records nothing; a FIN ends the input anyway.
//!
//! Linux also sets PSH in the middle of a write: when more than half the
//! largest window we offered was written since its last push (its
//! `forced_push`), when the writer blocks on a full send buffer, and on
//! window probes. A write end more than half our window (at most 64 KiB)
//! past the one before it may be a forced push and does not count. The
//! other two leave the rest of the write queued in the sender, on its way
//! within a round trip (or a retransmission, if lost); the flush delay is
//! chosen longer than that (see the README's protocol section).

use smoltcp::wire::TcpSeqNumber;

use super::filter::{Filter, Verdict};
use super::mark::StreamMark;
use super::segment::{Connection, Segment};

/// The largest window a peer that does not scale windows can be offered.
const UNSCALED_WINDOW: u64 = 0xffff;

/// One session socket's connection as its sender's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    connection: Connection,
    state: StreamState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    /// The entry's socket holds no connection: a SYN may take the entry.
    Free,
    /// A connection request, to be claimed by the socket that took it.
    Requested { isn: TcpSeqNumber },
    /// The connection of the entry's socket, whose SYN was never seen:
    /// nothing is known of its write ends.
    Unknown,
    /// The connection of the entry's socket.
    Held(Positions),
}

/// Positions in a held connection's byte stream, as offsets from its
/// first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Positions {
    /// Sequence number of the stream's first byte.
    start: TcpSeqNumber,
    /// Bytes the server has taken out of the socket, as of its last look.
    consumed: u64,
    /// The furthest write end seen.
    write_end: u64,
    /// How far the write end before `write_end` lies behind it (the start
    /// of the stream counts as one).
    gap: u64,
}

impl Stream {
    /// An entry of a socket that holds no connection. All zero bytes, so a
    /// table of them in a `static` stays in `.bss`.
    pub(crate) const FREE: Stream = Stream {
        connection: Connection::NONE,
        state: StreamState::Free,
    };
}

impl Positions {
    /// Records a write end at sequence number `end`, if it lies within
    /// `window` bytes past the data taken.
    fn record(&mut self, end: TcpSeqNumber, window: u64) {
        // u32 arithmetic: sequence numbers wrap (smoltcp's `Sub` panics
        // when they do). The truncating cast wraps as the sequence space.
        let taken = self.start.0.wrapping_add(self.consumed as i32);
        let ahead = u64::from(end.0.wrapping_sub(taken) as u32);
        if ahead > window {
            return;
        }
        let at = self.consumed + ahead;
        if at > self.write_end {
            self.gap = at - self.write_end;
            self.write_end = at;
        } else if self.write_end - at < self.gap {
            // A late write end between the last two: the gap shrinks.
            self.gap = self.write_end - at;
        }
    }
}

/// Every session socket's [`Stream`], in a table the caller lends (one
/// entry per session socket, in the order of the sockets), and the filter
/// that fills it in.
#[derive(Debug)]
pub(crate) struct WriteEnds<'t> {
    streams: &'t mut [Stream],
    /// The server's TCP port: a SYN to any other is no session's.
    port: u16,
    /// The session sockets' receive buffer, the most they ever offer.
    window: u64,
    /// Write ends further apart than this may be Linux's forced push.
    trusted_gap: u64,
}

impl<'t> WriteEnds<'t> {
    /// A table in `streams` for sockets listening on `port` with receive
    /// buffers of `window` bytes.
    pub(crate) fn new(streams: &'t mut [Stream], port: u16, window: usize) -> Self {
        streams.fill(Stream::FREE);
        let window = window as u64;
        WriteEnds {
            streams,
            port,
            window,
            trusted_gap: window.min(UNSCALED_WINDOW) / 2,
        }
    }

    /// The same table, borrowed for a shorter while.
    pub(crate) fn reborrow(&mut self) -> WriteEnds<'_> {
        WriteEnds {
            streams: &mut *self.streams,
            ..*self
        }
    }

    /// The socket at `index` holds `connection` (from its SYN on): its
    /// entry follows the connection, taking over the SYN that a free entry
    /// recorded. Call it for every socket that holds one before any
    /// [`release`](Self::release), before each batch of frames.
    pub(crate) fn hold(&mut self, index: usize, connection: Connection) {
        let Some(stream) = self.streams.get(index) else {
            return;
        };
        if stream.connection == connection
            && matches!(stream.state, StreamState::Held(_) | StreamState::Unknown)
        {
            return;
        }
        let requested = self.streams.iter().position(|s| {
            s.connection == connection && matches!(s.state, StreamState::Requested { .. })
        });
        let state = match requested {
            Some(at) => {
                // Whatever the entry held moves to where the SYN was: a
                // socket not yet looked at may claim it from there.
                self.streams.swap(index, at);
                match self.streams[index].state {
                    StreamState::Requested { isn } => StreamState::Held(Positions {
                        start: isn + 1,
                        consumed: 0,
                        write_end: 0,
                        gap: 0,
                    }),
                    _ => StreamState::Unknown,
                }
            }
            None => StreamState::Unknown,
        };
        self.streams[index] = Stream { connection, state };
    }

    /// The socket at `index` holds no connection: its entry is free again,
    /// and a SYN recorded there that no socket claimed is forgotten.
    pub(crate) fn release(&mut self, index: usize) {
        if let Some(stream) = self.streams.get_mut(index) {
            *stream = Stream::FREE;
        }
    }

    /// Whether the server, having taken `consumed` bytes out of the socket
    /// at `index` (which holds `connection`) with `queued` more readable,
    /// stands exactly at a write end of the sender: all it has taken ends
    /// where a segment with PSH ended, and nothing after it is readable.
    pub(crate) fn at_write_end(
        &mut self,
        index: usize,
        connection: Connection,
        consumed: u64,
        queued: usize,
    ) -> bool {
        let Some(stream) = self.streams.get_mut(index) else {
            return false;
        };
        let StreamState::Held(positions) = &mut stream.state else {
            return false;
        };
        if stream.connection != connection {
            return false;
        }
        positions.consumed = consumed;
        queued == 0 && consumed == positions.write_end && positions.gap <= self.trusted_gap
    }

    fn request(&mut self, connection: Connection, isn: TcpSeqNumber) {
        if let Some(stream) = self.streams.iter_mut().find(|s| s.connection == connection) {
            // A repeated SYN of a request not yet claimed; a SYN of a held
            // connection starts nothing.
            if let StreamState::Requested { isn: seen } = &mut stream.state {
                *seen = isn;
            }
            return;
        }
        if let Some(free) = self
            .streams
            .iter_mut()
            .find(|s| s.state == StreamState::Free)
        {
            *free = Stream {
                connection,
                state: StreamState::Requested { isn },
            };
        }
    }

    fn write_end(&mut self, connection: Connection, end: TcpSeqNumber) {
        let window = self.window;
        let held = self.streams.iter_mut().find_map(|s| match &mut s.state {
            StreamState::Held(positions) if s.connection == connection => Some(positions),
            _ => None,
        });
        if let Some(positions) = held {
            positions.record(end, window);
        }
    }
}

impl Filter for WriteEnds<'_> {
    fn inspect(&mut self, segment: &Segment) -> Verdict {
        match segment.mark {
            Some(StreamMark::Start { isn }) if segment.connection.port == self.port => {
                self.request(segment.connection, isn);
            }
            Some(StreamMark::WriteEnd { end }) => self.write_end(segment.connection, end),
            _ => {}
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::mark::tests::tcp_segment;
    use crate::ingress::segment::tests::{connection, ipv4};
    use smoltcp::phy::{ChecksumCapabilities, Medium};
    use smoltcp::wire::TcpControl;

    const WINDOW: usize = 1024;
    const ISN: i32 = 1000;

    fn table() -> WriteEnds<'static> {
        WriteEnds::new(Box::leak(Box::new([Stream::FREE; 2])), 8888, WINDOW)
    }

    /// `tcp` in an IPv4 packet from PEER to US, parsed.
    fn parse(tcp: &[u8]) -> Segment {
        Segment::parse(Medium::Ip, &ChecksumCapabilities::default(), &ipv4(tcp)).unwrap()
    }

    /// Shows `ends` a segment with `control` carrying stream bytes
    /// `from..to` (offsets from the first byte).
    fn data(ends: &mut WriteEnds<'_>, control: TcpControl, from: usize, to: usize) {
        let payload = vec![b'x'; to - from];
        let seq = ISN + 1 + from as i32;
        ends.inspect(&parse(&tcp_segment(control, seq, &payload)));
    }

    /// A table whose socket 0 holds the connection, its SYN seen.
    fn holding() -> WriteEnds<'static> {
        let mut ends = table();
        ends.inspect(&parse(&tcp_segment(TcpControl::Syn, ISN, &[])));
        ends.hold(0, connection());
        ends.release(1);
        ends
    }

    fn at(ends: &mut WriteEnds<'_>, consumed: u64, queued: usize) -> bool {
        ends.at_write_end(0, connection(), consumed, queued)
    }

    #[test]
    fn the_data_taken_stands_at_a_write_end_only_where_a_psh_segment_ended() {
        let mut ends = holding();
        data(&mut ends, TcpControl::None, 0, 3);
        assert!(!at(&mut ends, 3, 0), "no PSH yet");
        data(&mut ends, TcpControl::Psh, 3, 5);
        assert!(
            !at(&mut ends, 3, 2),
            "bytes up to the write end are still queued"
        );
        assert!(at(&mut ends, 5, 0));
        data(&mut ends, TcpControl::None, 5, 8);
        assert!(!at(&mut ends, 8, 0), "past the write end");
    }

    #[test]
    fn a_lost_segment_before_a_write_end_keeps_the_data_short_of_it() {
        let mut ends = holding();
        // 0..4 arrives, 4..8 is lost, 8..10 with PSH arrives out of order.
        data(&mut ends, TcpControl::None, 0, 4);
        data(&mut ends, TcpControl::Psh, 8, 10);
        assert!(!at(&mut ends, 4, 0));
        // The retransmission fills the hole: smoltcp makes 4..10 readable.
        data(&mut ends, TcpControl::None, 4, 8);
        assert!(at(&mut ends, 10, 0));
    }

    #[test]
    fn a_late_duplicate_of_an_earlier_write_end_does_not_move_the_furthest() {
        let mut ends = holding();
        data(&mut ends, TcpControl::Psh, 0, 4);
        data(&mut ends, TcpControl::Psh, 4, 8);
        assert!(at(&mut ends, 8, 0));
        data(&mut ends, TcpControl::Psh, 0, 4);
        assert!(at(&mut ends, 8, 0));
        data(&mut ends, TcpControl::None, 8, 9);
        assert!(!at(&mut ends, 9, 0));
    }

    #[test]
    fn reordered_write_ends_leave_the_furthest() {
        let mut ends = holding();
        // The second write overtakes the first on the way.
        data(&mut ends, TcpControl::Psh, 4, 8);
        data(&mut ends, TcpControl::Psh, 0, 4);
        assert!(!at(&mut ends, 4, 0), "the data goes on past 4");
        assert!(at(&mut ends, 8, 0));
    }

    #[test]
    fn a_write_end_beyond_the_window_is_ignored() {
        let mut ends = holding();
        data(&mut ends, TcpControl::Psh, WINDOW + 1, WINDOW + 10);
        data(&mut ends, TcpControl::Psh, 0, 4);
        assert!(at(&mut ends, 4, 0));
    }

    #[test]
    fn a_write_end_more_than_half_the_window_past_the_last_does_not_count() {
        let mut ends = holding();
        data(&mut ends, TcpControl::Psh, 0, WINDOW / 2 + 1);
        assert!(
            !at(&mut ends, WINDOW as u64 / 2 + 1, 0),
            "may be a forced push"
        );
        data(&mut ends, TcpControl::Psh, WINDOW / 2 + 1, WINDOW / 2 + 3);
        assert!(at(&mut ends, WINDOW as u64 / 2 + 3, 0));
    }

    #[test]
    fn positions_survive_the_sequence_numbers_wrapping() {
        let mut positions = Positions {
            start: TcpSeqNumber(i32::MAX - 2),
            consumed: 0,
            write_end: 0,
            gap: 0,
        };
        positions.record(TcpSeqNumber(i32::MAX - 2) + 10, 1024);
        assert_eq!(positions.write_end, 10);
        positions.consumed = (1 << 32) + 5;
        // 2^32 + 12 bytes in: the sequence number went round once.
        let end = TcpSeqNumber((i32::MAX - 2).wrapping_add(12));
        positions.record(end, 1024);
        assert_eq!(positions.write_end, (1 << 32) + 12);
    }

    #[test]
    fn a_damaged_psh_segment_records_nothing() {
        let mut ends = holding();
        let mut damaged = tcp_segment(TcpControl::Psh, ISN + 1, b"abcd");
        *damaged.last_mut().unwrap() ^= 1;
        ends.inspect(&parse(&damaged));
        assert!(!at(&mut ends, 4, 0));
    }

    #[test]
    fn a_connection_whose_syn_was_not_seen_never_stands_at_a_write_end() {
        let mut ends = table();
        ends.hold(0, connection());
        data(&mut ends, TcpControl::Psh, 0, 4);
        assert!(!at(&mut ends, 4, 0));
    }

    #[test]
    fn a_syn_taken_by_another_socket_moves_to_its_entry() {
        let mut ends = table();
        // The SYN lands in free entry 0; socket 1 took the connection.
        ends.inspect(&parse(&tcp_segment(TcpControl::Syn, ISN, &[])));
        ends.hold(1, connection());
        ends.release(0);
        data(&mut ends, TcpControl::Psh, 0, 4);
        assert!(ends.at_write_end(1, connection(), 4, 0));
        assert!(!ends.at_write_end(0, connection(), 4, 0));
    }

    #[test]
    fn a_syn_no_socket_took_is_forgotten_and_its_entry_reused() {
        let mut ends = WriteEnds::new(Box::leak(Box::new([Stream::FREE; 1])), 8888, WINDOW);
        ends.inspect(&parse(&tcp_segment(TcpControl::Syn, ISN, &[])));
        ends.release(0);
        assert_eq!(ends.streams[0], Stream::FREE);
    }

    #[test]
    fn a_syn_to_another_port_takes_no_entry() {
        let mut ends = WriteEnds::new(Box::leak(Box::new([Stream::FREE; 1])), 7, WINDOW);
        ends.inspect(&parse(&tcp_segment(TcpControl::Syn, ISN, &[])));
        assert_eq!(ends.streams[0], Stream::FREE);
    }
}
