//! Fuzz target: see `reversal_fuzz::reverse`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    |case: reversal_fuzz::reverse::Case| reversal_fuzz::reverse::check(&case)
);
