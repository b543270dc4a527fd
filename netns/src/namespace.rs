//! Running in a network and mount namespace of one's own, and saying so
//! when that cannot be done here.
//!
//! There is one way in: the program re-runs itself under
//! `unshare --net --mount` ([`rerun_inside`]), marked so that the re-run
//! knows it is inside ([`is_inside`]) and can check that its namespace is
//! not the one it was started from ([`ensure_inside`]) before it makes a
//! TAP. The kernel deletes the namespace,
//! with its TAPs, when the last of its processes exits, even after a crash.
//! A test uses [`in_own_namespace`]; a program such as `reversal-bench`
//! checks [`why_no_namespace`], then runs [`rerun_inside`] with its own
//! arguments.
//!
//! When a test cannot run here (no root, no `/dev/net/tun`, a missing tool,
//! no namespaces) it prints `skipped: <test>: <why>` and passes, unless
//! `REQUIRE_TAP=1`, where it fails instead ([`skip`]).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::SetupError;
use crate::process::{COMMAND_LIMIT, run, try_run};

/// Set in the re-run that happens inside the namespace, to the network
/// namespace it was started from.
const INSIDE_NAMESPACE: &str = "REVERSAL_NETNS_STARTED_FROM";
/// `nobody` on Debian-like systems; any unprivileged id works.
pub const NOBODY: u32 = 65534;

/// Bound of a whole test in its namespace.
pub const TEST_LIMIT: Duration = Duration::from_secs(90);

/// Runs `body` for `test` inside a network and mount namespace of its own:
/// re-runs this test binary there (where `body` runs) and checks that it
/// passed. Skips when the test cannot run here, `tools` naming the programs
/// it needs besides `unshare` and `ip`.
///
/// ```no_run
/// use reversal_netns::namespace::in_own_namespace;
/// use reversal_netns::tap::ip;
///
/// // The body of `#[test] fn a_tap_can_be_made()`:
/// in_own_namespace("a_tap_can_be_made", &[], || {
///     ip("tuntap add name tap0 mode tap"); // in the test's own namespace
/// });
/// ```
pub fn in_own_namespace(test: &str, tools: &[&str], body: impl FnOnce()) {
    if is_inside() {
        ensure_inside().unwrap_or_else(|error| panic!("{test}: {error}"));
        body();
        return;
    }
    if let Some(reason) = why_no_namespace(tools) {
        skip(test, &reason);
        return;
    }
    let mut unshare = rerun_inside().unwrap_or_else(|error| panic!("{test}: {error}"));
    // `--include-ignored`: an ignored test that was asked for runs here too.
    unshare.args([
        test,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ]);
    let output = run(&mut unshare, b"", TEST_LIMIT);
    expect_one_passed(test, "its namespace", &output);
}

/// Whether this process is the re-run in its own namespace.
pub fn is_inside() -> bool {
    std::env::var_os(INSIDE_NAMESPACE).is_some()
}

/// Checks that this process is a re-run by [`rerun_inside`] and that its
/// network namespace is not the one it was started from.
///
/// # Errors
///
/// [`SetupError::Namespace`] saying which of the two is not so.
pub fn ensure_inside() -> Result<(), SetupError> {
    let started_from = std::env::var_os(INSIDE_NAMESPACE)
        .ok_or_else(|| SetupError::Namespace("not started in a namespace of its own".into()))?;
    if network_namespace()? == started_from {
        return Err(SetupError::Namespace(
            "still in the network namespace it was started from".into(),
        ));
    }
    Ok(())
}

/// This program again, in a fresh network and mount namespace: a command
/// (`unshare --net --mount -- <this program>`) to which the caller adds the
/// arguments, and in which [`is_inside`] is true.
///
/// # Errors
///
/// The path of this program or its network namespace cannot be read.
pub fn rerun_inside() -> Result<Command, SetupError> {
    let exe = std::env::current_exe()
        .map_err(|e| SetupError::Namespace(format!("cannot find this program: {e}")))?;
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--net", "--mount", "--"])
        .arg(exe)
        .env(INSIDE_NAMESPACE, network_namespace()?);
    Ok(unshare)
}

/// The calling thread's network namespace, as `/proc` names it
/// (`net:[<inode>]`).
fn network_namespace() -> Result<OsString, SetupError> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(PathBuf::into_os_string)
        .map_err(|e| SetupError::Namespace(format!("cannot read /proc/thread-self/ns/net: {e}")))
}

/// Why a program cannot run in a namespace of its own and make TAPs there:
/// [`why_unavailable`] for `unshare`, `ip` and `tools`, then
/// [`why_namespaces_fail`].
pub fn why_no_namespace(tools: &[&str]) -> Option<String> {
    let tools: Vec<&str> = ["unshare", "ip"].iter().chain(tools).copied().collect();
    why_unavailable(&tools).or_else(why_namespaces_fail)
}

/// Writes `value` to the kernel setting `path` (under `/proc/sys`); inside a
/// namespace, network settings apply to that namespace only.
///
/// # Errors
///
/// The file cannot be written.
pub fn sysctl(path: &'static str, value: &str) -> Result<(), SetupError> {
    std::fs::write(path, value).map_err(|source| SetupError::Sysctl { path, source })
}

/// Checks that a re-run of `test` ran it and it passed, showing its output.
pub fn expect_one_passed(test: &str, place: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("--- {test} in {place} ---\n{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{test} failed in {place}");
    // A re-run that matched no test would pass too; make sure this one ran.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in {place}"
    );
}

/// Says that `test` is skipped for `reason`, or fails it under `REQUIRE_TAP=1`.
///
/// The test passes as far as libtest knows, so the skip is also appended to
/// the file `$REVERSAL_SKIP_LOG` names, as `<test binary>: <test>: <reason>`:
/// `scripts/test-all` sets it and lists every skip at the end of its output.
pub fn skip(test: &str, reason: &str) {
    if std::env::var("REQUIRE_TAP").as_deref() == Ok("1") {
        panic!("{test} cannot run ({reason}) and REQUIRE_TAP=1");
    }
    println!("skipped: {test}: {reason}");
    if let Some(log) = std::env::var_os("REVERSAL_SKIP_LOG") {
        // `deps/e2e-0123abcd` is the binary of tests/e2e.rs.
        let exe = std::env::current_exe().expect("path of the test binary");
        let stem = exe.file_stem().unwrap_or_default().to_string_lossy();
        let binary = stem.rsplit_once('-').map_or(&*stem, |(name, _hash)| name);
        // One write of one line to a file opened for appending: lines from
        // tests running in parallel do not mix.
        let line = format!("{binary}: {test}: {reason}\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot record the skip in {}: {e}", log.display()));
    }
}

/// Why a TAP cannot be made here: no `/dev/net/tun`, not root, or one of
/// `tools` is not installed.
pub fn why_unavailable(tools: &[&str]) -> Option<String> {
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    if !is_root() {
        return Some("not root (network namespaces and TAP setup need it)".into());
    }
    tools
        .iter()
        .find(|tool| find_tool(tool).is_none())
        .map(|tool| format!("`{tool}` is not installed"))
}

/// Why `unshare --net --mount` does not work here (in a container, say).
pub fn why_namespaces_fail() -> Option<String> {
    let probe = try_run(
        Command::new("unshare").args(["--net", "--mount", "true"]),
        b"",
        COMMAND_LIMIT,
    );
    match probe {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("cannot run unshare: {error}")),
    }
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    // "Uid:\treal\teffective\tsaved\tfs"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}
