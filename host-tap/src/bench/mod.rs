//! The pieces of `reversal-bench`; see that binary's documentation.

pub mod histogram;
pub mod kernel_server;
pub mod namespace;
pub mod process;
pub mod report;
pub mod workloads;
