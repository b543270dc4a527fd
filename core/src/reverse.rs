//! Reversal of one message, without sockets and without allocation.
//!
//! The reversal of `n` bytes of input is always exactly `n` bytes: units are
//! moved, never re-encoded. The caller hands in the output buffer.
//!
//! Grapheme clusters come from the core's own UAX #29 segmenter
//! (`reverse/graphemes.rs`) over a class table generated from the Unicode
//! Character Database (`reverse/grapheme_table.rs`, 3.2 KB; regenerate with
//! `cargo run -p reversal-core --example grapheme_table`). It segments
//! exactly as `unicode-segmentation` 1.13 does, at about a sixth of its flash;
//! the tests hold it to Unicode's own break tests and to that crate.

use core::fmt;
use core::str::FromStr;

#[cfg(feature = "graphemes")]
mod grapheme_table;
#[cfg(feature = "graphemes")]
mod graphemes;

/// The Unicode version whose data and rules [`Mode::Graphemes`] follows.
///
/// ```
/// // GB9c, the Indic conjunct rule, came with 15.1.
/// assert!(reversal_core::reverse::UNICODE_VERSION >= (15, 1, 0));
/// ```
#[cfg(feature = "graphemes")]
pub const UNICODE_VERSION: (u8, u8, u8) = grapheme_table::UNICODE_VERSION;

/// What a reversal keeps whole.
///
/// ```
/// use reversal_core::reverse::{reverse, Mode};
///
/// let mut out = [0u8; 16];
/// let n = reverse(Mode::Graphemes, "e\u{301}a".as_bytes(), &mut out).unwrap();
/// assert_eq!(&out[..n], "ae\u{301}".as_bytes());
/// let n = reverse(Mode::Chars, "e\u{301}a".as_bytes(), &mut out).unwrap();
/// assert_eq!(&out[..n], "a\u{301}e".as_bytes());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mode {
    /// Extended grapheme clusters (UAX #29 of [`UNICODE_VERSION`], Indic
    /// conjuncts included): `e\u{301}`, `👍🏽`, `🇰🇷` and `각` stay whole.
    /// The default; needs the `graphemes` feature.
    #[cfg(feature = "graphemes")]
    #[default]
    Graphemes,
    /// Unicode scalar values, like Python's `s[::-1]`; the default without
    /// the `graphemes` feature.
    #[cfg_attr(not(feature = "graphemes"), default)]
    Chars,
    /// Raw bytes; any input is accepted, no UTF-8 check.
    Bytes,
}

impl Mode {
    /// The default mode, usable in `const` contexts.
    ///
    /// ```
    /// assert_eq!(reversal_core::Mode::DEFAULT, reversal_core::Mode::default());
    /// ```
    #[cfg(feature = "graphemes")]
    pub const DEFAULT: Mode = Mode::Graphemes;
    /// The default mode, usable in `const` contexts.
    #[cfg(not(feature = "graphemes"))]
    pub const DEFAULT: Mode = Mode::Chars;

    /// The name used on command lines and in the documentation.
    ///
    /// ```
    /// assert_eq!(reversal_core::Mode::Chars.name(), "chars");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "graphemes")]
            Mode::Graphemes => "graphemes",
            Mode::Chars => "chars",
            Mode::Bytes => "bytes",
        }
    }

    /// Whether input must be valid UTF-8 in this mode.
    ///
    /// ```
    /// assert!(!reversal_core::Mode::Bytes.requires_utf8());
    /// ```
    pub const fn requires_utf8(self) -> bool {
        !matches!(self, Mode::Bytes)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text was not one of `graphemes`, `chars`, `bytes`.
///
/// ```
/// assert!("words".parse::<reversal_core::Mode>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParseModeError;

impl fmt::Display for ParseModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown mode: expected graphemes, chars or bytes")
    }
}

impl FromStr for Mode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            #[cfg(feature = "graphemes")]
            "graphemes" => Ok(Mode::Graphemes),
            "chars" => Ok(Mode::Chars),
            "bytes" => Ok(Mode::Bytes),
            _ => Err(ParseModeError),
        }
    }
}

/// Why a reversal could not be written.
///
/// ```
/// use reversal_core::reverse::{reverse, Mode, ReverseError};
///
/// let mut out = [0u8; 8];
/// assert_eq!(
///     reverse(Mode::Chars, b"ab\xffc", &mut out),
///     Err(ReverseError::InvalidUtf8 { offset: 2 })
/// );
/// assert_eq!(
///     reverse(Mode::Bytes, b"0123456789", &mut out),
///     Err(ReverseError::OutputTooSmall { needed: 10 })
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReverseError {
    /// The input is not valid UTF-8; `offset` is the index of the first byte
    /// that does not belong to a valid sequence.
    InvalidUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The output buffer is shorter than the input.
    OutputTooSmall {
        /// The length the output needs (always the input length).
        needed: usize,
    },
}

impl fmt::Display for ReverseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReverseError::InvalidUtf8 { offset } => write!(f, "invalid UTF-8 at byte {offset}"),
            ReverseError::OutputTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

/// Checks that `input` is UTF-8, reporting the offset of the first bad byte.
///
/// ```
/// use reversal_core::reverse::validate_utf8;
///
/// assert_eq!(validate_utf8("각".as_bytes()), Ok("각"));
/// assert_eq!(validate_utf8(b"ok\xe2\x82"), Err(2));
/// ```
pub fn validate_utf8(input: &[u8]) -> Result<&str, usize> {
    core::str::from_utf8(input).map_err(|e| e.valid_up_to())
}

/// Writes the reversal of `input` into the front of `output` and returns its
/// length, which is always `input.len()`.
///
/// Nothing is written when an error is returned.
///
/// ```
/// use reversal_core::reverse::{reverse, Mode};
///
/// let mut out = [0u8; 32];
/// let n = reverse(Mode::Graphemes, "각👍🏽🇰🇷!".as_bytes(), &mut out).unwrap();
/// assert_eq!(&out[..n], "!🇰🇷👍🏽각".as_bytes());
/// ```
pub fn reverse(mode: Mode, input: &[u8], output: &mut [u8]) -> Result<usize, ReverseError> {
    let n = input.len();
    // Bytes mode takes any input; the others read it as text.
    let text = if mode.requires_utf8() {
        validate_utf8(input).map_err(|offset| ReverseError::InvalidUtf8 { offset })?
    } else {
        ""
    };
    let output = output
        .get_mut(..n)
        .ok_or(ReverseError::OutputTooSmall { needed: n })?;
    match mode {
        Mode::Bytes => reverse_bytes(input, output),
        Mode::Chars => reverse_chars(text.as_bytes(), output),
        #[cfg(feature = "graphemes")]
        Mode::Graphemes => reverse_graphemes(text, output),
    }
    Ok(n)
}

/// Copies `input[start..end]` to its mirrored place in `output`, unchanged.
#[inline(always)]
fn place(input: &[u8], output: &mut [u8], start: usize, end: usize) {
    let n = input.len();
    output[n - end..n - start].copy_from_slice(&input[start..end]);
}

/// Copies `input[start..end]` byte-reversed to its mirrored place in `output`.
#[inline(always)]
fn place_reversed(input: &[u8], output: &mut [u8], start: usize, end: usize) {
    let n = input.len();
    for (o, i) in output[n - end..n - start]
        .iter_mut()
        .zip(input[start..end].iter().rev())
    {
        *o = *i;
    }
}

fn reverse_bytes(input: &[u8], output: &mut [u8]) {
    place_reversed(input, output, 0, input.len());
}

/// End of the run of ASCII bytes that starts at `start`.
#[inline(always)]
fn ascii_run_end(input: &[u8], start: usize) -> usize {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let word = |bytes: &[u8]| {
        u64::from_ne_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ])
    };
    let mut i = start;
    // 32 bytes at a time while no byte has its high bit set: one test per
    // four words keeps long ASCII lines at memory speed.
    while let Some(block) = input.get(i..i + 32) {
        let any =
            word(&block[..8]) | word(&block[8..16]) | word(&block[16..24]) | word(&block[24..]);
        if any & HIGH_BITS != 0 {
            break;
        }
        i += 32;
    }
    // Then eight at a time, then one.
    while let Some(bytes) = input.get(i..i + 8) {
        if word(bytes) & HIGH_BITS != 0 {
            break;
        }
        i += 8;
    }
    while i < input.len() && input[i].is_ascii() {
        i += 1;
    }
    i
}

/// Length in bytes of the UTF-8 sequence whose first byte is `lead`.
#[inline(always)]
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn reverse_chars(input: &[u8], output: &mut [u8]) {
    let mut i = 0;
    while i < input.len() {
        let run_end = ascii_run_end(input, i);
        if run_end > i {
            // Every ASCII byte is one scalar value.
            place_reversed(input, output, i, run_end);
            i = run_end;
            continue;
        }
        let end = i + utf8_len(input[i]);
        place(input, output, i, end);
        i = end;
    }
}

#[cfg(feature = "graphemes")]
/// Bytes of the character at `i` if it always forms a grapheme cluster on
/// its own when the characters on both sides are simple too, else 0.
///
/// Simple characters are ASCII, the Latin letters U+00C0 to U+024F, the
/// Cyrillic letters U+0400 to U+0482 and precomposed Hangul syllables
/// (U+AC00 to U+D7A3). Their Grapheme_Cluster_Break is Other (or Control,
/// CR, LF for ASCII) and none is Extended_Pictographic or a Regional
/// Indicator, so between two of them UAX #29 always breaks, except CR × LF;
/// two precomposed syllables never join (only conjoining jamo do).
#[inline(always)]
fn simple_len(input: &[u8], i: usize) -> usize {
    let lead = input[i];
    match lead {
        0x00..=0x7f => 1,
        0xc3..=0xc9 | 0xd0..=0xd2 if i + 1 < input.len() => {
            let scalar = (u32::from(lead & 0x1f) << 6) | u32::from(input[i + 1] & 0x3f);
            let simple = (0xc0..=0x24f).contains(&scalar) || (0x400..=0x482).contains(&scalar);
            if simple { 2 } else { 0 }
        }
        0xea..=0xed if i + 2 < input.len() => {
            let scalar = (u32::from(lead & 0x0f) << 12)
                | (u32::from(input[i + 1] & 0x3f) << 6)
                | u32::from(input[i + 2] & 0x3f);
            if (0xac00..=0xd7a3).contains(&scalar) {
                3
            } else {
                0
            }
        }
        _ => 0,
    }
}

#[cfg(feature = "graphemes")]
/// Grapheme reversal with a fast path for simple characters.
///
/// Simple characters that are certainly clusters of their own (followed by
/// another simple character or the end, CR LF kept whole) are moved
/// directly; anything else is moved one cluster at a time as the segmenter
/// finds them. Both start at a cluster boundary, so the result is that of
/// segmenting the whole text.
fn reverse_graphemes(text: &str, output: &mut [u8]) {
    let input = text.as_bytes();
    let n = input.len();
    let mut pos = 0; // always a cluster boundary
    while pos < n {
        let run_end = ascii_run_end(input, pos);
        if run_end - pos > 1 {
            // All but the last byte of the run are single clusters (or CR LF):
            // the last one might combine with what follows.
            let mut bulk_end = if run_end == n { n } else { run_end - 1 };
            if input[bulk_end - 1] == b'\r' && bulk_end < n && input[bulk_end] == b'\n' {
                bulk_end += 1;
            }
            place_ascii_run(input, output, pos, bulk_end);
            pos = bulk_end;
            continue;
        }
        let len = simple_len(input, pos);
        let next = pos + len;
        if len > 0 && (next == n || simple_len(input, next) > 0) {
            if input[pos] == b'\r' && next < n && input[next] == b'\n' {
                place(input, output, pos, next + 1);
                pos = next + 1;
            } else {
                place(input, output, pos, next);
                pos = next;
            }
            continue;
        }
        let end = graphemes::cluster_end(text, pos);
        place(input, output, pos, end);
        pos = end;
    }
}

#[cfg(feature = "graphemes")]
/// Moves an ASCII run whose ends are cluster boundaries, keeping CR LF whole.
fn place_ascii_run(input: &[u8], output: &mut [u8], start: usize, end: usize) {
    place_reversed(input, output, start, end);
    let run = &input[start..end];
    // A branch-free scan, which the compiler vectorizes: `contains` (core's
    // word-at-a-time memchr) took a third of the time of a 1 KiB ASCII line.
    if !run.iter().fold(false, |cr, &b| cr | (b == b'\r')) {
        return;
    }
    let n = input.len();
    for (k, pair) in run.windows(2).enumerate() {
        if pair == b"\r\n" {
            // The pair landed as LF CR at [n-start-k-2, n-start-k): put it back.
            let at = n - start - k - 2;
            output[at] = b'\r';
            output[at + 1] = b'\n';
        }
    }
}

#[cfg(all(test, feature = "graphemes"))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_segmentation::UnicodeSegmentation;

    fn reversed(mode: Mode, input: &str) -> String {
        let mut out = vec![0u8; input.len()];
        let n = reverse(mode, input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    fn reversed_twice(mode: Mode, input: &[u8]) -> Vec<u8> {
        let mut once = vec![0; input.len()];
        let mut twice = vec![0; input.len()];
        reverse(mode, input, &mut once).unwrap();
        reverse(mode, &once, &mut twice).unwrap();
        twice
    }

    /// Reference: `unicode-segmentation` on the whole text, no fast path.
    fn reference_graphemes(input: &str) -> String {
        input.graphemes(true).rev().collect()
    }

    #[test]
    fn graphemes_keep_combining_marks_emoji_flags_and_hangul_whole() {
        assert_eq!(reversed(Mode::Graphemes, "e\u{301}x"), "xe\u{301}");
        assert_eq!(reversed(Mode::Graphemes, "a👍🏽b"), "b👍🏽a");
        assert_eq!(reversed(Mode::Graphemes, "🇰🇷🇯🇵"), "🇯🇵🇰🇷");
        assert_eq!(reversed(Mode::Graphemes, "각하"), "하각");
        assert_eq!(reversed(Mode::Graphemes, "👨‍👩‍👧 ok"), "ko 👨‍👩‍👧");
    }

    #[test]
    fn graphemes_keep_decomposed_hangul_jamo_whole() {
        // L V T jamo form one syllable cluster.
        let jamo = "\u{1100}\u{1161}\u{11a8}";
        assert_eq!(
            reversed(Mode::Graphemes, &format!("a{jamo}b")),
            format!("b{jamo}a")
        );
    }

    #[test]
    fn graphemes_keep_crlf_together_inside_text() {
        assert_eq!(reversed(Mode::Graphemes, "ab\r\ncd"), "dc\r\nba");
        assert_eq!(reversed(Mode::Graphemes, "é\r\nx"), "x\r\né");
    }

    #[test]
    fn graphemes_attach_mark_to_last_ascii_letter_of_a_run() {
        assert_eq!(reversed(Mode::Graphemes, "abcde\u{301}"), "e\u{301}dcba");
    }

    #[test]
    fn chars_reverse_scalar_values_like_python() {
        assert_eq!(reversed(Mode::Chars, "e\u{301}x"), "x\u{301}e");
        assert_eq!(reversed(Mode::Chars, "ab각"), "각ba");
    }

    #[test]
    fn bytes_reverse_any_input() {
        let mut out = [0u8; 3];
        assert_eq!(reverse(Mode::Bytes, b"\xff\x00a", &mut out), Ok(3));
        assert_eq!(out, *b"a\x00\xff");
    }

    #[test]
    fn invalid_utf8_reports_offset_of_first_bad_byte() {
        let mut out = [0u8; 8];
        assert_eq!(
            reverse(Mode::Graphemes, b"abc\xc3", &mut out),
            Err(ReverseError::InvalidUtf8 { offset: 3 })
        );
        assert_eq!(
            reverse(Mode::Chars, b"\x80", &mut out),
            Err(ReverseError::InvalidUtf8 { offset: 0 })
        );
    }

    #[test]
    fn short_output_is_an_error_and_nothing_is_written() {
        let mut out = [7u8; 2];
        assert_eq!(
            reverse(Mode::Graphemes, b"abc", &mut out),
            Err(ReverseError::OutputTooSmall { needed: 3 })
        );
        assert_eq!(out, [7, 7]);
    }

    #[test]
    fn empty_input_reverses_to_nothing() {
        let mut out = [0u8; 0];
        for mode in [Mode::Graphemes, Mode::Chars, Mode::Bytes] {
            assert_eq!(reverse(mode, b"", &mut out), Ok(0));
        }
    }

    #[test]
    fn mode_names_round_trip() {
        for mode in [Mode::Graphemes, Mode::Chars, Mode::Bytes] {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
            assert_eq!(format!("{mode}"), mode.name());
        }
        assert_eq!("Graphemes".parse::<Mode>(), Err(ParseModeError));
    }

    /// Text that exercises every fast-path edge: ASCII, controls, CR LF, marks,
    /// Hangul syllables and jamo, emoji with modifiers and ZWJ, flags, prepend.
    fn mixed_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "Z",
            " ",
            "1",
            "\r",
            "\n",
            "\r\n",
            "\t",
            "\u{7f}",
            "e\u{301}",
            "\u{301}",
            "\u{200d}",
            "각",
            "힣",
            "\u{1100}",
            "\u{1161}",
            "\u{11a8}",
            "👍",
            "🏽",
            "🇰",
            "🇷",
            "👨‍👩‍👧",
            "\u{600}",
            "\u{915}\u{94d}\u{937}",
            "\u{93f}",
            "é",
            "ß",
            "©",
            "\u{fe0f}",
            "\u{c0}",
            "\u{24f}",
            "\u{250}",
            "\u{bf}",
            "Ж",
            "\u{482}",
            "\u{483}",
            "\u{489}",
            "\u{3ff}",
            "\u{ad}",
            "\u{d7a3}",
            "\u{d7a4}",
            "\u{abff}",
        ]);
        prop::collection::vec(
            prop_oneof![
                pieces.prop_map(String::from),
                any::<char>().prop_map(String::from)
            ],
            0..40,
        )
        .prop_map(|v| v.concat())
    }

    /// Text made of clusters that start with a base character, so that no two
    /// of them join in either order: the domain where reversing by graphemes
    /// twice gives the input back. (Arbitrary text can re-join at new seams:
    /// "\u{301}e" reverses to "e\u{301}", one cluster.)
    fn stand_alone_clusters() -> impl Strategy<Value = String> {
        let clusters = prop::sample::select(vec![
            "a",
            "Z",
            " ",
            "1",
            "\r\n",
            "\t",
            "e\u{301}",
            "각",
            "힣",
            "\u{1100}\u{1161}\u{11a8}",
            "👍",
            "👍🏽",
            "🇰🇷",
            "👨‍👩‍👧",
            "\u{915}\u{94d}\u{937}",
            "é",
            "ß",
            "©\u{fe0f}",
        ]);
        prop::collection::vec(clusters, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn fast_path_matches_plain_segmentation(text in mixed_text()) {
            prop_assert_eq!(reversed(Mode::Graphemes, &text), reference_graphemes(&text));
        }

        #[test]
        fn reversing_twice_is_identity_in_every_mode(text in stand_alone_clusters()) {
            for mode in [Mode::Graphemes, Mode::Chars, Mode::Bytes] {
                prop_assert_eq!(reversed_twice(mode, text.as_bytes()), text.as_bytes());
            }
        }

        #[test]
        fn chars_and_bytes_reverse_twice_to_identity_on_any_text(text in mixed_text()) {
            for mode in [Mode::Chars, Mode::Bytes] {
                prop_assert_eq!(reversed_twice(mode, text.as_bytes()), text.as_bytes());
            }
        }

        #[test]
        fn bytes_mode_reverses_twice_to_identity_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(reversed_twice(Mode::Bytes, &bytes), bytes);
        }

        #[test]
        fn invalid_utf8_offset_matches_std(bytes in prop::collection::vec(any::<u8>(), 0..32)) {
            let mut out = vec![0; bytes.len()];
            match std::str::from_utf8(&bytes) {
                Ok(_) => prop_assert!(reverse(Mode::Graphemes, &bytes, &mut out).is_ok()),
                Err(e) => prop_assert_eq!(
                    reverse(Mode::Graphemes, &bytes, &mut out),
                    Err(ReverseError::InvalidUtf8 { offset: e.valid_up_to() })
                ),
            }
        }
    }
}
