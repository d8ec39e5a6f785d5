//! Satisfaction (好差评, 满意度): after a visit the station records the person's rating, or the
//! person's family gives it through a one-time link the station hands them. One rating per
//! task. A dissatisfied rating becomes a routine follow-up task.

use chrono::Duration;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::model::{Rating, RatingInput, Satisfaction, month_key};
use super::service::{Records, conflict, task_event};
use crate::registry::Invalid;
use crate::schedule::{EventData, EventKind};
use crate::service::{Guard, ServiceError, not_found};
use crate::store::WriteTx;
use crate::task::{Severity, TaskStatus};

/// Who gives the rating.
pub enum Rater<'a> {
    Staff {
        guard: &'a dyn Guard,
        by: String,
    },
    /// Through a one-time link (the code's hash).
    Link(String),
}

fn hash(code: &str) -> String {
    Sha256::digest(code.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A one-time link for a family to rate a visit.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RatingLink {
    pub task: u64,
    /// Hand this to the family (a QR code or a text message they forward).
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl Records {
    /// Makes a one-time rating link for a done task.
    pub fn rating_link(&self, task_id: u64, guard: &dyn Guard) -> Result<RatingLink, ServiceError> {
        let now = self.now();
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires_at = now + Duration::days(i64::from(self.config.rating_link_days));
        self.store.write(|w| {
            let task = w
                .task(task_id)?
                .filter(|t| guard.community(&t.community))
                .ok_or_else(|| not_found("task", task_id))?;
            if task.status != TaskStatus::Done {
                return Err(conflict("status", "only a done visit can be rated"));
            }
            if w.rating(task_id)?.is_some() {
                return Err(conflict("task", "this visit has already been rated"));
            }
            w.put_rating_link(&hash(&code), task_id, expires_at.timestamp())?;
            Ok(())
        })?;
        Ok(RatingLink {
            task: task_id,
            url: format!("{}/rate/{code}", self.base_url),
            expires_at,
        })
    }

    /// A task's rating, if it has one and the guard covers the task.
    pub fn rating_of(&self, task_id: u64, guard: &dyn Guard) -> Result<Rating, ServiceError> {
        self.store.read(|r| {
            r.task(task_id)?
                .filter(|t| guard.community(&t.community))
                .ok_or_else(|| not_found("task", task_id))?;
            r.rating(task_id)?
                .ok_or_else(|| not_found("rating of task", task_id))
        })
    }

    /// The task a live rating link is for (`None`: unknown, used or expired).
    pub fn link_task(&self, code: &str) -> Result<Option<crate::task::Task>, ServiceError> {
        let now = self.now().timestamp();
        let h = hash(code.trim());
        self.store.read(|r| {
            Ok(match r.rating_link(&h)? {
                Some((task, exp)) if exp > now => r.task(task)?,
                _ => None,
            })
        })
    }

    /// Records a rating (staff, for a task they cover; or a family through a live link).
    pub fn rate(
        &self,
        task_id: Option<u64>,
        input: RatingInput,
        rater: &Rater<'_>,
    ) -> Result<Rating, ServiceError> {
        let now = self.now();
        let comment = input.comment.replace("\r\n", "\n").trim().to_owned();
        if comment.chars().count() > 500 || comment.chars().any(|c| c.is_control() && c != '\n') {
            return Err(
                Invalid::one("comment", "at most 500 characters, no control characters").into(),
            );
        }
        let (rating, follow_up) = self.store.write(|w| {
            let (task_id, by) = match rater {
                Rater::Staff { guard, by } => {
                    let id = task_id.ok_or_else(|| not_found("task", 0))?;
                    w.task(id)?
                        .filter(|t| guard.community(&t.community))
                        .ok_or_else(|| not_found("task", id))?;
                    (id, by.clone())
                }
                Rater::Link(code) => {
                    let h = hash(code.trim());
                    let (id, exp) = w
                        .rating_link(&h)?
                        .ok_or_else(|| not_found("rating link", "with this code"))?;
                    w.remove_rating_link(&h)?;
                    if exp <= now.timestamp() {
                        return Err(ServiceError::Conflict {
                            field: "link".into(),
                            message: "this link has expired; ask the station for a new one".into(),
                        });
                    }
                    (id, "family".to_owned())
                }
            };
            let task = w.task(task_id)?.ok_or_else(|| not_found("task", task_id))?;
            if task.status != TaskStatus::Done {
                return Err(conflict("status", "only a done visit can be rated"));
            }
            if w.rating(task_id)?.is_some() {
                return Err(conflict("task", "this visit has already been rated"));
            }
            let visited = match task.report {
                Some(r) => w.report(r)?.map(|r| r.checked_in_at),
                None => None,
            }
            .unwrap_or(task.updated_at);
            let mut rating = Rating {
                task: task_id,
                rating: input.rating,
                comment: comment.clone(),
                by: by.clone(),
                at: now,
                month: month_key(crate::clock::local_date(visited)),
                community: task.community.clone(),
                follow_up_task: None,
            };
            let mut follow_up = None;
            if input.rating == Satisfaction::Dissatisfied {
                let reason = if comment.is_empty() {
                    "the resident was dissatisfied with the visit".to_owned()
                } else {
                    format!("the resident was dissatisfied: {comment}")
                };
                let t = self.write_follow_up(w, &task, Severity::Routine, &reason, &by)?;
                rating.follow_up_task = Some(t.id);
                follow_up = Some(t.id);
                push_follow_up(w, &task, &reason, task.report, t.id, now)?;
            }
            w.put_rating(&rating)?;
            Ok::<_, ServiceError>((rating, follow_up))
        })?;
        if let Some(id) = follow_up {
            self.staff_follow_up(id);
        }
        Ok(rating)
    }
}

fn push_follow_up(
    w: &mut WriteTx,
    task: &crate::task::Task,
    reason: &str,
    report: Option<u64>,
    follow_up: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ServiceError> {
    w.push_event(task_event(
        EventKind::ReviewFollowUp,
        task,
        now,
        reason.to_owned(),
        Some(EventData::Review {
            report: report.unwrap_or(0),
            severity: Some(Severity::Routine),
            reasons: vec![reason.to_owned()],
            follow_up_task: Some(follow_up),
        }),
    ))?;
    Ok(())
}
