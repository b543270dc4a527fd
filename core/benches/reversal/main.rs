//! Reversal throughput per mode on ASCII and mixed text; graphemes side by
//! side with the implementation before our own segmenter (`baseline.rs`) and
//! with plain `unicode-segmentation`; per-line session overhead.
//!
//! Run: `cargo bench -p reversal-core --bench reversal`

mod baseline;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reversal_core::reverse::{Mode, reverse};
use reversal_core::{Session, SessionConfig};
use smoltcp::time::Instant;
use unicode_segmentation::UnicodeSegmentation;

/// An ASCII line of about 1 KiB.
fn ascii_line() -> String {
    "The quick brown fox jumps over the lazy dog, 0123456789! ".repeat(18)
}

/// A 1 KiB-ish line of Latin, Hangul and emoji, as chat text looks.
fn mixed_line() -> String {
    "Hello 안녕하세요 café 👍🏽 naïve 🇰🇷 세계 e\u{301}t\u{e9} ok ".repeat(14)
}

fn reversal(c: &mut Criterion) {
    let mut group = c.benchmark_group("reverse");
    for (name, text) in [("ascii", ascii_line()), ("mixed", mixed_line())] {
        let mut out = vec![0u8; text.len()];
        let mut before = vec![0u8; text.len()];
        reverse(Mode::Graphemes, text.as_bytes(), &mut out).unwrap();
        baseline::reverse_graphemes(text.as_bytes(), &mut before);
        assert_eq!(out, before, "both implementations agree on the {name} line");
        group.throughput(Throughput::Bytes(text.len() as u64));
        for mode in [Mode::Graphemes, Mode::Chars, Mode::Bytes] {
            group.bench_with_input(BenchmarkId::new(mode.name(), name), &text, |b, text| {
                b.iter(|| reverse(mode, black_box(text.as_bytes()), &mut out).unwrap())
            });
        }
        // The same fast path over unicode-segmentation, as before.
        group.bench_with_input(
            BenchmarkId::new("graphemes-before", name),
            &text,
            |b, text| b.iter(|| baseline::reverse_graphemes(black_box(text.as_bytes()), &mut out)),
        );
        // Segmentation alone, no fast path.
        group.bench_with_input(
            BenchmarkId::new("segmentation-only", name),
            &text,
            |b, text| {
                b.iter(|| {
                    let n = text.len();
                    for (i, g) in black_box(text.as_str()).grapheme_indices(true) {
                        out[n - i - g.len()..n - i].copy_from_slice(g.as_bytes());
                    }
                })
            },
        );
    }
    group.finish();
}

fn session_per_line(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    for (name, line_len) in [("8-byte-lines", 8usize), ("1KiB-lines", 1024)] {
        let mut stream = Vec::new();
        while stream.len() < 64 * 1024 {
            stream.extend(std::iter::repeat_n(b'x', line_len));
            stream.push(b'\n');
        }
        let lines = stream.len() / (line_len + 1);
        let mut out = vec![0u8; stream.len()];
        group.throughput(Throughput::Elements(lines as u64));
        let mut line = [0u8; 1024];
        group.bench_function(name, |b| {
            let mut session = Session::with_config(SessionConfig::new(1024), &mut line).unwrap();
            b.iter(|| {
                let p = session.receive(Instant::ZERO, black_box(&stream), &mut out);
                assert_eq!(p.consumed, stream.len());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, reversal, session_per_line);
criterion_main!(benches);
