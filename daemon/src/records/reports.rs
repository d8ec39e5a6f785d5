//! Visit reports: filed against a task by its visitors (or a station worker), checked against
//! the task's checklist, reviewed by the task's plugin, and applied: accepted (the task is done,
//! hours recorded, the visit counted), follow-up (the same, plus a new task and an outbox event
//! — urgent ones jump the notification queue) or rejected (the visitor fixes and files again).
//!
//! A report is stored before the plugin is called, so a plugin that cannot answer loses
//! nothing: the report waits as `submitted` and [`Records::review_pending`] retries it.
//! Accepted reports are never changed; a correction is a new version, and when it is accepted
//! the old one becomes `superseded` (kept) and the counts move to the new one.

use chrono::{DateTime, Duration, Utc};

use super::model::{
    Outcome, RecordSource, Report, ReportAnswer, ReportInput, ReportState, Review, ServiceRecord,
    month_key,
};
use super::service::{Actor, Records, conflict, task_event};
use crate::plugins::model as pm;
use crate::registry::{GeoPoint, Invalid};
use crate::schedule::{AnswerKind, ChecklistItem, EventData, EventKind};
use crate::service::{ServiceError, not_found};
use crate::store::{ReadTx, StoreError, WriteTx};
use crate::task::{OfferState, Severity, Task, TaskChange, TaskStatus, TaskTarget};

/// Longest visit one report may record.
const MAX_VISIT_HOURS: i64 = 24;

/// The answers, checked against the checklist and normalised (`yes`/`no`, numbers as given,
/// choices as the checklist spells them).
pub fn check_answers(
    answers: &[ReportAnswer],
    checklist: &[ChecklistItem],
    errs: &mut Invalid,
) -> Vec<ReportAnswer> {
    let mut out = Vec::with_capacity(answers.len());
    if answers.len() > 200 {
        errs.push("answers", "at most 200 answers");
        return out;
    }
    let known: Vec<&str> = checklist.iter().map(|c| c.id.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    for (i, a) in answers.iter().enumerate() {
        let field = format!("answers[{i}].value");
        let Some(item) = checklist.iter().find(|c| c.id == a.item) else {
            errs.push(
                format!("answers[{i}].item"),
                if known.is_empty() {
                    format!("{:?} is not a question: this task has no checklist", a.item)
                } else {
                    format!(
                        "{:?} is not a question of this task's checklist ({})",
                        a.item,
                        known.join(", ")
                    )
                },
            );
            continue;
        };
        if !seen.insert(a.item.as_str()) {
            errs.push(
                format!("answers[{i}].item"),
                format!("{:?} is answered twice", a.item),
            );
            continue;
        }
        let v = a.value.trim();
        if v.chars().count() > 2000 {
            errs.push(field, "at most 2000 characters");
            continue;
        }
        let value = match item.kind {
            AnswerKind::YesNo => match v.to_lowercase().as_str() {
                "yes" | "y" | "true" | "1" | "是" | "有" => "yes".to_owned(),
                "no" | "n" | "false" | "0" | "否" | "无" | "没有" => "no".to_owned(),
                _ => {
                    errs.push(field, format!("{:?}: answer yes or no (是/否)", a.value));
                    continue;
                }
            },
            AnswerKind::Number => match v.parse::<f64>() {
                Ok(n) if n.is_finite() => v.to_owned(),
                _ => {
                    errs.push(field, format!("{:?} is not a number", a.value));
                    continue;
                }
            },
            AnswerKind::Choice => {
                // A choice by its id or by either of its labels (诈骗 for `fraud`); the id is
                // stored.
                let by_label = item
                    .choice_labels
                    .iter()
                    .position(|l| l.zh.trim() == v || l.en.trim().eq_ignore_ascii_case(v));
                match item
                    .choices
                    .iter()
                    .position(|c| c.as_str() == v || c.eq_ignore_ascii_case(v))
                    .or(by_label)
                    .and_then(|i| item.choices.get(i))
                {
                    Some(c) => c.clone(),
                    None => {
                        let offered: Vec<String> = item
                            .choices
                            .iter()
                            .enumerate()
                            .map(|(i, c)| match item.choice_labels.get(i) {
                                Some(l) => format!("{c} ({} / {})", l.zh, l.en),
                                None => c.clone(),
                            })
                            .collect();
                        errs.push(
                            field,
                            format!(
                                "{:?} is not one of the choices ({})",
                                a.value,
                                offered.join(", ")
                            ),
                        );
                        continue;
                    }
                }
            }
            AnswerKind::Text => {
                if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                    errs.push(field, "control characters are not allowed");
                    continue;
                }
                v.to_owned()
            }
        };
        if value.is_empty() && item.required {
            errs.push(field, "this question must be answered");
            continue;
        }
        if !value.is_empty() {
            out.push(ReportAnswer {
                item: a.item.clone(),
                value,
            });
        }
    }
    let missing: Vec<&str> = checklist
        .iter()
        .filter(|c| c.required && !out.iter().any(|a| a.item == c.id))
        .filter(|c| !answers.iter().any(|a| a.item == c.id))
        .map(|c| c.id.as_str())
        .collect();
    if !missing.is_empty() {
        errs.push(
            "answers",
            format!(
                "required questions are not answered: {}",
                missing.join(", ")
            ),
        );
    }
    // Questions required only when another answer was given.
    for c in checklist {
        let Some(w) = &c.required_when else { continue };
        let given = out
            .iter()
            .find(|a| a.item == w.item)
            .map(|a| a.value.as_str());
        if given == Some(w.equals.as_str()) && !out.iter().any(|a| a.item == c.id) {
            errs.push(
                "answers",
                format!(
                    "{} must be answered, since {} is {}",
                    c.id, w.item, w.equals
                ),
            );
        }
    }
    out
}

fn position_ok(p: &GeoPoint) -> bool {
    p.lat.is_finite()
        && p.lon.is_finite()
        && (-90.0..=90.0).contains(&p.lat)
        && (-180.0..=180.0).contains(&p.lon)
}

/// What the host decides for a task no plugin reviews (one-off tasks): accepted when the
/// person was reached, otherwise a routine follow-up to try again.
fn host_review(report: &Report) -> pm::ReviewOutcome {
    if report.reached {
        pm::ReviewOutcome::Accepted
    } else {
        pm::ReviewOutcome::FollowUp {
            severity: pm::Severity::Routine,
            reason: "the person was not reached: try again".into(),
        }
    }
}

impl From<pm::Severity> for Severity {
    fn from(s: pm::Severity) -> Self {
        match s {
            pm::Severity::Routine => Severity::Routine,
            pm::Severity::Urgent => Severity::Urgent,
        }
    }
}

/// An offer that makes its volunteer one of the visitors: accepted, or the visit under way or
/// made (an offer merely made does not).
fn on_the_team(state: OfferState) -> bool {
    matches!(
        state,
        OfferState::Accepted | OfferState::CheckedIn | OfferState::CheckedOut
    )
}

/// Whether the volunteer checked in or out with the app.
fn visited(o: &crate::task::Offer) -> bool {
    matches!(o.state, OfferState::CheckedIn | OfferState::CheckedOut)
}

/// A task and its checklist, if `actor` may file a report on it (else not found).
fn reportable(
    r: &ReadTx,
    task_id: u64,
    actor: &Actor<'_>,
) -> Result<(Task, Vec<ChecklistItem>), ServiceError> {
    let task = r
        .task(task_id)?
        .filter(|t| match actor {
            Actor::Volunteer(me) => t
                .offers
                .iter()
                .any(|o| o.volunteer == *me && (on_the_team(o.state) || o.state.holds())),
            Actor::Staff { guard, .. } => guard.community(&t.community),
        })
        .ok_or_else(|| not_found("task", task_id))?;
    if let Actor::Volunteer(me) = actor
        && !task
            .offers
            .iter()
            .any(|o| o.volunteer == *me && on_the_team(o.state))
    {
        return Err(conflict(
            "task",
            "accept the offer first: a report is filed by those who took the task",
        ));
    }
    let checklist = if task.checklist == 0 {
        Vec::new()
    } else {
        r.checklist(task.checklist)?.unwrap_or_default()
    };
    Ok((task, checklist))
}

impl Records {
    /// Files a visit report and has it reviewed at once. Answers the report as stored: reviewed,
    /// or `submitted` with `review_error` when the plugin could not be asked (it is retried).
    pub fn file_report(
        &self,
        task_id: u64,
        input: ReportInput,
        actor: &Actor<'_>,
    ) -> Result<Report, ServiceError> {
        let now = self.now();
        let (task, checklist) = self.store.read(|r| reportable(r, task_id, actor))?;
        if !matches!(
            task.status,
            TaskStatus::Accepted | TaskStatus::CheckedIn | TaskStatus::Visited | TaskStatus::Done
        ) {
            return Err(conflict(
                "status",
                format!(
                    "a report is filed once the task is accepted (it is {})",
                    task.status.key()
                ),
            ));
        }
        let mut errs = Invalid::default();
        let mut input = input;
        input.notes = input.notes.replace("\r\n", "\n");
        for a in input.answers.iter_mut() {
            a.value = a.value.replace("\r\n", "\n");
        }
        // Nobody reached: nothing could be asked, so no question is required (what was
        // answered is still checked); the plugin's review decides what follows.
        let relaxed: Vec<crate::schedule::ChecklistItem>;
        let questions = if input.reached {
            &checklist
        } else {
            relaxed = checklist
                .iter()
                .cloned()
                .map(|mut c| {
                    c.required = false;
                    c.required_when = None;
                    c
                })
                .collect();
            &relaxed
        };
        let answers = check_answers(&input.answers, questions, &mut errs);
        if input.notes.chars().count() > 4000 {
            errs.push("notes", "at most 4000 characters");
        } else if input
            .notes
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            errs.push("notes", "control characters are not allowed");
        }
        if input.position.as_ref().is_some_and(|p| !position_ok(p)) {
            errs.push("position", "latitude -90 to 90, longitude -180 to 180");
        }
        // Whose visit: a correction keeps the visitors of the report in force; a volunteer
        // files for themself and the teammates who checked in or out; a station names them, or
        // it is everyone on the team.
        let seated: Vec<u64> = task
            .offers
            .iter()
            .filter(|o| on_the_team(o.state))
            .map(|o| o.volunteer)
            .collect();
        let in_force: Option<Vec<u64>> = match task.report {
            Some(id) => self.store.read(|r| r.report(id))?.map(|r| r.visitors),
            None => None,
        };
        let visitors: Vec<u64> = match actor {
            Actor::Volunteer(me) => {
                if !input.visitors.is_empty() {
                    errs.push(
                        "visitors",
                        "a volunteer files for themself: leave visitors out",
                    );
                }
                let mut v = in_force.clone().unwrap_or_else(|| {
                    task.offers
                        .iter()
                        .filter(|o| visited(o))
                        .map(|o| o.volunteer)
                        .collect()
                });
                v.push(*me);
                v.sort_unstable();
                v.dedup();
                v
            }
            Actor::Staff { .. } if input.visitors.is_empty() => {
                in_force.clone().unwrap_or_else(|| seated.clone())
            }
            Actor::Staff { .. } if input.visitors.len() > 20 => {
                errs.push("visitors", "at most 20 visitors (a team's size)");
                Vec::new()
            }
            Actor::Staff { .. } => {
                let mut v = input.visitors.clone();
                v.sort_unstable();
                v.dedup();
                for id in &v {
                    if !seated.contains(id) {
                        errs.push(
                            "visitors",
                            format!("volunteer {id} does not hold this task"),
                        );
                    }
                }
                v
            }
        };
        if visitors.is_empty() {
            errs.push("visitors", "nobody holds this task: offer it first");
        }
        let offer = |v: u64| task.offers.iter().rev().find(|o| o.volunteer == v);
        let checked_in = input
            .checked_in_at
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                visitors
                    .iter()
                    .filter_map(|v| offer(*v)?.checked_in_at)
                    .min()
            });
        // Filing ends the visit of anyone still checked in.
        let still_in = visitors
            .iter()
            .any(|v| offer(*v).is_some_and(|o| o.state == OfferState::CheckedIn));
        let checked_out = input
            .checked_out_at
            .map(|t| t.with_timezone(&Utc))
            .or_else(|| {
                if still_in {
                    return None;
                }
                visitors
                    .iter()
                    .filter_map(|v| offer(*v)?.checked_out_at)
                    .max()
            })
            .or(checked_in.map(|_| now));
        let position = input
            .position
            .or_else(|| visitors.iter().find_map(|v| offer(*v)?.checked_in_position));
        match (checked_in, checked_out) {
            (None, _) | (_, None) => errs.push(
                "checked_in_at",
                "say when the visit began (or check in first)",
            ),
            (Some(a), Some(_)) if a > now + Duration::minutes(5) => {
                errs.push("checked_in_at", "is in the future");
            }
            (Some(a), Some(b)) => {
                if b <= a {
                    errs.push("checked_out_at", "must be after checked_in_at");
                } else if b - a > Duration::hours(MAX_VISIT_HOURS) {
                    errs.push(
                        "checked_out_at",
                        "a visit of more than 24 hours: file one report per visit",
                    );
                }
                if b > now + Duration::minutes(5) {
                    errs.push("checked_out_at", "is in the future");
                }
                let earliest = task.due_start.with_timezone(&Utc) - Duration::days(30);
                if a < earliest {
                    errs.push(
                        "checked_in_at",
                        format!(
                            "is more than 30 days before the task's due window ({})",
                            task.due_start.format("%Y-%m-%d")
                        ),
                    );
                }
            }
        }
        errs.into_result()?;
        let (Some(checked_in_at), Some(checked_out_at)) = (checked_in, checked_out) else {
            return Err(conflict("checked_in_at", "say when the visit began"));
        };
        let report = self.store.write(|w| {
            let mut reports = w.reports_of_task(task_id)?;
            // A report waiting for its review blocks a second one — unless its review already
            // failed (the plugin is gone, or answered something the host refused): then the
            // new report replaces it, so a broken plugin never locks a task.
            for r in reports
                .iter_mut()
                .filter(|r| r.state == ReportState::Submitted)
            {
                if r.review_error.is_none() {
                    return Err(conflict(
                        "task",
                        "a report on this task is waiting for its review; try again shortly",
                    ));
                }
                r.state = ReportState::Rejected;
                r.review = Some(Review {
                    outcome: Outcome::Rejected,
                    severity: None,
                    reasons: vec![
                        "replaced by a newer report before it could be reviewed".to_owned(),
                    ],
                    follow_up_task: None,
                    by: "linli".to_owned(),
                    at: now,
                });
                w.put_report(r)?;
            }
            let current = w.task(task_id)?.ok_or_else(|| not_found("task", task_id))?;
            if current.status == TaskStatus::Cancelled {
                return Err(conflict("status", "the task was cancelled"));
            }
            let id = w.reserve_ids("report", 1)?;
            let report = Report {
                id,
                task: task_id,
                version: u32::try_from(reports.len()).unwrap_or(u32::MAX - 1) + 1,
                filed_by: actor.by(),
                filed_at: now,
                visitors: visitors.clone(),
                checked_in_at,
                checked_out_at,
                times_given: input.checked_in_at.is_some() || input.checked_out_at.is_some(),
                position,
                reached: input.reached,
                answers,
                notes: input.notes.trim().to_owned(),
                state: ReportState::Submitted,
                review: None,
                review_error: None,
                corrects: reports
                    .iter()
                    .find(|r| r.state == ReportState::Accepted)
                    .map(|r| r.id),
                community: current.community.clone(),
            };
            w.put_report(&report)?;
            Ok::<_, ServiceError>(report)
        })?;
        Ok(self.review(report.id)?.unwrap_or(report))
    }

    /// Reviews a submitted report and applies the outcome; `None` if it is not waiting.
    pub fn review(&self, report_id: u64) -> Result<Option<Report>, ServiceError> {
        let Some((report, task, checklist)) = self.store.read(|r| {
            let Some(report) = r.report(report_id)? else {
                return Ok::<_, StoreError>(None);
            };
            if report.state != ReportState::Submitted {
                return Ok(None);
            }
            let Some(task) = r.task(report.task)? else {
                return Ok(None);
            };
            let checklist = if task.checklist == 0 {
                Vec::new()
            } else {
                r.checklist(task.checklist)?.unwrap_or_default()
            };
            Ok(Some((report, task, checklist)))
        })?
        else {
            return Ok(None);
        };
        let judged = if task.plugin.is_empty() {
            Ok((host_review(&report), "linli".to_owned()))
        } else {
            self.plugin_review(&report, &task, &checklist)
        };
        let now = self.now();
        match judged {
            Ok((outcome, by)) => self.apply(report_id, outcome, by, now).map(Some),
            Err(why) => {
                tracing::warn!(report = report_id, task = task.id, error = %why, "a visit report could not be reviewed yet");
                self.store.write(|w| {
                    let Some(mut r) = w.report(report_id)? else {
                        return Ok(None);
                    };
                    if r.state == ReportState::Submitted {
                        r.review_error =
                            Some(format!("{why} (the review is retried every minute)"));
                        w.put_report(&r)?;
                    }
                    Ok::<_, ServiceError>(Some(r))
                })
            }
        }
    }

    fn plugin_review(
        &self,
        report: &Report,
        task: &Task,
        checklist: &[ChecklistItem],
    ) -> Result<(pm::ReviewOutcome, String), String> {
        let today = crate::clock::local_date(self.now());
        let target = self
            .store
            .read(|r| {
                Ok::<_, StoreError>(match &task.target {
                    TaskTarget::Person { id } => r
                        .person(*id)?
                        .map(|p| pm::Target::Person(pm::PersonTarget::from_person(&p, today))),
                    TaskTarget::Community { code } => r
                        .region(code)?
                        .map(|g| pm::Target::Community(pm::CommunityTarget::from_region(&g))),
                })
            })
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the task's target is no longer registered".to_owned())?;
        let info = pm::TaskInfo {
            id: task.id,
            kind: task.kind.clone(),
            target,
            due_start: task.due_start.to_rfc3339(),
            due_end: task.due_end.to_rfc3339(),
            checklist: checklist.iter().map(pm::ChecklistItem::from).collect(),
        };
        let visit = pm::VisitReport {
            visited_at: report
                .checked_in_at
                .with_timezone(&task.due_start.timezone())
                .to_rfc3339(),
            duration_minutes: report.minutes(),
            reached: report.reached,
            answers: report
                .answers
                .iter()
                .map(|a| pm::Answer {
                    item: a.item.clone(),
                    value: a.value.clone(),
                })
                .collect(),
            notes: report.notes.clone(),
        };
        let version = self
            .plugins
            .description(&task.plugin)
            .map(|d| d.version)
            .unwrap_or_default();
        let (outcome, _logs) = self
            .plugins
            .review(&task.plugin, &info, &visit)
            .map_err(|e| format!("plugin {}: {e}", task.plugin))?;
        Ok((outcome, format!("{}@{version}", task.plugin)))
    }

    /// Applies a review outcome in one transaction: the report, the task, the visit counts,
    /// the service records, the follow-up task and the events.
    fn apply(
        &self,
        report_id: u64,
        outcome: pm::ReviewOutcome,
        by: String,
        now: DateTime<Utc>,
    ) -> Result<Report, ServiceError> {
        let (report, follow_up) = self.store.write(|w| {
            let mut report = w
                .report(report_id)?
                .ok_or_else(|| not_found("report", report_id))?;
            if report.state != ReportState::Submitted {
                return Ok((report, None));
            }
            let mut task = w
                .task(report.task)?
                .ok_or_else(|| not_found("task", report.task))?;
            let (kind, severity, reasons) = match &outcome {
                pm::ReviewOutcome::Accepted => (Outcome::Accepted, None, Vec::new()),
                pm::ReviewOutcome::FollowUp { severity, reason } => (
                    Outcome::FollowUp,
                    Some(Severity::from(*severity)),
                    vec![reason.clone()],
                ),
                pm::ReviewOutcome::Rejected { reasons } => {
                    (Outcome::Rejected, None, reasons.clone())
                }
            };
            report.review_error = None;
            let mut follow_up = None;
            if kind == Outcome::Rejected {
                report.state = ReportState::Rejected;
                report.review = Some(Review {
                    outcome: kind,
                    severity,
                    reasons: reasons.clone(),
                    follow_up_task: None,
                    by,
                    at: now,
                });
                w.put_report(&report)?;
                w.push_event(task_event(
                    EventKind::ReportRejected,
                    &task,
                    now,
                    reasons.join("; "),
                    Some(EventData::Review {
                        report: report.id,
                        severity: None,
                        reasons,
                        follow_up_task: None,
                    }),
                ))?;
                return Ok((report, None));
            }
            if task.status == TaskStatus::Cancelled {
                report.state = ReportState::Rejected;
                report.review = Some(Review {
                    outcome: Outcome::Rejected,
                    severity: None,
                    reasons: vec!["the task was cancelled before the report was reviewed".into()],
                    follow_up_task: None,
                    by,
                    at: now,
                });
                w.put_report(&report)?;
                return Ok((report, None));
            }
            // The report in force before this one (a correction replaces it), and the follow-up
            // it made, which a correction's follow-up reuses while it is still to do.
            let mut earlier_follow_up = None;
            if let Some(old_id) = task.report
                && let Some(mut old) = w.report(old_id)?
                && old.state == ReportState::Accepted
            {
                self.uncount(w, &task, &old)?;
                earlier_follow_up = old.review.as_ref().and_then(|r| r.follow_up_task);
                old.state = ReportState::Superseded;
                w.put_report(&old)?;
            }
            let mut new_follow_up = false;
            if let Some(s) = severity {
                let open = match earlier_follow_up {
                    Some(id) => w.task(id)?.filter(|t| t.status.is_active()).map(|t| t.id),
                    None => None,
                };
                follow_up = match open {
                    Some(id) => Some(id),
                    None => {
                        new_follow_up = true;
                        Some(
                            self.write_follow_up(w, &task, s, &reasons.join("; "), &by)?
                                .id,
                        )
                    }
                };
            }
            report.state = ReportState::Accepted;
            report.review = Some(Review {
                outcome: kind,
                severity,
                reasons: reasons.clone(),
                follow_up_task: follow_up,
                by: by.clone(),
                at: now,
            });
            w.put_report(&report)?;
            self.count(w, &task, &report, now)?;
            // A rating counts in the month of the visit: a correction that moves the visit to
            // another month moves its rating too.
            if let Some(mut rating) = w.rating(task.id)? {
                let month = month_key(crate::clock::local_date(report.checked_in_at));
                if rating.month != month {
                    rating.month = month;
                    w.put_rating(&rating)?;
                }
            }
            // The task is done: visitors still in are checked out at the report's time, and
            // offers nobody answered are withdrawn.
            // The visitors' offers are closed; anyone else still holding the task no longer
            // does (and stops seeing the person).
            for o in task.offers.iter_mut() {
                match o.state {
                    OfferState::Accepted | OfferState::CheckedIn
                        if report.visitors.contains(&o.volunteer) =>
                    {
                        // Filing ended the visit of a visitor still checked in.
                        if o.checked_in_at.is_some() {
                            o.checked_out_at.get_or_insert(report.filed_at);
                        }
                        o.state = OfferState::CheckedOut;
                    }
                    OfferState::Offered | OfferState::Accepted | OfferState::CheckedIn => {
                        o.state = OfferState::Withdrawn;
                    }
                    _ => {}
                }
            }
            let was = task.status;
            task.report = Some(report.id);
            task.status = TaskStatus::Done;
            task.updated_at = now;
            if was != TaskStatus::Done {
                task.history.push(TaskChange {
                    at: now,
                    status: TaskStatus::Done,
                    by: format!("review:{by}"),
                    note: Some(format!("report {} accepted", report.id)),
                });
            }
            w.task_writer()?.put(&task)?;
            w.push_event(task_event(
                EventKind::ReportAccepted,
                &task,
                now,
                format!("report {} (version {}) accepted", report.id, report.version),
                Some(EventData::Review {
                    report: report.id,
                    severity: None,
                    reasons: Vec::new(),
                    follow_up_task: None,
                }),
            ))?;
            if let Some(s) = severity.filter(|_| new_follow_up) {
                w.push_event(task_event(
                    EventKind::ReviewFollowUp,
                    &task,
                    now,
                    reasons.join("; "),
                    Some(EventData::Review {
                        report: report.id,
                        severity: Some(s),
                        reasons,
                        follow_up_task: follow_up,
                    }),
                ))?;
            }
            Ok::<_, ServiceError>((report, follow_up.filter(|_| new_follow_up)))
        })?;
        if let Some(id) = follow_up {
            self.staff_follow_up(id);
        }
        Ok(report)
    }

    /// Counts an accepted report: the visit (when the person or community was reached) and a
    /// service record per visitor.
    fn count(
        &self,
        w: &mut WriteTx,
        task: &Task,
        report: &Report,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let day = crate::clock::local_date(report.checked_in_at);
        let month = month_key(day);
        if report.reached {
            match &task.target {
                TaskTarget::Person { id } => {
                    w.count_person_visit(month, &task.community, *id, 1)?
                }
                TaskTarget::Community { code } => {
                    w.count_community_visit(month, code, &task.kind, 1)?
                }
            }
        }
        let station = match task.station {
            Some(s) => w.station(s)?,
            None => None,
        };
        let place = w
            .region(&task.community)?
            .map_or_else(|| task.community.clone(), |r| r.name);
        // A plugin's titles are its own words; a station's one-off titles are free text that
        // may name the resident, so a record (and a certificate) names only the kind of service.
        let activity = if task.plugin.is_empty() {
            "上门服务（接诉即办）".to_owned()
        } else {
            task.title.zh.clone()
        };
        for v in &report.visitors {
            // The times the filer stated; else each visitor's own check-in and check-out; else
            // the report's.
            let offer = task.offers.iter().rev().find(|o| o.volunteer == *v);
            let own = offer.and_then(|o| {
                Some((
                    o.checked_in_at?,
                    o.checked_out_at.unwrap_or(report.filed_at),
                ))
            });
            let (a, b) = match own {
                Some((a, b))
                    if !report.times_given
                        && b > a
                        && b - a <= Duration::hours(MAX_VISIT_HOURS) =>
                {
                    (a, b)
                }
                _ => (report.checked_in_at, report.checked_out_at),
            };
            let minutes = u32::try_from((b - a).num_minutes().max(0)).unwrap_or(0);
            let record_station = match &station {
                Some(s) => Some(s.clone()),
                None => match w.volunteer(*v)? {
                    Some(vol) => w.station(vol.station)?,
                    None => None,
                },
            };
            let id = w.reserve_ids("service_record", 1)?;
            let date = crate::clock::local_date(a);
            w.put_service_record(&ServiceRecord {
                id,
                volunteer: *v,
                activity: activity.clone(),
                date,
                place: place.clone(),
                region: task.community.clone(),
                content: if task.plugin.is_empty() {
                    activity.clone()
                } else {
                    format!("{activity}（{}）", task.kind)
                },
                minutes,
                organiser: record_station
                    .as_ref()
                    .map_or_else(String::new, |s| s.name.clone()),
                station: record_station.as_ref().map_or(0, |s| s.id),
                person_in_charge: record_station
                    .as_ref()
                    .map_or_else(String::new, |s| s.contact.name.clone()),
                source: RecordSource::Visit {
                    task: task.id,
                    report: report.id,
                },
                entered_at: now,
                entered_by: report.filed_by.clone(),
                late: self.is_late(date, now),
                superseded: false,
            })?;
        }
        Ok(())
    }

    /// Takes back what [`Records::count`] counted for a report a correction replaces.
    fn uncount(&self, w: &mut WriteTx, task: &Task, report: &Report) -> Result<(), ServiceError> {
        let month = month_key(crate::clock::local_date(report.checked_in_at));
        if report.reached {
            match &task.target {
                TaskTarget::Person { id } => {
                    w.count_person_visit(month, &task.community, *id, -1)?
                }
                TaskTarget::Community { code } => {
                    w.count_community_visit(month, code, &task.kind, -1)?
                }
            }
        }
        for v in &report.visitors {
            let mut after = 0;
            loop {
                let page = w.service_records_of(*v, after, 500)?;
                for mut rec in page.items {
                    after = rec.id;
                    if rec.source
                        == (RecordSource::Visit {
                            task: task.id,
                            report: report.id,
                        })
                        && !rec.superseded
                    {
                        rec.superseded = true;
                        w.put_service_record(&rec)?;
                    }
                }
                if page.next.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reviews reports still waiting (their plugin could not be asked before), oldest first, at
    /// most `limit`; returns how many were reviewed.
    pub fn review_pending(&self, limit: usize) -> Result<usize, ServiceError> {
        // Round robin: each sweep starts after the last report it tried, so reports whose
        // plugin keeps failing never hold back the ones behind them.
        let after = *self
            .review_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ids = self.store.read(|r| r.unreviewed_reports(after, limit))?;
        if ids.len() < limit {
            let more = self
                .store
                .read(|r| r.unreviewed_reports(0, limit - ids.len()))?;
            ids.extend(more.into_iter().filter(|id| *id <= after));
        }
        if let Some(last) = ids.last() {
            *self
                .review_cursor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = *last;
        }
        let mut done = 0;
        for id in ids {
            if let Some(r) = self.review(id)?
                && r.state != ReportState::Submitted
            {
                done += 1;
            }
        }
        Ok(done)
    }

    /// The reports on a task the actor may see, oldest first.
    pub fn reports_of_task(
        &self,
        task_id: u64,
        actor: &Actor<'_>,
    ) -> Result<Vec<Report>, ServiceError> {
        self.store.read(|r| {
            reportable(r, task_id, actor)?;
            Ok(r.reports_of_task(task_id)?)
        })
    }

    /// One report, if the actor may see it.
    pub fn report(&self, id: u64, actor: &Actor<'_>) -> Result<Report, ServiceError> {
        self.store.read(|r| {
            let report = r.report(id)?.ok_or_else(|| not_found("report", id))?;
            reportable(r, report.task, actor).map_err(|_| not_found("report", id))?;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Names;

    #[test]
    fn choices_answer_by_label_and_conditions_require_by_the_answer_given() {
        let mut kind = item("kind", AnswerKind::Choice, true, &["fraud", "theft"]);
        kind.choice_labels = vec![
            Names {
                zh: "诈骗".into(),
                en: "Fraud".into(),
            },
            Names {
                zh: "盗窃".into(),
                en: "Theft".into(),
            },
        ];
        let fell = item("fell", AnswerKind::YesNo, true, &[]);
        let mut injuries = item("injuries", AnswerKind::Text, false, &[]);
        injuries.required_when = Some(crate::task::Condition {
            item: "fell".into(),
            equals: "yes".into(),
        });
        let list = vec![kind, fell, injuries];
        let mut errs = Invalid::default();
        let out = check_answers(
            &[answer("kind", "诈骗"), answer("fell", "否")],
            &list,
            &mut errs,
        );
        assert!(errs.0.is_empty(), "{errs:?}");
        assert_eq!(out[0].value, "fraud", "the id is stored");
        let mut errs = Invalid::default();
        check_answers(
            &[answer("kind", "theft"), answer("fell", "是")],
            &list,
            &mut errs,
        );
        assert!(
            errs.0
                .iter()
                .any(|e| e.message == "injuries must be answered, since fell is yes"),
            "{errs:?}"
        );
        let mut errs = Invalid::default();
        check_answers(
            &[answer("kind", "robbery"), answer("fell", "no")],
            &list,
            &mut errs,
        );
        assert!(
            errs.0[0].message.contains("fraud (诈骗 / Fraud)"),
            "{errs:?}"
        );
    }

    fn item(id: &str, kind: AnswerKind, required: bool, choices: &[&str]) -> ChecklistItem {
        ChecklistItem {
            id: id.into(),
            question: Names {
                zh: id.into(),
                en: id.into(),
            },
            kind,
            choices: choices.iter().map(|c| (*c).into()).collect(),
            required,
            choice_labels: Vec::new(),
            required_when: None,
        }
    }

    fn answer(item: &str, value: &str) -> ReportAnswer {
        ReportAnswer {
            item: item.into(),
            value: value.into(),
        }
    }

    #[test]
    fn answers_are_checked_and_normalised() {
        let list = vec![
            item("ok", AnswerKind::YesNo, true, &[]),
            item("pulse", AnswerKind::Number, false, &[]),
            item(
                "health",
                AnswerKind::Choice,
                false,
                &["good", "acute_illness"],
            ),
            item("notes", AnswerKind::Text, false, &[]),
        ];
        let mut errs = Invalid::default();
        let out = check_answers(
            &[
                answer("ok", "是"),
                answer("pulse", " 72 "),
                answer("health", "GOOD"),
            ],
            &list,
            &mut errs,
        );
        assert!(errs.0.is_empty(), "{errs:?}");
        assert_eq!(out[0].value, "yes");
        assert_eq!(out[1].value, "72");
        assert_eq!(out[2].value, "good");

        let mut errs = Invalid::default();
        check_answers(
            &[
                answer("pulse", "fast"),
                answer("health", "sick"),
                answer("mood", "fine"),
                answer("pulse", "1"),
            ],
            &list,
            &mut errs,
        );
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "answers[0].value",
                "answers[1].value",
                "answers[2].item",
                "answers[3].item",
                "answers"
            ],
            "{errs:?}"
        );
        assert!(errs.0[4].message.contains("ok"), "{errs:?}");
        let mut errs = Invalid::default();
        check_answers(&[answer("ok", "maybe")], &list, &mut errs);
        assert!(errs.0[0].message.contains("yes or no"));
        let mut errs = Invalid::default();
        check_answers(
            &[answer("ok", "NaN")],
            &[item("ok", AnswerKind::Number, true, &[])],
            &mut errs,
        );
        assert_eq!(errs.0.len(), 1, "NaN is not a number: {errs:?}");
    }
}
