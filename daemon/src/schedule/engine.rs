//! The scheduler: duty operations, occurrences run exactly once, catch-up after downtime,
//! overdue tasks, and the loop that sleeps until the next thing to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::cron::{CronExpr, zone};
use super::*;
use crate::clock::SharedClock;
use crate::plugins::catalog::Catalog;
use crate::plugins::model::{self as pm, TargetKind};
use crate::plugins::runtime::CallError;
use crate::registry::service::{Guard, RegistryError, from_json, merge_patch};
use crate::registry::{Invalid, RegionCode, RegionLevel};
use crate::store::{Store, StoreError};

/// Tasks written per transaction while an occurrence is persisted (`LINLI_TASK_CHUNK` overrides
/// it, for tuning and for the crash test).
fn chunk_size() -> usize {
    std::env::var("LINLI_TASK_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5000)
}
/// Targets per `plan` call; the interface lets the host split an occurrence's targets.
pub const PLAN_BATCH: usize = 5000;
/// A fire time this recent counts as on time, whatever the catch-up policy.
const GRACE: chrono::Duration = chrono::Duration::minutes(2);

/// An occurrence's targets as the plugin sees them, and each one's key and community.
type Targets = (Vec<pm::Target>, Vec<(TaskTarget, String)>);

pub struct Scheduler {
    store: Store,
    plugins: Arc<Catalog>,
    clock: SharedClock,
    default_zone: Tz,
    wake: tokio::sync::Notify,
    recovered: AtomicBool,
}

fn invalid(field: &str, message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(Invalid::one(field, message))
}

fn not_found(id: u64) -> RegistryError {
    RegistryError::NotFound {
        kind: "duty",
        id: id.to_string(),
    }
}

impl Scheduler {
    pub fn new(store: Store, plugins: Arc<Catalog>, clock: SharedClock, default_zone: Tz) -> Self {
        Scheduler {
            store,
            plugins,
            clock,
            default_zone,
            wake: tokio::sync::Notify::new(),
            recovered: AtomicBool::new(false),
        }
    }

    /// Wakes the loop (a duty changed).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    // ------------------------------------------------------------------------ duty operations

    /// Checks a duty's input against the plugins and the registry; returns the cron text, the
    /// zone name and the next fire time.
    fn check(
        &self,
        input: &mut DutyInput,
        guard: &dyn Guard,
        now: DateTime<Utc>,
    ) -> Result<(String, String, Option<DateTime<Utc>>), RegistryError> {
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
    ) -> Result<Duty, RegistryError> {
        let now = self.clock.now();
        let (cron, time_zone, next_fire) = self.check(&mut input, guard, now)?;
        let duty = self.store.write(|w| {
            let id = w.reserve_ids("duty", 1)?;
            let duty = Duty {
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
                created_at: now,
                updated_at: now,
            };
            w.put_duty(&duty)?;
            Ok::<_, RegistryError>(duty)
        })?;
        tracing::info!(duty = duty.id, plugin = %duty.plugin, action = %duty.action, cron = %duty.cron, "duty created");
        self.poke();
        Ok(duty)
    }

    /// A duty the guard may see.
    pub fn get(&self, id: u64, guard: &dyn Guard) -> Result<Duty, RegistryError> {
        self.store
            .read(|r| r.duty(id))?
            .filter(|d| guard.region(&d.selector.region) || guard.community(&d.selector.region))
            .ok_or_else(|| not_found(id))
    }

    pub fn list(&self, guard: &dyn Guard) -> Result<Vec<Duty>, RegistryError> {
        Ok(self
            .store
            .read(|r| r.all_duties())?
            .into_iter()
            .filter(|d| guard.region(&d.selector.region))
            .collect())
    }

    /// Applies a JSON merge patch to a duty. Changing the schedule keeps the occurrences that
    /// already ran and continues from now.
    pub fn update(&self, id: u64, patch: &Value, guard: &dyn Guard) -> Result<Duty, RegistryError> {
        let old = self.get(id, guard)?;
        if !guard.region(&old.selector.region) {
            return Err(not_found(id));
        }
        let mut value = serde_json::to_value(old.to_input()).unwrap_or(Value::Null);
        merge_patch(&mut value, patch);
        let mut input: DutyInput = from_json(value).map_err(RegistryError::Invalid)?;
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
    ) -> Result<Duty, RegistryError> {
        self.update(id, &serde_json::json!({ "paused": paused }), guard)
    }

    /// The next `count` fire times after `after` (default now).
    pub fn preview(
        &self,
        id: u64,
        after: Option<DateTime<Utc>>,
        count: usize,
        guard: &dyn Guard,
    ) -> Result<Vec<DateTime<Utc>>, RegistryError> {
        let d = self.get(id, guard)?;
        let (expr, tz) = parse_schedule(&d)?;
        Ok(next_n(
            &expr,
            tz,
            after.unwrap_or_else(|| self.clock.now()),
            count,
        ))
    }

    /// Runs an occurrence now, outside the schedule.
    pub fn trigger(&self, id: u64, guard: &dyn Guard) -> Result<Occurrence, RegistryError> {
        let d = self.get(id, guard)?;
        let now = self.clock.now();
        let at = Utc
            .timestamp_opt(now.timestamp(), 0)
            .single()
            .unwrap_or(now);
        self.run_occurrence(&d, at, Trigger::Manual)
    }

    /// Runs every scheduled occurrence in `[from, to]` (at most 1,000); ones already done are
    /// left as they are, failed ones run again.
    pub fn backfill(
        &self,
        id: u64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        guard: &dyn Guard,
    ) -> Result<Vec<Occurrence>, RegistryError> {
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
        times
            .into_iter()
            .map(|t| self.run_occurrence(&d, t, Trigger::Backfill))
            .collect()
    }

    // ----------------------------------------------------------------------------- occurrences

    /// Runs one occurrence exactly once: its record is keyed (duty, instant), each task
    /// (duty, instant, target/kind), and tasks are written in transactions, so a run that was
    /// interrupted is finished by the next without creating anything twice.
    pub fn run_occurrence(
        &self,
        duty: &Duty,
        at: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<Occurrence, RegistryError> {
        let now = self.clock.now();
        let ts = at.timestamp();
        let start = self.store.write(|w| {
            if let Some(existing) = w.occurrence(duty.id, ts)? {
                let rerun = existing.status == OccurrenceStatus::Planning
                    || (existing.status == OccurrenceStatus::Failed
                        && matches!(trigger, Trigger::Manual | Trigger::Backfill));
                if !rerun {
                    return Ok::<_, StoreError>(Err(existing));
                }
            }
            let o = Occurrence {
                duty: duty.id,
                scheduled_at: at,
                trigger,
                status: OccurrenceStatus::Planning,
                targets: 0,
                planned: 0,
                tasks_created: 0,
                tasks_existing: 0,
                error: None,
                started_at: now,
                finished_at: None,
            };
            w.put_occurrence(&o)?;
            Ok(Ok(o))
        })?;
        let mut occ = match start {
            Ok(o) => o,
            Err(done) => return Ok(done),
        };
        let tz = zone(&duty.time_zone).unwrap_or(self.default_zone);
        let (gathered, gather_time) = crate::plugins::runtime::timed(|| {
            self.targets(duty, at.with_timezone(&tz).date_naive())
        });
        let (targets, keys) = gathered?;
        occ.targets = targets.len() as u64;
        let plan_occ = pm::Occurrence {
            duty: duty.id.to_string(),
            action: duty.action.clone(),
            scheduled_at: at
                .with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            time_zone: tz.name().to_owned(),
        };
        // Plan batch k+1 (on a planner thread) while batch k is written.
        let persist_started = std::time::Instant::now();
        let mut plan_time = std::time::Duration::ZERO;
        let mut stored: Vec<(Vec<pm::ChecklistItem>, u64)> = Vec::new();
        let failure = std::thread::scope(|scope| -> Result<Option<CallError>, RegistryError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let (plugins, plan_occ, targets, plugin) =
                (&self.plugins, &plan_occ, &targets, &duty.plugin);
            scope.spawn(move || {
                let batches: Vec<&[pm::Target]> = if targets.is_empty() {
                    vec![&targets[..]]
                } else {
                    targets.chunks(PLAN_BATCH).collect()
                };
                for (b, batch) in batches.into_iter().enumerate() {
                    let (result, took) =
                        crate::plugins::runtime::timed(|| plugins.plan(plugin, plan_occ, batch));
                    let failed = result.is_err();
                    if tx
                        .send((b * PLAN_BATCH, result.map(|(p, _logs)| p), took))
                        .is_err()
                        || failed
                    {
                        break;
                    }
                }
            });
            for (offset, result, took) in rx {
                plan_time += took;
                let part = match result {
                    Ok(part) => part,
                    Err(e) => return Ok(Some(e)),
                };
                occ.planned += part.drafts.len() as u64;
                let ids = self.store_checklists(&mut stored, part.checklists)?;
                self.persist(
                    duty,
                    at,
                    tz,
                    now,
                    &keys,
                    offset,
                    &part.drafts,
                    &ids,
                    &mut occ,
                )?;
            }
            Ok(None)
        })?;
        if let Some(CallError::Shutdown) = failure {
            // Not a failure: the occurrence stays pending and the next start finishes it.
            tracing::info!(duty = duty.id, at = %at, "occurrence interrupted by shutdown");
            return Ok(occ);
        }
        if let Some(e) = failure {
            occ.status = OccurrenceStatus::Failed;
            occ.error = Some(e.to_string());
            occ.finished_at = Some(self.clock.now());
            tracing::warn!(duty = duty.id, error = %e, "occurrence failed");
            self.store.write(|w| {
                w.put_occurrence(&occ)?;
                w.push_event(Event {
                    seq: 0,
                    kind: "occurrence.failed".into(),
                    at: self.clock.now(),
                    task: None,
                    duty: Some(duty.id),
                    community: None,
                    detail: e.to_string(),
                })?;
                Ok::<_, StoreError>(())
            })?;
            return Ok(occ);
        }
        occ.status = OccurrenceStatus::Done;
        occ.finished_at = Some(self.clock.now());
        self.store.write(|w| w.put_occurrence(&occ))?;
        tracing::info!(
            duty = duty.id,
            at = %at,
            targets = occ.targets,
            created = occ.tasks_created,
            existing = occ.tasks_existing,
            gather_ms = gather_time.as_millis() as u64,
            plan_ms = plan_time.as_millis() as u64,
            persist_ms = persist_started.elapsed().as_millis() as u64,
            "occurrence done"
        );
        Ok(occ)
    }

    /// Stores the checklists of one plan batch that are not stored yet for this occurrence;
    /// returns the id of each, by the batch's indices.
    fn store_checklists(
        &self,
        stored: &mut Vec<(Vec<pm::ChecklistItem>, u64)>,
        checklists: Vec<Vec<pm::ChecklistItem>>,
    ) -> Result<Vec<u64>, RegistryError> {
        let fresh: Vec<&Vec<pm::ChecklistItem>> = checklists
            .iter()
            .filter(|c| !stored.iter().any(|(s, _)| s == *c))
            .collect();
        if !fresh.is_empty() {
            let first = self.store.write(|w| {
                let first = w.reserve_ids("checklist", fresh.len() as u64)?;
                for (i, c) in fresh.iter().enumerate() {
                    w.put_checklist(first + i as u64, c)?;
                }
                Ok::<_, StoreError>(first)
            })?;
            for (i, c) in fresh.into_iter().enumerate() {
                stored.push((c.clone(), first + i as u64));
            }
        }
        Ok(checklists
            .iter()
            .map(|c| stored.iter().find(|(s, _)| s == c).map_or(0, |(_, id)| *id))
            .collect())
    }

    /// Writes the tasks of one plan batch (targets indexed from `offset`) in transactions of
    /// `chunk_size()`, each creating only the tasks whose key is not there yet.
    #[allow(clippy::too_many_arguments)]
    fn persist(
        &self,
        duty: &Duty,
        at: DateTime<Utc>,
        tz: Tz,
        now: DateTime<Utc>,
        keys: &[(TaskTarget, String)],
        offset: usize,
        drafts: &[pm::TaskDraft],
        checklist_ids: &[u64],
        occ: &mut Occurrence,
    ) -> Result<(), RegistryError> {
        let ts = at.timestamp();
        let due_override = duty
            .due_window_days
            .map(|d| chrono::Duration::days(i64::from(d)));
        let epoch = at.fixed_offset();
        let mut window = (String::new(), String::new(), epoch, epoch);
        for chunk in drafts.chunks(chunk_size()) {
            self.store.write(|w| {
                let mut fresh = Vec::new();
                // Keys taken in this chunk (a plugin may repeat a target and kind).
                let mut taken = std::collections::HashSet::new();
                {
                    let tasks = w.task_writer()?;
                    for d in chunk {
                        let Some((target, community)) = keys.get(offset + d.target as usize) else {
                            continue;
                        };
                        let key = format!("{}/{}", target_key(target), d.kind);
                        if tasks.existing(duty.id, ts, &key)?.is_some()
                            || !taken.insert(key.clone())
                        {
                            occ.tasks_existing += 1;
                            continue;
                        }
                        fresh.push((key, target.clone(), community.clone(), d));
                    }
                }
                if fresh.is_empty() {
                    w.put_occurrence(occ)?;
                    return Ok::<_, StoreError>(());
                }
                let first = w.reserve_ids("task", fresh.len() as u64)?;
                let mut tasks = w.task_writer()?;
                for (i, (key, target, community, d)) in fresh.into_iter().enumerate() {
                    // Most drafts share one due window: parse each distinct one once.
                    if window.0 != d.due_start || window.1 != d.due_end {
                        let parse = |s: &str| {
                            DateTime::parse_from_rfc3339(s).unwrap_or_else(|_| at.fixed_offset())
                        };
                        let start = parse(&d.due_start);
                        let end = match due_override {
                            Some(w) => (at + w).with_timezone(&tz).fixed_offset().max(start),
                            None => parse(&d.due_end),
                        };
                        window = (d.due_start.clone(), d.due_end.clone(), start, end);
                    }
                    let (due_start, due_end) = (window.2, window.3);
                    tasks.create(&Task {
                        id: first + i as u64,
                        duty: duty.id,
                        scheduled_at: at,
                        key,
                        target,
                        community,
                        plugin: duty.plugin.clone(),
                        action: duty.action.clone(),
                        kind: d.kind.clone(),
                        title: d.title.clone(),
                        due_start,
                        due_end,
                        priority: d.priority,
                        requirements: d.requirements.clone(),
                        checklist: checklist_ids
                            .get(d.checklist as usize)
                            .copied()
                            .unwrap_or(0),
                        status: TaskStatus::Open,
                        created_at: now,
                        updated_at: now,
                    })?;
                    occ.tasks_created += 1;
                }
                drop(tasks);
                w.put_occurrence(occ)?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The targets of a duty on `today`, with each target's key and community.
    fn targets(&self, duty: &Duty, today: chrono::NaiveDate) -> Result<Targets, RegistryError> {
        let action = self
            .plugins
            .description(&duty.plugin)
            .and_then(|d| d.actions.into_iter().find(|a| a.id == duty.action));
        let Some(action) = action else {
            return Ok((Vec::new(), Vec::new()));
        };
        let region = &duty.selector.region;
        let prefix = crate::registry::region::subtree_prefix(region)
            .unwrap_or(region)
            .to_owned();
        let grid = region.contains('-').then_some(region.as_str());
        let community_prefix = prefix.split('-').next().unwrap_or(&prefix).to_owned();
        let mut targets = Vec::new();
        let mut keys = Vec::new();
        match action.target_kind {
            TargetKind::Person => {
                let categories: Vec<String> = if duty.selector.categories.is_empty() {
                    action.categories.clone()
                } else {
                    duty.selector
                        .categories
                        .iter()
                        .map(|c| c.as_str().to_owned())
                        .collect()
                };
                let people = self.store.read(|r| {
                    r.persons_under_as(&community_prefix, |p: &crate::registry::PersonFacts| {
                        p.active
                            && grid.is_none_or(|g| p.grid.as_deref() == Some(g))
                            && p.categories
                                .iter()
                                .any(|c| categories.iter().any(|x| x == c.as_str()))
                            && duty.selector.needs.iter().all(|n| p.needs.contains(n))
                    })
                })?;
                for p in people {
                    keys.push((TaskTarget::Person { id: p.id }, p.community.clone()));
                    targets.push(pm::Target::Person(pm::PersonTarget::from_facts(&p, today)));
                }
            }
            TargetKind::Community => {
                let page = self.store.read(|r| {
                    r.regions(&community_prefix, None, usize::MAX, |reg| {
                        reg.active
                            && reg.level == RegionLevel::Community
                            && (duty.selector.communities.is_empty()
                                || duty.selector.communities.contains(&reg.code))
                    })
                })?;
                for reg in page.items {
                    keys.push((
                        TaskTarget::Community {
                            code: reg.code.clone(),
                        },
                        reg.code.clone(),
                    ));
                    targets.push(pm::Target::Community(pm::CommunityTarget::from_region(
                        &reg,
                    )));
                }
            }
        }
        Ok((targets, keys))
    }

    // ------------------------------------------------------------------------------ the loop

    /// Does everything that is due at the clock's current time: finishes occurrences a crash
    /// interrupted, runs due and missed occurrences by each duty's catch-up policy, and marks
    /// tasks overdue. Returns when to look again. Blocking.
    pub fn tick(&self) -> Result<Option<DateTime<Utc>>, RegistryError> {
        let now = self.clock.now();
        if !self.recovered.swap(true, Ordering::SeqCst) {
            for (duty_id, ts) in self.store.read(|r| r.pending_occurrences())? {
                let (Some(duty), Some(at)) = (
                    self.store.read(|r| r.duty(duty_id))?,
                    Utc.timestamp_opt(ts, 0).single(),
                ) else {
                    continue;
                };
                let trigger = self
                    .store
                    .read(|r| r.occurrence(duty_id, ts))?
                    .map_or(Trigger::Scheduled, |o| o.trigger);
                tracing::info!(duty = duty_id, at = %at, "finishing an occurrence interrupted by a stop");
                self.run_occurrence(&duty, at, trigger)?;
            }
        }
        let mut next_wake: Option<DateTime<Utc>> = None;
        let mut updates = Vec::new();
        for duty in self.store.read(|r| r.all_duties())? {
            let Ok((expr, tz)) = parse_schedule(&duty) else {
                continue;
            };
            if duty.paused {
                continue;
            }
            let from = duty.last_fire.unwrap_or(duty.created_at);
            let fires = expr.between(from, now, tz, 100_000);
            let window_start = now - chrono::Duration::days(i64::from(duty.catch_up.window_days));
            let on_time = |t: &DateTime<Utc>| *t > now - GRACE;
            let candidates: Vec<DateTime<Utc>> = fires
                .iter()
                .copied()
                .filter(|t| *t > window_start || on_time(t))
                .collect();
            let selected: Vec<DateTime<Utc>> = match duty.catch_up.policy {
                CatchUpPolicy::All => candidates,
                CatchUpPolicy::Latest => candidates.last().copied().into_iter().collect(),
                CatchUpPolicy::None => fires.iter().copied().filter(on_time).collect(),
            };
            for t in &selected {
                let trigger = if on_time(t) {
                    Trigger::Scheduled
                } else {
                    Trigger::CatchUp
                };
                self.run_occurrence(&duty, *t, trigger)?;
            }
            let next_fire = expr.next_after(now, tz);
            if fires.last().is_some() || duty.next_fire != next_fire {
                let last = fires.last().copied().or(duty.last_fire);
                updates.push((
                    duty.id,
                    duty.cron.clone(),
                    duty.time_zone.clone(),
                    last,
                    next_fire,
                ));
            }
            next_wake = earliest(next_wake, next_fire);
        }
        // One transaction for every duty whose schedule state moved.
        if !updates.is_empty() {
            self.store.write(|w| {
                for (id, cron, time_zone, last, next) in &updates {
                    // Re-read: the duty may have changed while occurrences ran.
                    if let Some(mut current) = w.duty(*id)?
                        && current.cron == *cron
                        && current.time_zone == *time_zone
                    {
                        current.last_fire = *last;
                        current.next_fire = *next;
                        w.put_duty(&current)?;
                    }
                }
                Ok::<_, StoreError>(())
            })?;
        }
        self.mark_overdue(now)?;
        let due = self
            .store
            .read(|r| r.first_open_due())?
            .and_then(|s| Utc.timestamp_opt(s + 1, 0).single());
        Ok(earliest(next_wake, due))
    }

    /// Open tasks past their due end become overdue, each with a `task.overdue` event.
    fn mark_overdue(&self, now: DateTime<Utc>) -> Result<(), RegistryError> {
        loop {
            let n = self.store.write(|w| {
                let due = w.open_tasks_due_before(now.timestamp(), 1000)?;
                let mut events = Vec::new();
                {
                    let mut tasks = w.task_writer()?;
                    for old in &due {
                        let task = Task {
                            status: TaskStatus::Overdue,
                            updated_at: now,
                            ..old.clone()
                        };
                        tasks.put(&task, Some(old))?;
                        events.push(Event {
                            seq: 0,
                            kind: "task.overdue".into(),
                            at: now,
                            task: Some(task.id),
                            duty: Some(task.duty),
                            community: Some(task.community.clone()),
                            detail: format!(
                                "{} was due by {}",
                                task.title.zh,
                                task.due_end.to_rfc3339()
                            ),
                        });
                    }
                }
                for e in events {
                    w.push_event(e)?;
                }
                Ok::<_, StoreError>(due.len())
            })?;
            if n < 1000 {
                return Ok(());
            }
        }
    }

    /// Runs until `shutdown` fires: tick, then sleep until the next fire or due time, a poke,
    /// or shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let me = self.clone();
            let next = match tokio::task::spawn_blocking(move || me.tick()).await {
                Ok(Ok(next)) => next,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "scheduler tick failed; retrying in a minute");
                    Some(self.clock.now() + chrono::Duration::minutes(1))
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduler tick panicked; retrying in a minute");
                    Some(self.clock.now() + chrono::Duration::minutes(1))
                }
            };
            // Sleep at most an hour at a time, so a wall-clock jump is noticed.
            let wait = next
                .map(|t| (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(3600));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn target_key(t: &TaskTarget) -> String {
    match t {
        TaskTarget::Person { id } => format!("person:{id}"),
        TaskTarget::Community { code } => format!("community:{code}"),
    }
}

fn parse_schedule(d: &Duty) -> Result<(CronExpr, Tz), RegistryError> {
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
