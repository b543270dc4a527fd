//! Coverage-guided fuzz targets for `reversal-core`, as a library so that the
//! same checks replay the stored corpus under plain `cargo test`.
//!
//! Each module is one target: a [`arbitrary::Arbitrary`] `Case` and a
//! `check` that panics when the core breaks a promise of the SPEC:
//! - [`reverse`]: every mode against a plain oracle ([`oracle`]);
//! - [`datagram`]: the UDP answer, never larger than its datagram;
//! - [`session`]: any configuration, any chunking of input and output space;
//! - [`server`]: the whole `Server` on an Ethernet segment, fed arbitrary
//!   frames while a scripted client talks to it.
//!
//! How to run them on a stable toolchain: `fuzz/README.md`.

// The counting global allocator is the crate's only `unsafe`.
#[allow(unsafe_code)]
mod allocations;
pub mod datagram;
pub mod oracle;
pub mod reverse;
pub mod server;
pub mod session;

use arbitrary::Arbitrary;
use reversal_core::Mode;

/// Bytes that shape the fuzzer's input toward what the core parses: raw
/// bytes (invalid UTF-8 included), valid text, or text built from pieces
/// that sit on the edges of line framing and grapheme segmentation.
#[derive(Debug, Clone, Arbitrary)]
pub enum Input {
    /// Anything.
    Bytes(Vec<u8>),
    /// Valid UTF-8.
    Text(String),
    /// A concatenation of [`PIECES`], picked by index.
    Pieces(Vec<u8>),
}

/// Edges of framing (CR, LF, CR LF), of UTF-8 (a stray continuation byte, a
/// cut sequence) and of segmentation (marks, ZWJ, modifiers, flags, jamo,
/// prepend and SpacingMark characters, the ranges the fast path treats as
/// simple and their neighbours).
pub const PIECES: &[&[u8]] = &[
    b"a",
    b"Z0 ",
    b"\r",
    b"\n",
    b"\r\n",
    b"\xff",
    b"\x80",
    b"\xe2\x82",
    "e\u{301}".as_bytes(),
    "\u{301}".as_bytes(),
    "\u{200d}".as_bytes(),
    "👍".as_bytes(),
    "🏽".as_bytes(),
    "🇰".as_bytes(),
    "🇷".as_bytes(),
    "각".as_bytes(),
    "\u{1100}".as_bytes(),
    "\u{1161}".as_bytes(),
    "\u{11a8}".as_bytes(),
    "\u{600}".as_bytes(),
    "\u{915}\u{94d}".as_bytes(),
    "\u{93f}".as_bytes(),
    "é".as_bytes(),
    "Ж".as_bytes(),
    "\u{482}".as_bytes(),
    "\u{483}".as_bytes(),
    "\u{24f}".as_bytes(),
    "\u{250}".as_bytes(),
    "\u{d7a3}".as_bytes(),
    "\u{d7a4}".as_bytes(),
    "\u{fe0f}".as_bytes(),
    "\u{e0020}".as_bytes(),
];

impl Input {
    /// The bytes this input stands for.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Input::Bytes(bytes) => bytes.clone(),
            Input::Text(text) => text.as_bytes().to_vec(),
            Input::Pieces(picks) => picks
                .iter()
                .flat_map(|&pick| PIECES[usize::from(pick) % PIECES.len()].iter().copied())
                .collect(),
        }
    }
}

/// One of the three modes, from a byte.
pub fn mode(pick: u8) -> Mode {
    match pick % 3 {
        0 => Mode::Graphemes,
        1 => Mode::Chars,
        _ => Mode::Bytes,
    }
}
