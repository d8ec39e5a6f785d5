//! Duty operations: check and create, read, change by merge patch, pause and resume, preview,
//! and asking for occurrences outside the schedule (trigger, backfill), which are queued for the
//! scheduler loop rather than run here.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::cron::{CronExpr, zone};
use super::engine::Scheduler;
use super::*;
use crate::plugins::model::TargetKind;
use crate::registry::{Invalid, RegionCode};
use crate::service::{Guard, ServiceError, from_json, merge_patch};
use crate::store::StoreError;

pub(super) fn invalid(field: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(Invalid::one(field, message))
}

/// What a duty would do (`POST /v1/duties/dry-run`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// The categories of people it selects: the selector's, else the action's.
    pub categories: Vec<String>,
    /// The fire the plan is made for (the next one by the cron; now for a duty that never
    /// fires).
    pub scheduled_at: DateTime<Utc>,
    /// Targets found now.
    pub targets: u64,
    /// Tasks the plugin would create for them.
    pub drafts: u64,
    /// The first draft, with its checklist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<DraftSample>,
}

/// One draft of a dry run, with the questions its report would answer.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DraftSample {
    pub draft: crate::plugins::model::TaskDraft,
    pub checklist: Vec<crate::plugins::model::ChecklistItem>,
}

/// A duty made from checked input (`check` gave the cron, the zone and the next fire).
fn new_duty(
    id: u64,
    input: DutyInput,
    (cron, time_zone, next_fire): (String, String, Option<DateTime<Utc>>),
    owner: Option<String>,
    now: DateTime<Utc>,
) -> Duty {
    Duty {
        id,
        name: input.name,
        plugin: input.plugin,
        action: input.action,
        cron,
        time_zone,
        selector: input.selector,
        due_window_days: input.due_window_days,
        catch_up: input.catch_up,
        paused: input.paused,
        owner,
        last_fire: None,
        next_fire,
        last_error: None,
        next_retry: None,
        created_at: now,
        updated_at: now,
    }
}

pub(super) fn not_found(id: u64) -> ServiceError {
    ServiceError::NotFound {
        kind: "duty",
        id: id.to_string(),
    }
}

impl Scheduler {
    /// Checks a duty's input against the plugins and the registry; returns the cron text, the
    /// zone name and the next fire time.
    fn check(
        &self,
        input: &mut DutyInput,
        guard: &dyn Guard,
        now: DateTime<Utc>,
    ) -> Result<(String, String, Option<DateTime<Utc>>), ServiceError> {
        let mut errs = Invalid::default();
        if input.name.trim().is_empty() || input.name.chars().count() > 100 {
            errs.push("name", "must be 1 to 100 characters");
        }
        input.name = input.name.trim().to_owned();
        let description = self.plugins.description(&input.plugin);
        let action = match &description {
            None => {
                errs.push(
                    "plugin",
                    format!(
                        "plugin {:?} is not deployed (or not loadable)",
                        input.plugin
                    ),
                );
                None
            }
            Some(d) => {
                let a = d.actions.iter().find(|a| a.id == input.action).cloned();
                if a.is_none() {
                    let ids: Vec<&str> = d.actions.iter().map(|a| a.id.as_str()).collect();
                    errs.push(
                        "action",
                        format!("{} offers the actions {}", d.id, ids.join(", ")),
                    );
                }
                a
            }
        };
        let zone_name = input
            .time_zone
            .clone()
            .unwrap_or_else(|| self.default_zone.name().to_owned());
        let tz = zone(&zone_name).map_err(|m| errs.push("time_zone", m)).ok();
        let cron_text = input
            .cron
            .clone()
            .or_else(|| action.as_ref().map(|a| a.default_cron.clone()))
            .unwrap_or_default();
        let expr = cron_text
            .parse::<CronExpr>()
            .map_err(|e| errs.push("cron", e.to_string()))
            .ok();
        let next = match (&expr, tz) {
            (Some(e), Some(tz)) => e.next_after(now, tz),
            _ => None,
        };
        match RegionCode::parse(&input.selector.region) {
            Ok(_) if !guard.region(&input.selector.region) => errs.push(
                "selector.region",
                "is outside the regions your token covers",
            ),
            Ok(_) => {
                if self
                    .store
                    .read(|r| r.region(&input.selector.region))?
                    .is_none()
                {
                    errs.push(
                        "selector.region",
                        format!("region {} is not registered", input.selector.region),
                    );
                }
            }
            Err(e) => errs.push("selector.region", e.to_string()),
        }
        if let Some(a) = &action {
            if a.target_kind == TargetKind::Person && !input.selector.communities.is_empty() {
                errs.push(
                    "selector.communities",
                    "only for community actions; people are selected by region and categories",
                );
            }
            if a.target_kind == TargetKind::Community && !input.selector.categories.is_empty() {
                errs.push("selector.categories", "only for person actions");
            }
            // A person action that names no categories, with none given here, would select
            // nobody; one naming a category linli does not keep (a plugin deployed before
            // categories were checked) would select nobody of it.
            if a.target_kind == TargetKind::Person && input.selector.categories.is_empty() {
                if a.categories.is_empty() {
                    errs.push(
                        "selector.categories",
                        format!(
                            "action {} names no categories of people: say which here (known: {})",
                            a.id,
                            crate::registry::vocabulary::category_slugs().join(", ")
                        ),
                    );
                } else if let Err(e) = crate::registry::vocabulary::check_categories(&a.categories)
                {
                    errs.push(
                        "selector.categories",
                        format!("the action's {e}: name the categories here, or fix the plugin"),
                    );
                }
            }
            for (i, c) in input.selector.communities.iter().enumerate() {
                if !c.starts_with(
                    crate::registry::region::subtree_prefix(&input.selector.region).unwrap_or("-"),
                ) {
                    errs.push(
                        format!("selector.communities[{i}]"),
                        format!("{c} is not in region {}", input.selector.region),
                    );
                }
            }
        }
        if input.due_window_days.is_some_and(|d| d == 0 || d > 366) {
            errs.push("due_window_days", "must be 1 to 366");
        }
        if input.catch_up.window_days > 366 {
            errs.push("catch_up.window_days", "must be at most 366");
        }
        errs.into_result()?;
        Ok((cron_text.trim().to_owned(), zone_name, next))
    }

    pub fn create(
        &self,
        mut input: DutyInput,
        guard: &dyn Guard,
        owner: Option<String>,
    ) -> Result<Duty, ServiceError> {
        let now = self.clock.now();
        let (cron, time_zone, next_fire) = self.check(&mut input, guard, now)?;
        let duty = self.store.write(|w| {
            let id = w.reserve_ids("duty", 1)?;
            let duty = new_duty(id, input, (cron, time_zone, next_fire), owner, now);
            w.put_duty(&duty)?;
            Ok::<_, ServiceError>(duty)
        })?;
        tracing::info!(duty = duty.id, plugin = %duty.plugin, action = %duty.action, cron = %duty.cron, "duty created");
        self.poke();
        Ok(duty)
    }

    /// What a duty would do, before anything is created: the categories it selects, how many
    /// targets it finds now, and what the plugin drafts for them at the next fire (the action's
    /// own time, not now). Nothing is stored; the plugin's `plan` runs for real.
    pub fn dry_run(&self, mut input: DutyInput, guard: &dyn Guard) -> Result<DryRun, ServiceError> {
        let now = self.clock.now();
        let (cron, time_zone, next_fire) = self.check(&mut input, guard, now)?;
        let duty = new_duty(0, input, (cron, time_zone, next_fire), None, now);
        let at = next_fire.unwrap_or(now);
        let tz = zone(&duty.time_zone).unwrap_or(self.default_zone);
        let categories = self.categories_of(&duty);
        let (targets, _keys) = self.targets(&duty, at.with_timezone(&tz).date_naive())?;
        let occurrence = crate::plugins::model::Occurrence {
            duty: "dry-run".into(),
            action: duty.action.clone(),
            scheduled_at: at
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            time_zone: tz.name().to_owned(),
        };
        let mut drafts = 0u64;
        let mut sample = None;
        let batches: Vec<&[crate::plugins::model::Target]> = if targets.is_empty() {
            Vec::new()
        } else {
            targets.chunks(PLAN_BATCH).collect()
        };
        for batch in batches {
            let (plan, _logs) = self
                .plugins
                .plan(&duty.plugin, &occurrence, batch)
                .map_err(|e| Invalid::one("plugin", format!("the plugin's plan failed: {e}")))?;
            drafts += plan.drafts.len() as u64;
            if sample.is_none()
                && let Some(d) = plan.drafts.first()
            {
                sample = Some(DraftSample {
                    checklist: plan.checklist_of(d).to_vec(),
                    draft: d.clone(),
                });
            }
        }
        Ok(DryRun {
            categories,
            scheduled_at: at,
            targets: targets.len() as u64,
            drafts,
            sample,
        })
    }

    /// The categories of people a duty selects: its selector's, else its action's (empty for a
    /// community action, or when the plugin is not loaded).
    pub fn categories_of(&self, duty: &Duty) -> Vec<String> {
        if !duty.selector.categories.is_empty() {
            return duty
                .selector
                .categories
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect();
        }
        self.plugins
            .description(&duty.plugin)
            .and_then(|d| d.actions.into_iter().find(|a| a.id == duty.action))
            .filter(|a| a.target_kind == TargetKind::Person)
            .map(|a| a.categories)
            .unwrap_or_default()
    }

    /// A duty the guard may see.
    pub fn get(&self, id: u64, guard: &dyn Guard) -> Result<Duty, ServiceError> {
        self.store
            .read(|r| r.duty(id))?
            .filter(|d| guard.region(&d.selector.region) || guard.community(&d.selector.region))
            .ok_or_else(|| not_found(id))
    }

    pub fn list(&self, guard: &dyn Guard) -> Result<Vec<Duty>, ServiceError> {
        Ok(self
            .store
            .read(|r| r.all_duties())?
            .into_iter()
            .filter(|d| guard.region(&d.selector.region))
            .collect())
    }

    /// Applies a JSON merge patch to a duty. Changing the schedule keeps the occurrences that
    /// already ran and continues from now.
    pub fn update(&self, id: u64, patch: &Value, guard: &dyn Guard) -> Result<Duty, ServiceError> {
        let old = self.get(id, guard)?;
        if !guard.region(&old.selector.region) {
            return Err(not_found(id));
        }
        let mut value = serde_json::to_value(old.to_input()).unwrap_or(Value::Null);
        merge_patch(&mut value, patch);
        let mut input: DutyInput = from_json(value).map_err(ServiceError::Invalid)?;
        let now = self.clock.now();
        let (cron, time_zone, next_fire) = self.check(&mut input, guard, now)?;
        let schedule_changed = cron != old.cron || time_zone != old.time_zone;
        let resumed = old.paused && !input.paused;
        let duty = Duty {
            name: input.name,
            plugin: input.plugin,
            action: input.action,
            cron,
            time_zone,
            selector: input.selector,
            due_window_days: input.due_window_days,
            catch_up: input.catch_up,
            paused: input.paused,
            // A new schedule, or a resumed duty, starts from now: nothing "missed" runs.
            last_fire: if schedule_changed || resumed {
                Some(now)
            } else {
                old.last_fire
            },
            next_fire,
            updated_at: now,
            ..old
        };
        self.store.write(|w| w.put_duty(&duty))?;
        self.poke();
        Ok(duty)
    }

    pub fn set_paused(
        &self,
        id: u64,
        paused: bool,
        guard: &dyn Guard,
    ) -> Result<Duty, ServiceError> {
        self.update(id, &serde_json::json!({ "paused": paused }), guard)
    }

    /// The next `count` fire times after `after` (default now).
    pub fn preview(
        &self,
        id: u64,
        after: Option<DateTime<Utc>>,
        count: usize,
        guard: &dyn Guard,
    ) -> Result<Vec<DateTime<Utc>>, ServiceError> {
        let d = self.get(id, guard)?;
        let (expr, tz) = parse_schedule(&d)?;
        Ok(next_n(
            &expr,
            tz,
            after.unwrap_or_else(|| self.clock.now()),
            count,
        ))
    }

    /// Queues an occurrence for now, outside the schedule. The scheduler loop runs it (the only
    /// place occurrences run); watch it at `/v1/duties/{id}/occurrences`.
    pub fn trigger(&self, id: u64, guard: &dyn Guard) -> Result<Occurrence, ServiceError> {
        let d = self.get(id, guard)?;
        let now = self.clock.now();
        let at = Utc
            .timestamp_opt(now.timestamp(), 0)
            .single()
            .unwrap_or(now);
        let mut queued = self.enqueue(&d, &[at], Trigger::Manual)?;
        queued.pop().ok_or_else(|| not_found(id))
    }

    /// Queues every scheduled occurrence in `[from, to]` (at most 1,000) for the loop; ones
    /// already done are left as they are, failed ones run again.
    pub fn backfill(
        &self,
        id: u64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        guard: &dyn Guard,
    ) -> Result<Vec<Occurrence>, ServiceError> {
        let d = self.get(id, guard)?;
        if to < from {
            return Err(invalid("to", "must not be before from"));
        }
        let (expr, tz) = parse_schedule(&d)?;
        let times = expr.between(from - chrono::Duration::seconds(1), to, tz, 1001);
        if times.len() > 1000 {
            return Err(invalid(
                "to",
                "the range holds more than 1,000 occurrences; backfill it in parts",
            ));
        }
        self.enqueue(&d, &times, Trigger::Backfill)
    }

    /// One occurrence as stored.
    pub fn occurrence(
        &self,
        duty: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<Occurrence>, ServiceError> {
        Ok(self.store.read(|r| r.occurrence(duty, at.timestamp()))?)
    }

    /// Writes queued occurrences for the loop (one transaction) and wakes it. An occurrence
    /// already done, queued or being planned is returned as it is.
    fn enqueue(
        &self,
        duty: &Duty,
        times: &[DateTime<Utc>],
        trigger: Trigger,
    ) -> Result<Vec<Occurrence>, ServiceError> {
        let now = self.clock.now();
        let out = self.store.write(|w| {
            let mut out = Vec::with_capacity(times.len());
            for at in times {
                let existing = w.occurrence(duty.id, at.timestamp())?;
                if let Some(e) = &existing
                    && e.status != OccurrenceStatus::Failed
                {
                    out.push(e.clone());
                    continue;
                }
                let attempts = existing.map_or(0, |e| e.attempts);
                let o = Occurrence::queued(duty.id, *at, trigger, attempts, now);
                w.put_occurrence(&o)?;
                out.push(o);
            }
            Ok::<_, StoreError>(out)
        })?;
        self.poke();
        Ok(out)
    }

    /// A plugin was resumed (or redeployed): its duties' failed occurrences that are waiting for
    /// a retry run now.
    pub fn plugin_available(&self, plugin: &str) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let n = self.store.write(|w| {
            let mut n = 0;
            for (duty, ts) in w.pending_occurrences()? {
                let Some(d) = w.duty(duty)? else { continue };
                if d.plugin != plugin {
                    continue;
                }
                if let Some(mut o) = w.occurrence(duty, ts)?
                    && o.status == OccurrenceStatus::Failed
                    && o.next_retry.is_some_and(|t| t > now)
                {
                    o.next_retry = Some(now);
                    w.put_occurrence(&o)?;
                    n += 1;
                }
            }
            Ok::<_, StoreError>(n)
        })?;
        if n > 0 {
            self.poke();
        }
        Ok(n)
    }
}

pub(super) fn parse_schedule(d: &Duty) -> Result<(CronExpr, Tz), ServiceError> {
    let expr = d
        .cron
        .parse::<CronExpr>()
        .map_err(|e| invalid("cron", e.to_string()))?;
    let tz = zone(&d.time_zone).map_err(|m| invalid("time_zone", m))?;
    Ok((expr, tz))
}

/// The next `count` fire times after `after`.
pub fn next_n(expr: &CronExpr, tz: Tz, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(count);
    let mut t = after;
    while out.len() < count {
        match expr.next_after(t, tz) {
            Some(n) => {
                out.push(n);
                t = n;
            }
            None => break,
        }
    }
    out
}
