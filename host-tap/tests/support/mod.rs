//! What host-tap's TAP test files share: the built `host-tap` run as a
//! child whose standard error is collected, and the counters of its exit
//! summary. Each test file includes it with `mod support;`.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reversal_netns::process::{Killed, wait_until};

pub const HOST_TAP: &str = env!("CARGO_BIN_EXE_host-tap");

/// How long `host-tap` may take to say it is ready (other bounds: `reversal_netns`).
const START_LIMIT: Duration = Duration::from_secs(10);
/// Arguments added to every `host-tap` started, split at whitespace.
const EXTRA_ARGS: &str = "HOST_TAP_E2E_ARGS";

/// A running `host-tap`, killed on drop; its standard error is collected.
pub struct HostTap {
    child: Killed,
    log: Arc<Mutex<String>>,
    /// Reads standard error into `log` until host-tap closes it.
    reader: JoinHandle<()>,
}

impl HostTap {
    /// Starts `host-tap args` (and the arguments of [`EXTRA_ARGS`]) and
    /// waits until it says it is ready.
    pub fn start(args: &[&str]) -> HostTap {
        let extra = std::env::var(EXTRA_ARGS).unwrap_or_default();
        let args: Vec<&str> = args
            .iter()
            .copied()
            .chain(extra.split_whitespace())
            .collect();
        HostTap::start_as_given(&args)
    }

    /// Starts `host-tap args`, without [`EXTRA_ARGS`], and waits until it
    /// says it is ready.
    pub fn start_as_given(args: &[&str]) -> HostTap {
        let mut child = Killed(
            Command::new(HOST_TAP)
                .args(args)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start host-tap"),
        );
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = BufReader::new(child.0.stderr.take().expect("piped stderr"));
        let sink = Arc::clone(&log);
        let reader = thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut server = HostTap { child, log, reader };
        let deadline = Instant::now() + START_LIMIT;
        while !server.log().contains("ready: ") {
            if let Some(status) = server.exited() {
                panic!("host-tap exited with {status} at start:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "host-tap not ready after {START_LIMIT:?}:\n{}",
                server.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// What host-tap has written to standard error so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.0.try_wait().unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits up to `limit` for the exit; returns its status and the whole log.
    pub fn exit_within(&mut self, limit: Duration) -> (ExitStatus, String) {
        let status = wait_until(&mut self.child.0, limit)
            .unwrap_or_else(|| panic!("host-tap still running after {limit:?}:\n{}", self.log()));
        // The reader ends at the pipe's end, after the last line (the exit
        // summary); give it a moment to get there.
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.reader.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        (status, self.log())
    }

    /// SIGTERM, then the exit status and the log (with the counters).
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.exit_within(Duration::from_secs(10))
    }
}

/// The number after `label` in host-tap's log (its exit summary's counters).
pub fn logged_count(log: &str, label: &str) -> u64 {
    let at = log
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?}:\n{log}"));
    log[at + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no count after {label:?}:\n{log}"))
}
