//! Matching: exact against independent exact methods (brute force on tiny instances, the
//! Hungarian algorithm on a few hundred tasks), every hard constraint enforced (one test per
//! constraint that fails if it is dropped, and a property test over random problems).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate};
use linli::matching::{self, Problem, Reason, TaskSpec, VolunteerSpec, Weights, geo};
use linli::registry::{Availability, Certification, Gender, GeoPoint, Weekday};
use linli::schedule::{Priority, Requirements};
use proptest::prelude::*;

fn ts(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn req(team: u8) -> Requirements {
    Requirements {
        skills: vec![],
        clearances: vec![],
        team_size: team,
        gender: None,
        max_distance_km: None,
        languages: vec![],
        roles: vec![],
    }
}

fn task(id: u64, lat: f64, lon: f64, priority: Priority) -> TaskSpec {
    TaskSpec {
        id,
        station: 1,
        person: Some(1000 + id),
        location: Some(GeoPoint { lat, lon }),
        priority,
        due_start: ts("2026-12-01T09:00:00+08:00"),
        due_end: ts("2026-12-31T18:00:00+08:00"),
        requirements: req(1),
        exclude: vec![],
    }
}

fn vol(id: u64, lat: f64, lon: f64, capacity: u32) -> VolunteerSpec {
    VolunteerSpec {
        id,
        station: 1,
        home: GeoPoint { lat, lon },
        gender: Gender::Female,
        capacity,
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
}

fn problem(tasks: Vec<TaskSpec>, volunteers: Vec<VolunteerSpec>) -> Problem {
    Problem {
        today: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        tasks,
        volunteers,
        neighbours: BTreeMap::new(),
        weights: Weights::default(),
    }
}

/// A deterministic pseudo-random stream (no seeding from the clock: tests repeat exactly).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn level(p: Priority) -> usize {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn random_instance(seed: u64, tasks: usize, volunteers: usize, max_cap: u32) -> Problem {
    let mut r = Lcg(seed);
    let prios = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let ts = (0..tasks)
        .map(|i| {
            let mut x = task(
                i as u64 + 1,
                35.4 + r.next() * 0.3,
                106.5 + r.next() * 0.3,
                prios[(r.next() * 4.0) as usize % 4],
            );
            if r.next() < 0.5 {
                x.requirements.max_distance_km = Some(8.0 + (r.next() * 20.0) as f32);
            }
            x
        })
        .collect();
    let vs = (0..volunteers)
        .map(|i| {
            vol(
                i as u64 + 1,
                35.4 + r.next() * 0.3,
                106.5 + r.next() * 0.3,
                1 + (r.next() * max_cap as f64) as u32 % max_cap,
            )
        })
        .collect();
    problem(ts, vs)
}

/// Lexicographic key of a plan: staffed per level, urgent first, then least distance.
fn score(p: &Problem, a: &[Option<usize>]) -> ([usize; 4], f64) {
    let mut staffed = [0usize; 4];
    let mut dist = 0.0;
    for (ti, v) in a.iter().enumerate() {
        if let Some(vi) = v {
            let tk = &p.tasks[ti];
            staffed[3 - level(tk.priority)] += 1;
            dist += geo::haversine_km(tk.location.unwrap(), p.volunteers[*vi].home);
            if tk
                .person
                .is_some_and(|x| p.volunteers[*vi].served.contains(&x))
            {
                dist -= p.weights.continuity_km;
            }
        }
    }
    (staffed, dist)
}

fn feasible(p: &Problem, ti: usize, vi: usize) -> bool {
    let tk = &p.tasks[ti];
    let d = geo::haversine_km(tk.location.unwrap(), p.volunteers[vi].home);
    matching::eligible(tk, &p.volunteers[vi], Some(d)).is_ok()
}

/// The lexicographic best over every assignment: staffed per level, then the least cost —
/// distances less continuity bonuses plus each volunteer's fairness costs (`held + k` for its
/// k-th task here).
fn brute(p: &Problem) -> ([usize; 4], f64) {
    let n = p.tasks.len();
    let mut best: Option<([usize; 4], f64)> = None;
    let mut a: Vec<Option<usize>> = vec![None; n];
    fn go(
        p: &Problem,
        i: usize,
        a: &mut Vec<Option<usize>>,
        load: &mut Vec<u32>,
        best: &mut Option<([usize; 4], f64)>,
    ) {
        if i == a.len() {
            let (staffed, mut cost) = score(p, a);
            if p.weights.fairness_km > 0.0 {
                for (v, &l) in p.volunteers.iter().zip(load.iter()) {
                    for k in 0..l {
                        cost += p.weights.fairness_km * f64::from(v.held + k);
                    }
                }
            }
            let better = match best {
                None => true,
                Some(b) => staffed > b.0 || (staffed == b.0 && cost < b.1 - 1e-12),
            };
            if better {
                *best = Some((staffed, cost));
            }
            return;
        }
        a[i] = None;
        go(p, i + 1, a, load, best);
        for vi in 0..p.volunteers.len() {
            if load[vi] < p.volunteers[vi].capacity && feasible(p, i, vi) {
                load[vi] += 1;
                a[i] = Some(vi);
                go(p, i + 1, a, load, best);
                a[i] = None;
                load[vi] -= 1;
            }
        }
    }
    let mut load = vec![0; p.volunteers.len()];
    go(p, 0, &mut a, &mut load, &mut best);
    best.unwrap()
}

fn plan_score(p: &Problem, plan: &matching::Plan) -> ([usize; 4], f64) {
    let mut staffed = [0usize; 4];
    for id in plan.assignments.keys() {
        let tk = p.tasks.iter().find(|t| t.id == *id).unwrap();
        staffed[3 - level(tk.priority)] += 1;
    }
    // Without fairness the cost is the distance less the continuity bonuses.
    (staffed, plan.total_cost)
}

#[test]
fn tiny_instances_match_brute_force() {
    for seed in 0..60 {
        let p = random_instance(seed, 7, 4, 2);
        let plan = matching::plan(&p).unwrap();
        let (bs, bd) = brute(&p);
        let (ps, pd) = plan_score(&p, &plan);
        assert_eq!(ps, bs, "seed {seed}: staffed per level");
        assert!((pd - bd).abs() < 1e-6, "seed {seed}: distance {pd} vs {bd}");
    }
}

/// More volunteers than a task fetches at first, a continuity bonus for some, one place each:
/// the plan still equals brute force over every assignment.
#[test]
fn tiny_instances_with_continuity_match_brute_force() {
    for seed in 100..130 {
        let mut p = random_instance(seed, 5, 11, 1);
        let mut r = Lcg(seed);
        for v in &mut p.volunteers {
            v.served = (1001..=1005).filter(|_| r.next() < 0.3).collect();
        }
        p.weights.continuity_km = 1.0 + r.next() * 20.0;
        let plan = matching::plan(&p).unwrap();
        let (bs, bd) = brute(&p);
        let (ps, pd) = plan_score(&p, &plan);
        assert_eq!(ps, bs, "seed {seed}: staffed per level");
        assert!((pd - bd).abs() < 1e-6, "seed {seed}: cost {pd} vs {bd}");
    }
}

/// Fairness (each further task of a volunteer costs more, counting what they already hold) with
/// continuity, capacities above one, more volunteers than a task fetches at first: the plan's
/// cost still equals brute force's.
#[test]
fn tiny_instances_with_fairness_match_brute_force() {
    for seed in 200..230 {
        let mut p = random_instance(seed, 5, 11, 3);
        let mut r = Lcg(seed);
        for v in &mut p.volunteers {
            v.served = (1001..=1005).filter(|_| r.next() < 0.2).collect();
            v.held = (r.next() * 3.0) as u32;
        }
        p.weights.continuity_km = r.next() * 5.0;
        p.weights.fairness_km = 0.2 + r.next() * 4.0;
        let plan = matching::plan(&p).unwrap();
        let (bs, bc) = brute(&p);
        let (ps, pc) = plan_score(&p, &plan);
        assert_eq!(ps, bs, "seed {seed}: staffed per level");
        assert!((pc - bc).abs() < 1e-6, "seed {seed}: cost {pc} vs {bc}");
    }
}

#[test]
fn a_few_hundred_tasks_match_the_hungarian_algorithm() {
    use pathfinding::prelude::{Matrix, kuhn_munkres};
    for seed in [7u64, 8, 9] {
        let mut p = random_instance(seed, 300, 120, 4);
        // Two levels keep the Hungarian weights (and their sums) inside i64 at 1e-7 km.
        for tk in &mut p.tasks {
            tk.priority = match tk.priority {
                Priority::Low | Priority::Normal => Priority::Normal,
                _ => Priority::Urgent,
            };
        }
        let plan = matching::plan(&p).unwrap();
        // Columns: every volunteer unit, then one "unstaffed" column per task.
        let units: Vec<usize> = p
            .volunteers
            .iter()
            .enumerate()
            .flat_map(|(vi, v)| std::iter::repeat_n(vi, v.capacity as usize))
            .collect();
        let n = p.tasks.len();
        let cols = units.len() + n;
        let reward = |pr: Priority| -> i64 {
            // More than 300 tasks × 100 km in 1e-7 km: no distance outweighs a staffed task.
            let w0: i64 = 10_000_000_000_000;
            match pr {
                Priority::Urgent => w0 * 301,
                _ => w0,
            }
        };
        let forbidden = -reward(Priority::Urgent) * 30;
        let mut weights = Vec::with_capacity(n * cols);
        for ti in 0..n {
            for c in 0..cols {
                let w = if c < units.len() {
                    let vi = units[c];
                    if feasible(&p, ti, vi) {
                        let d =
                            geo::haversine_km(p.tasks[ti].location.unwrap(), p.volunteers[vi].home);
                        reward(p.tasks[ti].priority) - (d * 1e7).round() as i64
                    } else {
                        forbidden
                    }
                } else {
                    0
                };
                weights.push(w);
            }
        }
        let m = Matrix::from_vec(n, cols, weights).unwrap();
        let (_, cols_of) = kuhn_munkres(&m);
        let mut staffed = [0usize; 4];
        let mut dist = 0.0;
        for (ti, &c) in cols_of.iter().enumerate() {
            if c < units.len() {
                let vi = units[c];
                assert!(feasible(&p, ti, vi));
                staffed[3 - level(p.tasks[ti].priority)] += 1;
                dist += geo::haversine_km(p.tasks[ti].location.unwrap(), p.volunteers[vi].home);
            }
        }
        let (ps, pd) = plan_score(&p, &plan);
        // The searches reached past the candidates fetched first (8 a task).
        assert!(plan.arcs > 8 * n, "seed {seed}: {} arcs", plan.arcs);
        assert_eq!(ps, staffed, "seed {seed}");
        assert!((pd - dist).abs() < 1e-6, "seed {seed}: {pd} vs {dist}");
    }
}

/// One base task and one volunteer who may take it; each case breaks one hard constraint and
/// the task must go unstaffed for that reason.
#[test]
fn every_hard_constraint_is_enforced() {
    let base_task = || {
        let mut t = task(1, 35.54, 106.66, Priority::Normal);
        t.requirements = Requirements {
            skills: vec!["first_aid".into()],
            clearances: vec!["safeguarding".into(), "insurance".into()],
            team_size: 1,
            gender: Some(Gender::Female),
            max_distance_km: Some(5.0),
            languages: vec!["平凉话".into()],
            roles: vec!["child_director".into()],
        };
        t.due_start = ts("2026-12-05T09:00:00+08:00");
        t.due_end = ts("2026-12-05T17:00:00+08:00"); // a Saturday
        t
    };
    let base_vol = || {
        let mut v = vol(1, 35.55, 106.67, 1);
        v.skills = vec!["first_aid".into()];
        v.certifications = vec![Certification {
            name: "红十字救护员证".into(),
            skill: Some("first_aid".into()),
            expires_on: NaiveDate::from_ymd_opt(2027, 6, 30).unwrap(),
        }];
        v.safeguarding_until = NaiveDate::from_ymd_opt(2027, 1, 1);
        v.insurance_until = NaiveDate::from_ymd_opt(2027, 1, 1);
        v.availability = vec![Availability {
            day: Weekday::Sat,
            start: "09:00".into(),
            end: "12:00".into(),
        }];
        v.languages = vec!["普通话".into(), "平凉话".into()];
        v.roles = vec!["child_director".into()];
        v
    };
    let ok = matching::plan(&problem(vec![base_task()], vec![base_vol()])).unwrap();
    assert_eq!(ok.staffed, 1, "the base case is staffable: {ok:?}");
    type Break = Box<dyn Fn(&mut TaskSpec, &mut VolunteerSpec)>;
    let cases: Vec<(&str, Break, Reason)> = vec![
        (
            "skill",
            Box::new(|_, v| v.skills.clear()),
            Reason::MissingSkill {
                skill: "first_aid".into(),
            },
        ),
        (
            "certificate",
            Box::new(|_, v| {
                v.certifications[0].expires_on = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
            }),
            Reason::ExpiredCertificate {
                skill: "first_aid".into(),
            },
        ),
        (
            "clearance",
            Box::new(|_, v| v.safeguarding_until = NaiveDate::from_ymd_opt(2026, 12, 4)),
            Reason::MissingClearance {
                clearance: "safeguarding".into(),
            },
        ),
        (
            "insurance",
            Box::new(|_, v| v.insurance_until = None),
            Reason::MissingClearance {
                clearance: "insurance".into(),
            },
        ),
        (
            "availability",
            Box::new(|_, v| v.availability[0].day = Weekday::Sun),
            Reason::NotAvailable,
        ),
        (
            "availability hours",
            Box::new(|t, _| t.due_start = ts("2026-12-05T13:00:00+08:00")),
            Reason::NotAvailable,
        ),
        (
            "distance",
            Box::new(|_, v| {
                v.home = GeoPoint {
                    lat: 35.70,
                    lon: 106.66,
                }
            }),
            Reason::TooFar { max_km: 5 },
        ),
        (
            "gender",
            Box::new(|_, v| v.gender = Gender::Male),
            Reason::WrongGender,
        ),
        (
            "language",
            Box::new(|_, v| v.languages = vec!["普通话".into()]),
            Reason::NoLanguage,
        ),
        (
            "role",
            Box::new(|_, v| v.roles.clear()),
            Reason::MissingRole {
                role: "child_director".into(),
            },
        ),
        (
            "capacity",
            Box::new(|_, v| v.capacity = 0),
            Reason::AtCapacity,
        ),
        (
            "station",
            Box::new(|_, v| v.station = 2),
            Reason::NoVolunteers,
        ),
        (
            "team size",
            Box::new(|t, _| t.requirements.team_size = 2),
            Reason::TeamIncomplete {
                needed: 2,
                found: 1,
            },
        ),
    ];
    for (name, break_it, reason) in cases {
        let (mut tk, mut v) = (base_task(), base_vol());
        break_it(&mut tk, &mut v);
        let plan = matching::plan(&problem(vec![tk], vec![v])).unwrap();
        assert_eq!(plan.staffed, 0, "{name}: {plan:?}");
        let got: Vec<&Reason> = plan.unstaffed[&1]
            .reasons
            .iter()
            .map(|r| &r.reason)
            .collect();
        assert!(got.contains(&&reason), "{name}: {got:?}");
    }
    // A neighbouring station the bureau allows may serve.
    let (tk, mut v) = (base_task(), base_vol());
    v.station = 2;
    let mut p = problem(vec![tk], vec![v]);
    p.neighbours.insert(1, vec![2]);
    assert_eq!(matching::plan(&p).unwrap().staffed, 1);
}

#[test]
fn a_team_is_staffed_by_different_people_or_by_nobody() {
    let mut tk = task(1, 35.54, 106.66, Priority::Urgent);
    tk.requirements.team_size = 2;
    let solo = task(2, 35.54, 106.66, Priority::Low);
    // One volunteer with capacity 5 cannot make a team of two alone.
    let p = problem(
        vec![tk.clone(), solo.clone()],
        vec![vol(1, 35.55, 106.67, 5)],
    );
    let plan = matching::plan(&p).unwrap();
    assert!(!plan.assignments.contains_key(&1), "{plan:?}");
    assert_eq!(plan.assignments[&2], vec![1]);
    // Two volunteers: the urgent team first.
    let p = problem(
        vec![tk, solo],
        vec![vol(1, 35.55, 106.67, 1), vol(2, 35.56, 106.67, 1)],
    );
    let plan = matching::plan(&p).unwrap();
    assert_eq!(plan.assignments[&1], vec![1, 2]);
    assert!(plan.unstaffed.contains_key(&2));
    // One who visited the person twice (listed twice) earns the bonus once and takes one seat:
    // alone with capacity left, they still cannot make the team of two.
    let mut tk = task(3, 35.54, 106.66, Priority::Urgent);
    tk.requirements.team_size = 2;
    tk.person = Some(1001);
    let mut regular = vol(1, 35.55, 106.67, 5);
    regular.served = vec![1001, 1001];
    let mut p = problem(vec![tk], vec![regular]);
    p.weights.continuity_km = 5.0;
    let plan = matching::plan(&p).unwrap();
    assert!(plan.assignments.is_empty(), "{plan:?}");
}

#[test]
fn continuity_and_fairness_weigh_as_configured() {
    // Two tasks for two people, two volunteers; volunteer 2 is farther but has visited
    // person 1001 before.
    let tasks = vec![task(1, 35.54, 106.66, Priority::Normal)];
    let mut near = vol(1, 35.545, 106.66, 3);
    near.held = 0;
    let mut known = vol(2, 35.56, 106.66, 3);
    known.served = vec![1001];
    let mut p = problem(tasks.clone(), vec![near.clone(), known.clone()]);
    assert_eq!(matching::plan(&p).unwrap().assignments[&1], vec![1]);
    p.weights.continuity_km = 5.0;
    assert_eq!(matching::plan(&p).unwrap().assignments[&1], vec![2]);
    // Fairness: a volunteer holding many tasks this month gives way to one holding none.
    near.held = 8;
    let mut p = problem(tasks, vec![near, vol(3, 35.55, 106.66, 3)]);
    assert_eq!(matching::plan(&p).unwrap().assignments[&1], vec![1]);
    p.weights.fairness_km = 1.0;
    assert_eq!(matching::plan(&p).unwrap().assignments[&1], vec![3]);
}

#[test]
fn bad_problems_are_refused() {
    let mut p = problem(
        vec![
            task(1, 35.5, 106.6, Priority::Low),
            task(1, 35.5, 106.6, Priority::Low),
        ],
        vec![],
    );
    assert!(
        matching::plan(&p)
            .unwrap_err()
            .to_string()
            .contains("task 1 appears twice")
    );
    p.tasks.pop();
    p.weights.fairness_km = -1.0;
    assert!(matching::plan(&p).is_err());
    p.weights.fairness_km = 0.0;
    p.tasks[0].requirements.team_size = 0;
    assert!(matching::plan(&p).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Whatever the problem, no plan breaks a hard constraint, a capacity or a team.
    #[test]
    fn no_plan_breaks_a_hard_constraint(
        seed in 0u64..10_000,
        tasks in 1usize..40,
        volunteers in 0usize..25,
        teams in proptest::collection::vec(1u8..4, 40),
        skills in proptest::collection::vec(0usize..3, 80),
    ) {
        let mut p = random_instance(seed, tasks, volunteers, 3);
        let names = ["first_aid", "elder_care", "sign_language"];
        for (i, tk) in p.tasks.iter_mut().enumerate() {
            tk.requirements.team_size = teams[i];
            if skills[i] < 2 {
                tk.requirements.skills = vec![names[skills[i]].into()];
            }
            tk.station = 1 + (i as u64 % 2);
        }
        for (i, v) in p.volunteers.iter_mut().enumerate() {
            v.skills = vec![names[skills[40 + i] % 3].into(), names[(skills[40 + i] + 1) % 3].into()];
            v.station = 1 + (i as u64 % 3);
        }
        p.neighbours.insert(1, vec![3]);
        let plan = matching::plan(&p).unwrap();
        let mut load: BTreeMap<u64, u32> = BTreeMap::new();
        for (tid, vids) in &plan.assignments {
            let tk = p.tasks.iter().find(|t| t.id == *tid).unwrap();
            prop_assert_eq!(vids.len(), tk.requirements.team_size as usize);
            let mut distinct = vids.clone();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), vids.len());
            for vid in vids {
                let v = p.volunteers.iter().find(|v| v.id == *vid).unwrap();
                let allowed = v.station == tk.station || (tk.station == 1 && v.station == 3);
                prop_assert!(allowed, "task {} (station {}) got volunteer {} of station {}", tid, tk.station, vid, v.station);
                let d = geo::haversine_km(tk.location.unwrap(), v.home);
                prop_assert!(matching::eligible(tk, v, Some(d)).is_ok());
                *load.entry(*vid).or_default() += 1;
            }
        }
        for (vid, n) in load {
            let v = p.volunteers.iter().find(|v| v.id == vid).unwrap();
            prop_assert!(n <= v.capacity);
        }
        prop_assert_eq!(plan.assignments.len() + plan.unstaffed.len(), p.tasks.len());
    }
}

/// The nearest few candidates are not enough here (the ten nearest volunteers are all taken);
/// the search reaches past the arcs fetched first, fetches the far volunteer, and the plan
/// staffs all.
#[test]
fn arcs_beyond_the_first_candidates_are_fetched_when_a_path_needs_them() {
    let tasks: Vec<TaskSpec> = (1..=11)
        .map(|i| task(i, 35.54, 106.66, Priority::Normal))
        .collect();
    let mut vols: Vec<VolunteerSpec> = (1..=10)
        .map(|i| vol(i, 35.54 + 0.001 * i as f64, 106.66, 1))
        .collect();
    vols.push(vol(99, 35.70, 106.66, 1));
    let plan = matching::plan(&problem(tasks, vols)).unwrap();
    assert_eq!(plan.staffed, 11, "{plan:?}");
    assert!(
        plan.assignments.values().any(|v| v == &vec![99]),
        "the far volunteer was fetched: {plan:?}"
    );
    assert!(plan.arcs > 8 * 11 - 1, "{} arcs", plan.arcs);
}

/// A continuity bonus can make a volunteer far down the distance order the cheapest: the
/// bound on arcs not yet fetched allows for it, so the one who visited before is found even
/// though nine others live nearer.
#[test]
fn a_continuity_bonus_reaches_past_the_nearest_candidates() {
    let tasks = vec![task(1, 35.54, 106.66, Priority::Normal)];
    let mut vols: Vec<VolunteerSpec> = (1..=9)
        .map(|i| vol(i, 35.54 + 0.002 * i as f64, 106.66, 1))
        .collect();
    // The tenth nearest, 2.2 km away, visited the person before; a 5 km bonus makes them the
    // cheapest.
    let mut old_friend = vol(50, 35.56, 106.66, 1);
    old_friend.served = vec![1001];
    vols.push(old_friend);
    let mut p = problem(tasks, vols);
    p.weights.continuity_km = 5.0;
    let plan = matching::plan(&p).unwrap();
    assert_eq!(plan.assignments.get(&1), Some(&vec![50]), "{plan:?}");
    // Without the bonus the nearest takes it.
    p.weights.continuity_km = 0.0;
    let plan = matching::plan(&p).unwrap();
    assert_eq!(plan.assignments.get(&1), Some(&vec![1]), "{plan:?}");
}
