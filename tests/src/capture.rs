//! Writing a segment's packet capture, on request or when a test fails.

use core::fmt;
use std::path::{Path, PathBuf};

use crate::segment::Segment;

/// Why [`Segment::write_pcap`] wrote nothing.
#[derive(Debug)]
pub enum WritePcapError {
    /// Capture was never enabled on the segment.
    CaptureOff,
    /// The file could not be written.
    Io(std::io::Error),
}

impl fmt::Display for WritePcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WritePcapError::CaptureOff => f.write_str("packet capture is not enabled"),
            WritePcapError::Io(error) => write!(f, "cannot write the packet capture: {error}"),
        }
    }
}

impl std::error::Error for WritePcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WritePcapError::CaptureOff => None,
            WritePcapError::Io(error) => Some(error),
        }
    }
}

/// Writes a segment's capture to a file if it is dropped during a panic.
///
/// Made by [`Segment::capture_on_failure`]. Keep it alive for the whole
/// scenario (`let _pcap = ...`, not `let _ = ...`, which drops it at once):
/// when an assertion fails, unwinding drops it, it writes the capture and
/// prints the path. When the scenario passes, it writes nothing.
#[must_use = "the capture is written when this guard is dropped during a panic"]
pub struct FailureCapture {
    segment: Segment,
    path: PathBuf,
}

impl FailureCapture {
    pub(crate) fn new(segment: Segment, name: &str) -> FailureCapture {
        let path = failure_dir().join(format!("{name}-seed{}.pcap", segment.seed()));
        FailureCapture { segment, path }
    }

    /// Where the capture goes if the scenario fails.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FailureCapture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let written = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(WritePcapError::Io)
            .and_then(|()| self.segment.write_pcap(&self.path));
        match written {
            Ok(()) => eprintln!("packet capture of the failed run: {}", self.path.display()),
            Err(error) => eprintln!("{}: {error}", self.path.display()),
        }
    }
}

impl fmt::Debug for FailureCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureCapture")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `sim-failures` in Cargo's target directory: `CARGO_TARGET_DIR` if set,
/// else the nearest ancestor of the test binary holding Cargo's
/// `CACHEDIR.TAG`, else the system's temporary directory.
fn failure_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(std::env::temp_dir);
    target.join("sim-failures")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_path_names_the_scenario_and_seed() {
        let guard = Segment::new(17).capture_on_failure("some_scenario");
        assert!(
            guard
                .path()
                .ends_with("sim-failures/some_scenario-seed17.pcap")
        );
    }

    #[test]
    fn nothing_is_written_when_the_scenario_passes() {
        let guard = Segment::new(18).capture_on_failure("capture_unit_passing_scenario");
        let path = guard.path().to_path_buf();
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn the_capture_is_written_when_the_scenario_panics() {
        const NAME: &str = "capture_unit_failing_scenario";
        let path = Segment::new(19)
            .capture_on_failure(NAME)
            .path()
            .to_path_buf();
        let _ = std::fs::remove_file(&path);
        let failed = std::thread::spawn(|| {
            let segment = Segment::new(19);
            let _pcap = segment.capture_on_failure(NAME);
            panic!("scenario fails on purpose");
        })
        .join();
        assert!(failed.is_err());
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), 24, "a pcap header and no frames");
        std::fs::remove_file(&path).unwrap();
    }
}
