//! Fuzz target: see `reversal_fuzz::server`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    |case: reversal_fuzz::server::Case| reversal_fuzz::server::check(&case)
);
