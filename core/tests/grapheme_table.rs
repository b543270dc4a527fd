//! The checked-in grapheme table is what its generator makes from the
//! checked-in UCD files (`core/ucd/`). When this fails, regenerate with
//! `cargo run -p reversal-core --example grapheme_table` and review the diff.

#[path = "../examples/grapheme_table/generate.rs"]
mod generate;

use std::path::Path;

#[test]
fn checked_in_table_is_what_the_generator_makes() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated = generate::generate(&core.join("ucd"));
    let checked_in = std::fs::read_to_string(core.join(generate::TABLE_PATH)).unwrap();
    // Line by line first, so that a failure names the first stale line
    // instead of printing two whole tables.
    for (number, (want, got)) in generated.lines().zip(checked_in.lines()).enumerate() {
        assert_eq!(
            got,
            want,
            "{} line {} is stale",
            generate::TABLE_PATH,
            number + 1
        );
    }
    assert_eq!(
        checked_in.len(),
        generated.len(),
        "{} is stale",
        generate::TABLE_PATH
    );
}
