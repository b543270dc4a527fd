//! One TCP conversation as a pure state machine: bytes in, replies out.
//!
//! The session never touches a socket and never sleeps: the caller hands it
//! the bytes it received, the space it may write replies into, and the time.
//! It consumes input only as far as it can answer it, so a caller that offers
//! no output space gets no input read: that is the backpressure of the SPEC.

use core::fmt;

use smoltcp::time::{Duration, Instant};

use crate::reply::{ErrorReply, MAX_ERROR_REPLY};
use crate::reverse::{Mode, ReverseError, reverse, validate_utf8};

/// Behaviour of a session, shared by every session of a server.
///
/// It can grow: build it with [`new`](Self::new) and the `with_*`
/// methods (all `const`), or assign its fields.
///
/// ```
/// use reversal_core::{Mode, SessionConfig};
/// use smoltcp::time::Duration;
///
/// let config = SessionConfig::new(512)
///     .with_mode(Mode::Chars)
///     .with_idle_flush(Some(Duration::from_millis(50)));
/// assert_eq!(config.max_line, 512);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct SessionConfig {
    /// What a reversal keeps whole.
    pub mode: Mode,
    /// Longest accepted line in bytes, terminator excluded.
    pub max_line: usize,
    /// Close a session after this long with no bytes moved (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Answer a partial line as an unterminated message after this long
    /// with no new bytes, if the input so far ends at a write boundary of
    /// the sender ([`Session::set_at_write_boundary`]); `None`: never.
    pub idle_flush: Option<Duration>,
}

/// Default idle timeout: two minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Default idle flush: a quarter of a second. Longer than Linux's shortest
/// retransmission timeout (200 ms), so one lost segment after a sender's
/// push in the middle of a write is retransmitted in time; short enough
/// that a person waiting for the answer hardly notices (BENCHMARKS.md,
/// "The idle flush delay", has the gaps measured on the TAP).
pub const DEFAULT_IDLE_FLUSH: Duration = Duration::from_millis(250);

impl SessionConfig {
    /// The default mode, lines up to `max_line` bytes, a two-minute idle
    /// timeout and the [default idle flush](DEFAULT_IDLE_FLUSH).
    ///
    /// ```
    /// use reversal_core::session::{DEFAULT_IDLE_FLUSH, SessionConfig};
    /// assert_eq!(SessionConfig::new(80).idle_flush, Some(DEFAULT_IDLE_FLUSH));
    /// ```
    pub const fn new(max_line: usize) -> Self {
        SessionConfig {
            mode: Mode::DEFAULT,
            max_line,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            idle_flush: Some(DEFAULT_IDLE_FLUSH),
        }
    }

    /// With reversals by `mode`.
    ///
    /// ```
    /// use reversal_core::{Mode, SessionConfig};
    /// assert_eq!(SessionConfig::new(80).with_mode(Mode::Bytes).mode, Mode::Bytes);
    /// ```
    #[must_use]
    pub const fn with_mode(self, mode: Mode) -> Self {
        SessionConfig { mode, ..self }
    }

    /// With an idle timeout of `timeout` (`None`: never).
    ///
    /// ```
    /// assert_eq!(reversal_core::SessionConfig::new(80).with_idle_timeout(None).idle_timeout, None);
    /// ```
    #[must_use]
    pub const fn with_idle_timeout(self, timeout: Option<Duration>) -> Self {
        SessionConfig {
            idle_timeout: timeout,
            ..self
        }
    }

    /// With an idle flush after `flush` (`None`: a partial line waits for
    /// its LF or the end of input).
    ///
    /// ```
    /// use smoltcp::time::Duration;
    /// let flush = Some(Duration::from_millis(50));
    /// assert_eq!(reversal_core::SessionConfig::new(80).with_idle_flush(flush).idle_flush, flush);
    /// ```
    #[must_use]
    pub const fn with_idle_flush(self, flush: Option<Duration>) -> Self {
        SessionConfig {
            idle_flush: flush,
            ..self
        }
    }

    /// The most output a single reply can need: a full line with CR LF, or
    /// the longest error. A send buffer smaller than this could deadlock.
    ///
    /// ```
    /// assert_eq!(reversal_core::SessionConfig::new(512).max_reply_len(), 514);
    /// assert_eq!(reversal_core::SessionConfig::new(8).max_reply_len(), 64);
    /// ```
    pub const fn max_reply_len(&self) -> usize {
        let line = self.max_line.saturating_add(2);
        if line > MAX_ERROR_REPLY {
            line
        } else {
            MAX_ERROR_REPLY
        }
    }

    /// Checks the configuration against a line buffer of `capacity` bytes.
    ///
    /// ```
    /// use reversal_core::{SessionConfig, session::ConfigError};
    ///
    /// assert_eq!(SessionConfig::new(600).check(512), Err(ConfigError::MaxLine { capacity: 512 }));
    /// assert_eq!(SessionConfig::new(512).check(512), Ok(()));
    /// ```
    pub const fn check(&self, capacity: usize) -> Result<(), ConfigError> {
        if self.max_line == 0 || self.max_line > capacity {
            return Err(ConfigError::MaxLine { capacity });
        }
        Ok(())
    }
}

/// A session configuration that cannot work.
///
/// ```
/// use reversal_core::session::ConfigError;
/// assert!(ConfigError::MaxLine { capacity: 512 }.to_string().contains("1 to 512"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `max_line` is 0 or larger than the line buffer.
    MaxLine {
        /// The line buffer capacity, the largest allowed `max_line`.
        capacity: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MaxLine { capacity } => {
                write!(f, "maximum line length must be 1 to {capacity} bytes")
            }
        }
    }
}

/// What one call moved: input bytes consumed and reply bytes written.
///
/// ```
/// let progress = reversal_core::Progress::default();
/// assert!(progress.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Progress {
    /// Input bytes consumed (the caller may drop them).
    pub consumed: usize,
    /// Reply bytes written to the front of the output.
    pub produced: usize,
}

impl Progress {
    /// Whether nothing moved.
    ///
    /// ```
    /// let p = reversal_core::Progress { consumed: 0, produced: 3 };
    /// assert!(!p.is_empty());
    /// ```
    pub const fn is_empty(&self) -> bool {
        self.consumed == 0 && self.produced == 0
    }
}

/// What a session did, for logs and counters.
///
/// ```
/// let stats = reversal_core::SessionStats::default();
/// assert_eq!(stats.lines, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SessionStats {
    /// Messages answered (reversals and error replies to lines).
    pub lines: u64,
    /// Bytes consumed from the client.
    pub bytes_in: u64,
    /// Reply bytes produced.
    pub bytes_out: u64,
    /// `ERR too-long` replies.
    pub too_long: u64,
    /// `ERR utf8` replies.
    pub utf8: u64,
    /// `ERR idle-timeout` (sent or not: the session timed out).
    pub idle_timeouts: u64,
}

impl SessionStats {
    /// Error replies of every code.
    ///
    /// ```
    /// let stats = reversal_core::SessionStats { utf8: 2, too_long: 1, ..Default::default() };
    /// assert_eq!(stats.errors(), 3);
    /// ```
    pub const fn errors(&self) -> u64 {
        self.too_long + self.utf8 + self.idle_timeouts
    }
}

/// Why a session has nothing more to say.
///
/// ```
/// use reversal_core::session::{Session, Finish};
/// use smoltcp::time::Instant;
///
/// let mut line = [0u8; 16];
/// let mut session = Session::new(&mut line);
/// let mut out = [0u8; 64];
/// session.end_of_input(Instant::ZERO, &mut out);
/// assert_eq!(session.finished(), Some(Finish::EndOfInput));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Finish {
    /// The client's input ended and every reply was produced.
    EndOfInput,
    /// No bytes moved for the idle timeout.
    IdleTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum State {
    Open,
    Finished(Finish),
}

/// The line was longer than `max_line`.
struct TooLong;

/// The bytes of the line being read, in a buffer the caller lends.
///
/// `heapless::Vec` needs its capacity at compile time; the sessions of a
/// server get theirs at run time, and need no more than a slice and a length.
#[derive(Debug, Default)]
struct LineBuffer<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

#[cfg(feature = "defmt")]
impl defmt::Format for LineBuffer<'_> {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=usize} of {=usize} bytes", self.len, self.bytes.len())
    }
}

impl<'a> LineBuffer<'a> {
    const fn new(bytes: &'a mut [u8]) -> Self {
        LineBuffer { bytes, len: 0 }
    }

    const fn capacity(&self) -> usize {
        self.bytes.len()
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    const fn len(&self) -> usize {
        self.len
    }

    const fn is_empty(&self) -> bool {
        self.len == 0
    }

    const fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `bytes`, or nothing if they do not fit.
    fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        let end = self.len + bytes.len();
        let free = self.bytes.get_mut(self.len..end).ok_or(TooLong)?;
        free.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// One conversation: framing, reversal, errors and timers.
///
/// The session keeps the line it is reading in a buffer the caller lends;
/// the buffer's length is the largest usable `max_line`.
///
/// ```
/// use reversal_core::{Session, SessionConfig};
/// use smoltcp::time::Instant;
///
/// let mut line = [0u8; 64];
/// let mut session = Session::with_config(SessionConfig::new(64), &mut line).unwrap();
/// let mut out = [0u8; 128];
/// let p = session.receive(Instant::ZERO, "hello\r\n각하\n".as_bytes(), &mut out);
/// assert_eq!(&out[..p.produced], "olleh\r\n하각\n".as_bytes());
/// ```
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Session<'a> {
    config: SessionConfig,
    line: LineBuffer<'a>,
    /// A CR was the last byte seen: it is content unless an LF follows.
    pending_cr: bool,
    /// Dropping the rest of a too-long line, through its LF.
    discarding: bool,
    /// The latest terminated line ended with CR LF: error lines copy that.
    last_crlf: bool,
    state: State,
    last_activity: Instant,
    last_input: Instant,
    /// A timer reply is due but waits for output space, not for time.
    flush_blocked: bool,
    /// The input consumed so far ends at a write boundary of the sender, as
    /// the caller last said; consuming more input clears it.
    at_write_boundary: bool,
    stats: SessionStats,
}

impl<'a> Session<'a> {
    /// A session with the default configuration for its line buffer:
    /// `max_line` is the buffer's length.
    ///
    /// ```
    /// let mut line = [0u8; 512];
    /// let session = reversal_core::Session::new(&mut line);
    /// assert_eq!(session.config().max_line, 512);
    /// ```
    pub const fn new(line_buffer: &'a mut [u8]) -> Self {
        let max_line = line_buffer.len();
        Session {
            config: SessionConfig::new(max_line),
            line: LineBuffer::new(line_buffer),
            pending_cr: false,
            discarding: false,
            last_crlf: false,
            state: State::Open,
            last_activity: Instant::ZERO,
            last_input: Instant::ZERO,
            flush_blocked: false,
            at_write_boundary: false,
            stats: SessionStats {
                lines: 0,
                bytes_in: 0,
                bytes_out: 0,
                too_long: 0,
                utf8: 0,
                idle_timeouts: 0,
            },
        }
    }

    /// A session with `config`, if it fits the line buffer.
    ///
    /// ```
    /// use reversal_core::{Session, SessionConfig};
    /// let mut line = [0u8; 16];
    /// assert!(Session::with_config(SessionConfig::new(17), &mut line).is_err());
    /// ```
    pub fn with_config(
        config: SessionConfig,
        line_buffer: &'a mut [u8],
    ) -> Result<Self, ConfigError> {
        let mut session = Self::new(line_buffer);
        session.set_config(config)?;
        Ok(session)
    }

    /// Replaces the configuration (it applies from the next byte on).
    ///
    /// ```
    /// use reversal_core::{Mode, Session, SessionConfig};
    /// let mut line = [0u8; 16];
    /// let mut session = Session::new(&mut line);
    /// session.set_config(SessionConfig::new(8).with_mode(Mode::Bytes)).unwrap();
    /// assert_eq!(session.config().mode, Mode::Bytes);
    /// ```
    pub fn set_config(&mut self, config: SessionConfig) -> Result<(), ConfigError> {
        config.check(self.line.capacity())?;
        self.config = config;
        Ok(())
    }

    /// The configuration in force.
    ///
    /// ```
    /// let mut line = [0u8; 8];
    /// assert_eq!(reversal_core::Session::new(&mut line).config().max_line, 8);
    /// ```
    pub const fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Forgets everything of the previous conversation and starts a new one
    /// at `now` (the idle timers count from here).
    ///
    /// ```
    /// use reversal_core::Session;
    /// use smoltcp::time::Instant;
    ///
    /// let mut line = [0u8; 16];
    /// let mut session = Session::new(&mut line);
    /// let mut out = [0u8; 64];
    /// session.receive(Instant::ZERO, b"abc\n", &mut out);
    /// session.restart(Instant::from_secs(5));
    /// assert_eq!(session.stats().lines, 0);
    /// ```
    pub fn restart(&mut self, now: Instant) {
        let line_buffer = core::mem::take(&mut self.line.bytes);
        *self = Session {
            config: self.config,
            last_activity: now,
            last_input: now,
            ..Session::new(line_buffer)
        };
    }

    /// What this conversation has done so far.
    ///
    /// ```
    /// let mut line = [0u8; 8];
    /// assert_eq!(reversal_core::Session::new(&mut line).stats().bytes_in, 0);
    /// ```
    pub const fn stats(&self) -> SessionStats {
        self.stats
    }

    /// `Some` once the session has nothing more to say: close the connection
    /// after the replies already produced have been sent.
    ///
    /// ```
    /// let mut line = [0u8; 8];
    /// assert_eq!(reversal_core::Session::new(&mut line).finished(), None);
    /// ```
    pub const fn finished(&self) -> Option<Finish> {
        match self.state {
            State::Open => None,
            State::Finished(finish) => Some(finish),
        }
    }

    /// Consumes `input` as far as its replies fit into `output`.
    ///
    /// Bytes of an unfinished line are kept in the line buffer (they need no
    /// output yet); a line terminator is consumed only together with its
    /// whole reply. Unconsumed input must be offered again later.
    ///
    /// ```
    /// use reversal_core::Session;
    /// use smoltcp::time::Instant;
    ///
    /// let mut line = [0u8; 64];
    /// let mut session = Session::new(&mut line);
    /// let mut small = [0u8; 4];
    /// // "abcd\n" needs 5 bytes of output: the LF stays unread.
    /// let p = session.receive(Instant::ZERO, b"abcd\n", &mut small);
    /// assert_eq!((p.consumed, p.produced), (4, 0));
    /// let mut out = [0u8; 8];
    /// let p = session.receive(Instant::ZERO, b"\n", &mut out);
    /// assert_eq!(&out[..p.produced], b"dcba\n");
    /// ```
    pub fn receive(&mut self, now: Instant, input: &[u8], output: &mut [u8]) -> Progress {
        let mut progress = Progress::default();
        if self.state != State::Open {
            return progress;
        }
        while progress.consumed < input.len() {
            let rest = &input[progress.consumed..];
            if self.discarding {
                match find_lf(rest) {
                    Some(lf) => {
                        progress.consumed += lf + 1;
                        self.discarding = false;
                    }
                    None => progress.consumed = input.len(),
                }
                continue;
            }
            let lf = find_lf(rest);
            if let Some(lf) = lf
                && self.line.is_empty()
                && !self.pending_cr
                && self.emit_whole_line(&rest[..lf], output, &mut progress.produced)
            {
                progress.consumed += lf + 1;
                continue;
            }
            let chunk = &rest[..lf.unwrap_or(rest.len())];
            if !chunk.is_empty() {
                if self.absorb(chunk).is_err() {
                    if !self.emit_too_long(output, &mut progress.produced) {
                        break;
                    }
                    continue;
                }
                progress.consumed += chunk.len();
            }
            if lf.is_none() || !self.emit_line(output, &mut progress.produced, true) {
                break;
            }
            progress.consumed += 1;
        }
        if progress.consumed > 0 {
            self.last_input = now;
            self.flush_blocked = false;
            self.at_write_boundary = false;
        }
        self.account(now, progress);
        progress
    }

    /// The client's input has ended (FIN) and every byte of it was offered to
    /// [`receive`](Self::receive): answers an unterminated last line without
    /// a terminator, then the session is finished.
    ///
    /// If that reply does not fit, nothing happens: call again with more space.
    ///
    /// ```
    /// use reversal_core::Session;
    /// use smoltcp::time::Instant;
    ///
    /// let mut line = [0u8; 64];
    /// let mut session = Session::new(&mut line);
    /// let mut out = [0u8; 8];
    /// session.receive(Instant::ZERO, b"abc", &mut out);
    /// let p = session.end_of_input(Instant::ZERO, &mut out);
    /// assert_eq!(&out[..p.produced], b"cba");
    /// assert!(session.finished().is_some());
    /// ```
    pub fn end_of_input(&mut self, now: Instant, output: &mut [u8]) -> Progress {
        let mut progress = Progress::default();
        if self.state != State::Open {
            return progress;
        }
        if !self.answer_partial_line(output, &mut progress.produced) {
            return progress;
        }
        self.state = State::Finished(Finish::EndOfInput);
        self.account(now, progress);
        progress
    }

    /// Says whether the input consumed so far ends at a write boundary of
    /// the sender: its last byte is the last byte of one of the sender's
    /// writes, and nothing after it has arrived. Only a partial line that
    /// ends there is answered by the idle flush, so that a pause caused by
    /// a lost or late segment never splits a line.
    ///
    /// The session cannot see TCP segments: the caller can. The server
    /// says so when the readable data ends where a segment with PSH ended
    /// (its ingress records those). Consuming more input clears it: say it
    /// again after [`receive`](Self::receive), before [`poll`](Self::poll).
    /// A caller that knows nothing of write boundaries and wants a partial
    /// line answered after any pause says `true` every time.
    ///
    /// ```
    /// use reversal_core::{Session, SessionConfig};
    /// use smoltcp::time::{Duration, Instant};
    ///
    /// let config = SessionConfig::new(64).with_idle_flush(Some(Duration::from_millis(50)));
    /// let mut line = [0u8; 64];
    /// let mut session = Session::with_config(config, &mut line).unwrap();
    /// let mut out = [0u8; 8];
    /// session.receive(Instant::ZERO, b"hi", &mut out);
    /// // A pause that is not at a write boundary answers nothing.
    /// assert!(session.poll(Instant::from_secs(5), &mut out).is_empty());
    /// session.set_at_write_boundary(true);
    /// let p = session.poll(Instant::from_secs(5), &mut out);
    /// assert_eq!(&out[..p.produced], b"ih");
    /// ```
    pub fn set_at_write_boundary(&mut self, at_boundary: bool) {
        self.at_write_boundary = at_boundary;
    }

    /// Runs the timers: idle flush of a partial line that ends at a write
    /// boundary ([`set_at_write_boundary`](Self::set_at_write_boundary)) and
    /// the idle timeout.
    ///
    /// Call it whenever [`deadline`](Self::deadline) has passed (calling it
    /// more often is harmless).
    ///
    /// ```
    /// use reversal_core::{Session, SessionConfig};
    /// use smoltcp::time::{Duration, Instant};
    ///
    /// let config = SessionConfig::new(64).with_idle_flush(Some(Duration::from_millis(50)));
    /// let mut line = [0u8; 64];
    /// let mut session = Session::with_config(config, &mut line).unwrap();
    /// let mut out = [0u8; 8];
    /// session.receive(Instant::ZERO, b"hi", &mut out);
    /// session.set_at_write_boundary(true);
    /// assert!(session.poll(Instant::from_millis(49), &mut out).is_empty());
    /// let p = session.poll(Instant::from_millis(50), &mut out);
    /// assert_eq!(&out[..p.produced], b"ih");
    /// ```
    pub fn poll(&mut self, now: Instant, output: &mut [u8]) -> Progress {
        let mut progress = Progress::default();
        if self.state != State::Open {
            return progress;
        }
        if let Some(at) = self.flush_due()
            && now >= at
        {
            if self.discarding {
                // The pause ends the too-long message that was being dropped.
                self.discarding = false;
            } else {
                self.flush_blocked = !self.answer_partial_line(output, &mut progress.produced);
            }
        }
        self.account(now, progress);
        if let Some(timeout) = self.config.idle_timeout
            && now >= self.last_activity + timeout
        {
            // A client that has not moved a byte for the whole timeout is not
            // reading either: if the error does not fit, it is not sent.
            let reply = ErrorReply::IdleTimeout { after: timeout };
            let terminator = self.error_terminator();
            if let Some(n) = reply.write(terminator, &mut output[progress.produced..]) {
                progress.produced += n;
                self.stats.bytes_out += n as u64;
            }
            self.stats.idle_timeouts += 1;
            self.state = State::Finished(Finish::IdleTimeout);
        }
        progress
    }

    /// Bytes moved outside the session (for example the peer acknowledged
    /// replies): the idle timeout starts again from `now`.
    ///
    /// ```
    /// use reversal_core::Session;
    /// use smoltcp::time::Instant;
    ///
    /// let mut line = [0u8; 8];
    /// let mut session = Session::new(&mut line);
    /// session.note_activity(Instant::from_secs(100));
    /// assert_eq!(session.deadline(), Some(Instant::from_secs(220)));
    /// ```
    pub fn note_activity(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// When [`poll`](Self::poll) next has work to do, if ever.
    ///
    /// A timer reply that is due but waits for output space is not a
    /// deadline: more space comes from the transport, not from time.
    ///
    /// ```
    /// use reversal_core::Session;
    /// use smoltcp::time::Instant;
    ///
    /// let mut line = [0u8; 8];
    /// let session = Session::new(&mut line);
    /// assert_eq!(session.deadline(), Some(Instant::from_secs(120)));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        if self.state != State::Open {
            return None;
        }
        let flush = self.flush_due().filter(|_| !self.flush_blocked);
        let timeout = self.config.idle_timeout.map(|t| self.last_activity + t);
        match (flush, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the idle flush of the partial line is due, if it ever is.
    fn flush_due(&self) -> Option<Instant> {
        let flush = self.config.idle_flush?;
        (self.at_write_boundary && self.has_partial_line()).then(|| self.last_input + flush)
    }

    fn has_partial_line(&self) -> bool {
        !self.line.is_empty() || self.pending_cr || self.discarding
    }

    fn account(&mut self, now: Instant, progress: Progress) {
        if !progress.is_empty() {
            self.last_activity = now;
        }
        self.stats.bytes_in += progress.consumed as u64;
        self.stats.bytes_out += progress.produced as u64;
    }

    /// Adds line content that contains no LF; a trailing CR is held back.
    fn absorb(&mut self, chunk: &[u8]) -> Result<(), TooLong> {
        let (body, trailing_cr) = match chunk.split_last() {
            Some((b'\r', body)) => (body, true),
            _ => (chunk, false),
        };
        let held_cr = usize::from(self.pending_cr);
        if self.line.len() + held_cr + body.len() > self.config.max_line {
            return Err(TooLong);
        }
        if self.pending_cr {
            self.line.extend_from_slice(b"\r")?;
        }
        self.line.extend_from_slice(body)?;
        self.pending_cr = trailing_cr;
        Ok(())
    }

    fn error_terminator(&self) -> &'static [u8] {
        if self.last_crlf { b"\r\n" } else { b"\n" }
    }

    /// Writes `reply` at `output[*produced..]` if it fits.
    fn emit_error(
        &mut self,
        reply: ErrorReply,
        terminator: &[u8],
        output: &mut [u8],
        produced: &mut usize,
    ) -> bool {
        let Some(n) = reply.write(terminator, &mut output[*produced..]) else {
            return false;
        };
        *produced += n;
        self.stats.lines += 1;
        match reply {
            ErrorReply::TooLong { .. } => self.stats.too_long += 1,
            ErrorReply::Utf8 { .. } => self.stats.utf8 += 1,
            ErrorReply::Busy | ErrorReply::IdleTimeout { .. } => {}
        }
        self.line.clear();
        self.pending_cr = false;
        true
    }

    /// `ERR too-long`, then drop the rest of the line through its LF.
    fn emit_too_long(&mut self, output: &mut [u8], produced: &mut usize) -> bool {
        let reply = ErrorReply::TooLong {
            max_line: self.config.max_line,
        };
        let terminator = self.error_terminator();
        if !self.emit_error(reply, terminator, output, produced) {
            return false;
        }
        self.discarding = true;
        true
    }

    /// Answers the partial line as an unterminated message, if there is one.
    /// Returns false only when the answer is owed but does not fit.
    fn answer_partial_line(&mut self, output: &mut [u8], produced: &mut usize) -> bool {
        if self.discarding {
            self.discarding = false;
            return true;
        }
        if self.line.is_empty() && !self.pending_cr {
            return true;
        }
        if self.pending_cr {
            // No LF came: the CR is content.
            if self.line.len() + 1 > self.config.max_line {
                // The message ends here, so there is nothing left to discard.
                let sent = self.emit_too_long(output, produced);
                self.discarding = false;
                return sent;
            }
            self.pending_cr = false;
            // Cannot fail: the length was checked against max_line, which
            // the line buffer holds.
            let _ = self.line.extend_from_slice(b"\r");
        }
        self.emit_line(output, produced, false)
    }

    /// Answers the buffered line; `terminated` says whether an LF ended it.
    // Once per line on the hot path: out of line it cost about 40 more
    // instructions per short line (cachegrind; see BENCHMARKS.md).
    #[inline(always)]
    fn emit_line(&mut self, output: &mut [u8], produced: &mut usize, terminated: bool) -> bool {
        let terminator: &'static [u8] = match (terminated, self.pending_cr) {
            (false, _) => b"",
            (true, true) => b"\r\n",
            (true, false) => b"\n",
        };
        let answer = answer_line(
            self.config.mode,
            self.line.as_slice(),
            terminator,
            &mut output[*produced..],
        );
        self.take_answer(answer, terminator, terminated, output, produced)
    }

    /// Answers a whole line of the input (up to, without, its LF) straight
    /// from the input, while nothing of an earlier line is held: the common
    /// case of bulk traffic skips the copy into the line buffer. False, with
    /// nothing changed, when the line is too long or its answer does not fit:
    /// the caller then takes the line byte by byte, as any other.
    #[inline(always)]
    fn emit_whole_line(&mut self, line: &[u8], output: &mut [u8], produced: &mut usize) -> bool {
        let (body, terminator): (&[u8], &'static [u8]) = match line.split_last() {
            Some((b'\r', body)) => (body, b"\r\n"),
            _ => (line, b"\n"),
        };
        if body.len() > self.config.max_line {
            return false;
        }
        let answer = answer_line(self.config.mode, body, terminator, &mut output[*produced..]);
        self.take_answer(answer, terminator, true, output, produced)
    }

    /// Accounts for the answer to a line ended by `terminator` (empty: not
    /// ended), written at `output[*produced..]`, or writes the error reply
    /// it calls for. False if nothing could be written: the line stays.
    #[inline(always)]
    fn take_answer(
        &mut self,
        answer: LineAnswer,
        terminator: &'static [u8],
        terminated: bool,
        output: &mut [u8],
        produced: &mut usize,
    ) -> bool {
        let written = match answer {
            LineAnswer::Reversed(n) => {
                *produced += n;
                self.stats.lines += 1;
                self.line.clear();
                self.pending_cr = false;
                true
            }
            LineAnswer::InvalidUtf8 { offset } => {
                let terminator = if terminated {
                    terminator
                } else {
                    self.error_terminator()
                };
                self.emit_error(ErrorReply::Utf8 { offset }, terminator, output, produced)
            }
            LineAnswer::NoRoom => false,
        };
        if written && terminated {
            self.last_crlf = terminator.len() == 2;
        }
        written
    }
}

/// How a line is answered.
enum LineAnswer {
    /// Its reversal and terminator: this many bytes.
    Reversed(usize),
    /// It is not UTF-8; the error reply is still to be written.
    InvalidUtf8 { offset: usize },
    /// Neither its reversal nor an error reply fits.
    NoRoom,
}

/// Writes the reversal of `line` and then `terminator` at the front of
/// `out`, if they fit; finds an invalid line, whose (shorter) error reply
/// may fit where the reversal does not.
#[inline]
fn answer_line(mode: Mode, line: &[u8], terminator: &[u8], out: &mut [u8]) -> LineAnswer {
    let needed = line.len() + terminator.len();
    let result = if out.len() >= needed {
        reverse(mode, line, out)
    } else if mode.requires_utf8() {
        match validate_utf8(line) {
            Ok(_) => return LineAnswer::NoRoom,
            Err(offset) => Err(ReverseError::InvalidUtf8 { offset }),
        }
    } else {
        return LineAnswer::NoRoom;
    };
    match result {
        Ok(n) => {
            out[n..needed].copy_from_slice(terminator);
            LineAnswer::Reversed(needed)
        }
        Err(ReverseError::InvalidUtf8 { offset }) => LineAnswer::InvalidUtf8 { offset },
        Err(ReverseError::OutputTooSmall { .. }) => LineAnswer::NoRoom,
    }
}

/// Index of the first LF in `bytes`, eight bytes at a time: the search for
/// line ends is the hottest loop of bulk traffic.
fn find_lf(bytes: &[u8]) -> Option<usize> {
    const LF: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut start = 0;
    for chunk in bytes.chunks_exact(8) {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        let zero_where_lf = word ^ LF;
        // Classic "has a zero byte" test: no false negatives.
        if zero_where_lf.wrapping_sub(ONES) & !zero_where_lf & HIGH != 0 {
            break;
        }
        start += 8;
    }
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i)
}

#[cfg(all(test, feature = "graphemes"))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const T0: Instant = Instant::ZERO;

    /// A line buffer of 64 bytes that lives as long as the test.
    fn line_buffer() -> &'static mut [u8] {
        Box::leak(Box::new([0u8; 64]))
    }

    fn session(config: SessionConfig) -> Session<'static> {
        Session::with_config(config, line_buffer()).unwrap()
    }

    /// Feeds all of `input` with plenty of output space; returns the replies.
    fn replies(session: &mut Session<'_>, input: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 4096];
        let p = session.receive(T0, input, &mut out);
        assert_eq!(
            p.consumed,
            input.len(),
            "all input consumed with ample output"
        );
        out[..p.produced].to_vec()
    }

    fn one(input: &[u8]) -> Vec<u8> {
        replies(&mut session(SessionConfig::new(64)), input)
    }

    #[test]
    fn lines_are_answered_in_order_with_lf() {
        assert_eq!(one(b"abc\nxy\n"), b"cba\nyx\n");
    }

    #[test]
    fn crlf_terminator_is_kept() {
        assert_eq!(one(b"abc\r\nxy\n"), b"cba\r\nyx\n");
    }

    #[test]
    fn empty_lines_get_a_bare_terminator() {
        assert_eq!(one(b"\n\r\n"), b"\n\r\n");
    }

    #[test]
    fn lone_cr_inside_a_line_is_content() {
        assert_eq!(one(b"a\rb\n"), b"b\ra\n");
    }

    #[test]
    fn cr_split_from_its_lf_across_calls_is_still_a_terminator() {
        let mut s = session(SessionConfig::new(64));
        assert_eq!(replies(&mut s, b"ab\r"), b"");
        assert_eq!(replies(&mut s, b"\n"), b"ba\r\n");
    }

    #[test]
    fn graphemes_stay_whole_by_default() {
        assert_eq!(one("👍🏽각🇰🇷\n".as_bytes()), "🇰🇷각👍🏽\n".as_bytes());
    }

    #[test]
    fn chars_mode_reverses_scalar_values() {
        let mut s = session(SessionConfig {
            mode: Mode::Chars,
            ..SessionConfig::new(64)
        });
        assert_eq!(
            replies(&mut s, "e\u{301}\n".as_bytes()),
            "\u{301}e\n".as_bytes()
        );
    }

    #[test]
    fn bytes_mode_accepts_any_bytes() {
        let mut s = session(SessionConfig {
            mode: Mode::Bytes,
            ..SessionConfig::new(64)
        });
        assert_eq!(replies(&mut s, b"\xff\x00\n"), b"\x00\xff\n");
    }

    #[test]
    fn line_of_exactly_max_length_is_answered() {
        let mut s = session(SessionConfig::new(4));
        assert_eq!(replies(&mut s, b"abcd\r\n"), b"dcba\r\n");
    }

    #[test]
    fn whole_lines_are_answered_without_the_line_buffer_and_split_ones_with_it() {
        let buffer: &'static mut [u8] = Box::leak(Box::new([0xaa_u8; 64]));
        let untouched = |s: &Session<'_>| s.line.bytes.iter().all(|&b| b == 0xaa);
        let mut s = Session::with_config(SessionConfig::new(64), buffer).unwrap();
        assert_eq!(
            replies(&mut s, b"abc\r\nde\xffx\n\n"),
            b"cba\r\nERR utf8 invalid UTF-8 at byte 2\n\n"
        );
        assert!(untouched(&s), "a whole line went through the line buffer");
        assert_eq!(replies(&mut s, b"split"), b"");
        assert_eq!(replies(&mut s, b" line\n"), b"enil tilps\n");
        assert!(!untouched(&s));
    }

    #[test]
    fn a_whole_line_whose_reply_does_not_fit_is_held_as_before() {
        let mut s = session(SessionConfig::new(64));
        let mut small = [0u8; 3];
        let p = s.receive(T0, b"abcd\r\nxy\n", &mut small);
        // The line is taken into the line buffer, its CR held, the LF left.
        assert_eq!((p.consumed, p.produced), (5, 0));
        assert_eq!(replies(&mut s, b"\nxy\n"), b"dcba\r\nyx\n");
    }

    #[test]
    fn too_long_line_gets_one_error_and_the_next_line_is_answered() {
        let mut s = session(SessionConfig::new(4));
        let out = replies(&mut s, b"abcdefghij\nok\n");
        assert_eq!(out, b"ERR too-long line longer than 4 bytes\nko\n");
        assert_eq!(s.stats().too_long, 1);
    }

    #[test]
    fn too_long_discards_through_lf_across_many_calls() {
        let mut s = session(SessionConfig::new(4));
        assert!(replies(&mut s, b"abcdef").starts_with(b"ERR too-long"));
        assert_eq!(replies(&mut s, b"ghijkl"), b"");
        assert_eq!(replies(&mut s, b"mn\nxy\n"), b"yx\n");
    }

    #[test]
    fn error_lines_use_crlf_once_the_client_does() {
        let mut s = session(SessionConfig::new(4));
        let out = replies(&mut s, b"a\r\nabcdefg\n");
        assert_eq!(out, b"a\r\nERR too-long line longer than 4 bytes\r\n");
    }

    #[test]
    fn invalid_utf8_line_gets_error_with_offset_and_session_goes_on() {
        let out = one(b"ab\xffc\r\nok\n");
        assert_eq!(out, b"ERR utf8 invalid UTF-8 at byte 2\r\nko\n");
    }

    #[test]
    fn end_of_input_answers_unterminated_last_line_without_terminator() {
        let mut s = session(SessionConfig::new(64));
        assert_eq!(replies(&mut s, b"one\ntwo"), b"eno\n");
        let mut out = [0u8; 16];
        let p = s.end_of_input(T0, &mut out);
        assert_eq!(&out[..p.produced], b"owt");
        assert_eq!(s.finished(), Some(Finish::EndOfInput));
    }

    #[test]
    fn end_of_input_keeps_a_trailing_cr_as_content() {
        let mut s = session(SessionConfig::new(64));
        replies(&mut s, b"ab\r");
        let mut out = [0u8; 16];
        let p = s.end_of_input(T0, &mut out);
        assert_eq!(&out[..p.produced], b"\rba");
    }

    #[test]
    fn end_of_input_waits_for_space_for_the_last_reply() {
        let mut s = session(SessionConfig::new(64));
        replies(&mut s, b"abcdef");
        let mut small = [0u8; 3];
        assert!(s.end_of_input(T0, &mut small).is_empty());
        assert_eq!(s.finished(), None);
        let mut out = [0u8; 8];
        assert_eq!(s.end_of_input(T0, &mut out).produced, 6);
    }

    #[test]
    fn input_after_the_end_is_not_consumed() {
        let mut s = session(SessionConfig::new(64));
        let mut out = [0u8; 16];
        s.end_of_input(T0, &mut out);
        assert!(s.receive(T0, b"late\n", &mut out).is_empty());
    }

    #[test]
    fn reply_that_does_not_fit_leaves_its_terminator_unread() {
        let mut s = session(SessionConfig::new(64));
        let mut out = [0u8; 8];
        let p = s.receive(T0, b"abc\ndefgh\nij\n", &mut out);
        // "cba\n" fits, "hgfed\n" (6) does not fit in the remaining 4.
        assert_eq!((p.consumed, p.produced), (9, 4));
        assert_eq!(&out[..4], b"cba\n");
    }

    #[test]
    fn no_output_space_means_no_line_is_completed() {
        let mut s = session(SessionConfig::new(64));
        let p = s.receive(T0, b"a\nb\n", &mut []);
        assert_eq!(
            p,
            Progress {
                consumed: 1,
                produced: 0
            }
        );
    }

    #[test]
    fn idle_flush_answers_a_partial_line_at_a_write_boundary_after_the_pause() {
        let flush = Duration::from_millis(50);
        let mut s = session(SessionConfig::new(64).with_idle_flush(Some(flush)));
        let mut out = [0u8; 16];
        s.receive(T0, b"hello", &mut out);
        s.set_at_write_boundary(true);
        assert_eq!(s.deadline(), Some(T0 + flush));
        assert!(s.poll(Instant::from_millis(49), &mut out).is_empty());
        let p = s.poll(Instant::from_millis(50), &mut out);
        assert_eq!(&out[..p.produced], b"olleh");
        // Nothing partial is left, so only the idle timeout remains.
        assert_eq!(
            s.deadline(),
            Some(Instant::from_millis(50) + DEFAULT_IDLE_TIMEOUT)
        );
    }

    #[test]
    fn a_partial_line_not_at_a_write_boundary_waits_however_long() {
        let mut s = session(SessionConfig::new(64));
        assert_eq!(s.config().idle_flush, Some(DEFAULT_IDLE_FLUSH));
        let mut out = [0u8; 16];
        s.receive(T0, b"hello", &mut out);
        assert_eq!(s.deadline(), Some(T0 + DEFAULT_IDLE_TIMEOUT));
        assert!(s.poll(Instant::from_secs(60), &mut out).is_empty());
    }

    #[test]
    fn more_input_clears_the_write_boundary() {
        let mut s = session(SessionConfig::new(64));
        let mut out = [0u8; 16];
        s.receive(T0, b"hel", &mut out);
        s.set_at_write_boundary(true);
        s.receive(Instant::from_millis(10), b"lo", &mut out);
        // "lo" arrived without the caller saying its write ended there.
        assert!(s.poll(Instant::from_secs(60), &mut out).is_empty());
        s.set_at_write_boundary(true);
        let p = s.poll(Instant::from_secs(60), &mut out);
        assert_eq!(&out[..p.produced], b"olleh");
    }

    #[test]
    fn without_idle_flush_a_write_boundary_answers_nothing() {
        let mut s = session(SessionConfig::new(64).with_idle_flush(None));
        let mut out = [0u8; 16];
        s.receive(T0, b"hello", &mut out);
        s.set_at_write_boundary(true);
        assert!(s.poll(Instant::from_secs(60), &mut out).is_empty());
    }

    #[test]
    fn a_pause_at_a_write_boundary_ends_a_too_long_line_being_dropped() {
        let mut s = session(SessionConfig::new(4));
        let mut out = [0u8; 64];
        let p = s.receive(T0, b"abcdefgh", &mut out);
        assert!(out[..p.produced].starts_with(b"ERR too-long"));
        s.set_at_write_boundary(true);
        assert!(s.poll(T0 + DEFAULT_IDLE_FLUSH, &mut out).is_empty());
        // The next write is a message of its own.
        assert_eq!(replies(&mut s, b"xy\n"), b"yx\n");
    }

    #[test]
    fn idle_flush_waiting_for_space_is_not_a_deadline() {
        let flush = Duration::from_millis(50);
        let config = SessionConfig {
            idle_flush: Some(flush),
            idle_timeout: None,
            ..SessionConfig::new(64)
        };
        let mut s = session(config);
        let mut out = [0u8; 16];
        s.receive(T0, b"hello", &mut out);
        s.set_at_write_boundary(true);
        assert!(s.poll(Instant::from_millis(60), &mut out[..2]).is_empty());
        assert_eq!(
            s.deadline(),
            None,
            "a due flush must not make the caller spin"
        );
        let p = s.poll(Instant::from_millis(70), &mut out);
        assert_eq!(&out[..p.produced], b"olleh");
    }

    #[test]
    fn idle_timeout_sends_error_and_finishes() {
        let mut s = session(SessionConfig::new(64));
        let mut out = [0u8; 64];
        s.receive(T0, b"x\n", &mut out);
        let at = T0 + DEFAULT_IDLE_TIMEOUT;
        assert!(s.poll(at - Duration::from_millis(1), &mut out).is_empty());
        let p = s.poll(at, &mut out);
        assert_eq!(
            &out[..p.produced],
            b"ERR idle-timeout no data for 120s, closing\n"
        );
        assert_eq!(s.finished(), Some(Finish::IdleTimeout));
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn idle_timeout_finishes_even_without_room_for_the_error() {
        let mut s = session(SessionConfig::new(64));
        let p = s.poll(T0 + DEFAULT_IDLE_TIMEOUT, &mut []);
        assert!(p.is_empty());
        assert_eq!(s.finished(), Some(Finish::IdleTimeout));
    }

    #[test]
    fn activity_in_either_direction_restarts_the_idle_timeout() {
        let mut s = session(SessionConfig::new(64));
        let mut out = [0u8; 64];
        s.receive(Instant::from_secs(100), b"x", &mut out);
        assert_eq!(s.deadline(), Some(Instant::from_secs(220)));
        s.note_activity(Instant::from_secs(200));
        assert_eq!(s.deadline(), Some(Instant::from_secs(320)));
    }

    #[test]
    fn config_larger_than_the_line_buffer_is_refused() {
        assert_eq!(
            Session::with_config(SessionConfig::new(65), line_buffer()).err(),
            Some(ConfigError::MaxLine { capacity: 64 })
        );
        assert!(Session::with_config(SessionConfig::new(0), line_buffer()).is_err());
    }

    #[test]
    fn stats_count_lines_bytes_and_errors() {
        let mut s = session(SessionConfig::new(4));
        let out = replies(&mut s, b"ab\n\xff\nabcdefg\n");
        let stats = s.stats();
        assert_eq!((stats.lines, stats.utf8, stats.too_long), (3, 1, 1));
        assert_eq!(stats.bytes_in, 13);
        assert_eq!(stats.bytes_out, out.len() as u64);
    }

    proptest! {
        #[test]
        fn find_lf_agrees_with_a_plain_search(bytes in prop::collection::vec(prop::sample::select(vec![b'a', b'\n', 0x8a, 0x0b, 0x09]), 0..40)) {
            prop_assert_eq!(find_lf(&bytes), bytes.iter().position(|&b| b == b'\n'));
        }
    }

    /// Runs a whole conversation, `input` cut at `cuts`, with output offered in
    /// pieces of `window` bytes, and returns every reply byte.
    fn converse(config: SessionConfig, input: &[u8], cuts: &[usize], window: usize) -> Vec<u8> {
        let mut s = session(config);
        let mut replies = Vec::new();
        let mut out = vec![0u8; window];
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cut_points.push(input.len());
        cut_points.sort_unstable();
        for cut in cut_points {
            pending.extend_from_slice(&input[fed..cut.max(fed)]);
            fed = fed.max(cut);
            loop {
                let p = s.receive(T0, &pending, &mut out);
                replies.extend_from_slice(&out[..p.produced]);
                pending.drain(..p.consumed);
                assert!(p.produced <= window);
                if p.is_empty() {
                    break;
                }
            }
        }
        loop {
            let p = s.receive(T0, &pending, &mut out);
            replies.extend_from_slice(&out[..p.produced]);
            pending.drain(..p.consumed);
            if pending.is_empty() {
                break;
            }
        }
        while s.finished().is_none() {
            let p = s.end_of_input(T0, &mut out);
            replies.extend_from_slice(&out[..p.produced]);
        }
        replies
    }

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let pieces = prop::sample::select(vec![
            &b"a"[..],
            b"xyz",
            b"\n",
            b"\r",
            b"\r\n",
            b"\xff",
            b"\xc3",
            "각".as_bytes(),
            "👍🏽".as_bytes(),
            "e\u{301}".as_bytes(),
            b"0123456789",
        ]);
        prop::collection::vec(pieces, 0..80).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_chunking_gives_identical_replies(
            input in stream(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            mode in prop::sample::select(vec![Mode::Graphemes, Mode::Chars, Mode::Bytes]),
            max_line in 1usize..=64,
        ) {
            let config = SessionConfig { mode, ..SessionConfig::new(max_line) };
            let whole = converse(config, &input, &[], 4096);
            let window = config.max_reply_len();
            let chunked = converse(config, &input, &cuts, window);
            prop_assert_eq!(chunked, whole);
        }

        #[test]
        fn pauses_not_at_a_write_boundary_never_split_a_line(
            input in stream(),
            cuts in prop::collection::vec((any::<usize>(), 0u64..500), 0..12),
            flush_ms in 0u64..300,
        ) {
            // The pieces arrive with pauses longer and shorter than the
            // flush delay, as a lost segment makes them; nobody says a
            // write ended, so the replies are those of the whole input.
            let config = SessionConfig::new(64)
                .with_idle_flush(Some(Duration::from_millis(flush_ms)))
                .with_idle_timeout(None);
            let whole = converse(config, &input, &[], 4096);
            let mut s = session(config);
            let mut out = vec![0u8; 4096];
            let mut replies = Vec::new();
            let mut now = T0;
            let mut cut_points: Vec<(usize, u64)> =
                cuts.iter().map(|&(c, pause)| (c % (input.len() + 1), pause)).collect();
            cut_points.sort_unstable();
            cut_points.push((input.len(), 0));
            let mut fed = 0;
            for (cut, pause) in cut_points {
                let p = s.receive(now, &input[fed..cut.max(fed)], &mut out);
                prop_assert_eq!(p.consumed, cut.max(fed) - fed);
                replies.extend_from_slice(&out[..p.produced]);
                fed = fed.max(cut);
                now += Duration::from_millis(pause);
                let p = s.poll(now, &mut out);
                replies.extend_from_slice(&out[..p.produced]);
            }
            let p = s.end_of_input(now, &mut out);
            replies.extend_from_slice(&out[..p.produced]);
            prop_assert_eq!(replies, whole);
        }

        #[test]
        fn no_input_panics_or_outgrows_the_buffers(
            input in prop::collection::vec(any::<u8>(), 0..400),
            window in 0usize..100,
            flush_ms in prop::option::of(0u64..20),
            steps in prop::collection::vec((0u64..30, any::<bool>()), 1..20),
        ) {
            let config = SessionConfig {
                idle_flush: flush_ms.map(Duration::from_millis),
                idle_timeout: Some(Duration::from_millis(200)),
                ..SessionConfig::new(16)
            };
            let mut s = session(config);
            let mut out = vec![0u8; window];
            let mut now = T0;
            let mut offset = 0;
            for (step, at_boundary) in steps {
                now += Duration::from_millis(step);
                let p = s.receive(now, &input[offset..], &mut out);
                offset += p.consumed;
                s.set_at_write_boundary(at_boundary);
                prop_assert!(p.produced <= window);
                prop_assert!(s.poll(now, &mut out).produced <= window);
                prop_assert!(s.line.len() <= 16);
                prop_assert_eq!(s.line.capacity(), 64);
            }
            s.end_of_input(now, &mut out);
        }
    }
}
