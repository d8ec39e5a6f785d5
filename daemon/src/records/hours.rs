//! Service records (志愿服务记录) and hours: made from accepted visit reports, or entered by a
//! station for activities outside tasks; an entry more than 10 working days after the activity
//! is flagged late (2021 national rules); totals with star levels.

use chrono::{DateTime, NaiveDate, Utc};

use super::model::{Hours, RecordSource, STAR_HOURS, ServiceRecord, ServiceRecordInput, stars};
use super::service::Records;
use crate::registry::Invalid;
use crate::service::{Guard, ServiceError, not_found};
use crate::store::{Page, ReadTx, StoreError};

/// Working days within which the rules want a record entered.
pub const ENTRY_WORKING_DAYS: u32 = 10;

fn one_line(errs: &mut Invalid, field: &str, value: &str, max: usize) {
    let n = value.trim().chars().count();
    if n == 0 || n > max || value.chars().any(char::is_control) {
        errs.push(field, format!("must be 1 to {max} characters of one line"));
    }
}

impl Records {
    /// Entered more than 10 working days after the activity's day?
    pub fn is_late(&self, activity: NaiveDate, entered_at: DateTime<Utc>) -> bool {
        let entered = crate::clock::local_date(entered_at);
        self.calendar.working_days_between(activity, entered) > ENTRY_WORKING_DAYS
    }

    /// A station records an activity outside tasks (training, a drill, an event).
    pub fn enter_record(
        &self,
        input: ServiceRecordInput,
        guard: &dyn Guard,
        by: &str,
    ) -> Result<ServiceRecord, ServiceError> {
        let now = self.now();
        let today = crate::clock::local_date(now);
        let mut errs = Invalid::default();
        one_line(&mut errs, "activity", &input.activity, 100);
        one_line(&mut errs, "place", &input.place, 100);
        let content = input.content.trim();
        if content.is_empty() || content.chars().count() > 500 {
            errs.push("content", "must be 1 to 500 characters");
        }
        if !input.hours.is_finite() || input.hours <= 0.0 || input.hours > 24.0 {
            errs.push(
                "hours",
                "must be above 0 and at most 24 (one record per day)",
            );
        }
        let minutes = (input.hours * 60.0).round();
        if input.hours.is_finite() && input.hours > 0.0 && minutes < 1.0 {
            errs.push("hours", "less than a minute: record at least 1 minute");
        }
        if input.date > today {
            errs.push("date", "is in the future");
        }
        if input.date < today - chrono::Duration::days(366 * 5) {
            errs.push("date", "is more than five years ago");
        }
        if let Some(p) = &input.person_in_charge {
            one_line(&mut errs, "person_in_charge", p, 50);
        }
        errs.into_result()?;
        self.store.write(|w| {
            // One answer for "elsewhere" and "nowhere", so ids cannot be probed.
            let unknown = || {
                Invalid::one(
                    "volunteer",
                    format!(
                        "volunteer {} is not a volunteer of a station your token covers",
                        input.volunteer
                    ),
                )
            };
            let vol = w.volunteer(input.volunteer)?.ok_or_else(unknown)?;
            let station = w
                .station(vol.station)?
                .filter(|s| guard.station(s))
                .ok_or_else(unknown)?;
            let region = match &input.community {
                Some(c) if station.serves(c) => c.clone(),
                Some(c) => {
                    return Err(Invalid::one(
                        "community",
                        format!(
                            "{c} is not one of the communities station {} serves",
                            station.id
                        ),
                    )
                    .into());
                }
                None => station.township.clone(),
            };
            // The same activity entered twice (a double click, a second clerk) is refused, naming
            // the record already there.
            let activity = input.activity.trim();
            let place = input.place.trim();
            let mut after = 0;
            let mut that_day: u32 = 0;
            loop {
                let page = w.service_records_of(vol.id, after, 1000)?;
                for r in &page.items {
                    after = r.id;
                    if !r.superseded && r.date == input.date {
                        that_day = that_day.saturating_add(r.minutes);
                    }
                    if !r.superseded
                        && r.source == RecordSource::Entered
                        && r.date == input.date
                        && r.activity == activity
                        && r.place == place
                        && r.minutes == minutes as u32
                    {
                        return Err(ServiceError::Conflict {
                            field: "activity".into(),
                            message: format!(
                                "this activity is already recorded for volunteer {} on {} \
                                 (service record {}); nothing was added",
                                vol.id, input.date, r.id
                            ),
                        });
                    }
                }
                if page.next.is_none() {
                    break;
                }
            }
            if that_day.saturating_add(minutes as u32) > 24 * 60 {
                return Err(Invalid::one(
                    "hours",
                    format!(
                        "volunteer {} already has {:.1} hours recorded on {}; a day has 24",
                        vol.id,
                        f64::from(that_day) / 60.0,
                        input.date
                    ),
                )
                .into());
            }
            let id = w.reserve_ids("service_record", 1)?;
            let record = ServiceRecord {
                id,
                volunteer: vol.id,
                activity: activity.to_owned(),
                date: input.date,
                place: place.to_owned(),
                region,
                content: content.to_owned(),
                minutes: minutes as u32,
                organiser: station.name.clone(),
                station: station.id,
                person_in_charge: input
                    .person_in_charge
                    .as_deref()
                    .map(str::trim)
                    .map_or_else(|| station.contact.name.clone(), str::to_owned),
                source: RecordSource::Entered,
                entered_at: now,
                entered_by: by.to_owned(),
                late: self.is_late(input.date, now),
                superseded: false,
            };
            w.put_service_record(&record)?;
            Ok::<_, ServiceError>(record)
        })
    }

    /// A volunteer's records (oldest first), if `guard` covers their station (or it is the
    /// volunteer themself: pass `None`).
    pub fn records_of(
        &self,
        volunteer: u64,
        guard: Option<&dyn Guard>,
        after: u64,
        limit: usize,
    ) -> Result<Page<ServiceRecord>, ServiceError> {
        self.store.read(|r| {
            covered(r, volunteer, guard)?;
            Ok(r.service_records_of(volunteer, after, limit)?)
        })
    }

    /// A volunteer's totals and star level.
    pub fn hours(&self, volunteer: u64, guard: Option<&dyn Guard>) -> Result<Hours, ServiceError> {
        self.store.read(|r| {
            covered(r, volunteer, guard)?;
            Ok(totals(r, volunteer, None)?.0)
        })
    }
}

/// The volunteer exists and the guard (if any) covers their station.
pub(super) fn covered(
    r: &ReadTx,
    volunteer: u64,
    guard: Option<&dyn Guard>,
) -> Result<crate::registry::Volunteer, ServiceError> {
    let v = r
        .volunteer(volunteer)?
        .ok_or_else(|| not_found("volunteer", volunteer))?;
    if let Some(g) = guard {
        let ok = r.station(v.station)?.is_some_and(|s| g.station(&s));
        if !ok {
            return Err(not_found("volunteer", volunteer));
        }
    }
    Ok(v)
}

/// A volunteer's totals over the records in `period` (all when `None`), with the records
/// counted.
pub(super) fn totals(
    r: &ReadTx,
    volunteer: u64,
    period: Option<(NaiveDate, NaiveDate)>,
) -> Result<(Hours, Vec<ServiceRecord>), StoreError> {
    let mut minutes: u64 = 0;
    let mut records = 0u32;
    let mut late = 0u32;
    let mut kept = Vec::new();
    let mut after = 0;
    loop {
        let page = r.service_records_of(volunteer, after, 1000)?;
        for rec in page.items {
            after = rec.id;
            if rec.superseded {
                continue;
            }
            if let Some((from, to)) = period
                && (rec.date < from || rec.date > to)
            {
                continue;
            }
            minutes += u64::from(rec.minutes);
            records += 1;
            late += u32::from(rec.late);
            kept.push(rec);
        }
        if page.next.is_none() {
            break;
        }
    }
    let hours = minutes as f64 / 60.0;
    let hours = (hours * 100.0).round() / 100.0;
    Ok((
        Hours {
            volunteer,
            hours,
            records,
            late,
            stars: stars(hours),
            next_star_in: STAR_HOURS
                .iter()
                .map(|h| f64::from(*h))
                .find(|h| *h > hours)
                .map(|h| ((h - hours) * 100.0).round() / 100.0),
        },
        kept,
    ))
}
