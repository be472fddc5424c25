//! The `--trace` log: one line per intercepted call, decoded, with its result and
//! who answered it.
//!
//! ```text
//! [4121 none] socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = -1 EAFNOSUPPORT (Address family not supported by protocol)
//! [4130 host] socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3
//! [4130 kernel] connect(3, {AF_INET, 127.0.0.1:8080}, 16) = 0
//! [4142 lwip0] accept4(3, {AF_INET, 127.0.0.1:41633}, [16], SOCK_CLOEXEC) = 5
//! ```

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::Pid;

/// Where trace lines go.
pub struct TraceLog {
    out: Box<dyn Write>,
}

impl TraceLog {
    /// A log on standard error.
    pub fn stderr() -> Self {
        Self { out: Box::new(io::stderr()) }
    }

    /// A log in a new (truncated) file.
    pub fn file(path: &Path) -> io::Result<Self> {
        Ok(Self { out: Box::new(io::LineWriter::new(File::create(path)?)) })
    }

    /// A log into any writer (for tests).
    pub fn to_writer(out: Box<dyn Write>) -> Self {
        Self { out }
    }

    /// Writes one line. A failing log (a closed pipe, a full disk) must not disturb
    /// the traced programs, so errors are dropped.
    pub fn line(&mut self, tid: Pid, by: &str, call: &str, args: &str, result: i64) {
        let line = format!("[{tid} {by}] {call}({args}) = {}\n", format_result(result));
        let _ = self.out.write_all(line.as_bytes());
    }
}

/// Kernel-internal codes a call interrupted by a signal returns at its exit stop;
/// the tracee never sees them (it sees the restarted call, or EINTR).
const RESTART_CODES: [(i64, &str, &str); 4] = [
    (512, "ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    (513, "ERESTARTNOINTR", "To be restarted"),
    (514, "ERESTARTNOHAND", "To be restarted if no handler"),
    (516, "ERESTART_RESTARTBLOCK", "Interrupted by signal"),
];

/// `0`, `5`, or `-1 ECONNREFUSED (Connection refused)`, as strace shows results.
pub fn format_result(result: i64) -> String {
    if let Some((_, name, text)) = RESTART_CODES.iter().find(|(code, ..)| -result == *code) {
        format!("? {name} ({text})")
    } else if (-4095..0).contains(&result) {
        let errno = Errno::from_raw(-result as i32);
        format!("-1 {errno:?} ({})", errno.desc())
    } else {
        result.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn results_read_like_strace() {
        assert_eq!(format_result(0), "0");
        assert_eq!(format_result(17), "17");
        assert_eq!(
            format_result(-(libc::EAFNOSUPPORT as i64)),
            "-1 EAFNOSUPPORT (Address family not supported by protocol)"
        );
        assert_eq!(format_result(-512), "? ERESTARTSYS (To be restarted if SA_RESTART is set)");
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_names_thread_answerer_call_and_result() {
        let sink = Shared::default();
        let mut log = TraceLog::to_writer(Box::new(sink.clone()));
        log.line(Pid::from_raw(42), "none", "socket", "AF_INET, SOCK_STREAM, 0", -97);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "[42 none] socket(AF_INET, SOCK_STREAM, 0) = -1 EAFNOSUPPORT \
             (Address family not supported by protocol)\n"
        );
    }
}
