//! The grapheme reversal as it was before the core had a segmenter of its
//! own (tree 2932a0e): the same fast path, with `unicode-segmentation` for
//! everything else. A frozen copy, kept only so that the bench measures the
//! new implementation side by side with the old in one run.

use unicode_segmentation::UnicodeSegmentation;

/// Grapheme reversal of `input` into `output` (same length), with the UTF-8
/// check that `reverse` made before it, as `reverse` does now.
pub fn reverse_graphemes(input: &[u8], output: &mut [u8]) {
    core::str::from_utf8(input).expect("the bench's lines are UTF-8");
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
        pos = reverse_complex_span(input, output, pos);
    }
}

/// Moves an ASCII run whose ends are cluster boundaries, keeping CR LF whole.
fn place_ascii_run(input: &[u8], output: &mut [u8], start: usize, end: usize) {
    place_reversed(input, output, start, end);
    let run = &input[start..end];
    if !run.contains(&b'\r') {
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

/// Reverses, by full segmentation, the span from `start` (a cluster boundary)
/// to the next certain boundary, and returns that boundary.
fn reverse_complex_span(input: &[u8], output: &mut [u8], start: usize) -> usize {
    let n = input.len();
    let mut prev_simple = false;
    let mut prev_is_cr = false;
    let mut i = start;
    let mut end = n;
    while i < n {
        let len = simple_len(input, i);
        let simple = len > 0;
        if i > start && prev_simple && simple && !(prev_is_cr && input[i] == b'\n') {
            end = i;
            break;
        }
        prev_simple = simple;
        prev_is_cr = input[i] == b'\r';
        i += if simple { len } else { utf8_len(input[i]) };
    }
    // The span starts and ends on character boundaries of valid UTF-8.
    let span = core::str::from_utf8(&input[start..end]).unwrap_or_default();
    for (offset, cluster) in span.grapheme_indices(true) {
        let cluster_start = start + offset;
        place(input, output, cluster_start, cluster_start + cluster.len());
    }
    end
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

/// End of the run of ASCII bytes that starts at `start`.
#[inline(always)]
fn ascii_run_end(input: &[u8], start: usize) -> usize {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut i = start;
    // Eight bytes at a time while the word has no high bit set.
    while let Some(word) = input.get(i..i + 8) {
        let word = u64::from_ne_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        if word & HIGH_BITS != 0 {
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
