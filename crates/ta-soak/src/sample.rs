//! `serve`'s resident memory and open descriptors, read from `/proc`.

use std::time::Duration;

/// One reading, `at` from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When, from the soak's start.
    pub at: Duration,
    /// Resident memory (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
}

/// The process `pid`'s reading now, if `/proc` has it.
pub(crate) fn read(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Sample {
        at,
        rss_kib,
        fds: u64::try_from(fds).unwrap_or(u64::MAX),
    })
}

/// The median of `values` (0 for none).
pub(crate) fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Whether a series is flat: the median of its last quarter is at most
/// `factor` times, plus `slack`, the median of its second quarter (the
/// first is warm-up).
pub(crate) fn flat(values: &[u64], factor: f64, slack: u64) -> bool {
    let quarter = values.len() / 4;
    if quarter == 0 {
        return true;
    }
    let second = median(
        values
            .get(quarter..2 * quarter)
            .unwrap_or_default()
            .to_vec(),
    );
    let last = median(
        values
            .get(values.len() - quarter..)
            .unwrap_or_default()
            .to_vec(),
    );
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let bound = (second as f64 * factor) as u64 + slack;
    last <= bound
}

#[cfg(test)]
mod tests {
    use super::flat;

    #[test]
    fn a_series_is_flat_unless_its_end_grew() {
        assert!(flat(&[50, 10, 10, 11, 10, 12, 11, 12], 1.25, 0));
        assert!(!flat(&[10, 10, 10, 10, 20, 30, 40, 50], 1.25, 0));
        assert!(flat(&[], 1.25, 0));
    }
}
