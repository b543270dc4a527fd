//! `reversal-bench` and `tap-echo`: `host-tap` over a real TAP, measured
//! against a kernel-stack baseline and against smoltcp's raw ceiling. This
//! library holds the benchmark's pieces; the binaries' documentation says
//! how to run them, and BENCHMARKS.md what they measured.
//!
//! - [`workloads`]: the clients, driven from the kernel's side;
//! - [`admission`]: the clients of the admission workloads (bursts,
//!   crowds, half-open handshakes, SYN floods), and [`forged`], the SYNs
//!   from forged sources they send;
//! - [`kernel_server`]: the kernel-stack baseline server;
//! - [`histogram`]: latency percentiles;
//! - [`report`]: the Markdown table and the targets.
//!
//! The network namespace, the TAP and the servers as child processes come
//! from `reversal-netns`, which host-tap's TAP tests use too. The packet
//! socket that writes forged frames onto the TAP is in the private `sys`
//! module, the only one with `unsafe`.

pub mod admission;
pub mod forged;
pub mod histogram;
pub mod kernel_server;
pub mod report;
pub mod workloads;
// Lint policy: `unsafe` is allowed here only, each block with its SAFETY comment.
#[allow(unsafe_code)]
mod sys;
