//! Error replies: the `ERR <code> <words>` lines of the protocol.

use core::fmt;

use smoltcp::time::Duration;

/// The longest error reply the server ever writes, terminator included.
///
/// A send buffer must hold at least this much so that any error can be sent.
///
/// ```
/// use reversal_core::reply::{ErrorReply, MAX_ERROR_REPLY};
///
/// let mut out = [0u8; MAX_ERROR_REPLY];
/// let worst = ErrorReply::Utf8 { offset: usize::MAX };
/// assert!(worst.write(b"\r\n", &mut out).is_some());
/// ```
pub const MAX_ERROR_REPLY: usize = 64;

/// The short code that follows `ERR ` in an error reply.
///
/// ```
/// assert_eq!(reversal_core::ErrorCode::TooLong.as_str(), "too-long");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorCode {
    /// A line was longer than the configured maximum.
    TooLong,
    /// A line was not valid UTF-8 in a mode that needs it.
    Utf8,
    /// All sessions were taken.
    Busy,
    /// No bytes moved for the idle timeout.
    IdleTimeout,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    ///
    /// ```
    /// assert_eq!(reversal_core::ErrorCode::IdleTimeout.as_str(), "idle-timeout");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::TooLong => "too-long",
            ErrorCode::Utf8 => "utf8",
            ErrorCode::Busy => "busy",
            ErrorCode::IdleTimeout => "idle-timeout",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error reply with the facts its words need.
///
/// ```
/// use reversal_core::reply::ErrorReply;
///
/// let mut out = [0u8; 64];
/// let n = ErrorReply::Utf8 { offset: 3 }.write(b"\n", &mut out).unwrap();
/// assert_eq!(&out[..n], b"ERR utf8 invalid UTF-8 at byte 3\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorReply {
    /// `ERR too-long`: the line exceeded `max_line` bytes.
    TooLong {
        /// The configured maximum line length.
        max_line: usize,
    },
    /// `ERR utf8`: the first invalid byte is at `offset` within the line.
    Utf8 {
        /// Byte offset of the first invalid byte in the line.
        offset: usize,
    },
    /// `ERR busy`: every session is taken.
    Busy,
    /// `ERR idle-timeout`: nothing moved for `after`.
    IdleTimeout {
        /// The configured idle timeout.
        after: Duration,
    },
}

impl ErrorReply {
    /// The code of this reply.
    ///
    /// ```
    /// use reversal_core::{reply::ErrorReply, ErrorCode};
    /// assert_eq!(ErrorReply::Busy.code(), ErrorCode::Busy);
    /// ```
    pub const fn code(&self) -> ErrorCode {
        match self {
            ErrorReply::TooLong { .. } => ErrorCode::TooLong,
            ErrorReply::Utf8 { .. } => ErrorCode::Utf8,
            ErrorReply::Busy => ErrorCode::Busy,
            ErrorReply::IdleTimeout { .. } => ErrorCode::IdleTimeout,
        }
    }

    /// Writes the reply followed by `terminator` into the front of `out`.
    ///
    /// Returns its length, or `None` (with `out` untouched) if it does not fit.
    ///
    /// ```
    /// use reversal_core::reply::ErrorReply;
    ///
    /// let mut small = [0u8; 4];
    /// assert_eq!(ErrorReply::Busy.write(b"\n", &mut small), None);
    /// ```
    pub fn write(&self, terminator: &[u8], out: &mut [u8]) -> Option<usize> {
        let text = self.text();
        let text = text.as_bytes();
        let len = text.len() + terminator.len();
        let out = out.get_mut(..len)?;
        let (head, tail) = out.split_at_mut(text.len());
        head.copy_from_slice(text);
        tail.copy_from_slice(terminator);
        Some(len)
    }

    /// The reply's words, built without `core::fmt` (which costs kilobytes
    /// of flash on a board).
    fn text(&self) -> Text {
        let mut text = Text::new();
        text.push(b"ERR ");
        text.push(self.code().as_str().as_bytes());
        text.push(b" ");
        match *self {
            ErrorReply::TooLong { max_line } => {
                text.push(b"line longer than ");
                text.push_number(max_line as u64);
                text.push(b" bytes");
            }
            ErrorReply::Utf8 { offset } => {
                text.push(b"invalid UTF-8 at byte ");
                text.push_number(offset as u64);
            }
            ErrorReply::Busy => text.push(b"all sessions in use, try again later"),
            ErrorReply::IdleTimeout { after } => {
                text.push(b"no data for ");
                text.push_number(after.secs());
                text.push(b"s, closing");
            }
        }
        text
    }
}

impl fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

/// A short ASCII text in a fixed buffer; what does not fit is cut off
/// (never the case for the bounded replies above, which are tested).
struct Text {
    buf: [u8; MAX_ERROR_REPLY],
    len: usize,
}

impl Text {
    const fn new() -> Self {
        Text {
            buf: [0; MAX_ERROR_REPLY],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(self.buf.len());
        self.buf[self.len..end].copy_from_slice(&bytes[..end - self.len]);
        self.len = end;
    }

    fn push_number(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        core::str::from_utf8(self.as_bytes()).unwrap_or("ERR")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: ErrorReply) -> String {
        let mut out = [0u8; MAX_ERROR_REPLY];
        let n = reply.write(b"\n", &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn every_reply_starts_with_err_and_its_code() {
        let replies = [
            ErrorReply::TooLong { max_line: 512 },
            ErrorReply::Utf8 { offset: 0 },
            ErrorReply::Busy,
            ErrorReply::IdleTimeout {
                after: Duration::from_secs(120),
            },
        ];
        for reply in replies {
            let line = text(reply);
            assert!(
                line.starts_with(&format!("ERR {} ", reply.code())),
                "{line}"
            );
            assert!(line.ends_with('\n'));
        }
    }

    #[test]
    fn display_is_the_reply_without_terminator() {
        let reply = ErrorReply::Utf8 { offset: 0 };
        assert_eq!(format!("{reply}\n"), text(reply));
        assert_eq!(reply.to_string(), "ERR utf8 invalid UTF-8 at byte 0");
    }

    #[test]
    fn utf8_reply_names_the_byte_offset() {
        assert_eq!(
            text(ErrorReply::Utf8 { offset: 17 }),
            "ERR utf8 invalid UTF-8 at byte 17\n"
        );
    }

    #[test]
    fn longest_replies_fit_the_bound_with_crlf() {
        let mut out = [0u8; MAX_ERROR_REPLY];
        let worst = [
            ErrorReply::TooLong {
                max_line: usize::MAX,
            },
            ErrorReply::Utf8 { offset: usize::MAX },
            ErrorReply::Busy,
            ErrorReply::IdleTimeout {
                after: Duration::from_micros(u64::MAX),
            },
        ];
        for reply in worst {
            assert!(reply.write(b"\r\n", &mut out).is_some(), "{reply:?}");
        }
    }

    #[test]
    fn reply_that_does_not_fit_leaves_output_untouched() {
        let mut out = [9u8; 10];
        assert_eq!(ErrorReply::Utf8 { offset: 1 }.write(b"\n", &mut out), None);
        assert_eq!(out, [9u8; 10]);
    }
}
