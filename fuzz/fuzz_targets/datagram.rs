//! Fuzz target: see `reversal_fuzz::datagram`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    |case: reversal_fuzz::datagram::Case| reversal_fuzz::datagram::check(&case)
);
