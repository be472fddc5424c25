//! Packet captures in the classic libpcap file format, so that every frame crossing a
//! virtual link can be read afterwards with `tcpdump -r` or Wireshark.
//!
//! The format is the original one (magic `0xa1b2c3d4`, version 2.4, microsecond
//! timestamps, link type 1 = Ethernet), written in this machine's byte order as libpcap
//! itself does; readers recognise the order from the magic number.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The magic number of a microsecond-resolution libpcap file.
const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// Longest part of a frame recorded; longer frames are truncated (their original length
/// is still recorded). 262144 is what tcpdump uses by default.
pub const SNAPLEN: u32 = 262_144;
/// `LINKTYPE_ETHERNET`: every record is an Ethernet frame without preamble or FCS.
const LINKTYPE_ETHERNET: u32 = 1;

/// An open capture file that frames are appended to.
///
/// Writes are buffered; [`PcapWriter::flush`] (called from
/// [`Network::poll`](super::Network::poll)) and dropping the writer push them to the
/// file. A write error is logged once and the capture stops; it never disturbs the
/// network.
pub struct PcapWriter {
    path: PathBuf,
    out: BufWriter<File>,
    failed: bool,
}

impl PcapWriter {
    /// Creates (or truncates) the capture file at `path` and writes the file header.
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&PCAP_MAGIC.to_ne_bytes());
        header.extend_from_slice(&2u16.to_ne_bytes()); // version major
        header.extend_from_slice(&4u16.to_ne_bytes()); // version minor
        header.extend_from_slice(&0i32.to_ne_bytes()); // thiszone: timestamps are UTC
        header.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        header.extend_from_slice(&SNAPLEN.to_ne_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
        out.write_all(&header)?;
        Ok(Self { path: path.to_path_buf(), out, failed: false })
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one frame, stamped with the current wall-clock time.
    pub fn write_frame(&mut self, frame: &[u8]) {
        if self.failed {
            return;
        }
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let original_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let recorded_len = original_len.min(SNAPLEN);
        let mut record = Vec::with_capacity(16 + recorded_len as usize);
        // The classic format's seconds field is 32 bits wide (good until 2106).
        record.extend_from_slice(&(since_epoch.as_secs() as u32).to_ne_bytes());
        record.extend_from_slice(&since_epoch.subsec_micros().to_ne_bytes());
        record.extend_from_slice(&recorded_len.to_ne_bytes());
        record.extend_from_slice(&original_len.to_ne_bytes());
        record.extend_from_slice(&frame[..recorded_len as usize]);
        if let Err(error) = self.out.write_all(&record) {
            self.fail(error);
        }
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) {
        if self.failed {
            return;
        }
        if let Err(error) = self.out.flush() {
            self.fail(error);
        }
    }

    /// Logs a write error once and stops the capture.
    fn fail(&mut self, error: io::Error) {
        log::warn!("capture {}: {error}; capture stopped", self.path.display());
        self.failed = true;
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_starts_with_classic_header_and_records_follow() {
        let dir = std::env::temp_dir().join(format!("netvm-pcap-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("header.pcap");
        {
            let mut writer = PcapWriter::create(&path).unwrap();
            writer.write_frame(&[0xab; 60]);
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), 0xa1b2_c3d4);
        assert_eq!(u16::from_ne_bytes(bytes[4..6].try_into().unwrap()), 2);
        assert_eq!(u16::from_ne_bytes(bytes[6..8].try_into().unwrap()), 4);
        assert_eq!(u32::from_ne_bytes(bytes[16..20].try_into().unwrap()), 262_144);
        assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_ne_bytes(bytes[32..36].try_into().unwrap()), 60);
        assert_eq!(u32::from_ne_bytes(bytes[36..40].try_into().unwrap()), 60);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
