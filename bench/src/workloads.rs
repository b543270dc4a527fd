//! The workloads, driven from the kernel's side with `std::net` clients on
//! threads. Every one is bounded: by bytes or connections, by a duration, and
//! by socket timeouts that turn a stalled server into an error.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use reversal_core::Mode;
use reversal_core::reverse::reverse;
use reversal_netns::process::{ProcessError, ServerProcess};

use crate::histogram::Histogram;

/// No byte moving for this long is a stalled server.
const IO_LIMIT: Duration = Duration::from_secs(10);
/// A connection not accepted within this is a failure.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// Lines of the request/response and churn workloads: 63 bytes and LF.
pub const SHORT_LINE: usize = 64;
/// Lines of the bulk workload: 1023 bytes and LF.
pub const BULK_LINE: usize = 1024;
/// Distinct lines in the repeated bulk block.
const BULK_BLOCK_LINES: usize = 64;
/// Client threads of the churn and RSS workloads.
pub const CHURN_THREADS: usize = 8;
/// How often a client retries after `ERR busy` while setting up.
const BUSY_RETRIES: usize = 50;

/// Why a workload failed.
#[derive(Debug)]
pub enum WorkloadError {
    /// A connection could not be opened.
    Connect {
        /// Where to.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Sending or receiving failed (a timeout means the server stalled).
    Io {
        /// What was being done.
        context: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A reply was not what the server should have sent.
    WrongReply {
        /// Where in the stream, in bytes.
        offset: u64,
        /// What was expected there (a short excerpt).
        expected: String,
        /// What came (a short excerpt).
        received: String,
    },
    /// All sessions stayed taken (`ERR busy`) while connecting.
    Busy,
    /// The server process failed.
    Server(ProcessError),
    /// A client thread panicked.
    ClientPanicked,
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadError::Connect { address, source } => {
                write!(f, "cannot connect to {address}: {source}")
            }
            WorkloadError::Io { context, source } => write!(f, "cannot {context}: {source}"),
            WorkloadError::WrongReply {
                offset,
                expected,
                received,
            } => write!(
                f,
                "wrong reply at byte {offset}: expected {expected:?}, received {received:?}"
            ),
            WorkloadError::Busy => f.write_str("the server kept answering ERR busy"),
            WorkloadError::Server(error) => error.fmt(f),
            WorkloadError::ClientPanicked => f.write_str("a client thread panicked"),
        }
    }
}

impl std::error::Error for WorkloadError {}

impl From<ProcessError> for WorkloadError {
    fn from(error: ProcessError) -> Self {
        WorkloadError::Server(error)
    }
}

pub(crate) fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> WorkloadError {
    move |source| WorkloadError::Io { context, source }
}

/// What a server answers to a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Its grapheme reversal (`host-tap` and the kernel baseline).
    Reversed,
    /// The line itself (`tap-echo`).
    Echoed,
}

impl Expect {
    /// The reply to `line`, which ends with LF.
    pub fn reply(self, line: &[u8]) -> Vec<u8> {
        match self {
            Expect::Echoed => line.to_vec(),
            Expect::Reversed => {
                let text = &line[..line.len() - 1];
                let mut reply = vec![0; line.len()];
                // Cannot fail: the text is UTF-8 and the output its length.
                let n = reverse(Mode::Graphemes, text, &mut reply).unwrap_or(0);
                reply[n] = b'\n';
                reply
            }
        }
    }
}

/// A `len`-byte line (LF included) of words, numbered by `seed`; with
/// `unicode`, about one word in four is a multi-byte grapheme (accents,
/// Hangul, Cyrillic, emoji with skin tone, flags).
pub fn line(seed: u64, len: usize, unicode: bool) -> Vec<u8> {
    const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!? ";
    const GRAPHEMES: &[&str] = &["é", "e\u{301}", "각", "ж", "👍🏽", "🇰🇷", "ß", "ñ"];
    let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        // xorshift64*: plenty for varied text.
        random ^= random >> 12;
        random ^= random << 25;
        random ^= random >> 27;
        random.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let text_len = len - 1;
    let mut text = Vec::with_capacity(len);
    while text.len() < text_len {
        let roll = next();
        let grapheme = GRAPHEMES[(roll >> 8) as usize % GRAPHEMES.len()].as_bytes();
        if unicode && roll % 4 == 0 && text.len() + grapheme.len() <= text_len {
            text.extend_from_slice(grapheme);
        } else {
            text.push(ASCII[(roll >> 32) as usize % ASCII.len()]);
        }
    }
    text.push(b'\n');
    text
}

/// Requests and their replies, repeated to make a long stream.
#[derive(Debug, Clone)]
pub struct Stream {
    requests: Vec<u8>,
    replies: Vec<u8>,
}

impl Stream {
    /// `lines` lines of `line_len` bytes each, LF included.
    pub fn new(lines: usize, line_len: usize, unicode: bool, expect: Expect) -> Stream {
        let mut stream = Stream {
            requests: Vec::with_capacity(lines * line_len),
            replies: Vec::with_capacity(lines * line_len),
        };
        for seed in 0..lines as u64 {
            let request = line(seed, line_len, unicode);
            stream.replies.extend(expect.reply(&request));
            stream.requests.extend(request);
        }
        stream
    }

    /// The bulk stream: 64 different 1 KiB lines.
    pub fn bulk(unicode: bool, expect: Expect) -> Stream {
        Stream::new(BULK_BLOCK_LINES, BULK_LINE, unicode, expect)
    }

    /// Checks that `received`, which starts `offset` bytes into the reply
    /// stream, is what the server should send there.
    pub fn check(&self, offset: u64, received: &[u8]) -> Result<(), WorkloadError> {
        let block = self.replies.len();
        let mut checked = 0;
        while checked < received.len() {
            let at = ((offset + checked as u64) % block as u64) as usize;
            let len = (block - at).min(received.len() - checked);
            let expected = &self.replies[at..at + len];
            let got = &received[checked..checked + len];
            if let Some(i) = expected.iter().zip(got).position(|(a, b)| a != b) {
                let excerpt = |bytes: &[u8]| {
                    String::from_utf8_lossy(&bytes[i.saturating_sub(8)..(i + 24).min(len)])
                        .into_owned()
                };
                return Err(WorkloadError::WrongReply {
                    offset: offset + (checked + i) as u64,
                    expected: excerpt(expected),
                    received: excerpt(got),
                });
            }
            checked += len;
        }
        Ok(())
    }
}

pub(crate) fn connect(address: SocketAddr) -> Result<TcpStream, WorkloadError> {
    let stream = TcpStream::connect_timeout(&address, CONNECT_LIMIT)
        .map_err(|source| WorkloadError::Connect { address, source })?;
    stream
        .set_nodelay(true)
        .map_err(io_error("set TCP_NODELAY"))?;
    stream
        .set_read_timeout(Some(IO_LIMIT))
        .map_err(io_error("set a read timeout"))?;
    stream
        .set_write_timeout(Some(IO_LIMIT))
        .map_err(io_error("set a write timeout"))?;
    Ok(stream)
}

/// Sends `request` and reads one line back.
fn round_trip(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    request: &[u8],
    reply: &mut Vec<u8>,
) -> Result<(), WorkloadError> {
    stream.write_all(request).map_err(io_error("send a line"))?;
    reply.clear();
    reader
        .read_until(b'\n', reply)
        .map_err(io_error("read a reply"))?;
    Ok(())
}

pub(crate) fn is_busy(reply: &[u8]) -> bool {
    reply.starts_with(b"ERR busy")
}

fn expect_reply(expected: &[u8], received: &[u8]) -> Result<(), WorkloadError> {
    if expected == received {
        return Ok(());
    }
    Err(WorkloadError::WrongReply {
        offset: 0,
        expected: String::from_utf8_lossy(expected).into_owned(),
        received: String::from_utf8_lossy(received).into_owned(),
    })
}

/// A connection that got a session: its first line was answered, not
/// refused with `ERR busy`.
pub(crate) struct Session {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
    reply: Vec<u8>,
    expected: Vec<u8>,
}

impl Session {
    pub(crate) fn open(
        address: SocketAddr,
        request: Vec<u8>,
        expect: Expect,
    ) -> Result<Session, WorkloadError> {
        let expected = expect.reply(&request);
        for _ in 0..BUSY_RETRIES {
            let mut stream = connect(address)?;
            let mut reader =
                BufReader::new(stream.try_clone().map_err(io_error("clone a socket"))?);
            let mut reply = Vec::new();
            round_trip(&mut stream, &mut reader, &request, &mut reply)?;
            if is_busy(&reply) {
                // A slot of an earlier run is still closing; it frees soon.
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            expect_reply(&expected, &reply)?;
            return Ok(Session {
                stream,
                reader,
                request,
                reply,
                expected,
            });
        }
        Err(WorkloadError::Busy)
    }

    pub(crate) fn round_trip(&mut self) -> Result<(), WorkloadError> {
        round_trip(
            &mut self.stream,
            &mut self.reader,
            &self.request,
            &mut self.reply,
        )?;
        expect_reply(&self.expected, &self.reply)
    }
}

/// Opens a connection, checks the answer to one line and closes it.
///
/// # Errors
///
/// As for a session of [`request_response`].
pub fn probe(address: SocketAddr, expect: Expect) -> Result<(), WorkloadError> {
    Session::open(address, line(u64::MAX, SHORT_LINE, false), expect).map(drop)
}

pub(crate) fn join<T>(
    handles: Vec<thread::JoinHandle<Result<T, WorkloadError>>>,
) -> Result<Vec<T>, WorkloadError> {
    let mut results = Vec::with_capacity(handles.len());
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(result)) => results.push(result),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(_) => {
                first_error.get_or_insert(WorkloadError::ClientPanicked);
            }
        }
    }
    first_error.map_or(Ok(results), Err)
}

/// Throughput of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    /// Reply bytes received (as many as were sent).
    pub bytes: u64,
    /// From the first byte sent to the last reply byte received.
    pub elapsed: Duration,
}

impl Bulk {
    /// MiB per second through the server (each direction).
    pub fn mib_per_second(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64()
    }
}

/// (a) Streams `total` bytes of lines through one connection, a writer
/// thread sending while this thread reads and checks every reply byte.
///
/// # Errors
///
/// Connecting, sending or receiving failed, or a reply byte was wrong.
pub fn bulk(address: SocketAddr, total: u64, stream: &Stream) -> Result<Bulk, WorkloadError> {
    let block = stream.requests.len() as u64;
    let total = total.div_ceil(block) * block;
    let mut reader = connect(address)?;
    let mut writer = reader.try_clone().map_err(io_error("clone a socket"))?;
    let requests = stream.requests.clone();
    let started = Instant::now();
    let sender = thread::spawn(move || -> Result<(), WorkloadError> {
        for _ in 0..total / block {
            writer
                .write_all(&requests)
                .map_err(io_error("send bulk lines"))?;
        }
        writer
            .shutdown(Shutdown::Write)
            .map_err(io_error("half-close after the bulk lines"))
    });
    let mut buffer = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    let reading = (|| {
        while received < total {
            let n = reader
                .read(&mut buffer)
                .map_err(io_error("read bulk replies"))?;
            if n == 0 {
                return Err(WorkloadError::Io {
                    context: "read bulk replies",
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("closed after {received} of {total} bytes"),
                    ),
                });
            }
            stream.check(received, &buffer[..n])?;
            received += n as u64;
        }
        Ok(())
    })();
    let elapsed = started.elapsed();
    if reading.is_err() {
        // Unblocks the sender if it is stuck on a full window.
        let _ = reader.shutdown(Shutdown::Both);
    }
    let sent = join(vec![sender]);
    reading?;
    sent?;
    Ok(Bulk {
        bytes: received,
        elapsed,
    })
}

/// Lines answered by many clients that each wait for every reply.
#[derive(Debug, Clone)]
pub struct RequestResponse {
    /// Lines answered.
    pub lines: u64,
    /// From the common start until the last client finished.
    pub elapsed: Duration,
    /// Time from sending a line to having its whole reply.
    pub latency: Histogram,
}

impl RequestResponse {
    /// Lines answered per second, all clients together.
    pub fn lines_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64()
    }
}

/// (b) `clients` connections, each sending one line and waiting for its
/// reply, again and again for `duration`.
///
/// # Errors
///
/// A client could not connect or get a session, or a reply was wrong or late.
pub fn request_response(
    address: SocketAddr,
    clients: usize,
    duration: Duration,
    unicode: bool,
    expect: Expect,
) -> Result<RequestResponse, WorkloadError> {
    // Everyone connects first; the clock starts when all are ready.
    let ready = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let ready = Arc::clone(&ready);
            thread::spawn(move || -> Result<(u64, Histogram), WorkloadError> {
                let session =
                    Session::open(address, line(client as u64, SHORT_LINE, unicode), expect);
                ready.wait();
                let mut session = session?;
                let deadline = Instant::now() + duration;
                let mut latency = Histogram::new();
                let mut lines = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    session.round_trip()?;
                    latency.record(sent.elapsed());
                    lines += 1;
                }
                Ok((lines, latency))
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let results = join(handles)?;
    let elapsed = started.elapsed();
    let mut total = RequestResponse {
        lines: 0,
        elapsed,
        latency: Histogram::new(),
    };
    for (lines, latency) in &results {
        total.lines += lines;
        total.latency.merge(latency);
    }
    Ok(total)
}

/// Connections opened, used for one line and closed.
#[derive(Debug, Clone, Copy)]
pub struct Churn {
    /// Connections that got their line answered.
    pub connections: u64,
    /// Connections refused with `ERR busy` (not counted above).
    pub busy: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl Churn {
    /// Answered connections per second.
    pub fn per_second(&self) -> f64 {
        self.connections as f64 / self.elapsed.as_secs_f64()
    }
}

/// (c) [`CHURN_THREADS`] clients that connect, send one line, read its
/// reply and close, until `limit` connections or `duration` passed.
///
/// # Errors
///
/// A connection failed or a reply was wrong.
pub fn churn(
    address: SocketAddr,
    duration: Duration,
    limit: u64,
    unicode: bool,
    expect: Expect,
) -> Result<Churn, WorkloadError> {
    let started = Instant::now();
    let deadline = started + duration;
    let claimed = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..CHURN_THREADS)
        .map(|client| {
            let claimed = Arc::clone(&claimed);
            thread::spawn(move || -> Result<(u64, u64), WorkloadError> {
                let request = line(client as u64, SHORT_LINE, unicode);
                let expected = expect.reply(&request);
                let mut reply = Vec::with_capacity(SHORT_LINE);
                let (mut answered, mut busy) = (0, 0);
                while Instant::now() < deadline && claimed.fetch_add(1, Ordering::Relaxed) < limit {
                    let mut stream = connect(address)?;
                    let mut reader =
                        BufReader::new(stream.try_clone().map_err(io_error("clone a socket"))?);
                    round_trip(&mut stream, &mut reader, &request, &mut reply)?;
                    if is_busy(&reply) {
                        busy += 1;
                        continue;
                    }
                    expect_reply(&expected, &reply)?;
                    answered += 1;
                }
                Ok((answered, busy))
            })
        })
        .collect();
    let results = join(handles)?;
    Ok(Churn {
        connections: results.iter().map(|r| r.0).sum(),
        busy: results.iter().map(|r| r.1).sum(),
        elapsed: started.elapsed(),
    })
}

/// CPU used while nothing happens.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Percent of one core with no connection open.
    pub no_sessions: f64,
    /// Percent of one core with `sessions` silent connections open.
    pub open_sessions: f64,
    /// How many silent connections were open.
    pub sessions: usize,
}

/// (d) The server's CPU use over `duration` with no connection, then with
/// `sessions` connections open (each answered one line) and silent.
///
/// # Errors
///
/// `/proc` could not be read, or a connection failed.
pub fn idle_cpu(
    server: &mut ServerProcess,
    address: SocketAddr,
    duration: Duration,
    sessions: usize,
    expect: Expect,
) -> Result<Idle, WorkloadError> {
    let settle = (duration / 10).min(Duration::from_secs(1));
    let no_sessions = cpu_percent(server, settle, duration)?;
    let open = (0..sessions)
        .map(|client| Session::open(address, line(client as u64, SHORT_LINE, false), expect))
        .collect::<Result<Vec<_>, _>>()?;
    let open_sessions = cpu_percent(server, settle, duration)?;
    drop(open);
    Ok(Idle {
        no_sessions,
        open_sessions,
        sessions,
    })
}

fn cpu_percent(
    server: &mut ServerProcess,
    settle: Duration,
    duration: Duration,
) -> Result<f64, WorkloadError> {
    thread::sleep(settle);
    server.check_running()?;
    let (cpu_before, before) = (server.cpu_seconds()?, Instant::now());
    thread::sleep(duration);
    server.check_running()?;
    let (cpu_after, after) = (server.cpu_seconds()?, Instant::now());
    Ok((cpu_after - cpu_before) / (after - before).as_secs_f64() * 100.0)
}

/// Resident memory as connections come and go.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    /// Before the first connection, in KiB.
    pub start_kib: u64,
    /// After `first` connections.
    pub first_kib: u64,
    /// After `total` connections.
    pub total_kib: u64,
    /// Connections before the first reading.
    pub first: u64,
    /// Connections before the last reading.
    pub total: u64,
}

impl Rss {
    /// Growth from the first to the last reading, as a factor.
    pub fn growth(&self) -> f64 {
        self.total_kib as f64 / self.first_kib as f64
    }
}

/// (e) The server's VmRSS before, after `first` and after `total`
/// connect/line/close cycles ([`CHURN_THREADS`] clients at once).
///
/// # Errors
///
/// `/proc` could not be read, a connection failed, or it took longer than
/// `limit` in all.
pub fn rss_growth(
    server: &mut ServerProcess,
    address: SocketAddr,
    first: u64,
    total: u64,
    limit: Duration,
    expect: Expect,
) -> Result<Rss, WorkloadError> {
    let start_kib = server.rss_kib()?;
    let run = |count: u64| -> Result<(), WorkloadError> {
        let done = churn(address, limit, count, false, expect)?;
        if done.connections + done.busy < count {
            return Err(WorkloadError::Io {
                context: "finish the connection cycles",
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} of {count} in {:?}", done.connections, limit),
                ),
            });
        }
        Ok(())
    };
    run(first)?;
    server.check_running()?;
    let first_kib = server.rss_kib()?;
    run(total - first)?;
    server.check_running()?;
    let total_kib = server.rss_kib()?;
    Ok(Rss {
        start_kib,
        first_kib,
        total_kib,
        first,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_asked_length_and_one_lf() {
        for unicode in [false, true] {
            for seed in 0..50 {
                let line = line(seed, BULK_LINE, unicode);
                assert_eq!(line.len(), BULK_LINE);
                assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
                assert!(std::str::from_utf8(&line).is_ok());
            }
        }
    }

    #[test]
    fn unicode_lines_hold_multibyte_graphemes() {
        let line = line(7, SHORT_LINE, true);
        assert!(line.iter().any(|b| !b.is_ascii()), "{line:?}");
    }

    #[test]
    fn lines_differ_by_seed() {
        assert_ne!(line(1, SHORT_LINE, false), line(2, SHORT_LINE, false));
    }

    #[test]
    fn expected_replies_are_reversed_or_echoed() {
        assert_eq!(
            Expect::Reversed.reply("ab👍🏽\n".as_bytes()),
            "👍🏽ba\n".as_bytes()
        );
        assert_eq!(Expect::Echoed.reply(b"ab\n"), b"ab\n");
    }

    #[test]
    fn a_stream_checks_across_block_boundaries() {
        let stream = Stream::new(2, 8, false, Expect::Reversed);
        let mut replies = stream.replies.clone();
        replies.extend_from_slice(&stream.replies);
        assert!(stream.check(0, &replies).is_ok());
        assert!(stream.check(5, &replies[5..20]).is_ok());
    }

    #[test]
    fn a_wrong_byte_is_reported_with_its_offset() {
        let stream = Stream::new(2, 8, false, Expect::Reversed);
        let mut replies = stream.replies.clone();
        replies[11] ^= 1;
        match stream.check(16, &replies) {
            Err(WorkloadError::WrongReply { offset, .. }) => assert_eq!(offset, 27),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rates_divide_by_the_elapsed_time() {
        let bulk = Bulk {
            bytes: 4 << 20,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(bulk.mib_per_second(), 2.0);
        let churn = Churn {
            connections: 300,
            busy: 0,
            elapsed: Duration::from_millis(1500),
        };
        assert_eq!(churn.per_second(), 200.0);
    }
}
