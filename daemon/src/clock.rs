//! Time as the daemon sees it. No code outside this module reads the wall clock: everything
//! asks a [`Clock`], so tests can run with a clock they own.

use std::sync::Arc;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// The zone "today" is judged in: the configured `time_zone`, set once at start-up.
static LOCAL_ZONE: OnceLock<Tz> = OnceLock::new();

/// Sets the zone in which dates are judged (ages, expiry dates, "today"); the first call wins.
/// Without one, Asia/Shanghai.
pub fn set_local_zone(zone: Tz) {
    let _ = LOCAL_ZONE.set(zone);
}

/// The zone dates are judged in.
pub fn local_zone() -> Tz {
    LOCAL_ZONE
        .get()
        .copied()
        .unwrap_or(chrono_tz::Asia::Shanghai)
}

/// The calendar date of `now` in the configured zone: at 01:00 in Beijing it is already
/// tomorrow's date, though UTC still says yesterday.
pub fn local_date(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&local_zone()).date_naive()
}

/// A source of the current instant.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The shared handle the daemon passes around.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place the wall clock is read.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests and simulations.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The system clock as a shared handle.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_the_morning_in_beijing_is_already_tomorrow() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T17:00:00Z")
            .map(|d| d.to_utc())
            .unwrap_or_default();
        assert_eq!(now.date_naive().to_string(), "2026-11-30");
        assert_eq!(local_date(now).to_string(), "2026-12-01");
    }
}
