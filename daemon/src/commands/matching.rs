//! `linlid match plan FILE.json`: plans a matching problem offline (the daemon's own model, see
//! `matching::Problem`) and prints the plan as one JSON object; `linlid bench match` times a
//! county-sized synthetic problem.

use std::path::Path;

use chrono::{DateTime, NaiveDate};

use super::{Failure, read_json};
use crate::matching::geo::haversine_km;
use crate::matching::{self, Problem, TaskSpec, VolunteerSpec, Weights};
use crate::registry::{Gender, GeoPoint};
use crate::schedule::{Priority, Requirements};

/// `linlid match plan FILE.json`.
pub fn plan_file(file: &Path) -> Result<(), Failure> {
    let problem: Problem = read_json(file)?;
    let plan = matching::plan(&problem)
        .map_err(|e| Failure::Rejected(format!("{}: {e}", file.display())))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&plan).map_err(|e| Failure::Runtime(e.into()))?
    );
    Ok(())
}

/// A deterministic pseudo-random stream for synthetic problems.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let x = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        x
    }
}

/// A county-sized problem: villages clustered over about 60 × 60 km, twenty stations, tasks and
/// volunteers around the villages, capacities 1–10, half the tasks with a 10 km limit.
pub fn synthetic(tasks: usize, volunteers: usize, seed: u64) -> Problem {
    let mut r = Lcg(seed);
    let villages: Vec<(f64, f64)> = (0..400)
        .map(|_| (35.3 + r.next() * 0.55, 106.4 + r.next() * 0.65))
        .collect();
    // Twenty townships: each village belongs to the station of the nearest township seat, so a
    // station's villages lie together, as a township's do.
    let seats: Vec<(f64, f64)> = (0..20)
        .map(|_| (35.3 + r.next() * 0.55, 106.4 + r.next() * 0.65))
        .collect();
    let point = |x: (f64, f64)| GeoPoint { lat: x.0, lon: x.1 };
    let seat_of = |x: (f64, f64)| -> usize {
        (0..seats.len())
            .min_by(|&a, &b| {
                haversine_km(point(x), point(seats[a]))
                    .total_cmp(&haversine_km(point(x), point(seats[b])))
            })
            .unwrap_or(0)
    };
    let village_station: Vec<u64> = villages.iter().map(|v| seat_of(*v) as u64 + 1).collect();
    let near = |r: &mut Lcg, v: (f64, f64)| GeoPoint {
        lat: v.0 + (r.next() - 0.5) * 0.02,
        lon: v.1 + (r.next() - 0.5) * 0.02,
    };
    let station_of = |v: usize| village_station[v];
    let due_start = DateTime::parse_from_rfc3339("2026-12-01T09:00:00+08:00").ok();
    let due_end = DateTime::parse_from_rfc3339("2026-12-31T18:00:00+08:00").ok();
    let (Some(due_start), Some(due_end)) = (due_start, due_end) else {
        return Problem {
            today: NaiveDate::MIN,
            tasks: vec![],
            volunteers: vec![],
            neighbours: Default::default(),
            weights: Weights::default(),
        };
    };
    let prios = [
        Priority::Low,
        Priority::Normal,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let mut task_village = Vec::with_capacity(tasks);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let tasks: Vec<TaskSpec> = (0..tasks)
        .map(|i| {
            let v = (r.next() * villages.len() as f64) as usize % villages.len();
            task_village.push(v);
            TaskSpec {
                id: i as u64 + 1,
                station: station_of(v),
                person: Some(i as u64 + 1),
                location: Some(near(&mut r, villages[v])),
                priority: prios[(r.next() * 5.0) as usize % 5],
                due_start,
                due_end,
                requirements: Requirements {
                    skills: vec![],
                    clearances: vec![],
                    team_size: 1,
                    gender: None,
                    max_distance_km: (i % 2 == 0).then_some(10.0),
                    languages: vec![],
                    roles: vec![],
                },
                exclude: vec![],
            }
        })
        .collect();
    let mut by_village: Vec<Vec<usize>> = vec![Vec::new(); villages.len()];
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mut volunteers: Vec<VolunteerSpec> = (0..volunteers)
        .map(|i| {
            let v = (r.next() * villages.len() as f64) as usize % villages.len();
            by_village[v].push(i);
            VolunteerSpec {
                id: i as u64 + 1,
                station: station_of(v),
                home: near(&mut r, villages[v]),
                gender: if i % 2 == 0 {
                    Gender::Female
                } else {
                    Gender::Male
                },
                capacity: 1 + (r.next() * 10.0) as u32 % 10,
                held: 0,
                skills: vec![],
                certifications: vec![],
                safeguarding_until: None,
                insurance_until: None,
                availability: vec![],
                languages: vec![],
                roles: vec![],
                served: vec![],
            }
        })
        .collect();
    // Last month's visits: 60% of the people were visited by someone of their village (the
    // continuity bonus's pull; it weighs nothing unless the weights say so).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    for (t, &v) in tasks.iter().zip(&task_village) {
        let here = &by_village[v];
        if !here.is_empty() && r.next() < 0.6 {
            let who = here[(r.next() * here.len() as f64) as usize % here.len()];
            if let Some(person) = t.person {
                volunteers[who].served.push(person);
            }
        }
    }
    // Each station may borrow from the two townships whose seats are nearest its own.
    let neighbours = (0..seats.len())
        .map(|a| {
            let mut others: Vec<usize> = (0..seats.len()).filter(|&b| b != a).collect();
            others.sort_by(|&x, &y| {
                haversine_km(point(seats[a]), point(seats[x]))
                    .total_cmp(&haversine_km(point(seats[a]), point(seats[y])))
            });
            (
                a as u64 + 1,
                others.iter().take(2).map(|&b| b as u64 + 1).collect(),
            )
        })
        .collect();
    Problem {
        today: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or(NaiveDate::MIN),
        tasks,
        volunteers,
        neighbours,
        weights: Weights::default(),
    }
}

/// `linlid bench match --tasks N --volunteers M [--continuity-km C --fairness-km F]`.
pub fn bench(tasks: usize, volunteers: usize, weights: Weights) -> Result<(), Failure> {
    let mut problem = synthetic(tasks, volunteers, 2026);
    problem.weights = weights;
    let capacity: u64 = problem
        .volunteers
        .iter()
        .map(|v| u64::from(v.capacity))
        .sum();
    let (plan, took) = crate::plugins::runtime::timed(|| matching::plan(&problem));
    let plan = plan.map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    println!(
        "{tasks} tasks, {volunteers} volunteers (capacity {capacity}), continuity {} km, \
         fairness {} km: planned in {:.2} s — {} staffed {:?}, {} unstaffed, {:.0} km in all, \
         {} candidate arcs built",
        weights.continuity_km,
        weights.fairness_km,
        took.as_secs_f64(),
        plan.staffed,
        plan.staffed_by_priority,
        plan.unstaffed.len(),
        plan.total_distance_km,
        plan.arcs
    );
    Ok(())
}
