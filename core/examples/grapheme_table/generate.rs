//! The generator of `src/reverse/grapheme_table.rs`: reads the UCD files in
//! `core/ucd/`, classifies every code point for the grapheme segmenter and
//! writes the classes as a run table split into blocks.
//!
//! Shared by the `grapheme_table` example (which writes the file) and the
//! `grapheme_table` test (which checks that the checked-in file is current).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The UCD version the files in `core/ucd/` must declare.
pub const UNICODE_VERSION: (u8, u8, u8) = (17, 0, 0);

/// Where the checked-in table lives, relative to the core's manifest.
pub const TABLE_PATH: &str = "src/reverse/grapheme_table.rs";

/// log2 of the code points per block: each block's runs are searched alone.
const BLOCK_SHIFT: u32 = 10;
/// Code points from here up are `Other`, except plane 14's first 4096.
const DENSE_END: u32 = 0x20000;
/// Plane 14's tags and variation selectors (Control and Extend), stored
/// after the dense part.
const PLANE_14: core::ops::Range<u32> = 0xE0000..0xE1000;
const HANGUL_SYLLABLES: core::ops::RangeInclusive<u32> = 0xAC00..=0xD7A3;
const CODE_POINTS: u32 = 0x11_0000;

/// The segmenter's classes: Grapheme_Cluster_Break refined by
/// Extended_Pictographic and Indic_Conjunct_Break. The first ones fit in a
/// run's four class bits; the last three are told apart in code (ASCII and
/// Hangul syllable arithmetic) and never stored.
const CLASSES: [(&str, &str); 18] = [
    ("Other", "Grapheme_Cluster_Break=Other, none of the below."),
    ("Control", "Control (CR and LF apart)."),
    ("Extend", "Extend with InCB=None."),
    ("InCbExtend", "Extend with InCB=Extend."),
    ("InCbLinker", "Extend with InCB=Linker (viramas)."),
    ("Zwj", "ZWJ (InCB=Extend)."),
    ("RegionalIndicator", "Regional_Indicator."),
    ("Prepend", "Prepend."),
    ("SpacingMark", "SpacingMark."),
    ("L", "Hangul leading jamo."),
    ("V", "Hangul vowel jamo."),
    ("T", "Hangul trailing jamo."),
    (
        "Lv",
        "Hangul LV syllable. The table stores every precomposed syllable as `Lv`; `class_of` makes every one but each 28th `Lvt`.",
    ),
    (
        "ExtendedPictographic",
        "Extended_Pictographic (Other otherwise).",
    ),
    ("InCbConsonant", "InCB=Consonant (Other otherwise)."),
    ("Cr", "U+000D, classified in code."),
    ("Lf", "U+000A, classified in code."),
    ("Lvt", "Hangul LVT syllable, derived in code from `Lv`."),
];
/// The values of Grapheme_Cluster_Break besides the default, Other.
const GRAPHEME_CLUSTER_BREAK: [&str; 13] = [
    "CR",
    "LF",
    "Control",
    "Extend",
    "ZWJ",
    "Regional_Indicator",
    "Prepend",
    "SpacingMark",
    "L",
    "V",
    "T",
    "LV",
    "LVT",
];
/// How many classes the table stores (four bits each).
const STORED: usize = 15;

/// One UCD data line: a code point range and its fields after the first.
struct Line<'a> {
    first: u32,
    last: u32,
    fields: Vec<&'a str>,
}

fn parse(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.lines().filter_map(|line| {
        let data = line.split('#').next().unwrap_or("").trim();
        if data.is_empty() {
            return None;
        }
        let mut fields = data.split(';').map(str::trim);
        let range = fields.next().expect("a code point range");
        let (first, last) = range.split_once("..").unwrap_or((range, range));
        let hex = |s: &str| u32::from_str_radix(s, 16).expect("hex code point");
        Some(Line {
            first: hex(first),
            last: hex(last),
            fields: fields.collect(),
        })
    })
}

/// Reads a UCD file and checks the version its header declares.
fn read(ucd: &Path, name: &str, header: &str) -> String {
    let text = std::fs::read_to_string(ucd.join(name))
        .unwrap_or_else(|e| panic!("{}: {e}", ucd.join(name).display()));
    assert!(
        text.lines().take(10).any(|l| l.starts_with(header)),
        "{name} does not start with {header:?}"
    );
    text
}

/// The class name of every code point, from the three UCD files.
pub fn classify(ucd: &Path) -> Vec<&'static str> {
    let (major, minor, update) = UNICODE_VERSION;
    let version = format!("{major}.{minor}.{update}");
    let n = CODE_POINTS as usize;

    let mut gcb = vec!["Other"; n];
    let text = read(
        ucd,
        "GraphemeBreakProperty.txt",
        &format!("# GraphemeBreakProperty-{version}.txt"),
    );
    for line in parse(&text) {
        let value = GRAPHEME_CLUSTER_BREAK
            .into_iter()
            .find(|name| *name == line.fields[0])
            .unwrap_or_else(|| panic!("unknown Grapheme_Cluster_Break {:?}", line.fields[0]));
        gcb[line.first as usize..=line.last as usize].fill(value);
    }

    let mut pictographic = vec![false; n];
    let text = read(
        ucd,
        "emoji-data.txt",
        &format!("# Version: {major}.{minor}"),
    );
    for line in parse(&text).filter(|l| l.fields[0] == "Extended_Pictographic") {
        pictographic[line.first as usize..=line.last as usize].fill(true);
    }

    let mut incb = vec!["None"; n];
    let text = read(
        ucd,
        "DerivedCoreProperties.txt",
        &format!("# DerivedCoreProperties-{version}.txt"),
    );
    for line in parse(&text).filter(|l| l.fields[0] == "InCB") {
        incb[line.first as usize..=line.last as usize].fill(match line.fields[1] {
            "Consonant" => "Consonant",
            "Extend" => "Extend",
            "Linker" => "Linker",
            other => panic!("unknown InCB value {other:?}"),
        });
    }

    (0..n)
        .map(|cp| {
            match (gcb[cp], pictographic[cp], incb[cp]) {
                ("Other", true, "None") => "ExtendedPictographic",
                ("Other", false, "Consonant") => "InCbConsonant",
                ("Extend", false, "Linker") => "InCbLinker",
                ("Extend", false, "Extend") => "InCbExtend",
                ("ZWJ", false, "Extend") => "Zwj",
                ("CR", false, "None") => "Cr",
                ("LF", false, "None") => "Lf",
                ("LV", false, "None") => "Lv",
                ("LVT", false, "None") => "Lvt",
                ("Regional_Indicator", false, "None") => "RegionalIndicator",
                (
                    gcb @ ("Other" | "Control" | "Extend" | "Prepend" | "SpacingMark" | "L" | "V"
                    | "T"),
                    false,
                    "None",
                ) => gcb,
                // The segmenter's rules assume none of these overlap otherwise.
                unexpected => panic!("U+{cp:04X}: unexpected properties {unexpected:?}"),
            }
        })
        .collect()
}

/// The class each code point's table entry holds: ASCII and Hangul
/// syllables are classified in code, the rest as `classify` says.
fn stored(classes: &[&'static str]) -> Vec<&'static str> {
    let mut stored = classes.to_vec();
    for (cp, class) in stored.iter_mut().enumerate().take(0x80) {
        // The segmenter never looks ASCII up; CR and LF are stored as
        // Control so that the table needs no classes of their own.
        assert!(cp == 0x0A || cp == 0x0D || !matches!(*class, "Cr" | "Lf"));
        if matches!(*class, "Cr" | "Lf") {
            *class = "Control";
        }
    }
    for (cp, class) in classes.iter().enumerate() {
        let cp = cp as u32;
        let in_block = HANGUL_SYLLABLES.contains(&cp);
        let expected = if !in_block {
            None
        } else if (cp - HANGUL_SYLLABLES.start()).is_multiple_of(28) {
            Some("Lv")
        } else {
            Some("Lvt")
        };
        match (*class, expected) {
            ("Lv" | "Lvt", None) => panic!("U+{cp:04X}: Hangul syllable outside the block"),
            (class, Some(syllable)) => assert_eq!(class, syllable, "U+{cp:04X}"),
            _ => {}
        }
        if in_block {
            stored[cp as usize] = "Lv";
        }
    }
    stored
}

/// The code points the table covers, in table order.
fn covered() -> impl Iterator<Item = u32> {
    (0..DENSE_END).chain(PLANE_14)
}

/// The generated Rust source of `src/reverse/grapheme_table.rs`.
pub fn generate(ucd: &Path) -> String {
    let classes = classify(ucd);
    for (cp, class) in classes.iter().enumerate() {
        let cp = cp as u32;
        assert!(
            cp < DENSE_END || PLANE_14.contains(&cp) || *class == "Other",
            "U+{cp:04X} is {class} but lies outside the table"
        );
    }
    let stored = stored(&classes);
    let nibble = |name: &str| -> u16 {
        let index = CLASSES[..STORED]
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not a stored class"));
        index as u16
    };

    // Runs per block: (offset in block << 4) | class, the first at offset 0.
    let block_len = 1u32 << BLOCK_SHIFT;
    let covered: Vec<u32> = covered().collect();
    assert_eq!(covered.len() % block_len as usize, 0);
    let mut block_starts = vec![0u16];
    let mut runs: Vec<u16> = Vec::new();
    for block in covered.chunks(block_len as usize) {
        let mut previous = None;
        for (offset, &cp) in block.iter().enumerate() {
            let class = nibble(stored[cp as usize]);
            if previous != Some(class) {
                runs.push(((offset as u16) << 4) | class);
                previous = Some(class);
            }
        }
        block_starts.push(u16::try_from(runs.len()).expect("run index fits u16"));
    }

    // Counts of code points per class, for the header.
    let mut counts = BTreeMap::new();
    for class in &classes {
        *counts.entry(*class).or_insert(0u32) += 1;
    }

    let (major, minor, update) = UNICODE_VERSION;
    let mut out = String::new();
    let w = &mut out;
    writeln!(
        w,
        "// @generated by `cargo run -p reversal-core --example grapheme_table`"
    )
    .unwrap();
    writeln!(
        w,
        "// from core/ucd/ (Unicode {major}.{minor}.{update}): GraphemeBreakProperty.txt, emoji-data.txt"
    )
    .unwrap();
    writeln!(
        w,
        "// (Extended_Pictographic) and DerivedCoreProperties.txt (InCB). Do not edit:"
    )
    .unwrap();
    writeln!(
        w,
        "// `cargo test -p reversal-core --test grapheme_table` fails when it is stale."
    )
    .unwrap();
    writeln!(w).unwrap();
    writeln!(
        w,
        "//! Grapheme break classes of every code point, for `super::graphemes`.\n//!\n\
         //! Code points below U+{DENSE_END:04X}, then U+{:04X}..U+{:04X} folded to follow\n\
         //! them, are cut into blocks of {block_len}; each block is a list of runs\n\
         //! `offset << 4 | class`, the first at offset 0. Every other code point is\n\
         //! `Other`. {} runs in {} blocks: {} bytes.",
        PLANE_14.start,
        PLANE_14.end - 1,
        runs.len(),
        block_starts.len() - 1,
        2 * (runs.len() + block_starts.len())
    )
    .unwrap();
    writeln!(w).unwrap();
    writeln!(w, "/// The Unicode version the table was generated from.").unwrap();
    writeln!(
        w,
        "pub(super) const UNICODE_VERSION: (u8, u8, u8) = ({major}, {minor}, {update});"
    )
    .unwrap();
    writeln!(w).unwrap();
    writeln!(
        w,
        "/// Grapheme_Cluster_Break refined by Extended_Pictographic and\n\
         /// Indic_Conjunct_Break (InCB), as UAX #29's rules use them."
    )
    .unwrap();
    writeln!(w, "#[derive(Debug, Clone, Copy, PartialEq, Eq)]").unwrap();
    writeln!(w, "pub(super) enum Class {{").unwrap();
    for (name, doc) in CLASSES {
        let count = counts.get(name).copied().unwrap_or(0);
        writeln!(w, "    /// {doc} Code points: {count}.").unwrap();
        writeln!(w, "    {name},").unwrap();
    }
    writeln!(w, "}}").unwrap();
    writeln!(w).unwrap();
    writeln!(w, "/// The class of each value of a run's low four bits.").unwrap();
    writeln!(w, "pub(super) const STORED_CLASSES: [Class; {STORED}] = [").unwrap();
    for (name, _) in &CLASSES[..STORED] {
        writeln!(w, "    Class::{name},").unwrap();
    }
    writeln!(w, "];").unwrap();
    writeln!(w).unwrap();
    writeln!(w, "/// log2 of the code points per block.").unwrap();
    writeln!(w, "pub(super) const BLOCK_SHIFT: u32 = {BLOCK_SHIFT};").unwrap();
    writeln!(w, "/// Code points below this are stored as they are.").unwrap();
    writeln!(w, "pub(super) const DENSE_END: u32 = 0x{DENSE_END:X};").unwrap();
    writeln!(
        w,
        "/// Plane 14's tags and variation selectors, stored from `DENSE_END` on."
    )
    .unwrap();
    writeln!(
        w,
        "pub(super) const PLANE_14: core::ops::Range<u32> = 0x{:X}..0x{:X};",
        PLANE_14.start, PLANE_14.end
    )
    .unwrap();
    writeln!(w, "/// Hangul syllables, stored as `Lv` (see `Class::Lv`).").unwrap();
    writeln!(
        w,
        "pub(super) const HANGUL_SYLLABLES: core::ops::RangeInclusive<u32> = 0x{:X}..=0x{:X};",
        HANGUL_SYLLABLES.start(),
        HANGUL_SYLLABLES.end()
    )
    .unwrap();
    writeln!(w).unwrap();
    writeln!(
        w,
        "/// Index in `RUNS` of each block's first run, and the end of the last."
    )
    .unwrap();
    write_array(w, "BLOCK_STARTS", &block_starts);
    writeln!(w).unwrap();
    writeln!(w, "/// Runs of each block: `offset << 4 | class`.").unwrap();
    write_array(w, "RUNS", &runs);
    out
}

fn write_array(w: &mut String, name: &str, values: &[u16]) {
    writeln!(w, "pub(super) static {name}: [u16; {}] = [", values.len()).unwrap();
    for row in values.chunks(12) {
        let row: Vec<String> = row.iter().map(|v| format!("0x{v:04x}")).collect();
        writeln!(w, "    {},", row.join(", ")).unwrap();
    }
    writeln!(w, "];").unwrap();
}
