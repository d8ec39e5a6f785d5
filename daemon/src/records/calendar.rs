//! The working-day calendar: weekends, China's statutory holidays and adjusted working days
//! (调休 — weekend days that are working days). Built in for the years `data/holidays.toml`
//! covers; a config file in the same format adds a year the State Council has since published
//! (or corrects one). Pure: dates in, dates out.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// The built-in years.
const BUILTIN: &str = include_str!("../../data/holidays.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    year: Vec<Year>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Year {
    year: i32,
    #[serde(default)]
    source: String,
    #[serde(default)]
    off: Vec<String>,
    #[serde(default)]
    work: Vec<String>,
}

/// What is wrong with a holidays file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalendarError {
    #[error("{0}")]
    Syntax(String),
    #[error("year {year}: {entry:?} {problem}")]
    Entry {
        year: i32,
        entry: String,
        problem: String,
    },
}

/// Which days are working days.
#[derive(Debug, Clone, Default)]
pub struct WorkCalendar {
    off: BTreeSet<NaiveDate>,
    work: BTreeSet<NaiveDate>,
    /// Years the calendar knows, with where their dates come from.
    years: BTreeMap<i32, String>,
}

fn date(year: i32, s: &str, entry: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| CalendarError::Entry {
        year,
        entry: entry.to_owned(),
        problem: "is not a date like 2026-02-15 (or a range 2026-02-15..2026-02-23)".into(),
    })
}

impl WorkCalendar {
    /// The built-in years.
    pub fn builtin() -> Self {
        let mut c = WorkCalendar::default();
        // The shipped file is tested; should it ever fail to read, the calendar is plain weeks.
        let _ = c.add(BUILTIN);
        c
    }

    /// The built-in years, then those of `text` (a year given again replaces the built-in one).
    pub fn with_file(text: &str) -> Result<Self, CalendarError> {
        let mut c = Self::builtin();
        c.add(text)?;
        Ok(c)
    }

    fn add(&mut self, text: &str) -> Result<(), CalendarError> {
        let file: File = toml::from_str(text).map_err(|e| CalendarError::Syntax(e.to_string()))?;
        for y in file.year {
            if !(2000..=2100).contains(&y.year) {
                return Err(CalendarError::Entry {
                    year: y.year,
                    entry: y.year.to_string(),
                    problem: "is not a year from 2000 to 2100".into(),
                });
            }
            let mut off = BTreeSet::new();
            for entry in &y.off {
                let (a, b) = match entry.split_once("..") {
                    Some((a, b)) => (date(y.year, a, entry)?, date(y.year, b, entry)?),
                    None => {
                        let d = date(y.year, entry, entry)?;
                        (d, d)
                    }
                };
                if b < a || (b - a).num_days() > 31 {
                    return Err(CalendarError::Entry {
                        year: y.year,
                        entry: entry.clone(),
                        problem: "must run forward and span at most a month".into(),
                    });
                }
                // A holiday period may begin in the year before (New Year's Eve weekend).
                if a.year() < y.year - 1 || b.year() > y.year {
                    return Err(CalendarError::Entry {
                        year: y.year,
                        entry: entry.clone(),
                        problem: format!("lies outside {}", y.year),
                    });
                }
                off.extend(a.iter_days().take_while(|d| *d <= b));
            }
            let mut work = BTreeSet::new();
            for entry in &y.work {
                let d = date(y.year, entry, entry)?;
                if d.year() != y.year {
                    return Err(CalendarError::Entry {
                        year: y.year,
                        entry: entry.clone(),
                        problem: format!("lies outside {}", y.year),
                    });
                }
                if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                    return Err(CalendarError::Entry {
                        year: y.year,
                        entry: entry.clone(),
                        problem: "is a weekday: only a weekend day can be made a working day"
                            .into(),
                    });
                }
                if off.contains(&d) {
                    return Err(CalendarError::Entry {
                        year: y.year,
                        entry: entry.clone(),
                        problem: "is also listed as a day off".into(),
                    });
                }
                work.insert(d);
            }
            // A year given again replaces what was known of it.
            self.off.retain(|d| d.year() != y.year);
            self.work.retain(|d| d.year() != y.year);
            self.off.extend(off);
            self.work.extend(work);
            self.years.insert(y.year, y.source.clone());
        }
        Ok(())
    }

    /// Whether the calendar knows `year`'s holidays (otherwise it assumes plain weeks).
    pub fn knows(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The years known, with their sources.
    pub fn years(&self) -> impl Iterator<Item = (i32, &str)> {
        self.years.iter().map(|(y, s)| (*y, s.as_str()))
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.work.contains(&d) {
            return true;
        }
        !self.off.contains(&d) && !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
    }

    /// Working days after `from` up to and including `to` (0 when `to` is not after `from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d.succ_opt().unwrap_or(d);
            if d == NaiveDate::MAX {
                break;
            }
            if self.is_working_day(d) {
                n += 1;
            }
        }
        n
    }

    /// The day `n` working days after `from`.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            let Some(next) = d.succ_opt() else { break };
            d = next;
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_shipped_years_read_cleanly() {
        let c = WorkCalendar::builtin();
        for y in [2024, 2025, 2026] {
            assert!(c.knows(y), "{y}");
        }
        assert!(WorkCalendar::with_file(BUILTIN).is_ok());
        assert!(!c.knows(2027));
    }

    /// Spring Festival 2026: 2-15 (Sunday) to 2-23 off; 2-14 and 2-28 (Saturdays) worked.
    #[test]
    fn the_spring_festival_and_its_adjusted_saturdays() {
        let c = WorkCalendar::builtin();
        assert!(c.is_working_day(d("2026-02-13")));
        assert!(
            c.is_working_day(d("2026-02-14")),
            "adjusted working Saturday"
        );
        for day in ["2026-02-15", "2026-02-16", "2026-02-20", "2026-02-23"] {
            assert!(!c.is_working_day(d(day)), "{day}");
        }
        assert!(c.is_working_day(d("2026-02-24")));
        assert!(
            c.is_working_day(d("2026-02-28")),
            "adjusted working Saturday"
        );
        assert!(!c.is_working_day(d("2026-03-01")));
        // From 2-12 (Thursday): 2-13, 2-14 (Saturday, worked), 2-24 to 2-27, 2-28 (Saturday,
        // worked), 3-02 to 3-04 — the tenth working day is 3-04, where plain weeks say 2-26.
        assert_eq!(c.add_working_days(d("2026-02-12"), 10), d("2026-03-04"));
        assert_eq!(c.working_days_between(d("2026-02-12"), d("2026-03-04")), 10);
        assert_eq!(c.working_days_between(d("2026-03-04"), d("2026-02-12")), 0);
        let plain = WorkCalendar::default();
        assert_eq!(plain.add_working_days(d("2026-02-12"), 10), d("2026-02-26"));
        // National Day 2025 ran eight days, with 9-28 (Sunday) and 10-11 (Saturday) worked.
        assert!(!c.is_working_day(d("2025-10-08")));
        assert!(c.is_working_day(d("2025-09-28")));
        assert!(c.is_working_day(d("2025-10-11")));
    }

    #[test]
    fn an_unknown_year_is_plain_weeks_and_a_file_adds_it() {
        let c = WorkCalendar::builtin();
        assert!(c.is_working_day(d("2027-02-08")));
        let c = WorkCalendar::with_file(
            "[[year]]\nyear = 2027\nsource = \"test\"\noff = [\"2027-02-05..2027-02-13\"]\nwork = [\"2027-02-14\"]\n",
        )
        .unwrap();
        assert!(c.knows(2027));
        assert!(!c.is_working_day(d("2027-02-08")));
        assert!(c.is_working_day(d("2027-02-14")));
        // The built-in years are still there.
        assert!(!c.is_working_day(d("2026-02-16")));
    }

    #[test]
    fn careless_files_are_refused_naming_the_entry() {
        let bad = [
            (
                "[[year]]\nyear = 2027\noff = [\"2027-13-01\"]\n",
                "2027-13-01",
            ),
            (
                "[[year]]\nyear = 2027\noff = [\"2027-02-10..2027-02-01\"]\n",
                "run forward",
            ),
            (
                "[[year]]\nyear = 2027\noff = [\"2027-01-01..2027-12-31\"]\n",
                "at most a month",
            ),
            (
                "[[year]]\nyear = 2027\nwork = [\"2027-02-10\"]\n",
                "is a weekday",
            ),
            (
                "[[year]]\nyear = 2027\nwork = [\"2026-02-14\"]\n",
                "outside 2027",
            ),
            ("[[year]]\nyear = 1899\n", "from 2000 to 2100"),
            ("[[year]]\nyear = 2027\nholidays = []\n", "unknown field"),
            ("[[year]\n", "expected"),
        ];
        for (text, want) in bad {
            let e = WorkCalendar::with_file(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
