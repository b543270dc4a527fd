//! What the SPEC says the core must answer, written plainly: whole strings,
//! `std` and `unicode-segmentation`, no fast paths, no buffers. Slow and
//! obviously right is the point; nothing here shares code with the core.

use reversal_core::Mode;
use unicode_segmentation::UnicodeSegmentation;

/// The reversal of `input` in `mode`, or the offset of its first invalid
/// UTF-8 byte in a mode that needs UTF-8.
pub fn reversed(mode: Mode, input: &[u8]) -> Result<Vec<u8>, usize> {
    if mode == Mode::Bytes {
        return Ok(input.iter().rev().copied().collect());
    }
    let text = std::str::from_utf8(input).map_err(|e| e.valid_up_to())?;
    let reversed: String = match mode {
        Mode::Chars => text.chars().rev().collect(),
        _ => text.graphemes(true).rev().collect(),
    };
    Ok(reversed.into_bytes())
}

/// `ERR too-long ...` for lines longer than `max_line`.
pub fn too_long(max_line: usize) -> String {
    format!("ERR too-long line longer than {max_line} bytes")
}

/// `ERR utf8 ...` for a first invalid byte at `offset`.
pub fn utf8(offset: usize) -> String {
    format!("ERR utf8 invalid UTF-8 at byte {offset}")
}

/// `payload` without a trailing LF or CR LF, and that terminator.
pub fn split_terminator(payload: &[u8]) -> (&[u8], &'static [u8]) {
    if let Some(body) = payload.strip_suffix(b"\r\n") {
        (body, b"\r\n")
    } else if let Some(body) = payload.strip_suffix(b"\n") {
        (body, b"\n")
    } else {
        (payload, b"")
    }
}

/// Every reply a TCP session owes for the whole of `input` followed by the
/// end of input, with ample output space and no timers (SPEC, "TCP").
///
/// Lines end at LF, a CR right before the LF belongs to the terminator. A
/// line longer than `max_line` gets one `too-long` error; an invalid one
/// (in a mode that needs UTF-8) a `utf8` error with its own terminator;
/// any other line its reversal and terminator. Errors that have no
/// terminator of their own (too-long, an unterminated last line) end like
/// the latest line that was answered with a terminator: CR LF or LF.
pub fn session_replies(mode: Mode, max_line: usize, input: &[u8]) -> Vec<u8> {
    let mut replies = Vec::new();
    let mut last_crlf = false;
    let mut rest = input;
    while let Some(lf) = rest.iter().position(|&b| b == b'\n') {
        let (line, crlf) = match rest[..lf].strip_suffix(b"\r") {
            Some(body) => (body, true),
            None => (&rest[..lf], false),
        };
        let terminator: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        if line.len() > max_line {
            replies.extend_from_slice(too_long(max_line).as_bytes());
            replies.extend_from_slice(if last_crlf { b"\r\n" } else { b"\n" });
        } else {
            last_crlf = crlf;
            match reversed(mode, line) {
                Ok(reversal) => replies.extend_from_slice(&reversal),
                Err(offset) => replies.extend_from_slice(utf8(offset).as_bytes()),
            }
            replies.extend_from_slice(terminator);
        }
        rest = &rest[lf + 1..];
    }
    // The unterminated last line: a trailing CR is content now.
    if !rest.is_empty() {
        let error_terminator: &[u8] = if last_crlf { b"\r\n" } else { b"\n" };
        if rest.len() > max_line {
            replies.extend_from_slice(too_long(max_line).as_bytes());
            replies.extend_from_slice(error_terminator);
        } else {
            match reversed(mode, rest) {
                Ok(reversal) => replies.extend_from_slice(&reversal),
                Err(offset) => {
                    replies.extend_from_slice(utf8(offset).as_bytes());
                    replies.extend_from_slice(error_terminator);
                }
            }
        }
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_agrees_with_the_readme() {
        assert_eq!(
            reversed(Mode::Graphemes, "hello 각👍🏽".as_bytes()).unwrap(),
            "👍🏽각 olleh".as_bytes()
        );
        assert_eq!(
            session_replies(Mode::Graphemes, 4, b"abc\r\nabcdefg\nab\xffc\r\nlast"),
            b"cba\r\nERR too-long line longer than 4 bytes\r\nERR utf8 invalid UTF-8 at byte 2\r\ntsal"
        );
    }
}
