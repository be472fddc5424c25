//! smoltcp's clock on the supervisor's: every smoltcp interface of the session
//! (the stacks', the uplinks') counts from one epoch.

use std::time::{Duration, Instant};

/// smoltcp's clock: microseconds since the first call.
pub fn smol_time(now: Instant) -> smoltcp::time::Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    smoltcp::time::Instant::from_micros(now.saturating_duration_since(epoch).as_micros() as i64)
}

/// `at`, a smoltcp time, on the supervisor's clock.
pub fn std_time(at: smoltcp::time::Instant, now: Instant) -> Instant {
    let ahead = at.total_micros() - smol_time(now).total_micros();
    now + Duration::from_micros(ahead.max(0) as u64)
}
