//! Faults from outside the guest: a wall clock offset (QEMU `-rtc base=`)
//! and disk errors (QEMU's `blkdebug` driver between the guest's disk and
//! its image).
//!
//! Both are set per node on [`crate::cluster::NodeLaunch`] and take effect
//! the next time the node boots (`Cluster::start_node`, `restart`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest wall clock offset accepted (a day): beyond it the node's own
/// plausibility checks, not the HLC, are what is being tested.
pub const MAX_RTC_OFFSET_S: i64 = 86_400;

/// What a node's disk does wrong (QEMU `blkdebug` `inject-error` rules;
/// the guest sees the error because the drive has `werror=report`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFault {
    /// Every write fails with EIO.
    WriteError,
    /// Every flush (FUA / cache flush) fails with EIO; writes succeed.
    FlushError,
    /// Every write fails with ENOSPC: the host file system is full.
    Full,
}

impl DiskFault {
    /// Every kind, for tests and the chaos schedule.
    pub const ALL: [DiskFault; 3] = [
        DiskFault::WriteError,
        DiskFault::FlushError,
        DiskFault::Full,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DiskFault::WriteError => "write-error",
            DiskFault::FlushError => "flush-error",
            DiskFault::Full => "full",
        }
    }

    /// The blkdebug rules file. QEMU 7.2's raw format driver raises the
    /// `write_aio` event on every write and the block layer `flush_to_disk`
    /// on every flush reaching the image.
    pub fn blkdebug_rules(self) -> String {
        let (event, errno) = match self {
            DiskFault::WriteError => ("write_aio", libc_errno::EIO),
            DiskFault::FlushError => ("flush_to_disk", libc_errno::EIO),
            DiskFault::Full => ("write_aio", libc_errno::ENOSPC),
        };
        format!("[inject-error]\nevent = \"{event}\"\nerrno = \"{errno}\"\nonce = \"off\"\n")
    }

    /// The `-drive` value for `image` behind this fault, with its rules in
    /// `rules` (written by the caller).
    pub fn drive(self, image: &Path, rules: &Path, cache: &str) -> String {
        format!(
            "if=none,id=disk0,format=raw,cache={cache},werror=report,rerror=report,file.driver=blkdebug,file.config={},file.image.filename={}",
            rules.display(),
            image.display()
        )
    }
}

impl std::str::FromStr for DiskFault {
    type Err = String;
    fn from_str(text: &str) -> Result<DiskFault, String> {
        DiskFault::ALL
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| {
                format!("unknown disk fault `{text}` (expected write-error, flush-error or full)")
            })
    }
}

/// Linux errno values blkdebug takes (it passes them to the guest as-is).
mod libc_errno {
    pub const EIO: u32 = 5;
    pub const ENOSPC: u32 = 28;
}

/// The QEMU `-rtc base=` value for a wall clock `offset_s` seconds from the
/// host's now (UTC, `YYYY-MM-DDTHH:MM:SS`).
pub fn rtc_base(offset_s: i64) -> Result<String, String> {
    if offset_s.abs() > MAX_RTC_OFFSET_S {
        return Err(format!(
            "a wall clock offset of {offset_s} s is beyond ±{MAX_RTC_OFFSET_S} s"
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("the host clock is before 1970: {e}"))?
        .as_secs() as i64;
    Ok(utc_datetime(now + offset_s))
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS` (proleptic
/// Gregorian, UTC; Howard Hinnant's `civil_from_days`).
pub fn utc_datetime(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_match_known_instants() {
        assert_eq!(utc_datetime(0), "1970-01-01T00:00:00");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(utc_datetime(1_796_083_199), "2026-11-30T23:59:59");
        assert_eq!(utc_datetime(-1), "1969-12-31T23:59:59");
    }

    #[test]
    fn offsets_are_bounded() {
        assert!(rtc_base(MAX_RTC_OFFSET_S + 1).is_err());
        assert!(rtc_base(-MAX_RTC_OFFSET_S - 1).is_err());
        let later = rtc_base(3_600).unwrap();
        let now = rtc_base(0).unwrap();
        assert!(later > now, "{later} vs {now}");
    }

    #[test]
    fn blkdebug_rules_name_the_event_and_errno() {
        assert!(DiskFault::WriteError
            .blkdebug_rules()
            .contains("event = \"write_aio\""));
        assert!(DiskFault::FlushError
            .blkdebug_rules()
            .contains("flush_to_disk"));
        assert!(DiskFault::Full.blkdebug_rules().contains("errno = \"28\""));
        for fault in DiskFault::ALL {
            assert_eq!(fault.name().parse::<DiskFault>().unwrap(), fault);
        }
        assert!("melted".parse::<DiskFault>().is_err());
    }
}
