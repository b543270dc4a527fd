//! One UDP datagram, one answer, and the no-amplification rule.

use crate::reply::{ErrorCode, ErrorReply};
use crate::reverse::{Mode, ReverseError, reverse};

/// What to do with one datagram.
///
/// ```
/// use reversal_core::datagram::{answer, Answer};
/// use reversal_core::Mode;
///
/// let mut out = [0u8; 64];
/// assert_eq!(answer(Mode::Graphemes, 512, b"abc\n", &mut out), Answer::Reversed(4));
/// assert_eq!(&out[..4], b"cba\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Answer {
    /// Send the first `n` bytes of the output: the reversal.
    Reversed(usize),
    /// Send the first `len` bytes of the output: an error reply.
    Error {
        /// The error's code.
        code: ErrorCode,
        /// Length of the reply in the output.
        len: usize,
    },
    /// Send nothing: the error reply would be larger than the datagram.
    Dropped(ErrorCode),
}

/// Answers `payload` into `output` in `mode`, for lines of at most `max_line`
/// bytes. The reply is never larger than the payload.
///
/// A trailing `LF` or `CR LF` stays at the end; the rest is reversed. Errors
/// end with the datagram's terminator, or `LF` if it had none.
///
/// ```
/// use reversal_core::datagram::{answer, Answer};
/// use reversal_core::{ErrorCode, Mode};
///
/// let mut out = [0u8; 64];
/// // A short invalid datagram cannot carry the longer error reply.
/// assert_eq!(answer(Mode::Chars, 512, b"\xff\n", &mut out), Answer::Dropped(ErrorCode::Utf8));
/// ```
pub fn answer(mode: Mode, max_line: usize, payload: &[u8], output: &mut [u8]) -> Answer {
    let (body, terminator): (&[u8], &[u8]) = if let Some(body) = payload.strip_suffix(b"\r\n") {
        (body, b"\r\n")
    } else if let Some(body) = payload.strip_suffix(b"\n") {
        (body, b"\n")
    } else {
        (payload, b"")
    };
    let error_terminator: &[u8] = if terminator.is_empty() {
        b"\n"
    } else {
        terminator
    };
    let error = if body.len() > max_line {
        ErrorReply::TooLong { max_line }
    } else {
        let Some(out) = output.get_mut(..payload.len()) else {
            // The caller's buffer is too small for any reply this size.
            return Answer::Dropped(ErrorCode::TooLong);
        };
        match reverse(mode, body, out) {
            Ok(n) => {
                out[n..].copy_from_slice(terminator);
                return Answer::Reversed(payload.len());
            }
            Err(ReverseError::InvalidUtf8 { offset }) => ErrorReply::Utf8 { offset },
            Err(ReverseError::OutputTooSmall { .. }) => return Answer::Dropped(ErrorCode::TooLong),
        }
    };
    // No amplification: the reply may use at most as many bytes as came in.
    let room = payload.len().min(output.len());
    match error.write(error_terminator, &mut output[..room]) {
        Some(len) => Answer::Error {
            code: error.code(),
            len,
        },
        None => Answer::Dropped(error.code()),
    }
}

#[cfg(all(test, feature = "graphemes"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(mode: Mode, max_line: usize, payload: &[u8]) -> (Answer, Vec<u8>) {
        let mut out = vec![0u8; 2048];
        let answer = answer(mode, max_line, payload, &mut out);
        let len = match answer {
            Answer::Reversed(n) | Answer::Error { len: n, .. } => n,
            Answer::Dropped(_) => 0,
        };
        (answer, out[..len].to_vec())
    }

    #[test]
    fn trailing_crlf_stays_at_the_end() {
        assert_eq!(run(Mode::Graphemes, 64, b"ab\r\n").1, b"ba\r\n");
    }

    #[test]
    fn datagram_without_terminator_is_reversed_whole() {
        assert_eq!(
            run(Mode::Graphemes, 64, "각👍🏽".as_bytes()).1,
            "👍🏽각".as_bytes()
        );
    }

    #[test]
    fn empty_datagram_gets_an_empty_reply() {
        assert_eq!(run(Mode::Graphemes, 64, b""), (Answer::Reversed(0), vec![]));
    }

    #[test]
    fn too_long_error_is_sent_when_it_fits_in_the_datagram() {
        let payload = vec![b'a'; 100];
        let (answer, reply) = run(Mode::Graphemes, 50, &payload);
        assert!(matches!(
            answer,
            Answer::Error {
                code: ErrorCode::TooLong,
                ..
            }
        ));
        assert!(reply.starts_with(b"ERR too-long "));
        assert!(reply.len() <= payload.len());
    }

    #[test]
    fn too_long_error_larger_than_datagram_is_dropped() {
        assert_eq!(
            run(Mode::Graphemes, 4, b"abcdefgh").0,
            Answer::Dropped(ErrorCode::TooLong)
        );
    }

    #[test]
    fn utf8_error_names_the_offset_when_it_fits() {
        let mut payload = vec![b'x'; 40];
        payload[33] = 0xff;
        payload.push(b'\n');
        let (answer, reply) = run(Mode::Graphemes, 512, &payload);
        assert!(matches!(
            answer,
            Answer::Error {
                code: ErrorCode::Utf8,
                ..
            }
        ));
        assert_eq!(reply, b"ERR utf8 invalid UTF-8 at byte 33\n");
    }

    #[test]
    fn bytes_mode_accepts_invalid_utf8() {
        assert_eq!(run(Mode::Bytes, 64, b"\xff\x01\n").1, b"\x01\xff\n");
    }

    proptest! {
        #[test]
        fn reply_is_never_larger_than_the_datagram(
            payload in prop::collection::vec(any::<u8>(), 0..200),
            max_line in 0usize..100,
        ) {
            for mode in [Mode::Graphemes, Mode::Chars, Mode::Bytes] {
                let (_, reply) = run(mode, max_line, &payload);
                prop_assert!(reply.len() <= payload.len());
            }
        }
    }
}
