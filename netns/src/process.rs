//! Servers under test as child processes: killed when their handle drops,
//! and by the kernel if the benchmark dies first; their CPU time and memory
//! read from `/proc`.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// How much of a server's standard error is kept to show when it fails.
const STDERR_KEPT: usize = 16 * 1024;

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

/// A running server.
pub struct ServerProcess {
    name: String,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("pid", &self.child.id())
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
        let die_with_parent = || {
            // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and
            // touches no memory of ours.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        // SAFETY: the closure runs in the child between fork and exec and only
        // makes one async-signal-safe system call.
        unsafe { command.pre_exec(die_with_parent) };
        let mut child = command
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
            child,
            stderr,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the server has exited.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Exited`] with the end of its standard error.
    pub fn check_running(&mut self) -> Result<(), ProcessError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status.to_string())),
            Err(error) => Err(self.exited(format!("cannot wait for it: {error}"))),
        }
    }

    fn exited(&self, status: String) -> ProcessError {
        // Give the reader thread a moment to collect the last words.
        thread::sleep(std::time::Duration::from_millis(50));
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
        Ok(ticks as f64 / clock_ticks_per_second())
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

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf(3) only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux's USER_HZ is 100 unless sysconf says otherwise.
    if ticks > 0 { ticks as f64 } else { 100.0 }
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
