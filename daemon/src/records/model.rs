//! What visits and volunteering leave behind, as plain data: visit reports and their reviews,
//! service records (志愿服务记录), certificates, satisfaction ratings, the audit log, and the
//! compact index values coverage is counted from. No I/O.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::registry::GeoPoint;
use crate::task::Severity;

/// One answer to a checklist question, as the visitor gave it (`yes`/`no` for yes/no
/// questions; 是/否, true/false and 1/0 are read the same and stored as `yes`/`no`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportAnswer {
    /// The checklist item's id.
    pub item: String,
    pub value: String,
}

/// A visit report as a visitor (or a station worker) files it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// When the visit began; defaults to the filer's check-in.
    #[serde(default)]
    pub checked_in_at: Option<DateTime<chrono::FixedOffset>>,
    /// When it ended; defaults to the filer's check-out.
    #[serde(default)]
    pub checked_out_at: Option<DateTime<chrono::FixedOffset>>,
    /// Where the visitor was (from the phone); defaults to the check-in position.
    #[serde(default)]
    pub position: Option<GeoPoint>,
    /// Whether the person (or, for a community task, its contact) was reached.
    pub reached: bool,
    /// Answers to the task's checklist.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub answers: Vec<ReportAnswer>,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub notes: String,
    /// For a station filing on a visitor's behalf: whose visit it was (default: everyone who
    /// holds the task). Volunteers file for themselves and leave this out.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub visitors: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportState {
    /// Stored, waiting for the plugin's review (it could not be reached; retried).
    Submitted,
    /// Accepted (possibly with a follow-up): the task is done and this report is in force.
    Accepted,
    /// Rejected: the reasons say what to fix; a new version may be filed.
    Rejected,
    /// Was accepted, then a correction was accepted in its place (kept, not counted).
    Superseded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    FollowUp,
    Rejected,
}

/// What the review decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    pub outcome: Outcome,
    /// For a follow-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// A follow-up's reason, or what a rejected report must fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The task made for the follow-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_task: Option<u64>,
    /// `plugin-id@version`, or `linli` for tasks without a plugin.
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A visit report as stored. Never changed once reviewed, except that an accepted report
/// becomes `superseded` when a correction is accepted in its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub id: u64,
    pub task: u64,
    /// 1 for the first report on the task, then 2, 3, …
    pub version: u32,
    /// The token scope that filed it (`volunteer:7`, `station:3`).
    pub filed_by: String,
    pub filed_at: DateTime<Utc>,
    /// Whose visit it was: their service hours come from it.
    pub visitors: Vec<u64>,
    pub checked_in_at: DateTime<Utc>,
    pub checked_out_at: DateTime<Utc>,
    /// The filer stated the times (otherwise they come from the check-ins, and each visitor's
    /// hours from their own check-in and check-out).
    #[serde(default)]
    pub times_given: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<GeoPoint>,
    pub reached: bool,
    pub answers: Vec<ReportAnswer>,
    pub notes: String,
    pub state: ReportState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Why the review could not run yet (it is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_error: Option<String>,
    /// The accepted report this one corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<u64>,
    /// The community of the task (for scopes).
    pub community: String,
}

impl Report {
    /// Minutes between check-in and check-out.
    pub fn minutes(&self) -> u32 {
        u32::try_from(
            (self.checked_out_at - self.checked_in_at)
                .num_minutes()
                .max(0),
        )
        .unwrap_or(u32::MAX)
    }
}

/// Where a service record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordSource {
    /// An accepted visit report.
    Visit { task: u64, report: u64 },
    /// Entered by a station (training, drills, events outside tasks).
    Entered,
}

/// A volunteer service record (志愿服务记录, 2021 national rules): who, the activity's name,
/// date, place, content, actual hours, the organising unit and its person in charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceRecord {
    pub id: u64,
    pub volunteer: u64,
    /// The activity's name, e.g. 特殊困难老人月度探访.
    pub activity: String,
    pub date: NaiveDate,
    /// Where: a community's name, or a place a station names. Never a person's address.
    pub place: String,
    /// The community (or township) code the hours count towards in coverage reports.
    pub region: String,
    pub content: String,
    /// Actual service time, in minutes (hours are minutes / 60).
    pub minutes: u32,
    /// The organising unit (the station).
    pub organiser: String,
    pub station: u64,
    /// The organising unit's person in charge.
    pub person_in_charge: String,
    pub source: RecordSource,
    pub entered_at: DateTime<Utc>,
    /// The token scope that entered it.
    pub entered_by: String,
    /// Entered more than 10 working days after the activity (the rules' limit).
    pub late: bool,
    /// Replaced by a correction (kept, not counted).
    #[serde(default)]
    pub superseded: bool,
}

impl ServiceRecord {
    pub fn hours(&self) -> f64 {
        f64::from(self.minutes) / 60.0
    }
}

/// A service record a station enters for an activity outside tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRecordInput {
    pub volunteer: u64,
    #[schema(min_length = 1, max_length = 100, example = "应急救护培训")]
    pub activity: String,
    pub date: NaiveDate,
    #[schema(min_length = 1, max_length = 100, example = "崆峒区社会工作站")]
    pub place: String,
    /// The community the activity served (default: the station's township).
    #[serde(default)]
    pub community: Option<String>,
    #[schema(min_length = 1, max_length = 500)]
    pub content: String,
    /// Actual hours, above 0 and at most 24, in steps of a minute or more.
    #[schema(example = 2.5)]
    pub hours: f64,
    /// Default: the station's contact.
    #[serde(default)]
    #[schema(max_length = 50)]
    pub person_in_charge: Option<String>,
}

/// Star levels (星级志愿者) by recorded hours.
pub const STAR_HOURS: [u32; 5] = [100, 300, 600, 1000, 1500];

/// The star level (0 to 5) of `hours` recorded.
pub fn stars(hours: f64) -> u8 {
    STAR_HOURS
        .iter()
        .filter(|h| hours >= f64::from(**h))
        .count() as u8
}

/// A volunteer's totals.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Hours {
    pub volunteer: u64,
    pub hours: f64,
    pub records: u32,
    /// Records entered late (more than 10 working days after the activity).
    pub late: u32,
    /// 0 to 5 (一星 at 100 hours, then 300, 600, 1000 and 1500).
    pub stars: u8,
    /// Hours still needed for the next star, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_star_in: Option<f64>,
}

/// A certificate of volunteer service (志愿服务证明): what it states, and nothing else — no
/// resident ID, no phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Certificate {
    /// The verification code: 26 characters of base32 from 128 random bits.
    pub code: String,
    pub volunteer: u64,
    /// The volunteer's name, as the certificate prints it.
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub hours: f64,
    pub records: u32,
    /// What the service was: activities and how many times.
    pub content: Vec<String>,
    /// The recording unit (记录单位): the station.
    pub unit: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which period a certificate covers (default: every record up to today).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    #[serde(default)]
    pub from: Option<NaiveDate>,
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

/// A certificate as anyone with its code sees it: what the paper states, nothing more (no
/// internal ids, no issuer's token scope).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PublicCertificate {
    pub code: String,
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub hours: f64,
    pub records: u32,
    pub content: Vec<String>,
    pub unit: String,
    pub issued_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&Certificate> for PublicCertificate {
    fn from(c: &Certificate) -> Self {
        PublicCertificate {
            code: c.code.clone(),
            name: c.name.clone(),
            from: c.from,
            to: c.to,
            hours: c.hours,
            records: c.records,
            content: c.content.clone(),
            unit: c.unit.clone(),
            issued_at: c.issued_at,
            revoked_at: c.revoked_at,
        }
    }
}

/// What the public verification answers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Verification {
    /// `valid`, or `revoked`.
    pub status: String,
    pub certificate: PublicCertificate,
}

/// 满意 / 一般 / 不满意.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    Satisfied,
    Neutral,
    Dissatisfied,
}

/// A rating of a visit (好差评).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rating {
    pub task: u64,
    pub rating: Satisfaction,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// `station:3`, or `family` for a one-time link.
    pub by: String,
    pub at: DateTime<Utc>,
    /// The month of the visit rated (YYYYMM).
    pub month: u32,
    pub community: String,
    /// The routine follow-up a dissatisfied rating made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_task: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingInput {
    pub rating: Satisfaction,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub comment: String,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Read,
    List,
    Create,
    Update,
    Deactivate,
    Import,
    Export,
    /// A console user revealed a masked resident ID.
    Reveal,
}

/// One access to personal data: by whom, what, when, through which route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// The token's id (the first 12 hex digits of its hash); `cli` for the command line.
    pub token: String,
    pub scope: String,
    pub action: AuditAction,
    /// `person:12`, `report:5`, `volunteer:3`, `persons`, `coverage`.
    pub subject: String,
    /// How many records a list, import or export touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `GET /v1/persons/{id}`.
    pub route: String,
    /// The region the data belongs to (who may read the entry), if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

// --------------------------------------------------------------------- coverage index values

/// A month as `YYYYMM`.
pub fn month_key(d: NaiveDate) -> u32 {
    d.year() as u32 * 100 + d.month()
}

/// The first day of month `YYYYMM`, if it is one.
pub fn month_start(m: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(m / 100).ok()?, m % 100, 1)
}

/// The month after `m`.
pub fn next_month(m: u32) -> u32 {
    if m % 100 >= 12 {
        (m / 100 + 1) * 100 + 1
    } else {
        m + 1
    }
}

/// The month before `m`.
pub fn prev_month(m: u32) -> u32 {
    if m % 100 <= 1 {
        (m / 100 - 1) * 100 + 12
    } else {
        m - 1
    }
}

/// Days since 1970-01-01 of a date.
pub fn day_number(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// A span of days a person was in care in one community: `[from, to)` in day numbers, `to`
/// `i32::MAX` while it lasts. Stored as 16 bytes (community code as a number, from, to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareSpan {
    pub community: u64,
    pub from: i32,
    pub to: i32,
}

impl CareSpan {
    pub const OPEN: i32 = i32::MAX;

    pub fn encode_all(spans: &[CareSpan]) -> Vec<u8> {
        let mut out = Vec::with_capacity(spans.len() * 16);
        for s in spans {
            out.extend_from_slice(&s.community.to_le_bytes());
            out.extend_from_slice(&s.from.to_le_bytes());
            out.extend_from_slice(&s.to.to_le_bytes());
        }
        out
    }

    /// The spans in `bytes`; `None` if the length is not a whole number of spans.
    pub fn decode_all(bytes: &[u8]) -> Option<Vec<CareSpan>> {
        if !bytes.len().is_multiple_of(16) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(16)
                .map(|c| CareSpan {
                    community: u64::from_le_bytes(c[0..8].try_into().unwrap_or_default()),
                    from: i32::from_le_bytes(c[8..12].try_into().unwrap_or_default()),
                    to: i32::from_le_bytes(c[12..16].try_into().unwrap_or_default()),
                })
                .collect(),
        )
    }

    /// Whether the span covers any day of `[from, to)`.
    pub fn overlaps(&self, from: i32, to: i32) -> bool {
        self.from < to && self.to > from
    }

    /// The community code as its 12 digits.
    pub fn community_code(&self) -> String {
        format!("{:012}", self.community)
    }
}

/// A 12-digit community code as a number (`None` if it is not 12 digits).
pub fn community_number(code: &str) -> Option<u64> {
    (code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit()))
        .then(|| code.parse().ok())
        .flatten()
}

/// Tasks of one (month, community, action): how many were due, and how they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaskCounts {
    pub due: u32,
    pub done: u32,
    pub unstaffed: u32,
    pub overdue: u32,
    pub cancelled: u32,
}

impl TaskCounts {
    pub fn of(task: &crate::task::Task) -> Self {
        use crate::task::TaskStatus;
        TaskCounts {
            due: u32::from(task.status != TaskStatus::Cancelled),
            done: u32::from(task.status == TaskStatus::Done),
            unstaffed: u32::from(task.status == TaskStatus::Unstaffed),
            overdue: u32::from(task.overdue && task.status.is_active()),
            cancelled: u32::from(task.status == TaskStatus::Cancelled),
        }
    }

    pub fn add(&mut self, o: &TaskCounts) {
        self.due += o.due;
        self.done += o.done;
        self.unstaffed += o.unstaffed;
        self.overdue += o.overdue;
        self.cancelled += o.cancelled;
    }

    pub fn sub(&mut self, o: &TaskCounts) {
        self.due = self.due.saturating_sub(o.due);
        self.done = self.done.saturating_sub(o.done);
        self.unstaffed = self.unstaffed.saturating_sub(o.unstaffed);
        self.overdue = self.overdue.saturating_sub(o.overdue);
        self.cancelled = self.cancelled.saturating_sub(o.cancelled);
    }

    pub fn is_zero(&self) -> bool {
        *self == TaskCounts::default()
    }

    pub fn encode(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        for (i, v) in [
            self.due,
            self.done,
            self.unstaffed,
            self.overdue,
            self.cancelled,
        ]
        .iter()
        .enumerate()
        {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != 20 {
            return None;
        }
        let n = |i: usize| u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap_or_default());
        Some(TaskCounts {
            due: n(0),
            done: n(1),
            unstaffed: n(2),
            overdue: n(3),
            cancelled: n(4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_at_the_thresholds() {
        assert_eq!(stars(0.0), 0);
        assert_eq!(stars(99.9), 0);
        assert_eq!(stars(100.0), 1);
        assert_eq!(stars(299.0), 1);
        assert_eq!(stars(300.0), 2);
        assert_eq!(stars(600.0), 3);
        assert_eq!(stars(1000.0), 4);
        assert_eq!(stars(1499.99), 4);
        assert_eq!(stars(1500.0), 5);
        assert_eq!(stars(9000.0), 5);
    }

    #[test]
    fn months_and_spans_round_trip() {
        assert_eq!(next_month(202612), 202701);
        assert_eq!(prev_month(202701), 202612);
        assert_eq!(next_month(202602), 202603);
        assert_eq!(month_start(202613), None);
        let spans = vec![
            CareSpan {
                community: 620802001001,
                from: 10,
                to: 20,
            },
            CareSpan {
                community: 620802001002,
                from: 20,
                to: CareSpan::OPEN,
            },
        ];
        let b = CareSpan::encode_all(&spans);
        assert_eq!(CareSpan::decode_all(&b), Some(spans.clone()));
        assert_eq!(CareSpan::decode_all(&b[..15]), None);
        assert_eq!(spans[0].community_code(), "620802001001");
        assert!(spans[0].overlaps(19, 25) && !spans[0].overlaps(20, 25));
        let c = TaskCounts {
            due: 3,
            done: 1,
            unstaffed: 1,
            overdue: 2,
            cancelled: 0,
        };
        assert_eq!(TaskCounts::decode(&c.encode()), Some(c));
    }
}
