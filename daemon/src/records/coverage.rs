//! Coverage against the plan's targets, per region and month: counted from compact indexes the
//! writers keep (care spans, visits, task counts, service minutes, ratings, role holders), never
//! by reading tasks or reports, so a county with a million stored tasks answers in milliseconds.
//!
//! The rules (also in `CoverageReport::rules`):
//! - A person counts as eligible for a month if they were in the category on any day of it: from
//!   the day they were registered in it (or the category was added, or they were reactivated)
//!   through the day they left it (category removed, deactivated). Joining on the 30th counts,
//!   and so does leaving on the 2nd: someone was in care that month, and the plan asks that
//!   nobody in care goes unseen. `joined` and `left` say how many of the eligible did either
//!   in the month, so a low rate can be read fairly.
//! - A person is visited in a month if a visit report on a task for them, with the person
//!   reached, was accepted (or accepted with a follow-up) and its check-in falls in the month —
//!   whichever plugin or duty made the task. Two visits count once; a rejected report, a
//!   superseded one, or a visit where nobody was reached counts for nothing.
//! - A person who moved within the month counts in the community where the month ended for
//!   them (the last one they were in care in), once in every total.
//! - Children: left-behind children and children in difficulty together (one person once).
//!   Disability care: persons with disabilities with at least one accepted care visit.
//! - Drills: a community counts when an accepted report on a `drill` task for it falls in the
//!   `drill_window_months` months up to the month reported; information officers: active
//!   volunteers posted to the community with the role `disaster_info_officer`.
//! - Tasks count in the month of their due end; hours in the month of the activity; ratings in
//!   the month of the visit rated.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{TaskCounts, day_number, month_key, month_start, next_month, prev_month};
use crate::config::Targets;
use crate::registry::{Category, RegionLevel};
use crate::store::{ReadTx, StoreError};

/// A rate against its target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Rate {
    /// People (or communities) counted.
    pub eligible: u32,
    /// Of those, how many were reached (visited, drilled, staffed with an officer).
    pub reached: u32,
    /// reached ÷ eligible; none when nobody is eligible.
    pub rate: Option<f64>,
    pub target: f64,
    /// The rate is at or above the target; none when nobody is eligible.
    pub met: Option<bool>,
    /// Became eligible during the month.
    pub joined: u32,
    /// Left during the month.
    pub left: u32,
}

impl Rate {
    fn finish(&mut self, target: f64) {
        self.target = target;
        self.rate = (self.eligible > 0).then(|| {
            (f64::from(self.reached) / f64::from(self.eligible) * 10_000.0).round() / 10_000.0
        });
        self.met = self.rate.map(|r| r + 1e-9 >= target);
    }

    /// How far below target (0 when met).
    pub fn gap(&self) -> f64 {
        self.rate.map_or(0.0, |r| (self.target - r).max(0.0))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct SatisfactionCounts {
    pub ratings: u32,
    pub satisfied: u32,
    pub neutral: u32,
    pub dissatisfied: u32,
    pub rate: Option<f64>,
    pub target: f64,
    /// None when there are no ratings.
    pub met: Option<bool>,
}

/// One region's figures for the month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct CoverageRow {
    pub code: String,
    pub name: String,
    /// Special-difficulty elders visited this month (the plan: 100%).
    pub elders: Rate,
    /// Left-behind children and children in difficulty visited this month.
    pub children: Rate,
    /// Persons with disabilities given at least one care visit this month.
    pub disability: Rate,
    /// Care visits to persons with disabilities delivered this month (sessions).
    pub disability_sessions: u32,
    /// Active communities in the region.
    pub communities: u32,
    /// Communities that held a drill within the drill window.
    pub drills: Rate,
    /// Drills held this month.
    pub drills_held: u32,
    /// Communities with at least one disaster information officer.
    pub info_officers: Rate,
    /// Tasks due this month, by how they stand now.
    pub tasks: TaskCounts,
    /// Volunteer service hours recorded for this month.
    pub volunteer_hours: f64,
    pub satisfaction: SatisfactionCounts,
}

/// A community far from the elder-visit target.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Behind {
    pub code: String,
    pub name: String,
    pub township: String,
    pub eligible: u32,
    pub visited: u32,
    pub rate: f64,
    /// Elders not visited.
    pub unvisited: u32,
}

/// The region's totals for one month of the trend.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrendPoint {
    /// `2026-11`.
    pub month: String,
    pub elder_rate: Option<f64>,
    pub child_rate: Option<f64>,
    pub disability_rate: Option<f64>,
    pub tasks_due: u32,
    pub tasks_done: u32,
    pub volunteer_hours: f64,
    pub satisfaction_rate: Option<f64>,
}

/// Tasks due this month per action (`plugin/action`, `one-off`, `follow-up`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActionRow {
    pub action: String,
    #[serde(flatten)]
    pub tasks: TaskCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RegionRef {
    pub code: String,
    pub name: String,
    /// `province`, `city`, `county`, `township` or `community`.
    pub level: String,
}

/// Coverage of one region in one month.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CoverageReport {
    pub region: RegionRef,
    /// `2026-11`.
    pub month: String,
    pub targets: Targets,
    pub total: CoverageRow,
    /// One row per region one level down (townships of a county, communities of a township,
    /// counties of a city or province).
    pub rows: Vec<CoverageRow>,
    /// The ten communities furthest from the elder-visit target.
    pub behind: Vec<Behind>,
    /// The region's totals over the months up to this one, oldest first.
    pub trend: Vec<TrendPoint>,
    pub actions: Vec<ActionRow>,
    /// How the figures are counted.
    pub rules: Vec<String>,
}

/// Why a coverage report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("region: {0}")]
    Region(String),
    #[error("month: {0}")]
    Month(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `2026-11` → 202611.
pub fn parse_month(s: &str) -> Result<u32, CoverageError> {
    let bad = || CoverageError::Month(format!("{s:?} is not a month like 2026-11"));
    let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
    let y: u32 = y.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if !(1..=12).contains(&m) || s.trim().len() != 7 {
        return Err(bad());
    }
    if !(2000..=2200).contains(&y) {
        return Err(CoverageError::Month(format!(
            "{s:?}: months from 2000-01 to 2200-12"
        )));
    }
    Ok(y * 100 + m)
}

pub fn month_label(m: u32) -> String {
    format!("{:04}-{:02}", m / 100, m % 100)
}

/// What a report covers: the region's subtree prefix, level and how rows group.
struct Scope {
    prefix: String,
    level: &'static str,
    /// Length of the code prefix that names a row (6 for counties, 9 for townships, 12).
    row_digits: usize,
}

fn scope_of(code: &str) -> Result<Scope, CoverageError> {
    if code.len() == 12
        && code.bytes().all(|b| b.is_ascii_digit())
        && code[2..].bytes().all(|b| b == b'0')
        && &code[..2] != "00"
    {
        return Ok(Scope {
            prefix: code[..2].to_owned(),
            level: "province",
            row_digits: 6,
        });
    }
    let parsed = crate::registry::region::RegionCode::parse(code)
        .map_err(|e| CoverageError::Region(format!("{code}: {e}")))?;
    let (level, row_digits) = match parsed.level {
        RegionLevel::City => ("city", 6),
        RegionLevel::County => ("county", 9),
        RegionLevel::Township => ("township", 12),
        RegionLevel::Community => ("community", 12),
        RegionLevel::Grid => {
            return Err(CoverageError::Region(
                "coverage is reported for communities and above, not grids".into(),
            ));
        }
    };
    Ok(Scope {
        prefix: parsed.subtree_prefix().to_owned(),
        level,
        row_digits,
    })
}

/// The row a code falls in (its first `digits` digits, padded back to 12).
fn row_code(code: &str, digits: usize) -> Option<String> {
    (code.len() >= 12).then(|| format!("{:0<12}", &code[..digits]))
}

/// A group's counts over the months of the report.
#[derive(Default)]
struct Group {
    /// Per month index: eligible, reached, joined, left (the region's totals).
    months: Vec<[u32; 4]>,
    /// This month, per row code: eligible, reached, joined, left.
    rows: HashMap<String, [u32; 4]>,
    /// This month, per community: eligible, reached.
    communities: HashMap<u64, [u32; 2]>,
    /// Sessions (counted visits) this month, per row code.
    sessions: HashMap<String, u32>,
}

/// Days `[from, to)` of month `m`.
fn month_days(m: u32) -> (i32, i32) {
    let start = month_start(m).map_or(0, day_number);
    let end = month_start(next_month(m)).map_or(i32::MAX, day_number);
    (start, end)
}

/// One person's eligibility in one community, as bit masks over the months of the report.
#[derive(Clone, Copy)]
struct Entry {
    person: u64,
    community: u64,
    /// Eligible, joined during, left during: bit `i` for month index `i`.
    eligible: u32,
    joined: u32,
    left: u32,
    /// Start of the latest span eligible in the last month (which community it ends in).
    last_from: i32,
}

struct Counter<'a> {
    scope: &'a Scope,
    /// Days of each month of the report, oldest first.
    days: Vec<(i32, i32)>,
}

impl Counter<'_> {
    /// The people of `categories` in the region, each once (a person in several categories,
    /// or in several communities, merged): one scan of the region's care spans into month
    /// masks, then a sort by person.
    fn people(&self, r: &ReadTx, categories: &[Category]) -> Result<Vec<Entry>, StoreError> {
        let last = self.days.len() - 1;
        let mut entries: Vec<Entry> = Vec::new();
        for cat in categories {
            r.for_each_care_span(cat.as_str(), &self.scope.prefix, |person, spans| {
                let mut e = Entry {
                    person,
                    community: spans.first().map_or(0, |s| s.community),
                    eligible: 0,
                    joined: 0,
                    left: 0,
                    last_from: i32::MIN,
                };
                for (i, (start, end)) in self.days.iter().enumerate() {
                    let mut first = i32::MAX;
                    let mut latest_to = i32::MIN;
                    let mut any = false;
                    for s in spans.iter().filter(|s| s.overlaps(*start, *end)) {
                        any = true;
                        first = first.min(s.from);
                        latest_to = latest_to.max(s.to);
                        if i == last {
                            e.last_from = e.last_from.max(s.from);
                        }
                    }
                    if any {
                        e.eligible |= 1 << i;
                        if first > *start {
                            e.joined |= 1 << i;
                        }
                        if latest_to < *end {
                            e.left |= 1 << i;
                        }
                    }
                }
                if e.eligible != 0 {
                    entries.push(e);
                }
            })?;
        }
        entries.sort_unstable_by_key(|e| (e.person, e.last_from));
        // Merge a person's entries: eligible if in any; joined only if every community (and
        // category) they were in that month began in it; left likewise; the community of the
        // last month is the one whose span began last.
        let mut merged: Vec<Entry> = Vec::with_capacity(entries.len());
        for e in entries {
            match merged.last_mut() {
                Some(m) if m.person == e.person => {
                    m.joined =
                        (m.joined & e.joined) | (m.joined & !e.eligible) | (e.joined & !m.eligible);
                    m.left = (m.left & e.left) | (m.left & !e.eligible) | (e.left & !m.eligible);
                    m.eligible |= e.eligible;
                    if e.eligible & (1 << last) != 0 && e.last_from >= m.last_from {
                        m.community = e.community;
                        m.last_from = e.last_from;
                    } else if m.eligible & (1 << last) == 0 {
                        m.community = e.community;
                    }
                }
                _ => merged.push(e),
            }
        }
        Ok(merged)
    }

    /// Counts merged people against each month's visits ((person, visits), sorted).
    fn tally(&self, merged: &[Entry], visited: &[Vec<(u64, u32)>]) -> Group {
        let n = self.days.len();
        let last = n - 1;
        let mut g = Group {
            months: vec![[0; 4]; n],
            ..Group::default()
        };
        for (i, visited) in visited.iter().enumerate() {
            let bit = 1u32 << i;
            let mut v = 0usize;
            for e in merged.iter().filter(|e| e.eligible & bit != 0) {
                while v < visited.len() && visited[v].0 < e.person {
                    v += 1;
                }
                let visits = match visited.get(v) {
                    Some((p, k)) if *p == e.person => *k,
                    _ => 0,
                };
                let reached = visits > 0;
                let m = &mut g.months[i];
                m[0] += 1;
                m[1] += u32::from(reached);
                m[2] += u32::from(e.joined & bit != 0);
                m[3] += u32::from(e.left & bit != 0);
                if i == last {
                    let code = format!("{:012}", e.community);
                    if let Some(row) = row_code(&code, self.scope.row_digits) {
                        let x = g.rows.entry(row.clone()).or_default();
                        x[0] += 1;
                        x[1] += u32::from(reached);
                        x[2] += u32::from(e.joined & bit != 0);
                        x[3] += u32::from(e.left & bit != 0);
                        *g.sessions.entry(row).or_default() += visits;
                    }
                    let c = g.communities.entry(e.community).or_default();
                    c[0] += 1;
                    c[1] += u32::from(reached);
                }
            }
        }
        g
    }
}

fn rate_of(counts: [u32; 4], target: f64) -> Rate {
    let mut r = Rate {
        eligible: counts[0],
        reached: counts[1],
        joined: counts[2],
        left: counts[3],
        ..Rate::default()
    };
    r.finish(target);
    r
}

fn satisfaction(c: [u32; 3], target: f64) -> SatisfactionCounts {
    let ratings = c[0] + c[1] + c[2];
    let rate =
        (ratings > 0).then(|| (f64::from(c[0]) / f64::from(ratings) * 10_000.0).round() / 10_000.0);
    SatisfactionCounts {
        ratings,
        satisfied: c[0],
        neutral: c[1],
        dissatisfied: c[2],
        rate,
        target,
        met: rate.map(|r| r + 1e-9 >= target),
    }
}

fn hours(minutes: u64) -> f64 {
    (minutes as f64 / 60.0 * 10.0).round() / 10.0
}

/// The rules as sentences, for the report.
fn rules(drill_window: u32) -> Vec<String> {
    vec![
        "Eligible: in the category on any day of the month (joined or left mid-month included; see joined/left).".into(),
        "Visited: an accepted visit report with the person reached, checked in during the month; several visits count once.".into(),
        "A person who moved in the month counts in the last community they were in care in.".into(),
        "Children: left-behind children and children in difficulty, each person once.".into(),
        format!("Drills: communities with an accepted drill report within the last {drill_window} months."),
        "Information officers: active volunteers posted to the community with the role disaster_info_officer.".into(),
        "Tasks count in the month of their due end; hours in the month of the activity; ratings in the month of the visit.".into(),
    ]
}

/// Makes the coverage report of `region` for month `month` (YYYYMM) with `trend_months` of
/// history (1 to 24, this month included).
pub fn report(
    r: &ReadTx,
    region: &str,
    month: u32,
    trend_months: u32,
    targets: &Targets,
    drill_window: u32,
) -> Result<CoverageReport, CoverageError> {
    let scope = scope_of(region)?;
    if month_start(month).is_none() {
        return Err(CoverageError::Month(format!("{month} is not a month")));
    }
    let n = trend_months.clamp(1, 24) as usize;
    let mut months = vec![month];
    while months.len() < n {
        let m = prev_month(months[0]);
        months.insert(0, m);
    }
    let counter = Counter {
        scope: &scope,
        days: months.iter().map(|m| month_days(*m)).collect(),
    };
    // The month's visits on one thread, the people on this one (the snapshot is shared).
    let (visited, groups) = std::thread::scope(|t| {
        let visits = t.spawn(|| {
            months
                .iter()
                .map(|m| r.visited_people(*m, &scope.prefix))
                .collect::<Result<Vec<_>, StoreError>>()
        });
        let groups = [
            vec![Category::SpecialDifficultyElder],
            vec![Category::LeftBehindChild, Category::ChildInDifficulty],
            vec![Category::Disabled],
        ]
        .map(|cats| counter.people(r, &cats));
        let visited = visits.join().unwrap_or_else(|_| {
            Err(StoreError::Corrupt {
                table: "person_visits",
                key: format!("{}", months.len()),
                detail: "the scan of visits stopped unexpectedly".into(),
            })
        });
        (visited, groups)
    });
    let visited = visited?;
    let [elders, children, disabled] = groups;
    let elders = counter.tally(&elders?, &visited);
    let children = counter.tally(&children?, &visited);
    let disabled = counter.tally(&disabled?, &visited);

    // Regions: names, and the active communities per row.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut communities: Vec<String> = Vec::new();
    let region_record = r.region(region)?;
    let mut after: Option<String> = None;
    loop {
        let page = r.regions(&scope.prefix, after.as_deref(), 5000, |g| {
            g.active && g.level != RegionLevel::Grid
        })?;
        for g in &page.items {
            if g.level == RegionLevel::Community {
                communities.push(g.code.clone());
            }
            names.insert(g.code.clone(), g.name.clone());
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let row_of = |code: &str| row_code(code, scope.row_digits);

    // Drills in the window, and officers.
    let mut drilled: HashSet<String> = HashSet::new();
    let mut held_this_month: HashMap<String, u32> = HashMap::new();
    let mut m = month;
    let mut window_months = Vec::new();
    for _ in 0..drill_window.max(1) {
        window_months.push(m);
        m = prev_month(m);
    }
    for wm in &window_months {
        for (c, kind, count) in r.community_visits(*wm)? {
            if kind != "drill" || !c.starts_with(&scope.prefix) {
                continue;
            }
            if *wm == month {
                *held_this_month.entry(c.clone()).or_default() += count;
            }
            drilled.insert(c);
        }
    }
    let officers: HashSet<String> = r
        .role_holders("disaster_info_officer", &scope.prefix)?
        .into_iter()
        .map(|(c, _)| c)
        .collect();

    // Rows.
    let mut rows: BTreeMap<String, CoverageRow> = BTreeMap::new();
    let row = |rows: &mut BTreeMap<String, CoverageRow>, code: &str| -> Option<String> {
        let key = row_of(code)?;
        rows.entry(key.clone()).or_insert_with(|| CoverageRow {
            code: key.clone(),
            name: names.get(&key).cloned().unwrap_or_else(|| key.clone()),
            ..CoverageRow::default()
        });
        Some(key)
    };
    let mut total = CoverageRow {
        code: region.to_owned(),
        name: region_record
            .as_ref()
            .map_or_else(|| region.to_owned(), |g| g.name.clone()),
        ..CoverageRow::default()
    };
    for c in &communities {
        let drilled_here = drilled.contains(c);
        let officer_here = officers.contains(c);
        total.communities += 1;
        total.drills.eligible += 1;
        total.drills.reached += u32::from(drilled_here);
        total.info_officers.eligible += 1;
        total.info_officers.reached += u32::from(officer_here);
        if let Some(k) = row(&mut rows, c)
            && let Some(x) = rows.get_mut(&k)
        {
            x.communities += 1;
            x.drills.eligible += 1;
            x.drills.reached += u32::from(drilled_here);
            x.info_officers.eligible += 1;
            x.info_officers.reached += u32::from(officer_here);
        }
    }
    for (c, n) in &held_this_month {
        total.drills_held += n;
        if let Some(k) = row(&mut rows, c)
            && let Some(x) = rows.get_mut(&k)
        {
            x.drills_held += n;
        }
    }
    let last = months.len() - 1;
    total.elders = rate_of(elders.months[last], targets.elder_visit_rate);
    total.children = rate_of(children.months[last], targets.child_visit_rate);
    total.disability = rate_of(disabled.months[last], targets.disability_care_rate);
    total.disability_sessions = disabled.sessions.values().sum();
    for (g, set) in [(&elders, 0), (&children, 1), (&disabled, 2)] {
        for (code, counts) in &g.rows {
            if let Some(k) = row(&mut rows, code)
                && let Some(x) = rows.get_mut(&k)
            {
                match set {
                    0 => x.elders = rate_of(*counts, targets.elder_visit_rate),
                    1 => x.children = rate_of(*counts, targets.child_visit_rate),
                    _ => {
                        x.disability = rate_of(*counts, targets.disability_care_rate);
                        x.disability_sessions = g.sessions.get(code).copied().unwrap_or(0);
                    }
                }
            }
        }
    }
    // Tasks, hours and ratings per month of the trend (rows for this month only).
    let mut trend = Vec::with_capacity(months.len());
    let mut actions: BTreeMap<String, TaskCounts> = BTreeMap::new();
    for (i, m) in months.iter().enumerate() {
        let this = i == last;
        let mut tasks = TaskCounts::default();
        for (c, action, counts) in r.task_counts(*m, &scope.prefix)? {
            tasks.add(&counts);
            if this {
                actions.entry(action).or_default().add(&counts);
                if let Some(k) = row(&mut rows, &c)
                    && let Some(x) = rows.get_mut(&k)
                {
                    x.tasks.add(&counts);
                }
            }
        }
        let mut minutes = 0u64;
        for (c, mins) in r.service_minutes(*m, &scope.prefix)? {
            minutes += mins;
            if this
                && let Some(k) = row_of(&c)
                && let Some(x) = rows.get_mut(&k)
            {
                x.volunteer_hours += mins as f64;
            }
        }
        let mut ratings = [0u32; 3];
        for (c, counts) in r.rating_counts(*m, &scope.prefix)? {
            for (a, b) in ratings.iter_mut().zip(counts) {
                *a += b;
            }
            if this
                && let Some(k) = row(&mut rows, &c)
                && let Some(x) = rows.get_mut(&k)
            {
                let mut s = [
                    x.satisfaction.satisfied,
                    x.satisfaction.neutral,
                    x.satisfaction.dissatisfied,
                ];
                for (a, b) in s.iter_mut().zip(counts) {
                    *a += b;
                }
                x.satisfaction = satisfaction(s, targets.satisfaction_rate);
            }
        }
        let sat = satisfaction(ratings, targets.satisfaction_rate);
        if this {
            total.tasks = tasks;
            total.volunteer_hours = hours(minutes);
            total.satisfaction = sat.clone();
        }
        trend.push(TrendPoint {
            month: month_label(*m),
            elder_rate: rate_of(elders.months[i], 1.0).rate,
            child_rate: rate_of(children.months[i], 1.0).rate,
            disability_rate: rate_of(disabled.months[i], 1.0).rate,
            tasks_due: tasks.due,
            tasks_done: tasks.done,
            volunteer_hours: hours(minutes),
            satisfaction_rate: sat.rate,
        });
    }
    total.drills.finish(targets.drill_rate);
    total.info_officers.finish(targets.info_officer_rate);
    for x in rows.values_mut() {
        // Minutes were summed raw above.
        x.volunteer_hours = hours(x.volunteer_hours as u64);
        x.drills.finish(targets.drill_rate);
        x.info_officers.finish(targets.info_officer_rate);
        for (rate, t) in [
            (&mut x.elders, targets.elder_visit_rate),
            (&mut x.children, targets.child_visit_rate),
            (&mut x.disability, targets.disability_care_rate),
        ] {
            rate.finish(t);
        }
        x.satisfaction.target = targets.satisfaction_rate;
        x.satisfaction.met = x
            .satisfaction
            .rate
            .map(|r| r + 1e-9 >= targets.satisfaction_rate);
    }
    // The ten communities furthest behind on elder visits.
    let mut behind: Vec<Behind> = elders
        .communities
        .iter()
        .filter(|(_, c)| c[0] > 0 && c[1] < c[0])
        .map(|(code, c)| {
            let code = format!("{code:012}");
            let township = format!("{}000", &code[..9]);
            Behind {
                name: names.get(&code).cloned().unwrap_or_else(|| code.clone()),
                township: names.get(&township).cloned().unwrap_or(township),
                code,
                eligible: c[0],
                visited: c[1],
                rate: (f64::from(c[1]) / f64::from(c[0]) * 10_000.0).round() / 10_000.0,
                unvisited: c[0] - c[1],
            }
        })
        .collect();
    behind.sort_by(|a, b| {
        a.rate
            .total_cmp(&b.rate)
            .then(b.unvisited.cmp(&a.unvisited))
            .then(a.code.cmp(&b.code))
    });
    behind.truncate(10);
    let rows: Vec<CoverageRow> = if scope.level == "community" {
        Vec::new()
    } else {
        rows.into_values().filter(|x| x.code != region).collect()
    };
    Ok(CoverageReport {
        region: RegionRef {
            code: region.to_owned(),
            name: total.name.clone(),
            level: scope.level.to_owned(),
        },
        month: month_label(month),
        targets: *targets,
        total,
        rows,
        behind,
        trend,
        actions: actions
            .into_iter()
            .map(|(action, tasks)| ActionRow { action, tasks })
            .collect(),
        rules: rules(drill_window),
    })
}

/// The month (YYYYMM) a date falls in; re-exported for callers that hold dates.
pub fn month_of(d: chrono::NaiveDate) -> u32 {
    month_key(d)
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

const CSV_HEADER: [&str; 24] = [
    "code",
    "name",
    "elders_eligible",
    "elders_visited",
    "elder_visit_rate",
    "elder_target",
    "elders_joined",
    "elders_left",
    "children_eligible",
    "children_visited",
    "child_visit_rate",
    "disabled_eligible",
    "disabled_visited",
    "disability_sessions",
    "communities",
    "communities_drilled",
    "drills_held",
    "communities_with_officer",
    "tasks_due",
    "tasks_done",
    "tasks_unstaffed",
    "tasks_overdue",
    "volunteer_hours",
    "satisfaction_rate",
];

fn csv_cells(x: &CoverageRow) -> Vec<String> {
    let f = |r: Option<f64>| r.map_or_else(String::new, |r| format!("{r:.4}"));
    vec![
        x.code.clone(),
        x.name.clone(),
        x.elders.eligible.to_string(),
        x.elders.reached.to_string(),
        f(x.elders.rate),
        format!("{:.4}", x.elders.target),
        x.elders.joined.to_string(),
        x.elders.left.to_string(),
        x.children.eligible.to_string(),
        x.children.reached.to_string(),
        f(x.children.rate),
        x.disability.eligible.to_string(),
        x.disability.reached.to_string(),
        x.disability_sessions.to_string(),
        x.communities.to_string(),
        x.drills.reached.to_string(),
        x.drills_held.to_string(),
        x.info_officers.reached.to_string(),
        x.tasks.due.to_string(),
        x.tasks.done.to_string(),
        x.tasks.unstaffed.to_string(),
        x.tasks.overdue.to_string(),
        format!("{:.1}", x.volunteer_hours),
        f(x.satisfaction.rate),
    ]
}

/// The report as CSV: one row per sub-region, then the total. Cells are spreadsheet-safe (a
/// cell starting with `=`, `+`, `-` or `@` is escaped, so no name can become a formula).
pub fn to_csv(rep: &CoverageReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["month".into()];
    header.extend(CSV_HEADER.iter().map(|s| (*s).to_owned()));
    let _ = w.write_record(&header);
    for x in rep.rows.iter().chain(std::iter::once(&rep.total)) {
        let mut cells = vec![rep.month.clone()];
        cells.extend(csv_cells(x));
        let safe: Vec<String> = cells
            .iter()
            .map(|c| crate::registry::import::spreadsheet_safe(c).into_owned())
            .collect();
        let _ = w.write_record(&safe);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The report as a plain-text table for a terminal.
pub fn to_table(rep: &CoverageReport) -> String {
    let mut out = format!(
        "{} {} ({}) — {}\n",
        rep.region.name, rep.region.code, rep.region.level, rep.month
    );
    let head = [
        "code",
        "name",
        "elders",
        "elder rate",
        "children",
        "disability",
        "drilled",
        "officers",
        "due",
        "done",
        "unstaffed",
        "overdue",
        "hours",
        "satisfied",
    ];
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|s| (*s).to_owned()).collect()];
    for x in rep.rows.iter().chain(std::iter::once(&rep.total)) {
        lines.push(vec![
            x.code.clone(),
            x.name.chars().filter(|c| !c.is_control()).collect(),
            format!("{}/{}", x.elders.reached, x.elders.eligible),
            pct(x.elders.rate),
            pct(x.children.rate),
            pct(x.disability.rate),
            format!("{}/{}", x.drills.reached, x.drills.eligible),
            format!("{}/{}", x.info_officers.reached, x.info_officers.eligible),
            x.tasks.due.to_string(),
            x.tasks.done.to_string(),
            x.tasks.unstaffed.to_string(),
            x.tasks.overdue.to_string(),
            format!("{:.1}", x.volunteer_hours),
            pct(x.satisfaction.rate),
        ]);
    }
    let width = |s: &str| {
        s.chars()
            .map(|c| if c.is_ascii() { 1 } else { 2 })
            .sum::<usize>()
    };
    let cols = head.len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| lines.iter().map(|l| width(&l[i])).max().unwrap_or(0))
        .collect();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c))))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "\nelder visit target {:.0}% · furthest behind:\n",
        rep.targets.elder_visit_rate * 100.0
    ));
    for b in &rep.behind {
        out.push_str(&format!(
            "  {} {} ({}): {}/{} visited, {} not\n",
            b.code,
            b.name
                .chars()
                .filter(|c| !c.is_control())
                .collect::<String>(),
            b.township,
            b.visited,
            b.eligible,
            b.unvisited
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly() {
        assert_eq!(parse_month("2026-11").ok(), Some(202611));
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00", "x"] {
            assert!(parse_month(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_by_level() {
        assert_eq!(
            scope_of("620802000000").map(|s| s.prefix).ok(),
            Some("620802".into())
        );
        assert_eq!(
            scope_of("620000000000").map(|s| s.level).ok(),
            Some("province")
        );
        assert_eq!(
            scope_of("620802001000").map(|s| s.row_digits).ok(),
            Some(12)
        );
        assert!(scope_of("620802001001-1").is_err());
        assert!(scope_of("abc").is_err());
        assert_eq!(row_code("620802001001", 9).as_deref(), Some("620802001000"));
    }

    #[test]
    fn csv_cells_are_spreadsheet_safe() {
        let mut rep_row = CoverageRow {
            code: "620802001001".into(),
            name: "=HYPERLINK(\"http://x\")".into(),
            ..CoverageRow::default()
        };
        rep_row.elders.finish(1.0);
        let rep = CoverageReport {
            region: RegionRef {
                code: "620802000000".into(),
                name: "@cmd".into(),
                level: "county".into(),
            },
            month: "2026-11".into(),
            targets: Targets::default(),
            total: CoverageRow {
                name: "-2+3".into(),
                ..CoverageRow::default()
            },
            rows: vec![rep_row],
            behind: Vec::new(),
            trend: Vec::new(),
            actions: Vec::new(),
            rules: Vec::new(),
        };
        let csv = to_csv(&rep);
        assert!(csv.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{csv}");
        assert!(csv.contains(",'-2+3,"), "{csv}");
        assert!(!csv.contains(",=") && !csv.contains(",-2"), "{csv}");
    }
}
