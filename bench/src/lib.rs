//! The pieces of `reversal-bench`; see that binary's documentation.

pub mod histogram;
pub mod kernel_server;
// Process and namespace set-up call libc directly.
#[allow(unsafe_code)]
pub mod namespace;
#[allow(unsafe_code)]
pub mod process;
pub mod report;
pub mod workloads;
