//! Staffing: who takes a task. Builds a matching problem from the store for some tasks, runs
//! `matching::plan` (pure), and records the offers — each change one transaction with its
//! outbox events. Offers are answered (accept, decline), expire at their deadline and are
//! matched again; visitors check in and out.
//!
//! Runs after each occurrence (its new tasks, one batch), when a one-off task is created, and
//! when an offer is declined or expires (that task alone: nothing else is re-solved). Accepted
//! and pending offers are never touched by a later plan: a task is planned only for its open
//! seats, and the people already holding it (or who declined it) are excluded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::matching::{self, Problem, TaskSpec, VolunteerSpec, Weights};
use crate::registry::{GeoPoint, Station, VolunteerStatus};
use crate::service::{ServiceError, not_found};
use crate::store::{StoreError, WriteTx};

pub use crate::config::MatchingSettings;

/// What a staffing run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Staffed {
    /// Offers made.
    pub offered: usize,
    /// Tasks nobody could take.
    pub unstaffed: usize,
}

/// The status a task's offers add up to (done and cancelled tasks keep theirs).
fn derived_status(task: &Task) -> TaskStatus {
    if matches!(task.status, TaskStatus::Done | TaskStatus::Cancelled) {
        return task.status;
    }
    let team = usize::from(task.requirements.team_size.max(1));
    let holding: Vec<&Offer> = task
        .offers
        .iter()
        .filter(|o| o.state.fills_seat())
        .collect();
    if holding.is_empty() {
        return if task.status == TaskStatus::Unstaffed {
            TaskStatus::Unstaffed
        } else {
            TaskStatus::Open
        };
    }
    let out = holding
        .iter()
        .filter(|o| o.state == OfferState::CheckedOut)
        .count();
    if out >= team {
        return TaskStatus::Visited;
    }
    if holding
        .iter()
        .any(|o| matches!(o.state, OfferState::CheckedIn | OfferState::CheckedOut))
    {
        return TaskStatus::CheckedIn;
    }
    let accepted = holding
        .iter()
        .filter(|o| o.state == OfferState::Accepted)
        .count();
    if accepted == team {
        TaskStatus::Accepted
    } else {
        TaskStatus::Offered
    }
}

/// Records a status change on the task (when it changed).
fn settle(task: &mut Task, now: DateTime<Utc>, by: &str, note: Option<String>) -> bool {
    let status = derived_status(task);
    let changed = status != task.status;
    if changed {
        task.status = status;
        task.history.push(TaskChange {
            at: now,
            status,
            by: by.to_owned(),
            note,
        });
    }
    task.updated_at = now;
    changed
}

fn event(kind: EventKind, task: &Task, now: DateTime<Utc>, detail: String) -> Event {
    Event {
        seq: 0,
        kind,
        at: now,
        task: Some(task.id),
        duty: (task.duty != 0).then_some(task.duty),
        community: Some(task.community.clone()),
        region: Some(task.community.clone()),
        detail,
        data: None,
    }
}

/// `e` carrying `data`.
fn with(mut e: Event, data: EventData) -> Event {
    e.data = Some(data);
    e
}

/// The station serving each community (the first active one, by id).
fn stations_by_community(stations: &[Station]) -> HashMap<String, u64> {
    let mut map = HashMap::new();
    let mut sorted: Vec<&Station> = stations.iter().filter(|s| s.active).collect();
    sorted.sort_by_key(|s| s.id);
    for s in sorted {
        for c in &s.communities {
            map.entry(c.clone()).or_insert(s.id);
        }
    }
    map
}

impl Scheduler {
    /// The matching settings in force.
    pub fn matching(&self) -> MatchingSettings {
        *self
            .matching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the matching settings (from the config at start).
    pub fn set_matching(&self, settings: MatchingSettings) {
        *self
            .matching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    /// The matching problem for the open seats of `ids`, as the store stands.
    fn problem(&self, ids: &[u64], now: DateTime<Utc>) -> Result<Problem, StoreError> {
        let settings = self.matching();
        let today = crate::clock::local_date(now);
        let month_start = today.with_day(1).unwrap_or(today);
        self.store.read(|r| {
            let stations = r.all_stations()?;
            let serving = stations_by_community(&stations);
            let by_id: HashMap<u64, &Station> = stations.iter().map(|s| (s.id, s)).collect();
            let mut tasks = Vec::new();
            let mut wanted: BTreeSet<u64> = BTreeSet::new();
            for &id in ids {
                let Some(task) = r.task(id)? else { continue };
                if !task.status.is_active() {
                    continue;
                }
                let holding = task.offers.iter().filter(|o| o.state.fills_seat()).count();
                let seats = usize::from(task.requirements.team_size.max(1)).saturating_sub(holding);
                if seats == 0 {
                    continue;
                }
                let Some(station) = task
                    .station
                    .or_else(|| serving.get(&task.community).copied())
                else {
                    // No station serves the community: nobody to ask.
                    tasks.push((task, None, seats));
                    continue;
                };
                wanted.insert(station);
                if let Some(s) = by_id.get(&station) {
                    wanted.extend(s.neighbours.iter().copied());
                }
                tasks.push((task, Some(station), seats));
            }
            let mut volunteers = Vec::new();
            for &s in &wanted {
                let page = r.volunteers_of_station(s, 0, usize::MAX, |v| {
                    v.status == VolunteerStatus::Active
                })?;
                for v in page.items {
                    let mut held = 0u32;
                    let mut served = Vec::new();
                    for t in r.tasks_of_volunteer(v.id, 0, usize::MAX, |_| true)?.items {
                        let Some(offer) = t.offers.iter().rev().find(|o| o.volunteer == v.id)
                        else {
                            continue;
                        };
                        let this_month = t.due_end.date_naive() >= month_start;
                        if (offer.state.holds() && this_month)
                            || (offer.state == OfferState::CheckedOut
                                && offer
                                    .checked_out_at
                                    .is_some_and(|at| crate::clock::local_date(at) >= month_start))
                        {
                            held += 1;
                        }
                        if offer.state == OfferState::CheckedOut
                            && let TaskTarget::Person { id } = t.target
                        {
                            served.push(id);
                        }
                    }
                    volunteers.push(VolunteerSpec {
                        id: v.id,
                        station: v.station,
                        home: v.home,
                        gender: v.gender,
                        capacity: v.monthly_capacity.saturating_sub(held),
                        held,
                        skills: v.skills,
                        certifications: v.certifications,
                        safeguarding_until: v.safeguarding.map(|c| c.expires_on),
                        insurance_until: v.insurance.map(|c| c.expires_on),
                        availability: v.availability,
                        languages: v.languages,
                        roles: v.roles,
                        served,
                    });
                }
            }
            let mut specs = Vec::new();
            for (task, station, seats) in tasks {
                let location: Option<GeoPoint> = match &task.target {
                    TaskTarget::Person { id } => r.person(*id)?.map(|p| p.location),
                    TaskTarget::Community { .. } => {
                        station.and_then(|s| by_id.get(&s)).and_then(|s| s.location)
                    }
                };
                let mut requirements = task.requirements.clone();
                #[allow(clippy::cast_possible_truncation)]
                {
                    requirements.team_size = seats.min(20) as u8;
                }
                specs.push(TaskSpec {
                    id: task.id,
                    // A community no station serves: station 0, which has no volunteers.
                    station: station.unwrap_or(0),
                    person: match task.target {
                        TaskTarget::Person { id } => Some(id),
                        TaskTarget::Community { .. } => None,
                    },
                    location,
                    priority: task.priority,
                    due_start: task.due_start,
                    due_end: task.due_end,
                    requirements,
                    exclude: task.offers.iter().map(|o| o.volunteer).collect(),
                });
            }
            let neighbours: BTreeMap<u64, Vec<u64>> = stations
                .iter()
                .filter(|s| !s.neighbours.is_empty())
                .map(|s| (s.id, s.neighbours.clone()))
                .collect();
            Ok(Problem {
                today,
                tasks: specs,
                volunteers,
                neighbours,
                weights: Weights {
                    continuity_km: settings.continuity_km,
                    fairness_km: settings.fairness_km,
                },
            })
        })
    }

    /// Matches the open seats of `ids` and records the offers (or why nobody could take them).
    /// `by` names who asked (`matching` for the scheduler's own runs).
    ///
    /// A few tasks (a one-off, a re-offer) are read, planned and written under the staffing
    /// lock: the loads a plan counted are still the loads when its offers are written. A large
    /// batch (an occurrence's tasks) reads and plans outside it, and writes a chunk at a time,
    /// so that a phone request is not kept waiting behind a county's month: before each chunk,
    /// under the lock, it takes back from each volunteer offered other tasks meanwhile as many
    /// of its assignments not yet written (lowest priority first); the tasks taken back are
    /// matched again at the end.
    pub fn staff(&self, ids: &[u64], by: &str) -> Result<Staffed, ServiceError> {
        self.staff_round(ids, by, 0)
    }

    /// [`Self::staff`]; `round` counts the batches that gave tasks back before this one (a few
    /// rounds at most plan outside the lock; then the rest is matched under it).
    fn staff_round(&self, ids: &[u64], by: &str, round: u32) -> Result<Staffed, ServiceError> {
        if ids.is_empty() {
            return Ok(Staffed::default());
        }
        if ids.len() <= SMALL_RUN || round >= 3 {
            let one_at_a_time = self.lock_staffing();
            return self.staff_locked(ids, by, &one_at_a_time);
        }
        let started = {
            let mut ledger = self.ledger();
            ledger.batches += 1;
            ledger.generation
        };
        let done = BatchDone(self);
        let now = self.clock.now();
        let problem = self.problem(ids, now)?;
        if problem.tasks.is_empty() {
            return Ok(Staffed::default());
        }
        let mut plan = matching::plan(&problem).map_err(|e| ServiceError::Conflict {
            field: "matching".into(),
            message: e.to_string(),
        })?;
        // Written a chunk at a time under the lock, which others may take in between.
        let ids: Vec<u64> = problem.tasks.iter().map(|t| t.id).collect();
        let mut since = started;
        let mut again: Vec<u64> = Vec::new();
        let mut result = Staffed::default();
        let specs = specs_of(&problem);
        for chunk in ids.chunks(WRITE_CHUNK) {
            let held = self
                .staffing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let others = self.ledger().offered_since(since);
            again.extend(make_room(&specs, &mut plan, &others));
            let wrote = self.write_plan(&specs, &plan, chunk, now, by)?;
            // Offers up to here are this batch's own or accounted for.
            since = self.ledger().generation;
            for id in chunk {
                plan.assignments.remove(id);
            }
            result.offered += wrote.offered;
            result.unstaffed += wrote.unstaffed;
            drop(held);
            // A lock is no queue: let waiting phone requests in before the next chunk (for a
            // moment at most, so that a stream of them cannot starve the batch).
            let waited = std::time::Instant::now();
            while self
                .staffing_waiters
                .load(std::sync::atomic::Ordering::Acquire)
                > 0
                && waited.elapsed() < std::time::Duration::from_millis(50)
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        drop(done);
        // The tasks given back, matched again (a large set again outside the lock).
        let more = self.staff_round(&again, by, round + 1)?;
        result.offered += more.offered;
        result.unstaffed += more.unstaffed;
        Ok(result)
    }

    /// The staffing lock, for a small run or a hand assignment (counted while waiting, so a
    /// batch writing in chunks lets it in).
    fn lock_staffing(&self) -> std::sync::MutexGuard<'_, ()> {
        use std::sync::atomic::Ordering;
        self.staffing_waiters.fetch_add(1, Ordering::AcqRel);
        let guard = self
            .staffing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.staffing_waiters.fetch_sub(1, Ordering::AcqRel);
        guard
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes offers just written (under the staffing lock), for batches planning meanwhile.
    fn offers_made(&self, volunteers: &[u64]) {
        let mut ledger = self.ledger();
        ledger.generation += 1;
        if ledger.batches > 0 {
            let g = ledger.generation;
            ledger.offers.extend(volunteers.iter().map(|&v| (g, v)));
        }
    }

    /// [`Self::staff`] for a few tasks, under the staffing lock (`_held` shows it is held).
    fn staff_locked(
        &self,
        ids: &[u64],
        by: &str,
        _held: &std::sync::MutexGuard<'_, ()>,
    ) -> Result<Staffed, ServiceError> {
        let now = self.clock.now();
        let problem = self.problem(ids, now)?;
        if problem.tasks.is_empty() {
            return Ok(Staffed::default());
        }
        let plan = matching::plan(&problem).map_err(|e| ServiceError::Conflict {
            field: "matching".into(),
            message: e.to_string(),
        })?;
        let ids: Vec<u64> = problem.tasks.iter().map(|t| t.id).collect();
        self.write_plan(&specs_of(&problem), &plan, &ids, now, by)
    }

    /// Writes a plan's offers and reasons (under the staffing lock), in chunks, each one
    /// transaction with its events.
    fn write_plan(
        &self,
        specs: &HashMap<u64, &TaskSpec>,
        plan: &matching::Plan,
        ids: &[u64],
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<Staffed, ServiceError> {
        let settings = self.matching();
        let mut result = Staffed::default();
        // Written in chunks, each one transaction with its events.
        let mut offered: Vec<u64> = Vec::new();
        for chunk in ids.chunks(WRITE_CHUNK) {
            offered.clear();
            self.store.write(|w| {
                offered.clear();
                let mut events = Vec::new();
                {
                    let mut writer = w.task_writer()?;
                    for id in chunk {
                        let Some(mut task) = writer.get(*id)? else {
                            continue;
                        };
                        let spec = specs[id];
                        // Changed since the problem was read (an answer came in): left alone.
                        let holding = task.offers.iter().filter(|o| o.state.fills_seat()).count();
                        let seats =
                            usize::from(task.requirements.team_size.max(1)).saturating_sub(holding);
                        if !task.status.is_active()
                            || seats != usize::from(spec.requirements.team_size)
                        {
                            continue;
                        }
                        if task.station.is_none() && spec.station != 0 {
                            task.station = Some(spec.station);
                        }
                        if let Some(vs) = plan.assignments.get(id) {
                            // Someone planned has had an offer on it since the problem was read
                            // (by hand, then declined, while a batch planned): left for the next
                            // sweep rather than offered to them again.
                            if vs
                                .iter()
                                .any(|v| task.offers.iter().any(|o| o.volunteer == *v))
                            {
                                continue;
                            }
                            let hours = if task.priority == Priority::Urgent {
                                settings.urgent_offer_hours
                            } else {
                                settings.offer_hours
                            };
                            let respond_by = answer_by(now, hours, &task);
                            for v in vs {
                                offered.push(*v);
                                task.offers.push(Offer {
                                    volunteer: *v,
                                    state: OfferState::Offered,
                                    offered_at: now,
                                    respond_by,
                                    responded_at: None,
                                    reason: None,
                                    checked_in_at: None,
                                    checked_in_position: None,
                                    checked_out_at: None,
                                    checked_out_position: None,
                                });
                                events.push(with(
                                    event(
                                        EventKind::TaskOffered,
                                        &task,
                                        now,
                                        format!("{} offered to volunteer {v}", task.title.zh),
                                    ),
                                    EventData::Offered {
                                        volunteers: vec![*v],
                                        deadline: respond_by,
                                    },
                                ));
                                result.offered += 1;
                            }
                            task.unstaffed.clear();
                            if task.status == TaskStatus::Unstaffed {
                                task.status = TaskStatus::Open;
                            }
                            settle(&mut task, now, by, None);
                        } else if let Some(why) = plan.unstaffed.get(id) {
                            task.unstaffed = why.reasons.clone();
                            result.unstaffed += 1;
                            if holding == 0 && task.status != TaskStatus::Unstaffed {
                                task.status = TaskStatus::Unstaffed;
                                task.history.push(TaskChange {
                                    at: now,
                                    status: TaskStatus::Unstaffed,
                                    by: by.to_owned(),
                                    note: None,
                                });
                                let codes: Vec<String> = why
                                    .reasons
                                    .iter()
                                    .map(|r| {
                                        serde_json::to_value(&r.reason)
                                            .ok()
                                            .and_then(|v| v["code"].as_str().map(str::to_owned))
                                            .unwrap_or_default()
                                    })
                                    .collect();
                                events.push(with(
                                    event(
                                        EventKind::TaskUnstaffed,
                                        &task,
                                        now,
                                        format!(
                                            "{}: nobody could take it ({})",
                                            task.title.zh,
                                            codes.join(", ")
                                        ),
                                    ),
                                    EventData::Unstaffed {
                                        reasons: why.reasons.clone(),
                                    },
                                ));
                            }
                            task.updated_at = now;
                        }
                        writer.put(&task)?;
                    }
                }
                for e in events {
                    w.push_event(e)?;
                }
                Ok::<_, StoreError>(())
            })?;
            self.offers_made(&offered);
            offered.clear();
        }
        Ok(result)
    }

    /// A volunteer's own offer on a task, for the change `f` makes to it; one transaction with
    /// its event.
    fn change_offer(
        &self,
        task_id: u64,
        volunteer: u64,
        f: impl FnOnce(&mut Offer, DateTime<Utc>) -> Result<(EventKind, String), ServiceError>,
    ) -> Result<Task, ServiceError> {
        let now = self.clock.now();
        self.store.write(|w: &mut WriteTx| {
            let mut writer = w.task_writer()?;
            let mut task = writer
                .get(task_id)?
                .filter(|t| t.offers.iter().any(|o| o.volunteer == volunteer))
                .ok_or_else(|| not_found("task", task_id))?;
            let Some(offer) = task
                .offers
                .iter_mut()
                .rev()
                .find(|o| o.volunteer == volunteer)
            else {
                return Err(not_found("task", task_id));
            };
            let (kind, detail) = f(offer, now)?;
            let data = EventData::Volunteer {
                volunteer,
                reason: offer.reason.clone(),
            };
            settle(&mut task, now, &format!("volunteer:{volunteer}"), None);
            writer.put(&task)?;
            drop(writer);
            w.push_event(with(event(kind, &task, now, detail), data))?;
            Ok(task)
        })
    }

    /// The volunteer accepts an offer (before it expires).
    pub fn accept(&self, task: u64, volunteer: u64) -> Result<Task, ServiceError> {
        self.change_offer(task, volunteer, |o, now| {
            if o.state != OfferState::Offered {
                return Err(conflict("state", "there is no open offer to accept"));
            }
            if now >= o.respond_by {
                return Err(conflict("state", "the offer has expired"));
            }
            o.state = OfferState::Accepted;
            o.responded_at = Some(now);
            Ok((
                EventKind::TaskAccepted,
                format!("accepted by volunteer {volunteer}"),
            ))
        })
    }

    /// The volunteer declines (with a reason); the task is matched again at once.
    pub fn decline(&self, task: u64, volunteer: u64, reason: String) -> Result<Task, ServiceError> {
        let declined = self.change_offer(task, volunteer, |o, now| {
            if !matches!(o.state, OfferState::Offered | OfferState::Accepted) {
                return Err(conflict("state", "there is no offer to decline"));
            }
            o.state = OfferState::Declined;
            o.responded_at = Some(now);
            o.reason = Some(reason.clone());
            Ok((
                EventKind::TaskDeclined,
                format!("declined by volunteer {volunteer}: {reason}"),
            ))
        })?;
        // The decline is stored; if matching fails now, the sweep matches the task later.
        if let Err(e) = self.staff(&[task], "matching") {
            tracing::warn!(task, error = %e, "re-matching a declined task failed");
        }
        Ok(self.store.read(|r| r.task(task))?.unwrap_or(declined))
    }

    /// The volunteer checks in (`out` false) or out at a position.
    pub fn check_in_out(
        &self,
        task: u64,
        volunteer: u64,
        position: Option<GeoPoint>,
        out: bool,
    ) -> Result<Task, ServiceError> {
        self.change_offer(task, volunteer, |o, now| {
            if out {
                if o.state == OfferState::CheckedOut {
                    return Err(conflict("state", "already checked out"));
                }
                if o.state != OfferState::CheckedIn {
                    return Err(conflict("state", "check in before checking out"));
                }
                o.state = OfferState::CheckedOut;
                o.checked_out_at = Some(now);
                o.checked_out_position = position;
                Ok((
                    EventKind::TaskCheckedOut,
                    format!("volunteer {volunteer} checked out"),
                ))
            } else {
                if matches!(o.state, OfferState::CheckedIn | OfferState::CheckedOut) {
                    return Err(conflict("state", "already checked in"));
                }
                if o.state != OfferState::Accepted {
                    return Err(conflict("state", "accept the task before checking in"));
                }
                o.state = OfferState::CheckedIn;
                o.checked_in_at = Some(now);
                o.checked_in_position = position;
                Ok((
                    EventKind::TaskCheckedIn,
                    format!("volunteer {volunteer} checked in"),
                ))
            }
        })
    }

    /// Matches every task still open (new tasks, and any a crash left unmatched), in one
    /// batch of at most 200,000.
    pub fn staff_open(&self) -> Result<Staffed, ServiceError> {
        let ids: Vec<u64> = self
            .store
            .read(|r| r.tasks_in_status(TaskStatus::Open, 0, 200_000, |_| true))?
            .items
            .iter()
            .map(|t| t.id)
            .collect();
        self.staff(&ids, "matching")
    }

    /// Unstaffed tasks are tried again every few hours (volunteers join, capacity frees up):
    /// those last tried before `now - 6 h`, at most 10,000 at a time.
    pub(super) fn retry_unstaffed(&self, now: DateTime<Utc>) -> Result<Staffed, ServiceError> {
        {
            let mut last = self
                .last_retry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| now < at + Duration::hours(1)) {
                return Ok(Staffed::default());
            }
            *last = Some(now);
        }
        let before = now - Duration::hours(6);
        let open_seat = |t: &Task| {
            t.updated_at <= before
                && t.offers.iter().filter(|o| o.state.fills_seat()).count()
                    < usize::from(t.requirements.team_size.max(1))
        };
        let mut ids: Vec<u64> = Vec::new();
        // Unstaffed tasks, and teams still missing a member (one declined, nobody else yet).
        for status in [
            TaskStatus::Unstaffed,
            TaskStatus::Offered,
            TaskStatus::CheckedIn,
        ] {
            ids.extend(
                self.store
                    .read(|r| r.tasks_in_status(status, 0, 10_000, open_seat))?
                    .items
                    .iter()
                    .map(|t| t.id),
            );
        }
        self.staff(&ids, "matching")
    }

    /// Offers past their deadline expire, and their tasks are matched again.
    pub(super) fn expire_offers(&self, now: DateTime<Utc>) -> Result<(), ServiceError> {
        let expired: Vec<u64> = self.store.write(|w| {
            let due = w.tasks_with_offers_due_before(now.timestamp() + 1, 1000)?;
            let mut ids = Vec::new();
            let mut events = Vec::new();
            {
                let mut writer = w.task_writer()?;
                for mut task in due {
                    let mut any = false;
                    for o in task.offers.iter_mut() {
                        if o.state == OfferState::Offered && o.respond_by <= now {
                            o.state = OfferState::Expired;
                            any = true;
                            events.push((o.volunteer, task.id));
                        }
                    }
                    if any {
                        settle(&mut task, now, "scheduler", Some("offer expired".into()));
                        writer.put(&task)?;
                        ids.push(task.id);
                    }
                }
            }
            for (v, id) in events {
                if let Some(task) = w.task(id)? {
                    w.push_event(with(
                        event(
                            EventKind::TaskExpired,
                            &task,
                            now,
                            format!("volunteer {v} did not answer in time"),
                        ),
                        EventData::Volunteer {
                            volunteer: v,
                            reason: None,
                        },
                    ))?;
                }
            }
            Ok::<_, StoreError>(ids)
        })?;
        for id in expired {
            if let Err(e) = self.staff(&[id], "matching") {
                tracing::warn!(task = id, error = %e, "re-matching after an expired offer failed");
            }
        }
        Ok(())
    }

    /// Matches a task's open seats again now (a station's "re-offer"): volunteers who declined
    /// or let an offer expire are not asked again.
    pub fn reoffer(
        &self,
        task_id: u64,
        guard: &dyn crate::service::Guard,
        by: &str,
    ) -> Result<Task, ServiceError> {
        let task = self
            .store
            .read(|r| r.task(task_id))?
            .filter(|t| guard.community(&t.community))
            .ok_or_else(|| not_found("task", task_id))?;
        if !task.status.is_active() {
            return Err(conflict("status", "only a task still to do can be offered"));
        }
        let holding = task.offers.iter().filter(|o| o.state.fills_seat()).count();
        if holding >= usize::from(task.requirements.team_size.max(1)) {
            return Err(conflict(
                "task",
                "every seat of the team is offered or taken already",
            ));
        }
        self.staff(&[task_id], by)?;
        self.store
            .read(|r| r.task(task_id))?
            .ok_or_else(|| not_found("task", task_id))
    }

    /// Offers a task to a volunteer a station chose by hand. The hard constraints still apply:
    /// a volunteer who breaks one is refused with the constraint named.
    pub fn assign(
        &self,
        task_id: u64,
        volunteer: u64,
        guard: &dyn crate::service::Guard,
        by: &str,
    ) -> Result<Task, ServiceError> {
        let _one_at_a_time = self.lock_staffing();
        let now = self.clock.now();
        let task = self
            .store
            .read(|r| r.task(task_id))?
            .filter(|t| guard.community(&t.community))
            .ok_or_else(|| not_found("task", task_id))?;
        if !task.status.is_active() {
            return Err(conflict(
                "status",
                "only a task still to do can be assigned",
            ));
        }
        if task
            .offers
            .iter()
            .any(|o| o.volunteer == volunteer && o.state.fills_seat())
        {
            return Err(conflict(
                "volunteer",
                "this volunteer already has an offer for this task",
            ));
        }
        let problem = self.problem(&[task_id], now)?;
        let Some(spec) = problem.tasks.first() else {
            return Err(conflict(
                "task",
                "every seat of the team is offered or taken already",
            ));
        };
        let refuse = |message: String| -> ServiceError {
            crate::registry::Invalid::one("volunteer", message).into()
        };
        let Some(v) = problem.volunteers.iter().find(|v| v.id == volunteer) else {
            return Err(refuse(
                "is not an active volunteer of the task's station, nor of a neighbouring station the bureau allows".into(),
            ));
        };
        if v.capacity == 0 {
            return Err(refuse(crate::task::Reason::AtCapacity.describe_en()));
        }
        let distance = spec
            .location
            .map(|at| crate::matching::geo::haversine_km(v.home, at));
        matching::eligible(spec, v, distance).map_err(|r| refuse(r.describe_en()))?;
        let settings = self.matching();
        let task = self.store.write(|w| {
            let mut writer = w.task_writer()?;
            let mut task = writer
                .get(task_id)?
                .ok_or_else(|| not_found("task", task_id))?;
            // Changed since it was read (cancelled, done, answered, filled)? Checked again in
            // the transaction that writes the offer.
            let holding = task.offers.iter().filter(|o| o.state.fills_seat()).count();
            if !task.status.is_active() {
                return Err(conflict(
                    "status",
                    "only a task still to do can be assigned",
                ));
            }
            if holding >= usize::from(task.requirements.team_size.max(1)) {
                return Err(conflict(
                    "task",
                    "every seat of the team is offered or taken already",
                ));
            }
            if task
                .offers
                .iter()
                .any(|o| o.volunteer == volunteer && o.state.fills_seat())
            {
                return Err(conflict(
                    "volunteer",
                    "this volunteer already has an offer for this task",
                ));
            }
            if task.station.is_none() && spec.station != 0 {
                task.station = Some(spec.station);
            }
            let hours = if task.priority == Priority::Urgent {
                settings.urgent_offer_hours
            } else {
                settings.offer_hours
            };
            let respond_by = answer_by(now, hours, &task);
            task.offers.push(Offer {
                volunteer,
                state: OfferState::Offered,
                offered_at: now,
                respond_by,
                responded_at: None,
                reason: None,
                checked_in_at: None,
                checked_in_position: None,
                checked_out_at: None,
                checked_out_position: None,
            });
            task.unstaffed.clear();
            if task.status == TaskStatus::Unstaffed {
                task.status = TaskStatus::Open;
            }
            settle(&mut task, now, by, Some("assigned by hand".into()));
            task.updated_at = now;
            writer.put(&task)?;
            drop(writer);
            w.push_event(with(
                event(
                    EventKind::TaskOffered,
                    &task,
                    now,
                    format!("{} offered to volunteer {volunteer} by hand", task.title.zh),
                ),
                EventData::Offered {
                    volunteers: vec![volunteer],
                    deadline: respond_by,
                },
            ))?;
            Ok(task)
        })?;
        self.offers_made(&[volunteer]);
        Ok(task)
    }

    /// Cancels a task (a station, bureau or administrator): pending offers are withdrawn.
    pub fn cancel(
        &self,
        task_id: u64,
        guard: &dyn crate::service::Guard,
        by: &str,
        reason: Option<String>,
    ) -> Result<Task, ServiceError> {
        let now = self.clock.now();
        self.store.write(|w| {
            let mut writer = w.task_writer()?;
            let mut task = writer
                .get(task_id)?
                .filter(|t| guard.community(&t.community))
                .ok_or_else(|| not_found("task", task_id))?;
            if !task.status.is_active() {
                return Err(conflict(
                    "status",
                    "only a task still to do can be cancelled",
                ));
            }
            for o in task.offers.iter_mut().filter(|o| o.state.holds()) {
                o.state = OfferState::Withdrawn;
            }
            task.status = TaskStatus::Cancelled;
            task.history.push(TaskChange {
                at: now,
                status: TaskStatus::Cancelled,
                by: by.to_owned(),
                note: reason.clone(),
            });
            task.updated_at = now;
            writer.put(&task)?;
            drop(writer);
            w.push_event(event(
                EventKind::TaskCancelled,
                &task,
                now,
                reason.unwrap_or_else(|| "cancelled".into()),
            ))?;
            Ok(task)
        })
    }
}

/// When an offer must be answered: the configured hours, but not after the task's due end
/// when that comes sooner (and never less than half an hour from now).
/// Runs of up to this many tasks read, plan and write under the staffing lock; larger ones plan
/// outside it.
const SMALL_RUN: usize = 64;
/// Tasks written in one transaction.
const WRITE_CHUNK: usize = 500;

/// Offers written while large batches plan outside the staffing lock: each offer's volunteer
/// with the generation of its write.
#[derive(Debug, Default)]
pub struct Ledger {
    generation: u64,
    /// Batches planning now; the offers are kept only while there are some.
    batches: usize,
    offers: Vec<(u64, u64)>,
}

impl Ledger {
    /// Per volunteer, the offers written after generation `g`.
    fn offered_since(&self, g: u64) -> HashMap<u64, u32> {
        let mut n: HashMap<u64, u32> = HashMap::new();
        for &(at, v) in &self.offers {
            if at > g {
                *n.entry(v).or_default() += 1;
            }
        }
        n
    }
}

/// Ends a batch's planning (also when it fails): the ledger forgets offers nobody waits on.
struct BatchDone<'a>(&'a Scheduler);

impl Drop for BatchDone<'_> {
    fn drop(&mut self) {
        let mut ledger = self.0.ledger();
        ledger.batches = ledger.batches.saturating_sub(1);
        if ledger.batches == 0 {
            ledger.offers.clear();
        }
    }
}

/// A problem's tasks by id.
fn specs_of(problem: &Problem) -> HashMap<u64, &TaskSpec> {
    problem.tasks.iter().map(|t| (t.id, t)).collect()
}

/// Takes back, from each volunteer offered `since` other tasks after `plan` was made, that many
/// of its assignments in `plan` (lowest priority first; a team task is taken back whole), so no
/// load goes past what the volunteer can take. Answers the tasks taken back, to match again.
fn make_room(
    specs: &HashMap<u64, &TaskSpec>,
    plan: &mut matching::Plan,
    since: &HashMap<u64, u32>,
) -> Vec<u64> {
    if since.is_empty() {
        return Vec::new();
    }
    let mut held: HashMap<u64, Vec<u64>> = HashMap::new();
    for (task, vs) in &plan.assignments {
        for v in vs {
            if since.contains_key(v) {
                held.entry(*v).or_default().push(*task);
            }
        }
    }
    let mut again: BTreeSet<u64> = BTreeSet::new();
    for (v, mut tasks) in held {
        tasks.sort_by_key(|t| (specs.get(t).map_or(Priority::Low, |s| s.priority), *t));
        let n = since.get(&v).copied().unwrap_or(0) as usize;
        again.extend(tasks.into_iter().take(n));
    }
    for t in &again {
        plan.assignments.remove(t);
    }
    again.into_iter().collect()
}

fn answer_by(now: DateTime<Utc>, hours: u32, task: &Task) -> DateTime<Utc> {
    let usual = now + Duration::hours(i64::from(hours));
    let due = task.due_end.to_utc();
    usual.min(due.max(now + Duration::minutes(30)))
}

fn conflict(field: &str, message: &str) -> ServiceError {
    ServiceError::Conflict {
        field: field.into(),
        message: message.into(),
    }
}

/// A one-off task a station records (a resident's phone request, 接诉即办; an urgent
/// follow-up): matched at once, without re-solving anything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// A short tag for the kind of task, e.g. `phone-request`.
    #[schema(example = "phone-request")]
    pub kind: String,
    pub title: Names,
    pub target: TaskTarget,
    pub due_start: chrono::DateTime<chrono::FixedOffset>,
    pub due_end: chrono::DateTime<chrono::FixedOffset>,
    #[serde(default = "normal")]
    pub priority: Priority,
    pub requirements: Requirements,
}

fn normal() -> Priority {
    Priority::Normal
}

impl Scheduler {
    /// Creates a one-off task and offers it at once; answers the task as stored after matching.
    pub fn create_task(
        &self,
        input: NewTask,
        guard: &dyn crate::service::Guard,
        by: &str,
    ) -> Result<Task, ServiceError> {
        let mut errs = crate::registry::Invalid::default();
        if !crate::registry::rules::is_slug(&input.kind) {
            errs.push("kind", "must be a tag such as phone-request");
        }
        for (field, text) in [("title.zh", &input.title.zh), ("title.en", &input.title.en)] {
            let n = text.trim().chars().count();
            if n == 0 || n > 100 || text.chars().any(char::is_control) {
                errs.push(field, "must be 1 to 100 characters of one line");
            }
        }
        if input.due_end <= input.due_start {
            errs.push("due_end", "must be after due_start");
        }
        let r = &input.requirements;
        if !(1..=20).contains(&r.team_size) {
            errs.push("requirements.team_size", "must be 1 to 20");
        }
        if r.max_distance_km
            .is_some_and(|d| !d.is_finite() || d <= 0.0 || d > 500.0)
        {
            errs.push(
                "requirements.max_distance_km",
                "must be above 0 and at most 500",
            );
        }
        if let Err(e) = crate::registry::vocabulary::check_roles(&r.roles) {
            errs.push("requirements.roles", e);
        }
        for (field, list) in [
            ("requirements.skills", &r.skills),
            ("requirements.clearances", &r.clearances),
            ("requirements.roles", &r.roles),
            ("requirements.languages", &r.languages),
        ] {
            if list.len() > 16 {
                errs.push(field, "at most 16 entries");
            }
        }
        errs.into_result()?;
        let now = self.clock.now();
        let task = self.store.write(|w| {
            let community = match &input.target {
                TaskTarget::Person { id } => w
                    .person(*id)?
                    .filter(|p| p.active && guard.community(&p.community))
                    .map(|p| p.community)
                    .ok_or_else(|| {
                        crate::registry::Invalid::one(
                            "target.id",
                            format!("person {id} is not an active person your token covers"),
                        )
                    })?,
                TaskTarget::Community { code } => {
                    if !guard.community(code) {
                        return Err(crate::registry::Invalid::one(
                            "target.code",
                            "is outside the communities your token covers",
                        )
                        .into());
                    }
                    w.region(code)?
                        .filter(|r| r.active && r.level == crate::registry::RegionLevel::Community)
                        .map(|r| r.code)
                        .ok_or_else(|| {
                            crate::registry::Invalid::one(
                                "target.code",
                                format!("{code} is not an active community"),
                            )
                        })?
                }
            };
            let id = w.reserve_ids("task", 1)?;
            let task = Task {
                id,
                duty: 0,
                scheduled_at: now,
                key: format!("one-off-{id}"),
                target: input.target.clone(),
                community,
                plugin: String::new(),
                action: String::new(),
                kind: input.kind.clone(),
                title: input.title.clone(),
                due_start: input.due_start,
                due_end: input.due_end,
                priority: input.priority,
                requirements: input.requirements.clone(),
                checklist: 0,
                status: TaskStatus::Open,
                overdue: false,
                station: None,
                offers: Vec::new(),
                unstaffed: Vec::new(),
                report: None,
                follows_up: None,
                history: vec![TaskChange {
                    at: now,
                    status: TaskStatus::Open,
                    by: by.to_owned(),
                    note: None,
                }],
                created_at: now,
                updated_at: now,
            };
            w.task_writer()?.create(&task)?;
            w.push_event(event(
                EventKind::TaskCreated,
                &task,
                now,
                task.title.zh.clone(),
            ))?;
            Ok::<_, ServiceError>(task)
        })?;
        // The task is stored; if matching fails now, the sweep matches it later.
        if let Err(e) = self.staff(&[task.id], by) {
            tracing::warn!(task = task.id, error = %e, "matching a one-off task failed");
        }
        Ok(self.store.read(|r| r.task(task.id))?.unwrap_or(task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: u64, priority: Priority) -> TaskSpec {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:00+08:00")
            .unwrap_or_else(|_| unreachable!());
        TaskSpec {
            id,
            station: 1,
            person: None,
            location: None,
            priority,
            due_start: at,
            due_end: at + Duration::days(1),
            requirements: Requirements {
                skills: Vec::new(),
                clearances: Vec::new(),
                team_size: 1,
                gender: None,
                max_distance_km: None,
                languages: Vec::new(),
                roles: Vec::new(),
            },
            exclude: Vec::new(),
        }
    }

    #[test]
    fn a_batch_gives_back_what_others_offered_meanwhile_lowest_priority_first() {
        let problem = Problem {
            today: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default(),
            tasks: vec![
                spec(1, Priority::Urgent),
                spec(2, Priority::Low),
                spec(3, Priority::Normal),
                spec(4, Priority::High),
                spec(5, Priority::Low),
            ],
            volunteers: Vec::new(),
            neighbours: BTreeMap::new(),
            weights: Weights::default(),
        };
        let mut plan = matching::Plan {
            // Volunteer 7 holds four tasks of the batch (task 4 in a team with 8), 9 one.
            assignments: BTreeMap::from([
                (1, vec![7]),
                (2, vec![7]),
                (3, vec![7]),
                (4, vec![7, 8]),
                (5, vec![9]),
            ]),
            unstaffed: BTreeMap::new(),
            staffed: 5,
            staffed_by_priority: BTreeMap::new(),
            total_distance_km: 0.0,
            total_cost: 0.0,
            arcs: 0,
        };
        // Meanwhile 7 was offered two other tasks, 8 one, 11 (not in the batch) one.
        let since = HashMap::from([(7, 2), (8, 1), (11, 1)]);
        let again = make_room(&specs_of(&problem), &mut plan, &since);
        // 7 gives back its low and normal tasks; 8 its only one, the team task, whole.
        assert_eq!(again, vec![2, 3, 4]);
        assert_eq!(
            plan.assignments.keys().copied().collect::<Vec<_>>(),
            vec![1, 5]
        );
        // Nothing offered meanwhile: nothing given back.
        let mut unchanged = plan.clone();
        assert!(make_room(&specs_of(&problem), &mut unchanged, &HashMap::new()).is_empty());
        assert_eq!(unchanged, plan);
    }

    #[test]
    fn the_ledger_counts_the_offers_after_a_generation() {
        let ledger = Ledger {
            generation: 3,
            batches: 1,
            offers: vec![(2, 7), (4, 7), (4, 8), (5, 7)],
        };
        assert_eq!(ledger.offered_since(3), HashMap::from([(7, 2), (8, 1)]));
        assert!(ledger.offered_since(5).is_empty());
    }
}
