//! Volunteer matching: which volunteers take which tasks. Pure — no I/O, no async, no clock: a
//! function of a [`Problem`] (tasks, volunteers, the planning date, weights) to a [`Plan`]. The
//! scheduler, the API and `linlid match plan` build problems and store or print plans.
//!
//! **Hard constraints** ([`eligible`]): the volunteer is active and of the task's station or a
//! neighbouring one the bureau allows; holds every required skill (an expired certificate for the
//! skill voids it); holds each required clearance (`safeguarding`, `insurance`, or a named
//! certificate) valid through the due end; has a weekly availability window in the due window
//! (no windows stated: any time); lives within `max_distance_km`; has the required gender,
//! languages (one of them) and roles; and has capacity left this month. A team task is staffed
//! by `team_size` different people or by nobody.
//!
//! **Objective**, lexicographic: first staff as many urgent task units as possible, then high,
//! normal, low; among those plans the least total cost, where cost is the great-circle distance
//! from the volunteer's home to the task, minus `weights.continuity_km` when the volunteer has
//! served the person before, plus `weights.fairness_km × n` for a volunteer's (n+1)-th task of
//! the month (convex: each further task costs more). Costs are integers of 10⁻⁹ km, so totals
//! are exact; the priority levels are rewards so large (i128) that no distance can outweigh one
//! more staffed task of a higher level.
//!
//! **Exactness.** The solver ([`flow`]) works on the full graph — every eligible volunteer of
//! every task — without building it: a task's arcs come cheapest first, a few at a time — from
//! a per-station spatial index, nearest first, with the arcs of those who served the person
//! (the continuity bonus) merged in where their cost falls — and a shortest-path search fetches
//! more only when a lower bound on the arcs not yet fetched (the next cost, and the highest
//! potential among the task's stations' volunteers) says one of them could be on the path. Arcs no search comes near are never built, and nothing is pruned:
//! no heuristic, no optimality round to repeat. Team tasks: solved with the team size as the
//! task's capacity; a task left with a partial team is released (its members go back) and the
//! rest is solved again, until no team is partial. Then: with team size 1 everywhere, the plan
//! is exactly optimal; with teams, it is optimal among plans that staff none of the released
//! tasks.

pub mod flow;
pub mod geo;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::registry::{Availability, Certification, Gender, GeoPoint, Weekday};
use crate::task::{Priority, Requirements};
pub use crate::task::{Reason, ReasonCount};
use flow::{ArcCost, Cost};

/// One unit of cost: 10⁻⁹ km.
const UNITS_PER_KM: f64 = 1e9;
/// Candidates fetched first per team member; the solver fetches more (twice as many each time)
/// where a shortest path could use them.
const CANDIDATES_PER_MEMBER: usize = 8;

/// A task to staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub id: u64,
    /// The station whose communities the task is in.
    pub station: u64,
    /// The person visited, for continuity (none for a community task).
    #[serde(default)]
    pub person: Option<u64>,
    /// Where the visit happens; `None` when unknown (distance then neither costs nor limits).
    #[serde(default)]
    pub location: Option<GeoPoint>,
    pub priority: Priority,
    pub due_start: DateTime<FixedOffset>,
    pub due_end: DateTime<FixedOffset>,
    pub requirements: Requirements,
    /// Volunteers who may not take it (they hold it already, declined it or let an offer
    /// expire).
    #[serde(default)]
    pub exclude: Vec<u64>,
}

/// A volunteer or community worker who can be matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolunteerSpec {
    pub id: u64,
    pub station: u64,
    pub home: GeoPoint,
    pub gender: Gender,
    /// Tasks the volunteer may still take this month (capacity minus what they hold).
    pub capacity: u32,
    /// Tasks already held this month (the fairness cost counts on from here).
    #[serde(default)]
    pub held: u32,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub certifications: Vec<Certification>,
    /// Safeguarding clearance expiry.
    #[serde(default)]
    pub safeguarding_until: Option<NaiveDate>,
    /// Accident insurance expiry (志愿服务条例 Art. 17: risky activities need it).
    #[serde(default)]
    pub insurance_until: Option<NaiveDate>,
    #[serde(default)]
    pub availability: Vec<Availability>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Persons this volunteer has visited before.
    #[serde(default)]
    pub served: Vec<u64>,
}

/// How much continuity and fairness weigh, in kilometres of travel.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Weights {
    /// Taken off the cost when the volunteer has served the person before.
    pub continuity_km: f64,
    /// Added for each task a volunteer already holds this month, per further task.
    pub fairness_km: f64,
}

/// Everything matching looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// The planning date (clearances are judged through each task's due end).
    pub today: NaiveDate,
    pub tasks: Vec<TaskSpec>,
    pub volunteers: Vec<VolunteerSpec>,
    /// Stations whose volunteers may also serve a station's tasks (the bureau allows them).
    #[serde(default)]
    pub neighbours: BTreeMap<u64, Vec<u64>>,
    #[serde(default)]
    pub weights: Weights,
}

/// Why a task was not staffed: each reason with how many volunteers it ruled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Unstaffed {
    pub reasons: Vec<ReasonCount>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    /// Task id → the volunteers who take it.
    pub assignments: BTreeMap<u64, Vec<u64>>,
    /// Task id → why it was not staffed.
    pub unstaffed: BTreeMap<u64, Unstaffed>,
    /// Tasks staffed (whole teams).
    pub staffed: usize,
    /// Staffed tasks per priority.
    pub staffed_by_priority: BTreeMap<String, usize>,
    /// Sum of the distances from each assigned volunteer's home to the task, in km.
    pub total_distance_km: f64,
    /// The objective's cost part: distances with continuity and fairness applied, in km.
    pub total_cost: f64,
    /// Candidate arcs the solver looked at (every eligible arc counts toward the optimum; only
    /// these were built).
    pub arcs: usize,
}

/// A problem `plan` refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProblemError {
    #[error("{0}")]
    Invalid(String),
}

fn weekday(d: chrono::Weekday) -> Weekday {
    use chrono::Weekday as W;
    match d {
        W::Mon => Weekday::Mon,
        W::Tue => Weekday::Tue,
        W::Wed => Weekday::Wed,
        W::Thu => Weekday::Thu,
        W::Fri => Weekday::Fri,
        W::Sat => Weekday::Sat,
        W::Sun => Weekday::Sun,
    }
}

fn clock_minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60).then(|| h * 60 + m)
}

/// Does one of the weekly windows fall inside the due window (judged in the task's offset)?
fn available(
    windows: &[Availability],
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
) -> bool {
    if windows.is_empty() {
        return true;
    }
    if end <= start {
        return false;
    }
    let mut day = start.date_naive();
    let last = end.date_naive();
    let mut days = 0;
    while day <= last && days < 8 {
        let from = if day == start.date_naive() {
            start.hour() * 60 + start.minute()
        } else {
            0
        };
        let to = if day == last {
            end.hour() * 60 + end.minute()
        } else {
            24 * 60
        };
        let wd = weekday(day.weekday());
        let fits = windows.iter().any(|w| {
            w.day == wd
                && match (clock_minutes(&w.start), clock_minutes(&w.end)) {
                    (Some(s), Some(e)) => s < to && e > from,
                    _ => false,
                }
        });
        if fits {
            return true;
        }
        match day.succ_opt() {
            Some(d) => day = d,
            None => break,
        }
        days += 1;
    }
    false
}

/// The hard constraints: `Ok` when `v` may take `t`, else the first one it fails. Station and
/// capacity are checked by the caller ([`plan`]), which knows the neighbours and the load.
pub fn eligible(t: &TaskSpec, v: &VolunteerSpec, distance_km: Option<f64>) -> Result<(), Reason> {
    let r = &t.requirements;
    let due = t.due_end.date_naive();
    for s in &r.skills {
        if !v.skills.iter().any(|x| x == s) {
            return Err(Reason::MissingSkill { skill: s.clone() });
        }
        let certs: Vec<&Certification> = v
            .certifications
            .iter()
            .filter(|c| c.skill.as_deref() == Some(s.as_str()))
            .collect();
        if !certs.is_empty() && !certs.iter().any(|c| c.expires_on >= due) {
            return Err(Reason::ExpiredCertificate { skill: s.clone() });
        }
    }
    for c in &r.clearances {
        let ok = match c.as_str() {
            "safeguarding" => v.safeguarding_until.is_some_and(|d| d >= due),
            "insurance" => v.insurance_until.is_some_and(|d| d >= due),
            other => v.certifications.iter().any(|x| {
                (x.name == other || x.skill.as_deref() == Some(other)) && x.expires_on >= due
            }),
        };
        if !ok {
            return Err(Reason::MissingClearance {
                clearance: c.clone(),
            });
        }
    }
    if let Some(g) = r.gender
        && v.gender != g
    {
        return Err(Reason::WrongGender);
    }
    if !r.languages.is_empty() && !r.languages.iter().any(|l| v.languages.contains(l)) {
        return Err(Reason::NoLanguage);
    }
    for role in &r.roles {
        if !v.roles.contains(role) {
            return Err(Reason::MissingRole { role: role.clone() });
        }
    }
    if let (Some(max), Some(d)) = (r.max_distance_km, distance_km)
        && d > f64::from(max)
    {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Err(Reason::TooFar {
            max_km: max.max(0.0).ceil() as u32,
        });
    }
    if !available(&v.availability, t.due_start, t.due_end) {
        return Err(Reason::NotAvailable);
    }
    Ok(())
}

fn km_units(km: f64) -> Cost {
    Cost::from(km_arc(km))
}

/// `km` in units, for one arc (distances and bonuses are far inside `i64`).
fn km_arc(km: f64) -> ArcCost {
    #[allow(clippy::cast_possible_truncation)]
    let u = (km * UNITS_PER_KM).round() as i64;
    u
}

fn units_km(u: Cost) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let f = u as f64;
    f / UNITS_PER_KM
}

fn level(p: Priority) -> usize {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// Checks a problem's numbers before planning.
fn check(p: &Problem) -> Result<(), ProblemError> {
    let w = p.weights;
    if !(0.0..=1000.0).contains(&w.continuity_km) || !(0.0..=1000.0).contains(&w.fairness_km) {
        return Err(ProblemError::Invalid(
            "weights: continuity_km and fairness_km must be 0 to 1000".into(),
        ));
    }
    // The priority rewards grow with the fourth power of the team places: keep them in i128.
    let units: u64 = p
        .tasks
        .iter()
        .map(|t| u64::from(t.requirements.team_size))
        .sum();
    if units > 1_000_000 || p.volunteers.len() > 1_000_000 {
        return Err(ProblemError::Invalid(
            "at most 1,000,000 team places and 1,000,000 volunteers in one problem".into(),
        ));
    }
    let mut ids = HashSet::new();
    for t in &p.tasks {
        if !ids.insert(t.id) {
            return Err(ProblemError::Invalid(format!(
                "task {} appears twice",
                t.id
            )));
        }
        if !(1..=20).contains(&t.requirements.team_size) {
            return Err(ProblemError::Invalid(format!(
                "task {}: team_size must be 1 to 20",
                t.id
            )));
        }
        if t.requirements
            .max_distance_km
            .is_some_and(|d| !d.is_finite() || d <= 0.0)
        {
            return Err(ProblemError::Invalid(format!(
                "task {}: max_distance_km must be a positive number",
                t.id
            )));
        }
        for g in t.location.iter() {
            if !(-90.0..=90.0).contains(&g.lat) || !(-180.0..=180.0).contains(&g.lon) {
                return Err(ProblemError::Invalid(format!(
                    "task {}: location out of range",
                    t.id
                )));
            }
        }
    }
    let mut ids = HashSet::new();
    for v in &p.volunteers {
        if !ids.insert(v.id) {
            return Err(ProblemError::Invalid(format!(
                "volunteer {} appears twice",
                v.id
            )));
        }
        if !(-90.0..=90.0).contains(&v.home.lat) || !(-180.0..=180.0).contains(&v.home.lon) {
            return Err(ProblemError::Invalid(format!(
                "volunteer {}: home out of range",
                v.id
            )));
        }
        if v.capacity > 10_000 || v.held > 10_000 {
            return Err(ProblemError::Invalid(format!(
                "volunteer {}: capacity and held must be at most 10,000",
                v.id
            )));
        }
        for (i, w) in v.availability.iter().enumerate() {
            match (clock_minutes(&w.start), clock_minutes(&w.end)) {
                (Some(s), Some(e)) if s < e && e <= 24 * 60 => {}
                _ => {
                    return Err(ProblemError::Invalid(format!(
                        "volunteer {}: availability[{i}] must be HH:MM to a later HH:MM",
                        v.id
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Plans the problem: see the module documentation for the constraints, the objective and
/// what is guaranteed.
pub fn plan(p: &Problem) -> Result<Plan, ProblemError> {
    check(p)?;
    let mut by_station: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, v) in p.volunteers.iter().enumerate() {
        by_station.entry(v.station).or_default().push(i);
    }
    let task_stations: Vec<BTreeSet<u64>> = p
        .tasks
        .iter()
        .map(|t| {
            let mut s: BTreeSet<u64> = p
                .neighbours
                .get(&t.station)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect();
            s.insert(t.station);
            s
        })
        .collect();
    let served: Vec<HashSet<u64>> = p
        .volunteers
        .iter()
        .map(|v| v.served.iter().copied().collect())
        .collect();
    let continuity = km_units(p.weights.continuity_km);
    let fairness = km_units(p.weights.fairness_km);
    // One spatial index per station: eligibility is by station first, so a task searches only
    // the homes of the stations that may serve it.
    let mut station_ids: Vec<u64> = by_station.keys().copied().collect();
    station_ids.sort_unstable();
    let dense: HashMap<u64, usize> = station_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i))
        .collect();
    let groups: Vec<(geo::Grid, &[usize])> = station_ids
        .iter()
        .map(|s| {
            let ids = by_station.get(s).map_or(&[][..], Vec::as_slice);
            let homes = ids.iter().map(|&i| p.volunteers[i].home).collect();
            (geo::Grid::new(homes, 0.02), ids)
        })
        .collect();
    // The task's own station first: its volunteers are usually the nearest, and the search of
    // the others then passes over more.
    let task_groups: Vec<Vec<usize>> = task_stations
        .iter()
        .zip(&p.tasks)
        .map(|(ss, t)| {
            let own = dense.get(&t.station).copied();
            own.into_iter()
                .chain(
                    ss.iter()
                        .filter(|&&s| s != t.station)
                        .filter_map(|s| dense.get(s).copied()),
                )
                .collect()
        })
        .collect();
    #[allow(clippy::cast_possible_truncation)]
    let group_of: Vec<u32> = p
        .volunteers
        .iter()
        .map(|v| dense.get(&v.station).copied().unwrap_or(0) as u32)
        .collect();
    // Who served whom: their arcs earn the continuity bonus, so they are fetched apart from the
    // nearest-first stream (whose bounds then need no allowance for a bonus).
    let mut served_by: HashMap<u64, Vec<usize>> = HashMap::new();
    if continuity != 0 {
        // (From the sets: a person visited twice is one arc, never two seats of one team.)
        for (vi, persons) in served.iter().enumerate() {
            for &person in persons {
                served_by.entry(person).or_default().push(vi);
            }
        }
    }
    // Tasks of one station share their set of groups.
    let mut set_ids: HashMap<&[usize], u32> = HashMap::new();
    let mut sets: Vec<Vec<usize>> = Vec::new();
    #[allow(clippy::cast_possible_truncation)]
    let set_of_task: Vec<u32> = task_groups
        .iter()
        .map(|g| {
            *set_ids.entry(g.as_slice()).or_insert_with(|| {
                sets.push(g.clone());
                (sets.len() - 1) as u32
            })
        })
        .collect();
    let source = Nearest {
        p,
        groups: &groups,
        task_groups: &task_groups,
        served: &served,
        continuity: km_arc(p.weights.continuity_km),
        served_by: &served_by,
        group_of: &group_of,
    };

    // Priority rewards: one more staffed unit of a level outweighs any cost difference below.
    let units_total: Cost = p
        .tasks
        .iter()
        .map(|t| Cost::from(t.requirements.team_size))
        .sum();
    // The longest arc there can be: across the box around every task and home.
    let points = p
        .tasks
        .iter()
        .filter_map(|t| t.location)
        .chain(p.volunteers.iter().map(|v| v.home));
    let (mut lo, mut hi) = (
        GeoPoint {
            lat: 90.0,
            lon: 180.0,
        },
        GeoPoint {
            lat: -90.0,
            lon: -180.0,
        },
    );
    for g in points {
        lo = GeoPoint {
            lat: lo.lat.min(g.lat),
            lon: lo.lon.min(g.lon),
        };
        hi = GeoPoint {
            lat: hi.lat.max(g.lat),
            lon: hi.lon.max(g.lon),
        };
    }
    // No great circle inside the box is longer than its height plus its width at the equator.
    let deg_km = geo::EARTH_RADIUS_KM * std::f64::consts::PI / 180.0;
    let span = if lo.lat <= hi.lat {
        ((hi.lat - lo.lat) + (hi.lon - lo.lon)) * deg_km + 1.0
    } else {
        1.0
    };
    let max_arc: Cost = km_units(span) + continuity.abs();
    let max_fair: Cost = fairness
        * (Cost::from(
            p.volunteers
                .iter()
                .map(|v| v.held.saturating_add(v.capacity))
                .max()
                .unwrap_or(0),
        ) + 1);
    // Checked: a problem whose rewards would not fit is refused, never wrapped.
    let n = units_total + 1;
    let rewards: Option<[Cost; 4]> = (|| {
        let w0 = n
            .checked_mul(2)?
            .checked_mul(max_arc.checked_add(max_fair)?)?
            .checked_add(1)?;
        let w1 = w0.checked_mul(n)?;
        let w2 = w1.checked_mul(n)?;
        let w3 = w2.checked_mul(n)?;
        // Sums of every skip must fit too.
        w3.checked_mul(n)?;
        Some([w0, w1, w2, w3])
    })();
    let Some(rewards) = rewards else {
        return Err(ProblemError::Invalid(
            "the problem is too large to plan exactly in one piece: split it (by county)".into(),
        ));
    };
    let skip: Vec<Cost> = p.tasks.iter().map(|t| rewards[level(t.priority)]).collect();
    let capacity: Vec<u32> = p.volunteers.iter().map(|v| v.capacity).collect();
    let held: Vec<u32> = p.volunteers.iter().map(|v| v.held).collect();
    let marginal = move |v: usize, k: u32| -> Cost { fairness * Cost::from(held[v] + k) };

    // The first few candidates of every task, fetched on two threads; the solver fetches more
    // only where a shortest path reaches past them.
    let mut arcs = flow::Arcs::new(p.tasks.len());
    let half = p.tasks.len() / 2;
    let (first, second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            (half..p.tasks.len())
                .map(|ti| source.next(ti, 0, None, Vec::new()))
                .collect::<Vec<_>>()
        });
        let mine: Vec<_> = (0..half)
            .map(|ti| source.next(ti, 0, None, Vec::new()))
            .collect();
        (mine, other.join())
    });
    let second = second
        .map_err(|_| ProblemError::Invalid("finding candidates stopped unexpectedly".into()))?;
    let mut last = Vec::with_capacity(p.tasks.len());
    let mut held = Vec::with_capacity(p.tasks.len());
    for (ti, batch) in first.into_iter().chain(second).enumerate() {
        arcs.of[ti] = batch
            .arcs
            .into_iter()
            .map(|(v, c)| flow::Arc::new(v, c))
            .collect();
        arcs.rest[ti] = batch.rest;
        last.push(batch.last);
        held.push(batch.held);
        // Arcs come cheapest first but for rounding: see `Nearest::next`.
        arcs.slack[ti] = 2;
    }
    let mut released: HashSet<usize> = HashSet::new();
    let mut source = Stream {
        nearest: source,
        last,
        held,
    };
    let solution = loop {
        let units: Vec<u8> = p
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if released.contains(&i) {
                    0
                } else {
                    t.requirements.team_size
                }
            })
            .collect();
        let net = flow::Network {
            volunteers: p.volunteers.len(),
            capacity: &capacity,
            units: &units,
            skip: &skip,
            marginal: &marginal,
            groups: groups.len(),
            group_of: &group_of,
            sets: &sets,
            set_of_task: &set_of_task,
        };
        let sol = flow::solve(&net, &mut arcs, &mut source);
        // Partial teams are released, and the rest solved again.
        let partial: Vec<usize> = (0..p.tasks.len())
            .filter(|&i| !sol.assigned[i].is_empty() && sol.skipped[i] > 0)
            .collect();
        if partial.is_empty() {
            break sol;
        }
        released.extend(partial);
    };

    // The answer, with reasons for what was not staffed.
    let mut plan = Plan {
        assignments: BTreeMap::new(),
        unstaffed: BTreeMap::new(),
        staffed: 0,
        staffed_by_priority: BTreeMap::new(),
        total_distance_km: 0.0,
        total_cost: 0.0,
        arcs: arcs.count(),
    };
    let mut cost: Cost = 0;
    let mut load: Vec<u32> = vec![0; p.volunteers.len()];
    for (ti, t) in p.tasks.iter().enumerate() {
        let vs = &solution.assigned[ti];
        if !vs.is_empty() && !released.contains(&ti) {
            plan.staffed += 1;
            *plan
                .staffed_by_priority
                .entry(priority_name(t.priority).to_owned())
                .or_default() += 1;
            let mut ids = Vec::new();
            for &vi in vs {
                let v = &p.volunteers[vi as usize];
                ids.push(v.id);
                let d = t.location.map_or(0.0, |at| geo::haversine_km(at, v.home));
                plan.total_distance_km += d;
                cost += Cost::from(source.nearest.cost(t, vi as usize, Some(d)));
                cost += fairness * Cost::from(v.held + load[vi as usize]);
                load[vi as usize] += 1;
            }
            ids.sort_unstable();
            plan.assignments.insert(t.id, ids);
        } else {
            plan.unstaffed.insert(
                t.id,
                reasons(
                    p,
                    t,
                    &task_stations[ti],
                    &by_station,
                    released.contains(&ti),
                ),
            );
        }
    }
    plan.total_cost = units_km(cost);
    Ok(plan)
}

/// A task's eligible volunteers, nearest first: the solver's [`flow::Source`].
struct Nearest<'a> {
    p: &'a Problem,
    /// Per station: a grid over its volunteers' homes, and their indices.
    groups: &'a [(geo::Grid, &'a [usize])],
    /// Per task: the stations (indices into `groups`) that may serve it.
    task_groups: &'a [Vec<usize>],
    served: &'a [HashSet<u64>],
    continuity: ArcCost,
    /// Per person, the volunteers who served them (when continuity weighs anything).
    served_by: &'a HashMap<u64, Vec<usize>>,
    /// Per volunteer, its station (index into `groups`).
    group_of: &'a [u32],
}

impl Nearest<'_> {
    /// The arc's cost: the distance, less the continuity bonus when `vi` served the person.
    fn cost(&self, t: &TaskSpec, vi: usize, d: Option<f64>) -> ArcCost {
        let mut c = km_arc(d.unwrap_or(0.0));
        if let Some(person) = t.person
            && self.served[vi].contains(&person)
        {
            c -= self.continuity;
        }
        c
    }

    /// Whether `vi`, of a station that may serve `t`, may take it at all (capacity,
    /// exclusions, hard constraints).
    fn may(&self, t: &TaskSpec, vi: usize, d: Option<f64>) -> bool {
        let v = &self.p.volunteers[vi];
        v.capacity > 0 && !t.exclude.contains(&v.id) && eligible(t, v, d).is_ok()
    }

    /// Whether `vi` served the person `t` visits (and so earns the continuity bonus).
    fn has_served(&self, t: &TaskSpec, vi: usize) -> bool {
        self.continuity != 0 && t.person.is_some_and(|p| self.served[vi].contains(&p))
    }

    /// Task `ti`'s next eligible arcs, cheapest first, after the `have` fetched (the stream's
    /// last `after`, the bonus-earning arcs still `held` back), and a lower bound on the rest.
    ///
    /// Arcs come from two sources: those who served the person (few, with the bonus, found on
    /// the first call and held back until the stream reaches their cost) and everyone else
    /// nearest first. A batch is sorted by cost, and everything later costs at least its last
    /// arc less two units (one for the stream's order by the haversine term, whose arc sine may
    /// round a hair out of order; one for the rounding of the merge's bound): the solver's
    /// slack.
    fn next(
        &self,
        ti: usize,
        have: usize,
        after: Option<geo::Found>,
        mut held: Vec<(u32, ArcCost)>,
    ) -> Batch {
        let t = &self.p.tasks[ti];
        let Some(at) = t.location else {
            // No location, no distance to order by: every eligible one at once.
            let arcs = if have > 0 {
                Vec::new()
            } else {
                self.task_groups[ti]
                    .iter()
                    .flat_map(|&g| self.groups[g].1.iter().copied())
                    .filter(|&vi| self.may(t, vi, None))
                    .map(|vi| (vi as u32, self.cost(t, vi, None)))
                    .collect()
            };
            return Batch {
                arcs,
                rest: None,
                last: None,
                held: Vec::new(),
            };
        };
        if have == 0
            && let Some(person) = t.person
            && let Some(vs) = self.served_by.get(&person)
        {
            let groups = &self.task_groups[ti];
            #[allow(clippy::cast_possible_truncation)]
            for &vi in vs {
                if groups.contains(&(self.group_of[vi] as usize)) {
                    let d = geo::haversine_km(at, self.p.volunteers[vi].home);
                    if self.may(t, vi, Some(d)) {
                        held.push((vi as u32, self.cost(t, vi, Some(d))));
                    }
                }
            }
            held.sort_unstable_by_key(|&(vi, c)| (c, vi));
        }
        // As many again as fetched so far: the candidates fetched double each time.
        let k = have.max(CANDIDATES_PER_MEMBER * usize::from(t.requirements.team_size));
        let max = t
            .requirements
            .max_distance_km
            .map_or(f64::INFINITY, f64::from);
        let grids: Vec<(&geo::Grid, &[usize])> = self.task_groups[ti]
            .iter()
            .map(|&g| (&self.groups[g].0, self.groups[g].1))
            .collect();
        // Nearest first, ties by index, going on from the last one fetched.
        let found = geo::nearest(&grids, at, k, max, after, |vi, d| {
            !self.has_served(t, vi) && self.may(t, vi, Some(d))
        });
        #[allow(clippy::cast_possible_truncation)]
        let mut arcs: Vec<(u32, ArcCost)> = found
            .iter()
            .map(|f| (f.label as u32, self.cost(t, f.label, Some(f.km))))
            .collect();
        let exhausted = found.len() < k;
        // Held-back arcs join once the stream has reached their cost.
        let reached = arcs.iter().map(|a| a.1).max().unwrap_or(ArcCost::MIN);
        let join = if exhausted {
            held.len()
        } else {
            held.partition_point(|a| a.1 <= reached)
        };
        arcs.extend(held.drain(..join));
        arcs.sort_unstable_by_key(|&(vi, c)| (c, vi));
        // Every stream arc not returned is at least as far as the k-th (less a unit for the
        // order); every held one costs what it costs.
        let stream_rest = (!exhausted)
            .then(|| found.last().map(|f| km_units(f.km) - 1))
            .flatten();
        let rest = match (stream_rest, held.first()) {
            (Some(r), Some(h)) => Some(r.min(Cost::from(h.1))),
            (r, h) => r.or(h.map(|h| Cost::from(h.1))),
        };
        Batch {
            arcs,
            rest,
            last: found.last().copied().or(after),
            held,
        }
    }
}

/// One fetch of a task's arcs: the arcs, a lower bound on the cost of the rest, where the
/// search ended (the next goes on from there), and the bonus-earning arcs still held back.
struct Batch {
    arcs: Vec<(u32, ArcCost)>,
    rest: Option<Cost>,
    last: Option<geo::Found>,
    held: Vec<(u32, ArcCost)>,
}

/// [`Nearest`] with where each task's search ended and what it holds back.
struct Stream<'a> {
    nearest: Nearest<'a>,
    last: Vec<Option<geo::Found>>,
    held: Vec<Vec<(u32, ArcCost)>>,
}

impl flow::Source for Stream<'_> {
    fn more(&mut self, task: usize, have: usize) -> (Vec<(u32, ArcCost)>, Option<Cost>) {
        let held = std::mem::take(&mut self.held[task]);
        let batch = self.nearest.next(task, have, self.last[task], held);
        self.last[task] = batch.last;
        self.held[task] = batch.held;
        (batch.arcs, batch.rest)
    }
}

/// Why `t` went unstaffed: what ruled out each volunteer of its stations.
fn reasons(
    p: &Problem,
    t: &TaskSpec,
    stations: &BTreeSet<u64>,
    by_station: &HashMap<u64, Vec<usize>>,
    team_released: bool,
) -> Unstaffed {
    let mut counts: BTreeMap<Reason, u32> = BTreeMap::new();
    let mut eligible_count = 0u32;
    let mut pool = 0u32;
    for s in stations {
        for &vi in by_station.get(s).into_iter().flatten() {
            pool += 1;
            let v = &p.volunteers[vi];
            let d = t.location.map(|at| geo::haversine_km(at, v.home));
            match eligible(t, v, d) {
                Err(r) => *counts.entry(r).or_default() += 1,
                Ok(()) if v.capacity == 0 => *counts.entry(Reason::AtCapacity).or_default() += 1,
                Ok(()) => eligible_count += 1,
            }
        }
    }
    let mut reasons: Vec<ReasonCount> = Vec::new();
    let team = t.requirements.team_size;
    if pool == 0 {
        reasons.push(ReasonCount {
            reason: Reason::NoVolunteers,
            volunteers: 0,
        });
    } else if team_released || (eligible_count > 0 && eligible_count < u32::from(team)) {
        reasons.push(ReasonCount {
            reason: Reason::TeamIncomplete {
                needed: team,
                found: eligible_count,
            },
            volunteers: 0,
        });
    } else if eligible_count > 0 {
        reasons.push(ReasonCount {
            reason: Reason::TakenByOtherTasks,
            volunteers: eligible_count,
        });
    }
    let mut ruled: Vec<(Reason, u32)> = counts.into_iter().collect();
    ruled.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    reasons.extend(
        ruled
            .into_iter()
            .map(|(reason, volunteers)| ReasonCount { reason, volunteers }),
    );
    Unstaffed { reasons }
}
