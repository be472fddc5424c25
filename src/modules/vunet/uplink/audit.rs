//! The audit log: one JSON object a line for every flow that tried to leave
//! the session (`netvm run --audit FILE`), so a user can see what a program
//! contacted and what the policy said.
//!
//! A flow the policy lets out gets an `open` line when it starts and a `close`
//! line, with its byte counts, when it ends (or when the session does); one it
//! refuses gets a `deny` (or `drop`) line. Lines wait until the session's event
//! loop has run its network ([`AuditLog::flush`]): then the process that opened
//! each flow is asked of its stack (the network knows only addresses), and the
//! lines are written, never synced on the way.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::policy::{Decision, Protocol};
use crate::modules::vunet::status::{FlowStatus, process_name};

/// Where audit lines go.
pub struct AuditLog {
    out: BufWriter<Box<dyn Write>>,
    /// Lines not written yet, each with whom to ask for its process.
    pending: Vec<(serde_json::Value, Origin)>,
    /// The process of each open flow, as found when it opened.
    processes: HashMap<u64, Option<i32>>,
}

/// Where a flow came from, to find the process that opened it.
struct Origin {
    flow: u64,
    /// The stack, whether TCP, and the source address; `None` where there is
    /// nobody to ask (a ping, a flow that came in).
    socket: Option<(String, bool, SocketAddr)>,
    /// Whether the line ends the flow.
    closing: bool,
}

/// Who asks a stack for the process behind a flow: `(stack, tcp, source)`.
pub type Originator<'a> = &'a dyn Fn(&str, bool, SocketAddr) -> Option<i32>;

/// What is known of one flow, from its start to its end (for the log and for
/// `netvm status`).
#[derive(Clone, Debug)]
pub struct FlowRecord {
    /// Its number in the session, from 1.
    pub id: u64,
    pub protocol: Protocol,
    /// The stack's end and the destination it asked for.
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub decision: Decision,
    /// Whether it came in by a published port (else it went out).
    pub inbound: bool,
    pub started: Instant,
    /// Payload bytes from the stack out, and in to the stack.
    pub bytes_out: u64,
    pub bytes_in: u64,
}

impl FlowRecord {
    /// What `netvm status` shows of the flow at `now`.
    pub fn status(&self, now: Instant) -> FlowStatus {
        FlowStatus {
            id: self.id,
            proto: self.protocol.name().to_owned(),
            direction: if self.inbound { "in" } else { "out" }.to_owned(),
            stack: self.decision.stack.clone(),
            src: self.end(self.source),
            dst: self.end(self.destination),
            bytes_out: self.bytes_out,
            bytes_in: self.bytes_in,
            age_s: now.duration_since(self.started).as_secs(),
        }
    }

    /// One end as shown: a ping's without its port.
    fn end(&self, address: SocketAddr) -> String {
        match self.protocol {
            Protocol::Icmp => address.ip().to_string(),
            _ => address.to_string(),
        }
    }

    /// The line that tells what was decided: `open`, or `deny` / `drop`.
    pub fn decided_event(&self) -> &'static str {
        match self.decision.verdict.name() {
            "allow" => "open",
            refused => refused,
        }
    }
}

impl AuditLog {
    /// A log written to `path` (appended to), or to standard error for `-`.
    pub fn create(path: &Path) -> io::Result<Self> {
        let out: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(io::stderr())
        } else {
            // Opened without waiting: a FIFO nobody reads fails (ENXIO) rather
            // than holding the session's start.
            use std::os::unix::fs::OpenOptionsExt;
            let file = File::options()
                .create(true)
                .append(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)?;
            // SAFETY: fcntl F_SETFL on the live descriptor, clearing O_NONBLOCK
            // so that lines are written whole.
            unsafe {
                libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_SETFL, libc::O_APPEND)
            };
            Box::new(file)
        };
        Ok(Self { out: BufWriter::new(out), pending: Vec::new(), processes: HashMap::new() })
    }

    /// Writes the line of `event` (`open`, `deny`, `drop`, `close`) of `record`;
    /// a `close` line has its byte counts and duration.
    pub fn write(&mut self, record: &FlowRecord, event: &str, now: Instant) {
        let mut line = json!({
            "time": utc_now(),
            "event": event,
            "flow": record.id,
            "stack": record.decision.stack,
            "proto": record.protocol.name(),
            "src": record.end(record.source),
            "dst": record.end(record.destination),
            "direction": if record.inbound { "in" } else { "out" },
            "verdict": record.decision.verdict.name(),
            "rule": record.decision.rule,
        });
        let closing = event == "close";
        if closing {
            line["bytes_out"] = json!(record.bytes_out);
            line["bytes_in"] = json!(record.bytes_in);
            line["ms"] = json!(now.duration_since(record.started).as_millis() as u64);
        }
        let socket = match (&record.decision.stack, record.protocol, record.inbound) {
            (Some(stack), Protocol::Tcp | Protocol::Udp, false) => {
                Some((stack.clone(), record.protocol == Protocol::Tcp, record.source))
            }
            _ => None,
        };
        self.pending.push((line, Origin { flow: record.id, socket, closing }));
    }

    /// Writes the lines waiting, each with the process that opened its flow
    /// (`pid` and `comm`, or nulls), as `originator` finds it.
    pub fn flush(&mut self, originator: Originator) {
        for (mut line, origin) in std::mem::take(&mut self.pending) {
            let pid = match self.processes.get(&origin.flow) {
                Some(pid) => *pid,
                None => {
                    let socket = origin.socket.as_ref();
                    let pid =
                        socket.and_then(|(stack, tcp, source)| originator(stack, *tcp, *source));
                    self.processes.insert(origin.flow, pid);
                    pid
                }
            };
            if origin.closing || line["event"] != "open" {
                self.processes.remove(&origin.flow);
            }
            line["pid"] = json!(pid);
            line["comm"] = json!(pid.and_then(process_name));
            let _ = writeln!(self.out, "{line}");
        }
        let _ = self.out.flush();
    }
}

/// The time now, UTC, as RFC 3339 with milliseconds: `2026-12-07T09:06:01.123Z`.
fn utc_now() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(since.as_millis() as i64)
}

/// `millis` since the epoch as RFC 3339, UTC (days to a civil date as in
/// Howard Hinnant's `civil_from_days`).
fn rfc3339(millis: i64) -> String {
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (h, m, s, ms) =
        (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_634_361_123), "2026-12-07T09:06:01.123Z");
    }
}
