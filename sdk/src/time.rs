//! RFC 3339 instants, as the interface passes them.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Offset, TimeZone};

/// The current instant as the host gives it (frozen at the start of the call); in native tests,
/// the harness's `now` if one was set.
pub fn now() -> DateTime<FixedOffset> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(t) = crate::testing::current_now() {
        return t;
    }
    // In a plugin this reads the host's clock, frozen at the start of the call.
    #[allow(clippy::disallowed_methods)]
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let utc = chrono::Utc.fix();
    DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .with_timezone(&utc)
}

/// Parses an RFC 3339 instant.
pub fn parse(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s).map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))
}

/// Formats an instant as RFC 3339 (seconds, with offset).
pub fn format(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// `t` plus a number of days, as RFC 3339.
pub fn plus_days(t: DateTime<FixedOffset>, days: i64) -> String {
    format(t + Duration::days(days))
}

/// The last instant (23:59:59) of `t`'s month, in `t`'s offset.
pub fn end_of_month(t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let first_next = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(t.date_naive());
    let last = first_next.pred_opt().unwrap_or(first_next);
    let naive = last.and_hms_opt(23, 59, 59).unwrap_or_default();
    t.offset().from_local_datetime(&naive).single().unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_ends() {
        let t = parse("2028-02-10T09:00:00+08:00")
            .map(end_of_month)
            .map(format);
        assert_eq!(t.as_deref(), Ok("2028-02-29T23:59:59+08:00"));
        let t = parse("2026-12-01T09:00:00+08:00")
            .map(end_of_month)
            .map(format);
        assert_eq!(t.as_deref(), Ok("2026-12-31T23:59:59+08:00"));
    }
}
