//! SIGINT and SIGTERM as something an event loop can sleep on.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// SIGINT and SIGTERM, delivered through a self-pipe that the loop sleeps on,
/// so that a signal arriving just before the sleep is not missed: the loop
/// waits on [`as_fd`](AsFd::as_fd) beside the TAP (see
/// [`TapDevice::wait_or_wakeup`](crate::tap::TapDevice::wait_or_wakeup)).
///
/// ```
/// use host_tap::signals::Signals;
///
/// let signals = Signals::register()?;
/// signal_hook::low_level::raise(signal_hook::consts::SIGINT)?;
/// assert_eq!(signals.take(), 1); // counted, not the end of the process
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Signals {
    wakeup: UnixStream,
    /// Set by the handler before it writes to the pipe: the loop reads the
    /// pipe only when there is something in it (one syscall less per wake-up).
    pending: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers: from now on SIGINT and SIGTERM no longer end
    /// the process but are counted here.
    ///
    /// # Errors
    ///
    /// The socket pair or a handler cannot be set up.
    pub fn register() -> io::Result<Signals> {
        let (wakeup, handler_end) = UnixStream::pair()?;
        wakeup.set_nonblocking(true)?;
        let pending = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Actions run in the order registered: the flag before the byte.
            signal_hook::flag::register(signal, Arc::clone(&pending))?;
            signal_hook::low_level::pipe::register(signal, handler_end.try_clone()?)?;
        }
        Ok(Signals { wakeup, pending })
    }

    /// How many signals came since the last call.
    pub fn take(&self) -> usize {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return 0;
        }
        let mut count = 0;
        let mut buffer = [0u8; 16];
        // Each signal writes one byte; the stream is non-blocking.
        while let Ok(n @ 1..) = (&self.wakeup).read(&mut buffer) {
            count += n;
        }
        count
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wakeup.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_counted() {
        let signals = Signals::register().unwrap();
        assert_eq!(signals.take(), 0);
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        assert_eq!(signals.take(), 1);
        assert_eq!(signals.take(), 0);
    }
}
