//! Child processes that cannot outlive what they are for: every one is
//! killed when its handle drops, commands are bounded in time ([`run`]), and
//! servers under test ([`ServerProcess`]) die with their parent, also when
//! it is killed; their CPU time and memory are read from `/proc`.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;

/// Bound of one command run with [`run`] by the helpers here.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// How much of a server's standard error is kept to show when it fails.
const STDERR_KEPT: usize = 16 * 1024;

/// A child process that is killed when this drops.
#[derive(Debug)]
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
pub(crate) fn try_run(command: &mut Command, input: &[u8], limit: Duration) -> io::Result<Output> {
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

/// Makes the process `command` starts receive SIGKILL when the thread that
/// started it ends (and so when this process dies, even by SIGKILL).
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    sys::die_with_parent(command);
    command
}

/// Why a server process could not be started or measured.
#[derive(Debug)]
pub enum ProcessError {
    /// The program could not be started.
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// It exited while it should be serving.
    Exited {
        /// Its name in the table.
        name: String,
        /// How it ended.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// `/proc/<pid>/...` could not be read or understood.
    Proc {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Spawn { program, source } => {
                write!(f, "cannot start {program}: {source}")
            }
            ProcessError::Exited {
                name,
                status,
                stderr,
            } => write!(f, "{name} exited ({status}); its output:\n{stderr}"),
            ProcessError::Proc { path, reason } => write!(f, "cannot read {path}: {reason}"),
        }
    }
}

impl std::error::Error for ProcessError {}

/// A running server, killed when this drops.
pub struct ServerProcess {
    name: String,
    child: Killed,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl ServerProcess {
    /// Starts `command` with standard error kept (the end of it) and no
    /// standard input or output. The kernel kills it with SIGKILL when the
    /// calling thread ends, so start servers from the main thread only.
    ///
    /// # Errors
    ///
    /// The program could not be started.
    pub fn spawn(name: &str, mut command: Command) -> Result<ServerProcess, ProcessError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = die_with_parent(&mut command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ProcessError::Spawn { program, source })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let kept = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    kept.extend_from_slice(&buffer[..n]);
                    let excess = kept.len().saturating_sub(STDERR_KEPT);
                    kept.drain(..excess);
                }
            });
        }
        Ok(ServerProcess {
            name: name.to_owned(),
            child: Killed(child),
            stderr,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Fails if the server has exited.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Exited`] with the end of its standard error.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        match self.child.0.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status.to_string())),
            Err(error) => Err(self.exited(format!("cannot wait for it: {error}"))),
        }
    }

    fn exited(&self, status: String) -> ProcessError {
        // Give the reader thread a moment to collect the last words.
        thread::sleep(Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        ProcessError::Exited {
            name: self.name.clone(),
            status,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// User plus system CPU time used so far, in seconds.
    ///
    /// # Errors
    ///
    /// `/proc/<pid>/stat` could not be read.
    pub fn cpu_seconds(&self) -> Result<f64, ProcessError> {
        let path = format!("/proc/{}/stat", self.pid());
        let stat = read_proc(&path)?;
        let ticks = cpu_ticks(&stat).ok_or_else(|| ProcessError::Proc {
            path,
            reason: "no utime and stime fields".into(),
        })?;
        Ok(ticks as f64 / sys::clock_ticks_per_second())
    }

    /// Resident memory now, in KiB.
    ///
    /// # Errors
    ///
    /// `/proc/<pid>/status` could not be read.
    pub fn rss_kib(&self) -> Result<u64, ProcessError> {
        let path = format!("/proc/{}/status", self.pid());
        let status = read_proc(&path)?;
        vm_rss_kib(&status).ok_or_else(|| ProcessError::Proc {
            path,
            reason: "no VmRSS line".into(),
        })
    }
}

fn read_proc(path: &str) -> Result<String, ProcessError> {
    fs::read_to_string(path).map_err(|e| ProcessError::Proc {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// utime + stime from a `/proc/<pid>/stat` line, in clock ticks.
fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces; the
    // fields after its closing parenthesis start with field 3 (state).
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // fields 3..=13
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The `VmRSS:` value of a `/proc/<pid>/status` file, in KiB.
fn vm_rss_kib(status: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    value.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_add_utime_and_stime_after_a_name_with_spaces() {
        let stat = "4242 (host tap) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 2 0";
        assert_eq!(cpu_ticks(stat), Some(168));
    }

    #[test]
    fn a_truncated_stat_has_no_ticks() {
        assert_eq!(cpu_ticks("4242 (x) S 1 2"), None);
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\thost-tap\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nThreads:\t2\n";
        assert_eq!(vm_rss_kib(status), Some(1536));
    }

    #[test]
    fn own_process_is_measurable() {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_rss_kib(&status).unwrap() > 0);
        let stat = fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_ticks(&stat).is_some());
    }
}
