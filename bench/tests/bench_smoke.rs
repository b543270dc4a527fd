//! Smoke test of `reversal-bench`: a `--quick` run with small sizes must
//! finish, print its table and judge its targets.
//!
//! The benchmark makes its own network namespace and TAP, so it needs root,
//! `/dev/net/tun`, `unshare` and `ip`; without them the test prints
//! `skipped: ...` and passes, unless `REQUIRE_TAP=1`, where it fails. It runs
//! the `host-tap` binary built next to `reversal-bench` (`cargo test
//! --workspace` builds both; alone, build host-tap first).
//!
//! Run with: `cargo test -p reversal-bench --test bench_smoke -- --nocapture`.

use std::process::Command;
use std::time::Duration;

use reversal_netns::namespace::{skip, why_no_namespace};
use reversal_netns::process::run;

const BENCH: &str = env!("CARGO_BIN_EXE_reversal-bench");
/// The whole run, debug build included; its own watchdog fires earlier.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_quick_run_prints_the_table_and_the_targets() {
    if let Some(reason) = why_no_namespace(&[]) {
        skip("a_quick_run_prints_the_table_and_the_targets", &reason);
        return;
    }
    let output = run(
        Command::new(BENCH)
            .args([
                "--quick",
                // Enough bulk for its CPU time to span several clock ticks:
                // the CPU-per-MiB target is judged from it.
                "--bulk-mib",
                "32",
                "--duration",
                "0.5",
                "--idle",
                "0.5",
            ])
            .args(["--time-limit", "50"]),
        b"",
        LIMIT,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "reversal-bench failed: {}\n{stderr}",
        output.status
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
