//! Target `datagram`: `datagram::answer`, never larger than its datagram,
//! and exactly what the SPEC's UDP section says.

use arbitrary::Arbitrary;
use reversal_core::ErrorCode;
use reversal_core::datagram::{Answer, answer};

use crate::{Input, mode, oracle};

/// One datagram, the server's limits and the room its scratch buffer has.
#[derive(Debug, Clone, Arbitrary)]
pub struct Case {
    /// Picks the mode.
    pub mode: u8,
    /// The longest line the server accepts.
    pub max_line: u16,
    /// The datagram's payload.
    pub payload: Input,
    /// How the payload ends: as it is, or with LF or CR LF added.
    pub ending: u8,
    /// Output room relative to the payload's length (negative: too small).
    pub room: i8,
}

/// What the oracle expects: the bytes to send, or nothing (with the code
/// counted as dropped).
fn expected(
    mode: reversal_core::Mode,
    max_line: usize,
    payload: &[u8],
    room: usize,
) -> Result<Vec<u8>, ErrorCode> {
    let (body, terminator) = oracle::split_terminator(payload);
    let error_terminator: &[u8] = if terminator.is_empty() {
        b"\n"
    } else {
        terminator
    };
    let error = if body.len() > max_line {
        (ErrorCode::TooLong, oracle::too_long(max_line))
    } else if room < payload.len() {
        // The server's buffer cannot hold a reply this long.
        return Err(ErrorCode::TooLong);
    } else {
        match oracle::reversed(mode, body) {
            Ok(mut reversal) => {
                reversal.extend_from_slice(terminator);
                return Ok(reversal);
            }
            Err(offset) => (ErrorCode::Utf8, oracle::utf8(offset)),
        }
    };
    let (code, text) = error;
    let reply = [text.as_bytes(), error_terminator].concat();
    // No amplification.
    if reply.len() > payload.len().min(room) {
        Err(code)
    } else {
        Ok(reply)
    }
}

/// Checks one answer against the oracle and the no-amplification rule.
pub fn check(case: &Case) {
    let mode = mode(case.mode);
    let max_line = usize::from(case.max_line);
    let mut payload = case.payload.bytes();
    payload.extend_from_slice(match case.ending % 3 {
        0 => &b""[..],
        1 => b"\n",
        _ => b"\r\n",
    });
    let room = payload.len().saturating_add_signed(isize::from(case.room));
    let mut output = vec![0u8; room];
    let got = answer(mode, max_line, &payload, &mut output);
    let sent = match got {
        Answer::Reversed(n) | Answer::Error { len: n, .. } => {
            assert!(
                n <= payload.len(),
                "amplification: {n}-byte reply to {} bytes",
                payload.len()
            );
            Ok(output[..n].to_vec())
        }
        Answer::Dropped(code) => Err(code),
    };
    let want = expected(mode, max_line, &payload, room);
    assert_eq!(
        sent, want,
        "{mode}, max_line {max_line}, room {room}: answer to {payload:?} was {got:?}"
    );
    if let Answer::Error { code, .. } = got {
        assert!(matches!(code, ErrorCode::TooLong | ErrorCode::Utf8));
    }
}
