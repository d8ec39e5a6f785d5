//! `linlid bench coverage`: the monthly coverage report over county-sized files — per county
//! 100,000 people in care and 1,000,000 stored tasks by default — and the provincial view over
//! every county in the file.
//!
//! People, tasks, volunteers, service records and ratings go in through the store's writers, so
//! every index the report reads is kept exactly as the daemon keeps it. Visits are counted into
//! the visit index directly (what an accepted report counts), without storing a million
//! reports: the report never reads reports, only that index.

use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::bench::BenchDir;
use super::{Failure, open_store};
use crate::records::coverage;
use crate::records::model::{
    Rating, RecordSource, Satisfaction, ServiceRecord, next_month, prev_month,
};
use crate::registry::{
    Category, Contact, Gender, GeoPoint, Person, Region, RegionLevel, Station, Volunteer,
    VolunteerStatus,
};
use crate::store::Store;
use crate::task::{Names, Priority, Requirements, Task, TaskStatus, TaskTarget};

const TOWNSHIPS: usize = 20;
const COMMUNITIES: usize = 10;
/// The month reported.
const MONTH: u32 = 202611;

pub(super) fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("{e}"))
}

pub(super) fn county_code(c: usize) -> String {
    format!("6208{:02}000000", c + 1)
}

fn community_code(c: usize, t: usize, k: usize) -> String {
    format!("6208{:02}{:03}{:03}", c + 1, t + 1, k + 1)
}

fn instant(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(2, 0, 0).unwrap_or_default())
}

pub(super) fn region(code: String, name: String, level: RegionLevel, now: DateTime<Utc>) -> Region {
    Region {
        parent: crate::registry::region::RegionCode::parse(&code)
            .ok()
            .and_then(|c| c.parent()),
        code,
        name,
        level,
        settlement: None,
        population: None,
        active: true,
        updated_at: now,
    }
}

/// Writes one county: regions, a station per township, an information officer in 70% of the
/// communities, `persons` people in care (2% joining and 2% leaving in the month reported),
/// visits for six months, `tasks` tasks over twelve months, drills, service records, ratings.
fn seed_county(
    store: &Store,
    c: usize,
    persons: usize,
    tasks: usize,
    rng: &mut StdRng,
) -> Result<(), Failure> {
    let base = instant(NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default());
    let id_base = (c as u64) * 10_000_000;
    let communities: Vec<String> = (0..TOWNSHIPS)
        .flat_map(|t| (0..COMMUNITIES).map(move |k| community_code(c, t, k)))
        .collect();
    store
        .write(|w| {
            w.put_region(&region(
                county_code(c),
                format!("县{}", c + 1),
                RegionLevel::County,
                base,
            ))?;
            let mut vw_items = Vec::new();
            for t in 0..TOWNSHIPS {
                let township = format!("6208{:02}{:03}000", c + 1, t + 1);
                w.put_region(&region(
                    township.clone(),
                    format!("镇{}-{}", c + 1, t + 1),
                    RegionLevel::Township,
                    base,
                ))?;
                let station = id_base + t as u64 + 1;
                let served: Vec<String> =
                    (0..COMMUNITIES).map(|k| community_code(c, t, k)).collect();
                for (k, code) in served.iter().enumerate() {
                    w.put_region(&region(
                        code.clone(),
                        format!("村{}-{}-{}", c + 1, t + 1, k + 1),
                        RegionLevel::Community,
                        base,
                    ))?;
                    if rng.random_bool(0.7) {
                        vw_items.push((station, code.clone()));
                    }
                }
                w.put_station(&Station {
                    id: station,
                    name: format!("社工站{}-{}", c + 1, t + 1),
                    township,
                    communities: served,
                    neighbours: Vec::new(),
                    contact: Contact {
                        name: "李华".into(),
                        phone: "0933-8211234".into(),
                    },
                    address: None,
                    location: None,
                    active: true,
                    created_at: base,
                    updated_at: base,
                })?;
            }
            let mut vw = w.volunteer_writer()?;
            for (i, (station, community)) in vw_items.into_iter().enumerate() {
                let id = id_base + i as u64 + 1;
                let _ = vw.put(&Volunteer {
                    id,
                    name: "王明".into(),
                    resident_id: format!("V{id:017}"),
                    gender: Gender::Male,
                    birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default(),
                    phone: "13800001111".into(),
                    station,
                    skills: Vec::new(),
                    certifications: Vec::new(),
                    safeguarding: None,
                    availability: Vec::new(),
                    home: GeoPoint {
                        lat: 35.5,
                        lon: 106.6,
                    },
                    monthly_capacity: 4,
                    languages: Vec::new(),
                    roles: vec!["disaster_info_officer".into()],
                    insurance: None,
                    community: Some(community),
                    status: VolunteerStatus::Active,
                    created_at: base,
                    updated_at: base,
                })?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(fail)?;

    // People in care.
    let cats = [
        (Category::SpecialDifficultyElder, 0.5),
        (Category::LeftBehindChild, 0.15),
        (Category::ChildInDifficulty, 0.10),
        (Category::Disabled, 0.25),
    ];
    let month_start = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
    let mut people: Vec<(u64, String)> = Vec::with_capacity(persons);
    for chunk in (0..persons).collect::<Vec<_>>().chunks(20_000) {
        store
            .write(|w| {
                let mut pw = w.person_writer()?;
                for &i in chunk {
                    let id = id_base + i as u64 + 1;
                    let mut roll: f64 = rng.random();
                    let category = cats
                        .iter()
                        .find(|(_, p)| {
                            roll -= p;
                            roll < 0.0
                        })
                        .map_or(Category::Disabled, |(c, _)| *c);
                    let joins = rng.random_bool(0.02);
                    let created = if joins {
                        instant(month_start + Duration::days(rng.random_range(0..29)))
                    } else {
                        base
                    };
                    let mut p = Person {
                        id,
                        name: "某某".into(),
                        resident_id: format!("P{id:017}"),
                        gender: Gender::Female,
                        birth_date: NaiveDate::from_ymd_opt(1940, 6, 15).unwrap_or_default(),
                        phone: None,
                        community: communities[rng.random_range(0..communities.len())].clone(),
                        grid: None,
                        location: GeoPoint {
                            lat: 35.5,
                            lon: 106.6,
                        },
                        address: None,
                        categories: vec![category],
                        circumstances: Vec::new(),
                        disability: None,
                        household: None,
                        guardian: None,
                        needs: Vec::new(),
                        active: true,
                        created_at: created,
                        updated_at: created,
                    };
                    let _ = pw.put(&p)?;
                    if !joins && rng.random_bool(0.02) {
                        p.active = false;
                        p.updated_at =
                            instant(month_start + Duration::days(rng.random_range(0..29)));
                        let _ = pw.put(&p)?;
                    }
                    people.push((id, p.community.clone()));
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .map_err(fail)?;
    }
    // Visits: six months up to the one reported, 90% of the people each month.
    let mut m = MONTH;
    for _ in 0..6 {
        for chunk in people.chunks(50_000) {
            store
                .write(|w| {
                    for (id, community) in chunk {
                        if rng.random_bool(0.9) {
                            w.count_person_visit(m, community, *id, rng.random_range(1..3))?;
                        }
                    }
                    Ok::<_, crate::store::StoreError>(())
                })
                .map_err(fail)?;
        }
        m = prev_month(m);
    }
    // Tasks over twelve months up to the one reported.
    let first_month = (0..11).fold(MONTH, |m, _| prev_month(m));
    let months: Vec<u32> =
        std::iter::successors(Some(first_month), |m| (*m < MONTH).then(|| next_month(*m)))
            .collect();
    let zone = chrono::FixedOffset::east_opt(8 * 3600).ok_or_else(|| fail("UTC+8"))?;
    let mut rated = 0;
    for chunk_start in (0..tasks).step_by(50_000) {
        let end = (chunk_start + 50_000).min(tasks);
        store
            .write(|w| {
                let mut tw = w.task_writer()?;
                let mut ratings = Vec::new();
                for i in chunk_start..end {
                    let id = id_base + i as u64 + 1;
                    let month = months[i % months.len()];
                    let day = rng.random_range(1..28);
                    let Some(due) = zone
                        .with_ymd_and_hms((month / 100) as i32, month % 100, day, 18, 0, 0)
                        .single()
                    else {
                        continue;
                    };
                    let (person, community) = people[rng.random_range(0..people.len())].clone();
                    let roll: f64 = rng.random();
                    let (status, overdue) = match roll {
                        r if r < 0.80 => (TaskStatus::Done, false),
                        r if r < 0.85 => (TaskStatus::Unstaffed, true),
                        r if r < 0.95 => (TaskStatus::Offered, rng.random_bool(0.3)),
                        _ => (TaskStatus::Cancelled, false),
                    };
                    let t = Task {
                        id,
                        duty: 1,
                        scheduled_at: due.to_utc() - Duration::days(7),
                        key: format!("p{person}-{i}"),
                        target: TaskTarget::Person { id: person },
                        community,
                        plugin: "elderly-visit".into(),
                        action: "monthly-visit".into(),
                        kind: "monthly-visit".into(),
                        title: Names {
                            zh: "月度探访".into(),
                            en: "Monthly visit".into(),
                        },
                        due_start: due - Duration::days(7),
                        due_end: due,
                        priority: Priority::Normal,
                        requirements: Requirements {
                            skills: Vec::new(),
                            clearances: Vec::new(),
                            team_size: 1,
                            gender: None,
                            max_distance_km: None,
                            languages: Vec::new(),
                            roles: Vec::new(),
                        },
                        checklist: 0,
                        status,
                        overdue,
                        station: None,
                        offers: Vec::new(),
                        unstaffed: Vec::new(),
                        history: Vec::new(),
                        report: None,
                        follows_up: None,
                        created_at: due.to_utc() - Duration::days(7),
                        updated_at: due.to_utc(),
                    };
                    tw.create(&t)?;
                    if status == TaskStatus::Done && month == MONTH && rated < 5_000 {
                        rated += 1;
                        ratings.push((id, t.community.clone()));
                    }
                }
                drop(tw);
                for (task, community) in ratings {
                    w.put_rating(&Rating {
                        task,
                        rating: match rng.random_range(0..10) {
                            0 => Satisfaction::Dissatisfied,
                            1 | 2 => Satisfaction::Neutral,
                            _ => Satisfaction::Satisfied,
                        },
                        comment: String::new(),
                        by: "station:1".into(),
                        at: instant(month_start),
                        month: MONTH,
                        community,
                        follow_up_task: None,
                    })?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .map_err(fail)?;
    }
    // Drills in half the communities over the year; a service record per community per month.
    store
        .write(|w| {
            let mut rec = id_base;
            for code in &communities {
                if rng.random_bool(0.5) {
                    let m = months[rng.random_range(0..months.len())];
                    w.count_community_visit(m, code, "drill", 1)?;
                }
                for m in &months {
                    rec += 1;
                    let date = crate::records::model::month_start(*m).unwrap_or_default();
                    w.put_service_record(&ServiceRecord {
                        id: rec,
                        volunteer: id_base + 1,
                        activity: "助老服务".into(),
                        date,
                        place: code.clone(),
                        region: code.clone(),
                        content: "陪伴".into(),
                        minutes: rng.random_range(60..600),
                        organiser: "社工站".into(),
                        station: id_base + 1,
                        person_in_charge: "李华".into(),
                        source: RecordSource::Entered,
                        entered_at: instant(date),
                        entered_by: "bench".into(),
                        late: false,
                        superseded: false,
                    })?;
                }
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(fail)?;
    Ok(())
}

/// Times `runs` reports of `region` and prints the fastest and the median.
fn time_report(store: &Store, region: &str, runs: usize) -> Result<(), Failure> {
    let targets = crate::config::Targets::default();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let started = std::time::Instant::now();
        let rep = store
            .read(|r| coverage::report(r, region, MONTH, 6, &targets, 12))
            .map_err(fail)?;
        times.push(started.elapsed().as_secs_f64());
        last = Some(rep);
    }
    times.sort_by(f64::total_cmp);
    let rep = last.ok_or_else(|| fail("no run"))?;
    println!(
        "coverage {region} ({}, {} rows, 6-month trend): fastest {:.3} s, median {:.3} s over {runs} runs \
         — elders {}/{} visited, {} tasks due",
        rep.region.level,
        rep.rows.len(),
        times[0],
        times[times.len() / 2],
        rep.total.elders.reached,
        rep.total.elders.eligible,
        rep.total.tasks.due,
    );
    Ok(())
}

pub fn bench_coverage(
    counties: usize,
    persons: usize,
    tasks: usize,
    dir: Option<PathBuf>,
) -> Result<(), Failure> {
    let (_tmp, store) = county_file(counties, persons, tasks, dir, "coverage.redb")?;
    time_all(&store, counties)
}

/// The benchmark's county file (`name` in `dir`): reused when a file this bench wrote before
/// with as many counties is there (kept with --dir), else written.
pub(crate) fn county_file(
    counties: usize,
    persons: usize,
    tasks: usize,
    dir: Option<PathBuf>,
    name: &str,
) -> Result<(BenchDir, Store), Failure> {
    if !(1..=99).contains(&counties) {
        return Err(Failure::Usage("--counties must be 1 to 99".into()));
    }
    let tmp = BenchDir::new(dir)?;
    let db = tmp.join(name);
    if db.exists() {
        let store = open_store(&db, false)?;
        let (last, beyond) = store
            .read(|r| {
                Ok::<_, crate::store::StoreError>((
                    r.region(&county_code(counties - 1))?,
                    r.region(&county_code(counties))?,
                ))
            })
            .map_err(fail)?;
        if last.is_some() && beyond.is_none() {
            eprintln!("reusing {}", db.display());
            return Ok((tmp, store));
        }
    }
    let _ = std::fs::remove_file(&db);
    let store = open_store(&db, false)?;
    let mut rng = StdRng::seed_from_u64(2026);
    let started = std::time::Instant::now();
    store
        .write(|w| {
            w.put_region(&region(
                "620800000000".into(),
                "平凉市".into(),
                RegionLevel::City,
                instant(NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default()),
            ))
        })
        .map_err(fail)?;
    for c in 0..counties {
        eprintln!(
            "writing county {} of {counties}: {persons} people, {tasks} tasks …",
            c + 1
        );
        seed_county(&store, c, persons, tasks, &mut rng)?;
    }
    println!(
        "generated {counties} count{} ({} people in care, {} tasks) in {:.0} s; file {:.0} MiB",
        if counties == 1 { "y" } else { "ies" },
        counties * persons,
        counties * tasks,
        started.elapsed().as_secs_f64(),
        store.file_size() as f64 / 1048576.0
    );
    Ok((tmp, store))
}

fn time_all(store: &Store, counties: usize) -> Result<(), Failure> {
    time_report(store, &county_code(0), 5)?;
    time_report(store, "620801001000", 5)?;
    if counties > 1 {
        time_report(store, "620000000000", 3)?;
    }
    Ok(())
}
