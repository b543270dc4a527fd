//! Support shared by host-tap's integration tests.
//!
//! A test that uses a TAP runs in a network namespace of its own, never in
//! the main one: [`in_own_namespace`] re-runs it there. When a test cannot
//! run here (no root, no `/dev/net/tun`, a missing tool, no namespaces) it
//! prints `skipped: <test>: <why>`, records that for `scripts/test-all`'s
//! summary ([`skip`]) and passes, unless `REQUIRE_TAP=1`, where it fails
//! instead. Every child process is bounded in time and killed when
//! its handle drops.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Set in the re-run that happens inside the namespace.
const INSIDE_NAMESPACE: &str = "HOST_TAP_TEST_INSIDE_NAMESPACE";
/// `nobody` on Debian-like systems; any unprivileged id works.
pub const NOBODY: u32 = 65534;

/// Bounds: a whole test in its namespace, one command.
pub const TEST_LIMIT: Duration = Duration::from_secs(90);
pub const COMMAND_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Namespaces and skipping

/// Runs `body` for `test` inside a network and mount namespace of its own:
/// re-runs this test binary there under `unshare --net --mount` (where `body`
/// runs) and checks that it passed. Skips when the test cannot run here,
/// `tools` naming the programs it needs besides `unshare` and `ip`.
pub fn in_own_namespace(test: &str, tools: &[&str], body: impl FnOnce()) {
    if std::env::var_os(INSIDE_NAMESPACE).is_some() {
        body();
        return;
    }
    let tools: Vec<&str> = ["unshare", "ip"].iter().chain(tools).copied().collect();
    if let Some(reason) = why_unavailable(&tools).or_else(why_namespaces_fail) {
        skip(test, &reason);
        return;
    }
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--net", "--mount", "--"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE_NAMESPACE, "1");
    let output = run(&mut unshare, b"", TEST_LIMIT);
    expect_one_passed(test, "its namespace", &output);
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
fn why_namespaces_fail() -> Option<String> {
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

// ---------------------------------------------------------------------------
// Processes

/// A child process that is killed when this drops.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` with `input` on its standard input and its output
/// captured; kills it and fails if it takes longer than `limit`.
pub fn run(command: &mut Command, input: &[u8], limit: Duration) -> Output {
    let description = format!("{command:?}");
    try_run(command, input, limit).unwrap_or_else(|e| panic!("cannot run {description}: {e}"))
}

/// [`run`], but a command that cannot start is an error, not a failure.
fn try_run(command: &mut Command, input: &[u8], limit: Duration) -> io::Result<Output> {
    let description = format!("{command:?}");
    let mut child = Killed(
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let mut stdin = child.0.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // A child that exits without reading its input is fine: ignore EPIPE.
    let feeder = thread::spawn(move || drop(stdin.write_all(&input)));
    let stdout = collect(child.0.stdout.take().expect("piped stdout"));
    let stderr = collect(child.0.stderr.take().expect("piped stderr"));
    let status = wait_until(&mut child.0, limit)
        .unwrap_or_else(|| panic!("{description} did not finish within {limit:?}"));
    let _ = feeder.join();
    Ok(Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    })
}

fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for `child` to exit, at most `limit`.
pub fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// Interfaces

/// Runs `ip args`, which must succeed.
pub fn ip(args: &str) {
    let output = run_ip(args);
    assert!(
        output.status.success(),
        "`ip {args}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `ip args`, whatever it ends in.
pub fn run_ip(args: &str) -> Output {
    run(
        Command::new("ip").args(args.split_whitespace()),
        b"",
        COMMAND_LIMIT,
    )
}

pub fn interface_exists(name: &str) -> bool {
    run_ip(&format!("link show dev {name}")).status.success()
}
