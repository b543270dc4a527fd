//! Extended grapheme cluster boundaries (UAX #29), forward only, over the
//! generated class table in `grapheme_table.rs`.
//!
//! Written here rather than taken from `unicode-segmentation` for flash:
//! its range tables and code take about 31 KB, this table 3.2 KB (see
//! BENCHMARKS.md); no `no_std` crate of the same Unicode version was small
//! enough. `unicode-segmentation` stays the oracle of the tests.

use super::grapheme_table::{self as table, Class};

/// The class of `c`: ASCII and the Hangul LV/LVT split in code, the rest
/// from the table.
#[inline]
fn class_of(c: char) -> Class {
    let cp = u32::from(c);
    if cp < 0x80 {
        return match cp {
            0x0D => Class::Cr,
            0x0A => Class::Lf,
            0x00..=0x1F | 0x7F => Class::Control,
            _ => Class::Other,
        };
    }
    let index = if cp < table::DENSE_END {
        cp
    } else if table::PLANE_14.contains(&cp) {
        cp - table::PLANE_14.start + table::DENSE_END
    } else {
        return Class::Other;
    };
    let block = (index >> table::BLOCK_SHIFT) as usize;
    let offset = (index & ((1 << table::BLOCK_SHIFT) - 1)) as u16;
    let runs = &table::RUNS
        [usize::from(table::BLOCK_STARTS[block])..usize::from(table::BLOCK_STARTS[block + 1])];
    // The last run starting at or before `offset`; every block's first run
    // starts at 0.
    let run = runs[runs.partition_point(|&run| run >> 4 <= offset) - 1];
    match table::STORED_CLASSES[usize::from(run & 0xF)] {
        Class::Lv if !(cp - table::HANGUL_SYLLABLES.start()).is_multiple_of(28) => Class::Lvt,
        class => class,
    }
}

/// How the text before the current position ends, for the rules that look
/// back further than one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Context {
    /// GB11: `ExtPict Extend*` (and then `ZWJ`) ends the text.
    emoji: Emoji,
    /// GB9c: `Consonant [Extend Linker]*` (with a Linker) ends the text.
    conjunct: Conjunct,
    /// GB12, GB13: an odd number of Regional Indicators ends the text.
    odd_regional_indicators: bool,
}

/// How far the text's end matches `ExtPict Extend* ZWJ` (GB11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emoji {
    None,
    /// `ExtPict Extend*`.
    Pictograph,
    /// `ExtPict Extend* ZWJ`: a pictograph joins next.
    PictographZwj,
}

/// How far the text's end matches GB9c's `Consonant [Extend Linker]*`
/// with at least one Linker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conjunct {
    None,
    /// A consonant, then InCB=Extend only.
    Consonant,
    /// A consonant, then at least one Linker: a consonant joins next.
    Linked,
}

impl Context {
    const START: Context = Context {
        emoji: Emoji::None,
        conjunct: Conjunct::None,
        odd_regional_indicators: false,
    };

    /// The context once a character of class `class` follows.
    #[inline]
    fn then(self, class: Class) -> Context {
        let extend = matches!(class, Class::Extend | Class::InCbExtend | Class::InCbLinker);
        Context {
            emoji: match (self.emoji, class) {
                (_, Class::ExtendedPictographic) => Emoji::Pictograph,
                (Emoji::Pictograph, _) if extend => Emoji::Pictograph,
                (Emoji::Pictograph, Class::Zwj) => Emoji::PictographZwj,
                _ => Emoji::None,
            },
            conjunct: match (self.conjunct, class) {
                (_, Class::InCbConsonant) => Conjunct::Consonant,
                (Conjunct::Consonant | Conjunct::Linked, Class::InCbLinker) => Conjunct::Linked,
                (conjunct, Class::InCbExtend | Class::Zwj) => conjunct,
                _ => Conjunct::None,
            },
            odd_regional_indicators: class == Class::RegionalIndicator
                && !self.odd_regional_indicators,
        }
    }
}

/// Whether there is no boundary between a character of class `before` and
/// one of class `after`, `context` being how the text ends with `before`.
/// The rules in UAX #29's order; the first that matches decides.
#[inline]
fn joins(before: Class, after: Class, context: Context) -> bool {
    use Class::*;
    match (before, after) {
        (Cr, Lf) => true,                                                          // GB3
        (Control | Cr | Lf, _) | (_, Control | Cr | Lf) => false,                  // GB4, GB5
        (L, L | V | Lv | Lvt) | (Lv | V, V | T) | (Lvt | T, T) => true,            // GB6, GB7, GB8
        (_, Extend | InCbExtend | InCbLinker | Zwj) => true,                       // GB9
        (_, SpacingMark) | (Prepend, _) => true,                                   // GB9a, GB9b
        (_, InCbConsonant) => context.conjunct == Conjunct::Linked,                // GB9c
        (Zwj, ExtendedPictographic) => context.emoji == Emoji::PictographZwj,      // GB11
        (RegionalIndicator, RegionalIndicator) => context.odd_regional_indicators, // GB12, GB13
        _ => false,                                                                // GB999
    }
}

/// The end of the extended grapheme cluster that starts at `start`, which
/// must be a cluster boundary of `text` (0 is one).
///
/// Starting afresh at any boundary is exact: the rules that look back
/// (GB9c, GB11, GB12, GB13) only look across characters that GB9 joins
/// (Extend, ZWJ), back to a Consonant, pictograph or Regional Indicator at
/// or after the cluster's start.
pub(super) fn cluster_end(text: &str, start: usize) -> usize {
    debug_assert!(text.is_char_boundary(start));
    // `get` instead of indexing: no panic path, whose message formatting
    // would cost more flash than the table (past the end still returns
    // the end, so callers always advance).
    let mut chars = text.get(start..).unwrap_or_default().chars();
    let Some(first) = chars.next() else {
        return text.len();
    };
    let mut before = class_of(first);
    let mut context = Context::START.then(before);
    let mut end = start + first.len_utf8();
    for c in chars {
        let after = class_of(c);
        if !joins(before, after, context) {
            break;
        }
        context = context.then(after);
        before = after;
        end += c.len_utf8();
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_segmentation::UnicodeSegmentation;

    /// Cluster ends of `text` by our segmenter, restarted at each boundary
    /// as `reverse` does; the oracle segments the whole text with all the
    /// look-back it needs, so comparing the two also checks the restarts.
    fn ends(text: &str) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut start = 0;
        while start < text.len() {
            start = cluster_end(text, start);
            ends.push(start);
        }
        ends
    }

    /// Cluster ends of `text` by `unicode-segmentation`.
    fn oracle_ends(text: &str) -> Vec<usize> {
        text.grapheme_indices(true)
            .map(|(start, cluster)| start + cluster.len())
            .collect()
    }

    #[test]
    fn table_is_of_the_oracles_unicode_version() {
        let (major, minor, update) = table::UNICODE_VERSION;
        assert_eq!(
            (u64::from(major), u64::from(minor), u64::from(update)),
            unicode_segmentation::UNICODE_VERSION
        );
    }

    /// Every line of the official test file of the table's version, and the
    /// oracle on the same lines (so that "identical to the oracle" also means
    /// "correct").
    #[test]
    fn official_grapheme_break_tests_pass() {
        let file = include_str!("../../ucd/GraphemeBreakTest.txt");
        let (major, minor, update) = table::UNICODE_VERSION;
        assert!(file.starts_with(&format!("# GraphemeBreakTest-{major}.{minor}.{update}.txt")));
        let mut cases = 0;
        for (number, line) in file.lines().enumerate() {
            let data = line.split('#').next().unwrap().trim();
            if data.is_empty() {
                continue;
            }
            // "÷ 0061 × 0308 ÷": code points between break (÷) and no-break (×) marks.
            let mut text = String::new();
            let mut expected = Vec::new();
            for token in data.split_whitespace() {
                match token {
                    "÷" if !text.is_empty() => expected.push(text.len()),
                    "÷" | "×" => {}
                    hex => {
                        text.push(char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap())
                    }
                }
            }
            assert_eq!(ends(&text), expected, "line {}: {line}", number + 1);
            assert_eq!(oracle_ends(&text), expected, "oracle, line {}", number + 1);
            cases += 1;
        }
        // The 17.0.0 file has 766 test lines; all of them ran.
        assert_eq!(cases, 766);
    }

    /// One character of each class, and sequences that leave each context
    /// the rules look back at.
    const NEIGHBOURS: [&str; 24] = [
        "a",                            // Other
        "\r",                           // CR
        "\n",                           // LF
        "\u{0}",                        // Control
        "\u{85}",                       // Control (non-ASCII)
        "\u{200C}",                     // Extend, InCB=None
        "\u{301}",                      // Extend, InCB=Extend
        "\u{94D}",                      // Extend, InCB=Linker
        "\u{200D}",                     // ZWJ
        "\u{1F1E6}",                    // Regional_Indicator
        "\u{1F1E6}\u{1F1E7}",           // a pair of them
        "\u{600}",                      // Prepend
        "\u{903}",                      // SpacingMark
        "\u{1100}",                     // L
        "\u{1160}",                     // V
        "\u{11A8}",                     // T
        "\u{AC00}",                     // LV
        "\u{AC01}",                     // LVT
        "\u{1F600}",                    // Extended_Pictographic
        "\u{1F600}\u{301}\u{200D}",     // ExtPict Extend ZWJ
        "\u{915}",                      // InCB=Consonant
        "\u{915}\u{94D}",               // Consonant Linker
        "\u{915}\u{301}\u{94D}\u{301}", // Consonant Extend Linker Extend
        "\u{915}\u{94D}\u{200D}",       // Consonant Linker ZWJ
    ];

    /// Every code point alone and between each neighbour on either side, as
    /// the oracle segments them: 54 million segmentations, about 10 s with
    /// `--release` (the project's test command), two minutes without.
    #[test]
    fn every_code_point_segments_as_the_oracle_does() {
        let mut text = String::new();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            for (before, after) in core::iter::once(("", ""))
                .chain(NEIGHBOURS.iter().flat_map(|n| [(*n, ""), ("", *n)]))
            {
                text.clear();
                text.push_str(before);
                text.push(c);
                text.push_str(after);
                assert_eq!(
                    ends(&text),
                    oracle_ends(&text),
                    "U+{:04X} in {text:?}",
                    u32::from(c)
                );
            }
        }
    }

    /// Pieces of every class, for random text that exercises every rule.
    fn mixed_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(NEIGHBOURS.to_vec());
        prop::collection::vec(
            prop_oneof![
                3 => pieces.prop_map(String::from),
                1 => any::<char>().prop_map(String::from),
            ],
            0..48,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn random_text_segments_as_the_oracle_does(text in mixed_text()) {
            prop_assert_eq!(ends(&text), oracle_ends(&text));
        }
    }
}
