//! Which fires of a duty run, and when a failed one runs again. Pure: a function of the fire
//! times, when this daemon started, the clock's now and the duty's policy.
//!
//! A fire at or after the daemon's start is on time (`scheduled`), however late the loop gets
//! to it. A fire before the start was missed while the daemon was down: the catch-up policy
//! decides — `all` runs every missed fire within the window, `latest` only the last, `none`
//! none — and whatever runs is labelled `catch_up`.

use chrono::{DateTime, Duration, Utc};

use super::{CatchUp, CatchUpPolicy, Trigger};

/// The fires to run now, each with its label.
pub fn select(
    fires: &[DateTime<Utc>],
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    catch_up: CatchUp,
) -> Vec<(DateTime<Utc>, Trigger)> {
    let window_start = now - Duration::days(i64::from(catch_up.window_days));
    let missed: Vec<DateTime<Utc>> = fires
        .iter()
        .copied()
        .filter(|t| *t < started && *t > window_start)
        .collect();
    let caught_up: Vec<DateTime<Utc>> = match catch_up.policy {
        CatchUpPolicy::All => missed,
        CatchUpPolicy::Latest => missed.last().copied().into_iter().collect(),
        CatchUpPolicy::None => Vec::new(),
    };
    caught_up
        .into_iter()
        .map(|t| (t, Trigger::CatchUp))
        .chain(
            fires
                .iter()
                .filter(|t| **t >= started)
                .map(|t| (*t, Trigger::Scheduled)),
        )
        .collect()
}

/// The wait before attempt `attempts + 1` of a failed occurrence: 1 minute, doubling, at most
/// an hour.
pub fn backoff(attempts: u32) -> Duration {
    let minutes = 1i64 << attempts.saturating_sub(1).min(6);
    Duration::minutes(minutes.min(60))
}

/// When a failed occurrence runs again: scheduled and catch-up runs are retried with backoff
/// while the retry still falls inside the catch-up window after the fire; a manual trigger or a
/// backfill is not (whoever asked can ask again).
pub fn retry_at(
    trigger: Trigger,
    scheduled_at: DateTime<Utc>,
    attempts: u32,
    now: DateTime<Utc>,
    catch_up: CatchUp,
) -> Option<DateTime<Utc>> {
    if !matches!(trigger, Trigger::Scheduled | Trigger::CatchUp) {
        return None;
    }
    let at = now + backoff(attempts);
    let window = Duration::days(i64::from(catch_up.window_days.max(1)));
    (at <= scheduled_at + window).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.to_utc())
            .unwrap_or_default()
    }

    fn minutes(from: &str, n: i64) -> Vec<DateTime<Utc>> {
        (0..n).map(|i| t(from) + Duration::minutes(i)).collect()
    }

    fn labels(selected: &[(DateTime<Utc>, Trigger)]) -> Vec<(String, &'static str)> {
        selected
            .iter()
            .map(|(at, trig)| {
                (
                    at.format("%H:%M").to_string(),
                    match trig {
                        Trigger::Scheduled => "scheduled",
                        Trigger::CatchUp => "catch_up",
                        Trigger::Manual => "manual",
                        Trigger::Backfill => "backfill",
                    },
                )
            })
            .collect()
    }

    fn policy(policy: CatchUpPolicy) -> CatchUp {
        CatchUp {
            policy,
            window_days: 7,
        }
    }

    #[test]
    fn every_minute_stopped_four_minutes_restarted_35_seconds_past() {
        // Fires 10:00..10:04 were missed (down from 09:59:50 to 10:04:35); 10:05 is on time.
        let fires = minutes("2026-11-30T10:00:00Z", 6);
        let started = t("2026-11-30T10:04:35Z");
        let now = t("2026-11-30T10:05:10Z");
        let cases: [(CatchUpPolicy, &[(&str, &str)]); 3] = [
            (CatchUpPolicy::None, &[("10:05", "scheduled")]),
            (
                CatchUpPolicy::Latest,
                &[("10:04", "catch_up"), ("10:05", "scheduled")],
            ),
            (
                CatchUpPolicy::All,
                &[
                    ("10:00", "catch_up"),
                    ("10:01", "catch_up"),
                    ("10:02", "catch_up"),
                    ("10:03", "catch_up"),
                    ("10:04", "catch_up"),
                    ("10:05", "scheduled"),
                ],
            ),
        ];
        for (p, expected) in cases {
            let got = labels(&select(&fires, started, now, policy(p)));
            let expected: Vec<(String, &str)> =
                expected.iter().map(|(a, b)| (a.to_string(), *b)).collect();
            assert_eq!(got, expected, "{p:?}");
        }
    }

    #[test]
    fn a_late_loop_still_runs_fires_after_its_start_as_scheduled() {
        let fires = minutes("2026-11-30T10:00:00Z", 3);
        let started = t("2026-11-30T09:00:00Z");
        let now = t("2026-11-30T10:30:00Z");
        let got = labels(&select(&fires, started, now, policy(CatchUpPolicy::None)));
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|(_, l)| *l == "scheduled"));
    }

    #[test]
    fn the_window_bounds_catching_up() {
        let fires = vec![t("2026-11-01T09:00:00Z"), t("2026-11-28T09:00:00Z")];
        let started = t("2026-11-30T08:00:00Z");
        let now = t("2026-11-30T08:00:01Z");
        let got = labels(&select(&fires, started, now, policy(CatchUpPolicy::All)));
        assert_eq!(got, [("09:00".to_string(), "catch_up")]);
    }

    #[test]
    fn retries_back_off_within_the_window_and_only_for_the_schedule() {
        assert_eq!(
            [1, 2, 3, 7, 8, 40].map(|a| backoff(a).num_minutes()),
            [1, 2, 4, 60, 60, 60]
        );
        let fire = t("2026-11-30T09:00:00Z");
        let c = CatchUp {
            policy: CatchUpPolicy::Latest,
            window_days: 1,
        };
        assert_eq!(
            retry_at(Trigger::Scheduled, fire, 1, fire, c),
            Some(t("2026-11-30T09:01:00Z"))
        );
        assert_eq!(
            retry_at(Trigger::Scheduled, fire, 9, t("2026-12-01T08:30:00Z"), c),
            None
        );
        assert_eq!(retry_at(Trigger::Manual, fire, 1, fire, c), None);
        assert_eq!(retry_at(Trigger::Backfill, fire, 1, fire, c), None);
    }
}
