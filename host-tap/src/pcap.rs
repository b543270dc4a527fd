//! A pcap file for smoltcp's [`PcapWriter`](smoltcp::phy::PcapWriter) that
//! never panics.
//!
//! smoltcp's own sink for `std::io::Write` panics when a write fails (a full
//! disk); a capture is a debugging aid and must not take the server down, so
//! [`PcapFile`] logs the first failure and stops capturing.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use smoltcp::phy::PcapSink;

/// A capture file; every frame is flushed as it is written, so the file can
/// be read while the server runs and is complete when it is killed. It is
/// the sink of a [`PcapWriter`](smoltcp::phy::PcapWriter) around the device.
#[derive(Debug)]
pub struct PcapFile {
    writer: BufWriter<File>,
    path: PathBuf,
    /// A write failed: the file is cut short and nothing more is written.
    failed: bool,
}

/// The capture file could not be created.
#[derive(Debug)]
pub struct PcapError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot create the capture file {}: {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl PcapFile {
    /// Creates (or truncates) the file at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be created (no such directory, no permission).
    pub fn create(path: impl AsRef<Path>) -> Result<PcapFile, PcapError> {
        let path = path.as_ref().to_path_buf();
        match File::create(&path) {
            Ok(file) => Ok(PcapFile {
                writer: BufWriter::new(file),
                path,
                failed: false,
            }),
            Err(source) => Err(PcapError { path, source }),
        }
    }

    fn attempt(&mut self, operation: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) {
        if self.failed {
            return;
        }
        if let Err(error) = operation(&mut self.writer) {
            self.failed = true;
            log::warn!(
                "capture file {}: write failed: {error}; capture stopped, serving goes on",
                self.path.display()
            );
        }
    }
}

impl PcapSink for PcapFile {
    fn write(&mut self, data: &[u8]) {
        self.attempt(|writer| writer.write_all(data));
    }

    fn flush(&mut self) {
        self.attempt(Write::flush);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::PcapLinkType;
    use smoltcp::time::Instant;

    fn scratch_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("host-tap-pcap-{}-{name}", std::process::id()))
    }

    #[test]
    fn header_and_frames_reach_the_file() {
        let path = scratch_path("frames");
        let mut file = PcapFile::create(&path).unwrap();
        file.global_header(PcapLinkType::Ethernet);
        file.packet(Instant::from_secs(1), &[0xab; 60]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_ne_bytes());
        assert!(!file.failed);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let error = PcapFile::create("/nonexistent-host-tap-dir/x.pcap").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("/nonexistent-host-tap-dir/x.pcap"),
            "{error}"
        );
    }

    #[test]
    fn failed_write_stops_the_capture_without_panicking() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let mut file = PcapFile::create("/dev/full").unwrap();
        file.packet(Instant::ZERO, &[0; 60]);
        assert!(file.failed);
        file.packet(Instant::ZERO, &[0; 60]);
        assert!(file.failed);
    }
}
