//! Fuzz target: see `reversal_fuzz::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    |case: reversal_fuzz::session::Case| reversal_fuzz::session::check(&case)
);
