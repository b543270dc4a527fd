//! `reversal-bench` and `tap-echo`: `host-tap` over a real TAP, measured
//! against a kernel-stack baseline and against smoltcp's raw ceiling. This
//! library holds the benchmark's pieces; the binaries' documentation says
//! how to run them, and BENCHMARKS.md what they measured.
//!
//! - [`workloads`]: the clients, driven from the kernel's side;
//! - [`kernel_server`]: the kernel-stack baseline server;
//! - [`histogram`]: latency percentiles;
//! - [`report`]: the Markdown table and the targets.
//!
//! The network namespace, the TAP and the servers as child processes come
//! from `reversal-netns`, which host-tap's TAP tests use too.

pub mod histogram;
pub mod kernel_server;
pub mod report;
pub mod workloads;
