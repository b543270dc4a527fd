//! Replays the stored corpus of every target through its checks, so that a
//! plain `cargo test` (no libFuzzer, any toolchain) keeps every input the
//! fuzzer once found interesting passing.

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};

/// Runs `check` on every file of `corpus/<target>`, decoded as libFuzzer
/// decodes it (`arbitrary_take_rest`); returns how many there were.
fn replay<'a, T: Arbitrary<'a>>(target: &str, check: fn(&T), inputs: &'a [Vec<u8>]) -> usize {
    for input in inputs {
        // Bytes that do not decode are skipped by libFuzzer too.
        if let Ok(case) = T::arbitrary_take_rest(Unstructured::new(input)) {
            check(&case);
        }
    }
    println!("{target}: {} inputs", inputs.len());
    inputs.len()
}

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("read a corpus file"))
        .collect()
}

#[test]
fn reverse_corpus_passes() {
    let inputs = inputs("reverse");
    assert!(replay("reverse", reversal_fuzz::reverse::check, &inputs) > 0);
}

#[test]
fn datagram_corpus_passes() {
    let inputs = inputs("datagram");
    assert!(replay("datagram", reversal_fuzz::datagram::check, &inputs) > 0);
}

#[test]
fn session_corpus_passes() {
    let inputs = inputs("session");
    assert!(replay("session", reversal_fuzz::session::check, &inputs) > 0);
}

#[test]
fn server_corpus_passes() {
    let inputs = inputs("server");
    assert!(replay("server", reversal_fuzz::server::check, &inputs) > 0);
}
