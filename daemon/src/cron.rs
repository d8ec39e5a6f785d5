//! Cron expressions and their fire times. Pure: no clock, no I/O.
//!
//! - 5 fields (`minute hour day-of-month month day-of-week`) follow POSIX crontab as cronie
//!   reads it: names (`jan`, `mon`), ranges, lists, steps, Sunday as 0 or 7, and — when both
//!   day fields are restricted — a day matches if *either* matches (a field starting with `*`
//!   counts as unrestricted). `@daily`-style shorthands are accepted.
//! - 6 or 7 fields (seconds first, optional year) follow the `cron` crate: Sunday is 1, and the
//!   day fields are both required.
//!
//! Fire times are computed on local wall-clock time in an IANA zone, with cronie's DST rules:
//! for a fixed-time job a local time that a DST change skips fires at the first instant after
//! the gap, and one that repeats fires once (at its first occurrence); a job whose minute or hour
//! field starts with `*` follows elapsed time — skipped local times do not fire, repeated ones
//! fire at both instants.

use std::str::FromStr;

use ::cron::TimeUnitSpec;
use std::ops::ControlFlow;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// Which grammar an expression used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Posix,
    Extended,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    dialect: Dialect,
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    days_of_week: u8,
    /// Day-of-month and day-of-week are OR-ed (POSIX, both restricted).
    days_or: bool,
    /// Extended expressions may restrict years.
    years: Option<::cron::Schedule>,
    /// A POSIX expression whose minute or hour field starts with `*`: as cronie, it follows
    /// elapsed time across DST changes instead of the gap/once rule of fixed-time jobs.
    wildcard: bool,
}

/// Why an expression was refused; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct CronError {
    /// 1-based field number; 0 for the expression as a whole.
    pub position: usize,
    pub field: &'static str,
    pub text: String,
    pub message: String,
}

impl CronError {
    fn describe(&self) -> String {
        if self.position == 0 {
            self.message.clone()
        } else {
            format!(
                "field {} ({}) {:?}: {}",
                self.position, self.field, self.text, self.message
            )
        }
    }
}

const POSIX_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn whole(message: String) -> CronError {
    CronError {
        position: 0,
        field: "expression",
        text: String::new(),
        message,
    }
}

/// Parses one POSIX field into a bit mask.
fn posix_field(text: &str, position: usize) -> Result<u64, CronError> {
    let (field, lo, hi) = POSIX_FIELDS[position - 1];
    let err = |message: String| CronError {
        position,
        field,
        text: text.to_owned(),
        message,
    };
    let value = |s: &str| -> Result<u32, CronError> {
        let lower = s.to_ascii_lowercase();
        let named = match position {
            4 => MONTHS
                .iter()
                .position(|m| *m == lower)
                .map(|i| i as u32 + 1),
            5 => DAYS.iter().position(|d| *d == lower).map(|i| i as u32),
            _ => None,
        };
        let n = match named {
            Some(n) => n,
            None => s.parse::<u32>().map_err(|_| {
                err(format!(
                    "{s:?} is not a number{}",
                    match position {
                        4 => " or a month name (jan-dec)",
                        5 => " or a day name (sun-sat)",
                        _ => "",
                    }
                ))
            })?,
        };
        if n < lo || n > hi {
            return Err(err(format!("{n} is out of range {lo}-{hi}")));
        }
        Ok(n)
    };
    let mut mask = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(err("empty list item".into()));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| err(format!("step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(err("a step of 0 never advances".into()));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (lo, if position == 5 { 6 } else { hi })
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(err(format!("range {a}-{b} runs backwards")));
            }
            (a, b)
        } else {
            let a = value(range)?;
            if step != 1 {
                return Err(err(format!(
                    "a step needs a range or *: write {range}-{hi}/{step}"
                )));
            }
            (a, a)
        };
        let mut v = start;
        while v <= end {
            // Sunday is 0 or 7.
            let bit = if position == 5 && v == 7 { 0 } else { v };
            mask |= 1 << bit;
            v += step;
        }
    }
    Ok(mask)
}

fn shorthand(s: &str) -> Option<&'static str> {
    Some(match s {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

impl FromStr for CronExpr {
    type Err = CronError;

    fn from_str(source: &str) -> Result<Self, CronError> {
        let trimmed = source.trim();
        let expanded = if trimmed.starts_with('@') {
            shorthand(&trimmed.to_ascii_lowercase()).ok_or_else(|| {
                whole(format!("unknown shorthand {trimmed:?}: use @yearly, @monthly, @weekly, @daily or @hourly"))
            })?
        } else {
            trimmed
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.len() {
            5 => Self::posix(source, &fields),
            6 | 7 => Self::extended(source, &fields),
            n => Err(whole(format!(
                "{n} fields: a cron expression has 5 (minute hour day-of-month month day-of-week) or 6-7 (seconds first, optional year)"
            ))),
        }
    }
}

impl CronExpr {
    fn posix(source: &str, f: &[&str]) -> Result<Self, CronError> {
        let masks: Vec<u64> = f
            .iter()
            .enumerate()
            .map(|(i, t)| posix_field(t, i + 1))
            .collect::<Result<_, _>>()?;
        let (dom_star, dow_star) = (f[2].starts_with('*'), f[4].starts_with('*'));
        let expr = CronExpr {
            source: source.trim().to_owned(),
            dialect: Dialect::Posix,
            seconds: 1,
            minutes: masks[0],
            hours: masks[1] as u32,
            days_of_month: masks[2] as u32,
            months: masks[3] as u16,
            days_of_week: masks[4] as u8,
            days_or: !dom_star && !dow_star,
            years: None,
            wildcard: f[0].starts_with('*') || f[1].starts_with('*'),
        };
        expr.check_can_fire()?;
        Ok(expr)
    }

    fn extended(source: &str, f: &[&str]) -> Result<Self, CronError> {
        const NAMES: [&str; 7] = [
            "second",
            "minute",
            "hour",
            "day-of-month",
            "month",
            "day-of-week",
            "year",
        ];
        let schedule = ::cron::Schedule::from_str(&f.join(" ")).map_err(|e| {
            // Find the field at fault: the one that, replaced by `*`, makes the expression parse.
            let culprit = (0..f.len()).find(|&i| {
                let mut g: Vec<&str> = f.to_vec();
                g[i] = "*";
                ::cron::Schedule::from_str(&g.join(" ")).is_ok()
            });
            match culprit {
                Some(i) => CronError {
                    position: i + 1,
                    field: NAMES[i],
                    text: f[i].to_owned(),
                    message: format!("not valid in a 6/7-field expression ({e})"),
                },
                None => whole(format!("not a valid 6/7-field expression: {e}")),
            }
        })?;
        let mask = |spec: &dyn Fn(u32) -> bool, range: std::ops::RangeInclusive<u32>| {
            range.filter(|v| spec(*v)).fold(0u64, |m, v| m | (1 << v))
        };
        let dow_crate = mask(&|v| schedule.days_of_week().includes(v), 1..=7);
        let expr = CronExpr {
            source: source.trim().to_owned(),
            dialect: Dialect::Extended,
            seconds: mask(&|v| schedule.seconds().includes(v), 0..=59),
            minutes: mask(&|v| schedule.minutes().includes(v), 0..=59),
            hours: mask(&|v| schedule.hours().includes(v), 0..=23) as u32,
            days_of_month: mask(&|v| schedule.days_of_month().includes(v), 1..=31) as u32,
            months: mask(&|v| schedule.months().includes(v), 1..=12) as u16,
            // The crate numbers Sunday 1 .. Saturday 7.
            days_of_week: (dow_crate >> 1) as u8,
            days_or: false,
            years: Some(schedule),
            wildcard: false,
        };
        expr.check_can_fire()?;
        Ok(expr)
    }

    /// Refuses expressions that can never fire, such as 30 February.
    fn check_can_fire(&self) -> Result<(), CronError> {
        let max_day = |m: u32| match m {
            2 => 29,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let possible = (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| {
                let days = (1..=max_day(m)).any(|d| self.days_of_month & (1 << d) != 0);
                if self.days_or {
                    days || self.days_of_week != 0
                } else {
                    days && self.days_of_week != 0
                }
            });
        // With a year field, some listed year must hold such a day (29 February 2027 does not).
        let possible = possible
            && (self.years.is_none()
                || (1970..=2099).any(|y| {
                    self.year_ok(y)
                        && NaiveDate::from_ymd_opt(y, 1, 1).is_some_and(|first| {
                            first
                                .iter_days()
                                .take_while(|d| d.year() == y)
                                .any(|d| self.date_matches(d))
                        })
                }));
        if possible {
            Ok(())
        } else {
            Err(whole(format!(
                "{:?} never fires: no month (of the years it names) has such a day",
                self.source
            )))
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn year_ok(&self, year: i32) -> bool {
        self.years
            .as_ref()
            .is_none_or(|s| u32::try_from(year).is_ok_and(|y| s.years().includes(y)))
    }

    fn date_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 || !self.year_ok(d.year()) {
            return false;
        }
        let dom = self.days_of_month & (1 << d.day()) != 0;
        let dow = self.days_of_week & (1 << d.weekday().num_days_from_sunday()) != 0;
        if self.days_or { dom || dow } else { dom && dow }
    }

    /// Visits the local times the expression names, from `from` on, in order, for at most a
    /// century; stops when `visit` breaks.
    fn walk(
        &self,
        from: NaiveDateTime,
        mut visit: impl FnMut(NaiveDateTime) -> ControlFlow<()>,
    ) -> Option<()> {
        let mut date = from.date();
        let end = date.checked_add_signed(Duration::days(366 * 100))?;
        let mut first = true;
        while date <= end {
            if !self.year_ok(date.year()) {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                first = false;
                continue;
            }
            if self.date_matches(date) {
                for h in bits(self.hours as u64, 0..24) {
                    if first && h < from.hour() {
                        continue;
                    }
                    for m in bits(self.minutes, 0..60) {
                        if first && (h, m) < (from.hour(), from.minute()) {
                            continue;
                        }
                        for s in bits(self.seconds, 0..60) {
                            let Some(naive) = date.and_hms_opt(h, m, s) else {
                                continue;
                            };
                            if naive >= from && visit(naive).is_break() {
                                return Some(());
                            }
                        }
                    }
                }
            }
            date = date.succ_opt()?;
            first = false;
        }
        None
    }

    /// The first fire time strictly after `after`, in zone `tz`; `None` if there is none
    /// within a century.
    ///
    /// Fixed-time expressions: a local time that a DST change skips fires at the first instant
    /// after the gap; a repeated local time fires once. Wildcard expressions (minute or hour
    /// field starting with `*`) follow elapsed time, as cronie does: a skipped local time does
    /// not fire at all, and a repeated one fires at both of its instants.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz).naive_local();
        let mut found = None;
        if self.wildcard {
            // A repeated hour maps later local times to earlier instants: start a little
            // before, and look a little past the best instant found.
            let slack = Duration::hours(3);
            self.walk(local - slack, |naive| {
                let instants = match tz.from_local_datetime(&naive) {
                    LocalResult::Single(t) => [Some(t), None],
                    LocalResult::Ambiguous(a, b) => [Some(a), Some(b)],
                    LocalResult::None => [None, None],
                };
                for t in instants.into_iter().flatten() {
                    let t = t.with_timezone(&Utc);
                    if t > after && found.is_none_or(|best| t < best) {
                        found = Some(t);
                    }
                }
                match found {
                    Some(best) if naive > best.with_timezone(&tz).naive_local() + slack => {
                        ControlFlow::Break(())
                    }
                    _ => ControlFlow::Continue(()),
                }
            });
        } else {
            let start = local.with_nanosecond(0).unwrap_or(local);
            self.walk(start, |naive| {
                match resolve(naive, tz).filter(|t| *t > after) {
                    Some(t) => {
                        found = Some(t);
                        ControlFlow::Break(())
                    }
                    None => ControlFlow::Continue(()),
                }
            });
        }
        found
    }

    /// Fire times in `(after, until]`, at most `limit` of them.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < limit {
            match self.next_after(t, tz) {
                Some(n) if n <= until => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }
}

fn bits(mask: u64, range: std::ops::Range<u32>) -> impl Iterator<Item = u32> {
    range.filter(move |b| mask & (1 << b) != 0)
}

/// The instant a local time means: the earlier of a repeated time; for a skipped time, the
/// first instant after the gap.
pub fn resolve(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    if let Some(t) = tz.from_local_datetime(&naive).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    let base = naive.with_second(0)?;
    (1..=24 * 60).find_map(|k| {
        tz.from_local_datetime(&(base + Duration::minutes(k)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// Parses an IANA zone name, with an error users can act on.
pub fn zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?}: use an IANA name such as \"Asia/Shanghai\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.to_utc())
            .unwrap_or_default()
    }

    /// The next `n` fire times, as RFC 3339 in the zone.
    fn next(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
        let e: CronExpr = expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}"));
        let tz: Tz = tz.parse().unwrap_or(Tz::UTC);
        let mut t = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            match e.next_after(t, tz) {
                Some(x) => {
                    out.push(x.with_timezone(&tz).to_rfc3339());
                    t = x;
                }
                None => break,
            }
        }
        out
    }

    #[test]
    fn posix_basics_hand_verified() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            // Every month on the 1st at 09:00 Beijing time.
            (
                "0 9 1 * *",
                "Asia/Shanghai",
                "2026-11-29T12:00:00+08:00",
                &[
                    "2026-12-01T09:00:00+08:00",
                    "2027-01-01T09:00:00+08:00",
                    "2027-02-01T09:00:00+08:00",
                ],
            ),
            // Names and ranges: weekdays at 08:30.
            (
                "30 8 * * mon-fri",
                "Asia/Shanghai",
                "2026-11-27T09:00:00+08:00",
                &["2026-11-30T08:30:00+08:00", "2026-12-01T08:30:00+08:00"],
            ),
            // Sunday as 7 and as 0.
            (
                "0 10 * * 7",
                "UTC",
                "2026-11-29T10:00:00Z",
                &["2026-12-06T10:00:00+00:00"],
            ),
            (
                "0 10 * * 0",
                "UTC",
                "2026-11-29T09:00:00Z",
                &["2026-11-29T10:00:00+00:00"],
            ),
            // Steps and lists.
            (
                "*/20 6,18 * * *",
                "UTC",
                "2026-11-29T06:30:00Z",
                &[
                    "2026-11-29T06:40:00+00:00",
                    "2026-11-29T18:00:00+00:00",
                    "2026-11-29T18:20:00+00:00",
                ],
            ),
            (
                "0 0 1-10/3 jan *",
                "UTC",
                "2026-12-31T00:00:00Z",
                &[
                    "2027-01-01T00:00:00+00:00",
                    "2027-01-04T00:00:00+00:00",
                    "2027-01-07T00:00:00+00:00",
                    "2027-01-10T00:00:00+00:00",
                    "2028-01-01T00:00:00+00:00",
                ],
            ),
            // Leap days: only in leap years.
            (
                "0 0 29 2 *",
                "UTC",
                "2026-03-01T00:00:00Z",
                &["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"],
            ),
            // Month ends: the 31st skips short months.
            (
                "0 12 31 * *",
                "UTC",
                "2027-01-31T12:00:00Z",
                &["2027-03-31T12:00:00+00:00", "2027-05-31T12:00:00+00:00"],
            ),
            // Both day fields restricted: OR (the 13th, or any Friday).
            (
                "0 0 13 * fri",
                "UTC",
                "2026-11-01T00:00:00Z",
                &[
                    "2026-11-06T00:00:00+00:00",
                    "2026-11-13T00:00:00+00:00",
                    "2026-11-20T00:00:00+00:00",
                    "2026-11-27T00:00:00+00:00",
                    "2026-12-04T00:00:00+00:00",
                ],
            ),
            // A `*`-led day field keeps AND: every other day that is also a Monday.
            (
                "0 0 */2 * mon",
                "UTC",
                "2026-11-01T00:00:00Z",
                &[
                    "2026-11-09T00:00:00+00:00",
                    "2026-11-23T00:00:00+00:00",
                    "2026-12-07T00:00:00+00:00",
                ],
            ),
            // Quarterly drills on the 15th.
            (
                "0 9 15 3,6,9,12 *",
                "Asia/Shanghai",
                "2026-11-29T00:00:00+08:00",
                &["2026-12-15T09:00:00+08:00", "2027-03-15T09:00:00+08:00"],
            ),
            (
                "@monthly",
                "UTC",
                "2026-11-29T00:00:00Z",
                &["2026-12-01T00:00:00+00:00"],
            ),
        ];
        for (expr, tz, after, want) in cases {
            assert_eq!(
                next(expr, tz, after, want.len()),
                *want,
                "{expr} in {tz} after {after}"
            );
        }
    }

    #[test]
    fn dst_gaps_fire_after_the_gap_and_repeats_fire_once() {
        // New York springs forward at 02:00 on 2026-03-08: 02:30 does not exist.
        assert_eq!(
            next(
                "30 2 * * *",
                "America/New_York",
                "2026-03-07T03:00:00-05:00",
                3
            ),
            [
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T02:30:00-04:00",
                "2026-03-10T02:30:00-04:00"
            ]
        );
        // Several skipped fixed times collapse into one fire after the gap.
        assert_eq!(
            next(
                "0,20,40 2 * * *",
                "America/New_York",
                "2026-03-08T01:59:00-05:00",
                2
            ),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"]
        );
        // Falls back at 02:00 on 2026-11-01: 01:30 happens twice and fires once.
        assert_eq!(
            next(
                "30 1 * * *",
                "America/New_York",
                "2026-10-31T12:00:00-04:00",
                2
            ),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        // Berlin springs forward at 02:00 on 2026-03-29, falls back at 03:00 on 2026-10-25.
        assert_eq!(
            next(
                "15 2 * * *",
                "Europe/Berlin",
                "2026-03-28T12:00:00+01:00",
                2
            ),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:15:00+02:00"]
        );
        assert_eq!(
            next(
                "15 2 * * *",
                "Europe/Berlin",
                "2026-10-24T12:00:00+02:00",
                2
            ),
            ["2026-10-25T02:15:00+02:00", "2026-10-26T02:15:00+01:00"]
        );
    }

    #[test]
    fn wildcard_jobs_follow_elapsed_time_across_dst_as_cronie() {
        // Hourly at :30 across New York's spring forward: no 02:30 is invented at 03:00.
        assert_eq!(
            next(
                "30 * * * *",
                "America/New_York",
                "2026-03-08T00:45:00-05:00",
                3
            ),
            [
                "2026-03-08T01:30:00-05:00",
                "2026-03-08T03:30:00-04:00",
                "2026-03-08T04:30:00-04:00"
            ]
        );
        // Every 20 minutes in hour 2 on the day hour 2 does not exist: nothing that day.
        assert_eq!(
            next(
                "*/20 2 * * *",
                "America/New_York",
                "2026-03-08T01:59:00-05:00",
                1
            ),
            ["2026-03-09T02:00:00-04:00"]
        );
        // Every 30 minutes through the repeated hour: both 01:00s and both 01:30s run.
        assert_eq!(
            next(
                "0,30 * * * *",
                "America/New_York",
                "2026-11-01T00:45:00-04:00",
                6
            ),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00"
            ]
        );
        // London falls back at 02:00 BST on 2026-10-25: `15 1 * * *` is fixed (once), while
        // `15 * * * *` runs in both 01:xx hours.
        assert_eq!(
            next(
                "15 1 * * *",
                "Europe/London",
                "2026-10-25T00:00:00+01:00",
                2
            ),
            ["2026-10-25T01:15:00+01:00", "2026-10-26T01:15:00+00:00"]
        );
        assert_eq!(
            next(
                "15 * * * *",
                "Europe/London",
                "2026-10-25T00:30:00+01:00",
                3
            ),
            [
                "2026-10-25T01:15:00+01:00",
                "2026-10-25T01:15:00+00:00",
                "2026-10-25T02:15:00+00:00"
            ]
        );
        // Lord Howe moves by half an hour (02:00 → 02:30 on 2026-10-04): `*/15 * * * *` has no
        // 02:00 or 02:15 that night, and `0 2 * * *` fires at 02:30, after the gap.
        assert_eq!(
            next(
                "*/15 * * * *",
                "Australia/Lord_Howe",
                "2026-10-04T01:50:00+10:30",
                2
            ),
            ["2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"]
        );
        assert_eq!(
            next(
                "0 2 * * *",
                "Australia/Lord_Howe",
                "2026-10-03T12:00:00+10:30",
                1
            ),
            ["2026-10-04T02:30:00+11:00"]
        );
        // Each repeated instant fires once, whatever `after` falls in the fold.
        assert_eq!(
            next(
                "*/30 * * * *",
                "America/New_York",
                "2026-11-01T01:45:00-05:00",
                2
            ),
            ["2026-11-01T02:00:00-05:00", "2026-11-01T02:30:00-05:00"]
        );
    }

    #[test]
    fn extended_expressions_follow_the_cron_crate() {
        // Seconds first; Sunday is 1; day fields AND-ed.
        assert_eq!(
            next("30 0 9 * * 1 *", "UTC", "2026-11-29T00:00:00Z", 2),
            ["2026-11-29T09:00:30+00:00", "2026-12-06T09:00:30+00:00"]
        );
        assert_eq!(
            next("0 0 12 1 1 * 2027", "UTC", "2026-01-01T00:00:00Z", 2),
            ["2027-01-01T12:00:00+00:00"]
        );
        assert_eq!(
            next("*/15 * * * * *", "UTC", "2026-11-29T00:00:07Z", 2),
            ["2026-11-29T00:00:15+00:00", "2026-11-29T00:00:30+00:00"]
        );
    }

    #[test]
    fn errors_point_at_the_field() {
        let err = |e: &str| {
            e.parse::<CronExpr>()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("0 9 32 * *"),
            "field 3 (day-of-month) \"32\": 32 is out of range 1-31"
        );
        assert_eq!(
            err("0 25 * * *"),
            "field 2 (hour) \"25\": 25 is out of range 0-23"
        );
        assert_eq!(
            err("0 9 * foo *"),
            "field 4 (month) \"foo\": \"foo\" is not a number or a month name (jan-dec)"
        );
        assert_eq!(
            err("0 9 * * 1-"),
            "field 5 (day-of-week) \"1-\": \"\" is not a number or a day name (sun-sat)"
        );
        assert_eq!(
            err("*/0 * * * *"),
            "field 1 (minute) \"*/0\": a step of 0 never advances"
        );
        assert_eq!(
            err("0 9 5-1 * *"),
            "field 3 (day-of-month) \"5-1\": range 5-1 runs backwards"
        );
        assert!(err("0 9 * *").starts_with("4 fields"));
        assert!(err("0 0 30 2 *").contains("never fires"));
        assert!(err("0 0 0 29 2 * 2027").contains("never fires"));
        assert!("0 0 0 29 2 * 2028".parse::<CronExpr>().is_ok());
        assert!(
            err("0 0 99 * * *").starts_with("field 3 (hour)"),
            "{}",
            err("0 0 99 * * *")
        );
        assert!(err("@fortnightly").contains("unknown shorthand"));
        assert!(zone("Asia/Beijing").is_err());
    }
}
