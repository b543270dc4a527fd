//! Smoke test of `reversal-bench`: a `--quick` run with small sizes must
//! finish, print its table and judge its targets.
//!
//! The benchmark makes its own network namespace and TAP, so it needs root
//! and `/dev/net/tun`; without them the test prints `skipped: ...` and
//! passes, unless `REQUIRE_TAP=1`, where it fails.
//!
//! Run with: `cargo test -p host-tap --test bench_smoke -- --nocapture`.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_reversal-bench");
/// The whole run, debug build included; its own watchdog fires earlier.
const LIMIT: Duration = Duration::from_secs(60);

fn why_unavailable() -> Option<String> {
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing".into());
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    // "Uid:\treal\teffective\tsaved\tfs"
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if effective != Some("0") {
        return Some("not root (the network namespace and the TAP need it)".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("`ip` (iproute2) is not installed".into());
    }
    None
}

#[test]
fn a_quick_run_prints_the_table_and_the_targets() {
    if let Some(reason) = why_unavailable() {
        if std::env::var("REQUIRE_TAP").as_deref() == Ok("1") {
            panic!("reversal-bench cannot run ({reason}) and REQUIRE_TAP=1");
        }
        println!("skipped: reversal-bench smoke test: {reason}");
        return;
    }
    let mut child = Command::new(BENCH)
        .args([
            "--quick",
            "--bulk-mib",
            "2",
            "--duration",
            "0.5",
            "--idle",
            "0.5",
        ])
        .args(["--time-limit", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reversal-bench");
    let collect = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for reversal-bench") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reversal-bench --quick took longer than {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    println!("{stdout}\n{stderr}");
    assert!(
        status.success(),
        "reversal-bench failed: {status}\n{stderr}"
    );
    for row in [
        "(a) bulk",
        "(b) 64 clients",
        "(c) churn",
        "(d) idle",
        "(e) RSS",
    ] {
        assert!(stdout.contains(row), "no {row} row in:\n{stdout}");
    }
    assert!(stdout.contains("Targets:"), "{stdout}");
    assert!(
        !stdout.contains("not measured"),
        "a target was not measured:\n{stdout}"
    );
}
