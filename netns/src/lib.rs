//! Network namespaces, TAPs and bounded child processes: the plumbing that
//! host-tap's TAP tests and `reversal-bench` share, so that there is one way
//! to keep a TAP off the machine's own network.
//!
//! - [`namespace`]: a test or a program re-runs itself in a network and
//!   mount namespace of its own (`unshare --net --mount`), or says why it
//!   cannot (`skipped: ...`, a failure under `REQUIRE_TAP=1`);
//! - [`tap`]: the `ip` commands and a TAP for the kernel's side of a test;
//! - [`process`]: child processes bounded in time and killed with their
//!   handle (and with their parent), and what they cost, from `/proc`.
//!
//! Linux only. The raw calls (a child that dies with its parent, the clock
//! tick of `/proc`) are in the private `sys` module, the only one with
//! `unsafe`.

use std::fmt;
use std::io;

pub mod namespace;
pub mod process;
pub mod tap;
// Lint policy: `unsafe` is allowed here only, each block with its SAFETY comment.
#[allow(unsafe_code)]
mod sys;

/// Why a namespace, a TAP in it or one of its settings could not be set up.
#[derive(Debug)]
pub enum SetupError {
    /// Not root, no `/dev/net/tun`, a tool missing, or no namespaces here
    /// (see [`namespace::why_no_namespace`]).
    Unavailable(String),
    /// This program could not be run again in a namespace of its own.
    Namespace(String),
    /// An `ip` command failed.
    Ip {
        /// The command line.
        command: String,
        /// What it printed on standard error, or why it could not run.
        stderr: String,
    },
    /// A kernel setting under `/proc/sys` could not be written.
    Sysctl {
        /// The file.
        path: &'static str,
        /// Why.
        source: io::Error,
    },
    /// No process attached to the TAP in time.
    NoCarrier {
        /// The TAP's name.
        tap: String,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Unavailable(why) => write!(f, "cannot run here: {why}"),
            SetupError::Namespace(why) => write!(f, "cannot make a network namespace: {why}"),
            SetupError::Ip { command, stderr } => write!(f, "`{command}` failed: {stderr}"),
            SetupError::Sysctl { path, source } => write!(f, "cannot write {path}: {source}"),
            SetupError::NoCarrier { tap } => {
                write!(
                    f,
                    "no server attached to {tap} in time (see its output above)"
                )
            }
        }
    }
}

impl std::error::Error for SetupError {}
