//! This process's CPU time and memory, as the kernel counts them.

use anyhow::{Context, Result};

/// CPU seconds used so far and resident memory.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system time.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    /// The most resident memory since the start, or since [`reset_peak_rss`].
    pub peak_rss_bytes: u64,
}

impl Usage {
    pub fn now() -> Result<Self> {
        // SAFETY: getrusage only writes the struct it is given.
        let usage = unsafe {
            let mut usage = std::mem::zeroed::<libc::rusage>();
            if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
                return Err(std::io::Error::last_os_error()).context("getrusage");
            }
            usage
        };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
                .with_context(|| format!("{field} in /proc/self/status"))
        };
        Ok(Self {
            cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            rss_bytes: kib("VmRSS:")?,
            peak_rss_bytes: kib("VmHWM:")?,
        })
    }
}

/// Starts the peak-RSS high-water mark again from the current RSS (Linux `clear_refs` 5);
/// where that is not allowed the peak stays the process's.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
