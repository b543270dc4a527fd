//! Target `reverse`: `reverse::reverse` in every mode against [`oracle::reversed`].

use arbitrary::Arbitrary;
use reversal_core::reverse::{ReverseError, reverse};

use crate::{Input, mode, oracle};

/// One reversal: a mode, an input, and how much output room to give.
#[derive(Debug, Clone, Arbitrary)]
pub struct Case {
    /// Picks the mode.
    pub mode: u8,
    /// What to reverse.
    pub input: Input,
    /// Output room relative to the input's length (negative: too small).
    pub room: i8,
}

/// Untouched output bytes keep this value.
const SENTINEL: u8 = 0xa5;

/// Checks one reversal against the oracle.
pub fn check(case: &Case) {
    let mode = mode(case.mode);
    let input = case.input.bytes();
    let room = input.len().saturating_add_signed(isize::from(case.room));
    let mut output = vec![SENTINEL; room];
    let result = reverse(mode, &input, &mut output);
    match (oracle::reversed(mode, &input), result) {
        (Err(offset), Err(ReverseError::InvalidUtf8 { offset: got })) => {
            assert_eq!(got, offset, "invalid UTF-8 reported at the wrong byte");
            assert!(output.iter().all(|&b| b == SENTINEL), "written on error");
        }
        (Ok(_), Err(ReverseError::OutputTooSmall { needed })) if room < input.len() => {
            assert_eq!(needed, input.len());
            assert!(output.iter().all(|&b| b == SENTINEL), "written on error");
        }
        (Ok(expected), Ok(n)) => {
            assert_eq!(n, input.len(), "a reversal is exactly as long as its input");
            assert_eq!(
                output[..n],
                expected[..],
                "{mode} reversal of {input:?} differs from the oracle"
            );
            assert!(
                output[n..].iter().all(|&b| b == SENTINEL),
                "written past the reversal"
            );
        }
        (expected, got) => {
            panic!("{mode} of {input:?} (room {room}): {got:?}, oracle {expected:?}")
        }
    }
}
