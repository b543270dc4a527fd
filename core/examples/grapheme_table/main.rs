//! Regenerates `src/reverse/grapheme_table.rs` from the UCD files in
//! `core/ucd/` and prints the table's size.
//!
//! Run: `cargo run -p reversal-core --example grapheme_table`
//!
//! `cargo test -p reversal-core --test grapheme_table` checks that the
//! checked-in table is what this writes.

mod generate;

use std::path::Path;

fn main() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = generate::generate(&core.join("ucd"));
    let path = core.join(generate::TABLE_PATH);
    std::fs::write(&path, &table).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("wrote {}", path.display());
}
