//! The `--trace` log: one line per intercepted call, decoded, with its result and
//! who answered it (the call's rendering is [`crate::syscall::render`]'s).
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

use nix::unistd::Pid;

use crate::syscall::render;

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
        let line = format!("[{tid} {by}] {call}({args}) = {}\n", render::result(result));
        let _ = self.out.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

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
