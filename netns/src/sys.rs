//! The raw Linux calls of this crate, each behind a safe function: the only
//! module with `unsafe`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the process `command` starts receive SIGKILL when the thread that
/// started it ends (`PR_SET_PDEATHSIG`).
pub(crate) fn die_with_parent(command: &mut Command) {
    let set_death_signal = || {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and
        // touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes one async-signal-safe system call.
    unsafe { command.pre_exec(set_death_signal) };
}

/// The unit of the CPU times in `/proc/<pid>/stat`, per second.
pub(crate) fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf(3) only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux's USER_HZ is 100 unless sysconf says otherwise.
    if ticks > 0 { ticks as f64 } else { 100.0 }
}
