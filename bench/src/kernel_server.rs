//! The kernel-stack baseline: a thread-per-client reversal server on
//! `std::net`, as the seed's `thread_server` would be written in Rust.
//!
//! It answers lines as the SPEC says (LF or CR LF kept, grapheme reversal by
//! the core's [`reverse`], `ERR utf8` and `ERR too-long`) but has no session
//! limit and no idle timeout: the benchmark never needs them. Replies to all
//! lines that one `read` completed go out in one `write`, as a careful
//! blocking server does.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use reversal_core::Mode;
use reversal_core::reply::{ErrorReply, MAX_ERROR_REPLY};
use reversal_core::reverse::{ReverseError, reverse};

/// Longest line answered, terminator excluded: `host-tap`'s default `--max-line`.
pub const MAX_LINE: usize = host_tap::settings::DEFAULT_MAX_LINE;
/// Bytes asked of each `read`: 16 KiB, `host-tap`'s socket buffer when the
/// baseline was first measured (kept, so that figures stay comparable).
const READ_SIZE: usize = 16 * 1024;

/// Accepts connections for ever, one thread each.
///
/// # Errors
///
/// Accepting failed for a reason other than a client that gave up early or a
/// momentary lack of descriptors or memory.
pub fn serve(listener: &TcpListener) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                // A client that cannot get a thread is closed; the others go on.
                let _ = thread::Builder::new()
                    .name("session".into())
                    .spawn(move || drop(session(stream)));
            }
            Err(error) if is_transient(&error) => {}
            Err(error) => return Err(error),
        }
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    ) || error.kind() == io::ErrorKind::Interrupted
}

/// Serves one client until it closes.
fn session(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut framer = Framer::default();
    let mut input = vec![0u8; READ_SIZE];
    let mut output = Vec::with_capacity(READ_SIZE);
    loop {
        let n = match stream.read(&mut input) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if n == 0 {
            framer.finish(&mut output);
            stream.write_all(&output)?;
            return Ok(());
        }
        framer.push(&input[..n], &mut output);
        if !output.is_empty() {
            stream.write_all(&output)?;
            output.clear();
        }
    }
}

/// Splits a byte stream into lines and appends their replies.
#[derive(Debug, Default)]
pub struct Framer {
    /// The current line so far (never longer than `MAX_LINE + 1`: a CR may
    /// still follow the last allowed byte).
    line: Vec<u8>,
    /// The current line was too long and is skipped up to its LF.
    discarding: bool,
}

impl Framer {
    /// Takes the next bytes of the stream, appending the reply to each line
    /// they complete.
    pub fn push(&mut self, mut bytes: &[u8], output: &mut Vec<u8>) {
        while !bytes.is_empty() {
            let (part, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
                Some(lf) => (&bytes[..lf], &bytes[lf + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.discarding {
                self.line.extend_from_slice(part);
                let terminator_len = if complete && self.line.ends_with(b"\r") {
                    1
                } else {
                    0
                };
                // A CR at the end of an unfinished line may still be a terminator.
                let allowed = if complete { MAX_LINE } else { MAX_LINE + 1 };
                if self.line.len() - terminator_len > allowed {
                    push_error(ErrorReply::TooLong { max_line: MAX_LINE }, b"\n", output);
                    self.line.clear();
                    self.discarding = true;
                } else if complete {
                    let (text, terminator): (&[u8], &[u8]) = match self.line.strip_suffix(b"\r") {
                        Some(text) => (text, b"\r\n"),
                        None => (&self.line, b"\n"),
                    };
                    answer(text, terminator, output);
                    self.line.clear();
                }
            }
            if complete {
                self.discarding = false;
            }
        }
    }

    /// The client half-closed: an unfinished line is answered without terminator.
    pub fn finish(&mut self, output: &mut Vec<u8>) {
        if !self.line.is_empty() && !self.discarding {
            answer(&self.line, b"", output);
        }
        self.line.clear();
        self.discarding = false;
    }
}

/// Appends the reversal of `text` and `terminator`, or the error reply.
fn answer(text: &[u8], terminator: &[u8], output: &mut Vec<u8>) {
    let start = output.len();
    output.resize(start + text.len(), 0);
    match reverse(Mode::Graphemes, text, &mut output[start..]) {
        Ok(_) => output.extend_from_slice(terminator),
        Err(ReverseError::InvalidUtf8 { offset }) => {
            output.truncate(start);
            push_error(ErrorReply::Utf8 { offset }, terminator, output);
        }
        Err(ReverseError::OutputTooSmall { .. }) => {
            unreachable!("the output was sized to the input")
        }
    }
}

fn push_error(reply: ErrorReply, terminator: &[u8], output: &mut Vec<u8>) {
    let mut bytes = [0u8; MAX_ERROR_REPLY];
    // An unterminated error (end of input) still needs its LF to be a line.
    let terminator = if terminator.is_empty() {
        b"\n"
    } else {
        terminator
    };
    if let Some(n) = reply.write(terminator, &mut bytes) {
        output.extend_from_slice(&bytes[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::Ipv4Addr;

    fn replies(chunks: &[&[u8]]) -> Vec<u8> {
        let mut framer = Framer::default();
        let mut output = Vec::new();
        for chunk in chunks {
            framer.push(chunk, &mut output);
        }
        framer.finish(&mut output);
        output
    }

    #[test]
    fn lines_are_reversed_with_their_terminators() {
        assert_eq!(replies(&[b"abc\nde\r\n\n"]), b"cba\ned\r\n\n");
    }

    #[test]
    fn graphemes_stay_whole() {
        let reply = replies(&["e\u{301}x👍🏽\n".as_bytes()]);
        assert_eq!(reply, "👍🏽xe\u{301}\n".as_bytes());
    }

    #[test]
    fn a_line_split_across_reads_is_answered_once() {
        assert_eq!(replies(&[b"ab", b"c\r", b"\nd"]), b"cba\r\nd");
    }

    #[test]
    fn invalid_utf8_is_an_error_line() {
        assert_eq!(
            replies(&[b"ok\xff\nnext\n"]),
            b"ERR utf8 invalid UTF-8 at byte 2\ntxen\n"
        );
    }

    #[test]
    fn a_too_long_line_is_skipped_up_to_its_lf() {
        let long = vec![b'x'; MAX_LINE + 1];
        let reply = replies(&[&long, &long, b"\nab\n"]);
        assert!(reply.starts_with(b"ERR too-long"), "{reply:?}");
        assert!(reply.ends_with(b"\nba\n"), "{reply:?}");
        assert_eq!(reply.iter().filter(|&&b| b == b'\n').count(), 2);
    }

    #[test]
    fn the_longest_line_with_crlf_is_answered() {
        let mut line = vec![b'y'; MAX_LINE];
        line.extend_from_slice(b"\r\n");
        assert_eq!(replies(&[&line]), line);
    }

    #[test]
    fn serves_clients_over_loopback() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let address = listener.local_addr().unwrap();
        thread::spawn(move || serve(&listener));
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"hello\r\n").unwrap();
        let mut reply = Vec::new();
        io::BufReader::new(&stream)
            .read_until(b'\n', &mut reply)
            .unwrap();
        assert_eq!(reply, b"olleh\r\n");
    }
}
