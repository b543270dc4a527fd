//! Target `session`: one TCP conversation with any configuration, any
//! chunking of its input and any output room per call.
//!
//! Without timers the replies must equal [`oracle::session_replies`] for the
//! whole input, however it was cut. With timers (idle flush, idle timeout,
//! time moving between calls, and whether each piece ended at a write
//! boundary of the sender) the replies depend on timing, so the checks are
//! the invariants: no panic, nothing written beyond the room given, nothing
//! consumed that was not offered, the counters add up, and the end of input
//! always finishes the session. One timing needs no invariant: with the
//! idle flush on and no idle timeout, if no piece ended at a write boundary
//! the replies are still the oracle's, since only a write boundary lets a
//! pause end a message.

use arbitrary::Arbitrary;
use reversal_core::{Session, SessionConfig};
use smoltcp::time::{Duration, Instant};

use crate::{Input, mode, oracle};

/// Line buffer of the sessions under test.
const LINE: usize = 64;

/// One conversation.
#[derive(Debug, Clone, Arbitrary)]
pub struct Case {
    /// Picks the mode.
    pub mode: u8,
    /// Picks `max_line`, 1 to [`LINE`].
    pub max_line: u8,
    /// Everything the client sends.
    pub input: Input,
    /// Sizes of the pieces the input arrives in (used in turn).
    pub cuts: Vec<u8>,
    /// Output room offered per call (used in turn).
    pub rooms: Vec<u8>,
    /// Timers and time steps; `None`: no timers, compare with the oracle.
    pub timers: Option<Timers>,
}

/// Idle flush, idle timeout and the time between calls, in milliseconds,
/// and where the sender's writes ended.
#[derive(Debug, Clone, Arbitrary)]
pub struct Timers {
    /// Idle flush delay.
    pub idle_flush: Option<u8>,
    /// Idle timeout.
    pub idle_timeout: Option<u16>,
    /// Time between calls (used in turn).
    pub steps: Vec<u8>,
    /// Whether the input taken so far ends at a write boundary, said after
    /// each call (used in turn).
    pub write_boundaries: Vec<bool>,
}

/// Takes values from a list in turn, or `default` when it is empty.
struct Cycle<'a, T> {
    items: &'a [T],
    next: usize,
    default: T,
}

impl<'a, T: Copy> Cycle<'a, T> {
    fn new(items: &'a [T], default: T) -> Self {
        Cycle {
            items,
            next: 0,
            default,
        }
    }

    fn take(&mut self) -> T {
        let Some(&item) = self.items.get(self.next % self.items.len().max(1)) else {
            return self.default;
        };
        self.next += 1;
        item
    }
}

/// The conversation under test with what it answered so far.
struct Conversation<'a> {
    session: Session<'a>,
    replies: Vec<u8>,
    now: Instant,
    steps: Cycle<'a, u8>,
    rooms: Cycle<'a, u8>,
    write_boundaries: Cycle<'a, bool>,
    /// Room that any single reply fits into.
    full_room: usize,
}

impl Conversation<'_> {
    fn advance(&mut self) {
        self.now += Duration::from_millis(u64::from(self.steps.take()));
    }

    /// Offers `pending` once with the next room (the full room if `full`);
    /// drops what was consumed and returns whether anything moved.
    fn receive(&mut self, pending: &mut Vec<u8>, full: bool) -> bool {
        let room = if full {
            self.full_room
        } else {
            usize::from(self.rooms.take())
        };
        let mut out = vec![0u8; room];
        let p = self.session.receive(self.now, pending, &mut out);
        assert!(p.consumed <= pending.len(), "consumed more than offered");
        assert!(p.produced <= room, "wrote {} bytes into {room}", p.produced);
        pending.drain(..p.consumed);
        self.replies.extend_from_slice(&out[..p.produced]);
        self.session
            .set_at_write_boundary(self.write_boundaries.take());
        let timers = self.session.poll(self.now, &mut out[p.produced..]);
        assert!(p.produced + timers.produced <= room);
        self.replies
            .extend_from_slice(&out[p.produced..p.produced + timers.produced]);
        !p.is_empty() || !timers.is_empty()
    }
}

/// Runs one conversation and checks it.
pub fn check(case: &Case) {
    let max_line = usize::from(case.max_line) % LINE + 1;
    let timers = case.timers.as_ref();
    let config = SessionConfig::new(max_line)
        .with_mode(mode(case.mode))
        .with_idle_flush(
            timers
                .and_then(|t| t.idle_flush)
                .map(|ms| Duration::from_millis(u64::from(ms))),
        )
        .with_idle_timeout(
            timers
                .and_then(|t| t.idle_timeout)
                .map(|ms| Duration::from_millis(u64::from(ms))),
        );
    let input = case.input.bytes();
    let mut line_buffer = [0u8; LINE];
    let mut c = Conversation {
        session: Session::with_config(config, &mut line_buffer)
            .expect("max_line fits the line buffer"),
        replies: Vec::new(),
        now: Instant::ZERO,
        steps: Cycle::new(timers.map_or(&[][..], |t| &t.steps), 0),
        rooms: Cycle::new(&case.rooms, u8::MAX),
        write_boundaries: Cycle::new(timers.map_or(&[][..], |t| &t.write_boundaries), false),
        full_room: config.max_reply_len(),
    };
    let mut cuts = Cycle::new(&case.cuts, u8::MAX);
    let mut pending = Vec::new();
    let mut fed = 0;
    while fed < input.len() {
        let piece = usize::from(cuts.take()).max(1).min(input.len() - fed);
        pending.extend_from_slice(&input[fed..fed + piece]);
        fed += piece;
        c.advance();
        // Small rooms may stall; a full room never does while input waits.
        if !c.receive(&mut pending, false) && !pending.is_empty() && c.session.finished().is_none()
        {
            assert!(
                c.receive(&mut pending, true),
                "stalled with {} bytes pending and room for any reply",
                pending.len()
            );
        }
    }
    while !pending.is_empty() && c.session.finished().is_none() {
        c.advance();
        assert!(
            c.receive(&mut pending, true),
            "stalled with {} bytes pending",
            pending.len()
        );
    }
    if c.session.finished().is_none() {
        let mut out = vec![0u8; c.full_room];
        let p = c.session.end_of_input(c.now, &mut out);
        c.replies.extend_from_slice(&out[..p.produced]);
        assert!(
            c.session.finished().is_some(),
            "the end of input did not finish the session"
        );
    }
    let stats = c.session.stats();
    assert_eq!(
        stats.bytes_out,
        c.replies.len() as u64,
        "bytes_out counts every reply byte"
    );
    assert!(stats.bytes_in <= input.len() as u64);
    let never_at_a_boundary =
        timers.is_none_or(|t| t.idle_timeout.is_none() && !t.write_boundaries.contains(&true));
    if never_at_a_boundary {
        assert_eq!(stats.bytes_in, input.len() as u64, "every byte was read");
        let expected = oracle::session_replies(config.mode, max_line, &input);
        assert!(
            c.replies == expected,
            "{} max_line {max_line}: input {input:?}\n got {:?}\nwant {:?}",
            config.mode,
            String::from_utf8_lossy(&c.replies),
            String::from_utf8_lossy(&expected)
        );
    }
}
