//! `linlid bench match --store`: the synthetic county of `bench match` written into a real
//! store (a station per township, volunteers, people in care, a monthly visit for each), every
//! task staffed in one batch through the scheduler (read, plan, offers written), then one-off
//! tasks recorded over HTTP with a station token, each timed from `POST /v1/tasks` until the
//! answer — the task with its stored offer — is back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::clock::Clock;

use super::bench::BenchDir;
use super::bench_coverage::{county_code, fail, region};
use super::matching::synthetic;
use super::{Failure, open_store};
use crate::api::auth::{Scope, create_token};
use crate::registry::{Contact, Person, RegionLevel, Station, Volunteer, VolunteerStatus};
use crate::task::{Names, Task, TaskStatus, TaskTarget};

fn township_code(t: u64) -> String {
    format!("620801{t:03}000")
}

fn community_code(t: u64) -> String {
    format!("620801{t:03}001")
}

pub fn bench_store(
    tasks: usize,
    volunteers: usize,
    runs: usize,
    dir: Option<PathBuf>,
) -> Result<(), Failure> {
    let tmp = BenchDir::new(dir)?;
    let db = tmp.join("bench-match.redb");
    let _ = std::fs::remove_file(&db);
    let store = open_store(&db, false)?;
    let problem = synthetic(tasks, volunteers, 2026);
    let now = crate::clock::SystemClock.now();
    let started = Instant::now();
    let stations: Vec<u64> = {
        let mut s: Vec<u64> = problem.volunteers.iter().map(|v| v.station).collect();
        s.extend(problem.tasks.iter().map(|t| t.station));
        s.sort_unstable();
        s.dedup();
        s
    };
    store
        .write(|w| {
            w.put_region(&region(
                county_code(0),
                "县1".into(),
                RegionLevel::County,
                now,
            ))?;
            for &s in &stations {
                w.put_region(&region(
                    township_code(s),
                    format!("镇{s}"),
                    RegionLevel::Township,
                    now,
                ))?;
                w.put_region(&region(
                    community_code(s),
                    format!("村{s}"),
                    RegionLevel::Community,
                    now,
                ))?;
                w.put_station(&Station {
                    id: s,
                    name: format!("社工站{s}"),
                    township: township_code(s),
                    communities: vec![community_code(s)],
                    neighbours: problem.neighbours.get(&s).cloned().unwrap_or_default(),
                    contact: Contact {
                        name: "李华".into(),
                        phone: "0933-8211234".into(),
                    },
                    address: None,
                    location: None,
                    active: true,
                    created_at: now,
                    updated_at: now,
                })?;
            }
            w.reserve_ids("station", stations.len() as u64 + 1)?;
            let mut vw = w.volunteer_writer()?;
            for v in &problem.volunteers {
                // (Resident ids are unique by construction: no duplicate to report.)
                let _ = vw.put(&Volunteer {
                    id: v.id,
                    name: "王明".into(),
                    resident_id: format!("V{:017}", v.id),
                    gender: v.gender,
                    birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default(),
                    phone: "13800001111".into(),
                    station: v.station,
                    skills: Vec::new(),
                    certifications: Vec::new(),
                    safeguarding: None,
                    availability: Vec::new(),
                    home: v.home,
                    monthly_capacity: v.capacity,
                    languages: Vec::new(),
                    roles: Vec::new(),
                    insurance: None,
                    community: None,
                    status: VolunteerStatus::Active,
                    created_at: now,
                    updated_at: now,
                })?;
            }
            drop(vw);
            w.reserve_ids("volunteer", problem.volunteers.len() as u64 + 1)?;
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(fail)?;
    // A person in care for each task, where the task is.
    for chunk in problem.tasks.chunks(20_000) {
        store
            .write(|w| {
                let mut pw = w.person_writer()?;
                for t in chunk {
                    let _ = pw.put(&Person {
                        id: t.id,
                        name: "某某".into(),
                        resident_id: format!("P{:017}", t.id),
                        gender: crate::registry::Gender::Female,
                        birth_date: chrono::NaiveDate::from_ymd_opt(1940, 6, 15)
                            .unwrap_or_default(),
                        phone: None,
                        community: community_code(t.station),
                        grid: None,
                        location: t.location.unwrap_or(crate::registry::GeoPoint {
                            lat: 35.5,
                            lon: 106.6,
                        }),
                        address: None,
                        categories: vec![crate::registry::Category::SpecialDifficultyElder],
                        circumstances: Vec::new(),
                        disability: None,
                        household: None,
                        guardian: None,
                        needs: Vec::new(),
                        active: true,
                        created_at: now,
                        updated_at: now,
                    })?;
                }
                drop(pw);
                let mut tw = w.task_writer()?;
                for t in chunk {
                    tw.create(&Task {
                        id: t.id,
                        duty: 1,
                        scheduled_at: now,
                        key: format!("p{}", t.id),
                        target: TaskTarget::Person { id: t.id },
                        community: community_code(t.station),
                        plugin: "elderly-visit".into(),
                        action: "monthly-visit".into(),
                        kind: "monthly-visit".into(),
                        title: Names {
                            zh: "月度探访".into(),
                            en: "Monthly visit".into(),
                        },
                        due_start: t.due_start,
                        due_end: t.due_end,
                        priority: t.priority,
                        requirements: t.requirements.clone(),
                        checklist: 0,
                        status: TaskStatus::Open,
                        overdue: false,
                        station: Some(t.station),
                        offers: Vec::new(),
                        unstaffed: Vec::new(),
                        history: Vec::new(),
                        report: None,
                        follows_up: None,
                        created_at: now,
                        updated_at: now,
                    })?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .map_err(fail)?;
    }
    store
        .write(|w| {
            w.reserve_ids("person", problem.tasks.len() as u64 + 1)?;
            w.reserve_ids("task", problem.tasks.len() as u64 + 1)?;
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(fail)?;
    println!(
        "wrote {} stations, {} volunteers, {} people in care and their {} tasks in {:.1} s",
        stations.len(),
        problem.volunteers.len(),
        problem.tasks.len(),
        problem.tasks.len(),
        started.elapsed().as_secs_f64()
    );
    let token =
        create_token(&store, &Scope::Station(1), Some("bench".into()), now).map_err(fail)?;
    // People of station 1, for the one-off tasks.
    let people: Vec<u64> = problem
        .tasks
        .iter()
        .filter(|t| t.station == 1)
        .map(|t| t.id)
        .collect();
    let state = crate::api::AppState::new(store, crate::clock::system()).map_err(fail)?;
    let ids: Vec<u64> = problem.tasks.iter().map(|t| t.id).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    rt.block_on(batch_and_one_offs(state, token, ids, people, runs))?;
    drop(tmp);
    Ok(())
}

/// Staffs `ids` in one batch while recording one-off urgent tasks over HTTP beside it (for
/// `people` in turn), then `runs` more once the batch is done; times each answer.
async fn batch_and_one_offs(
    state: crate::api::AppState,
    token: String,
    ids: Vec<u64>,
    people: Vec<u64>,
    runs: usize,
) -> Result<(), Failure> {
    let now = crate::clock::SystemClock.now();
    let scheduler = state.scheduler.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(fail)?;
    let base = format!("http://{}", listener.local_addr().map_err(fail)?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::run(
        listener,
        state,
        async {
            let _ = rx.await;
        },
        crate::server::ServeOptions {
            scheduler: false,
            ..crate::server::ServeOptions::new(Duration::from_secs(5))
        },
    ));
    let client = reqwest::Client::new();
    let zone = chrono::FixedOffset::east_opt(8 * 3600).ok_or_else(|| fail("UTC+8"))?;
    let one_off = |person: u64| {
        let body = serde_json::json!({
            "kind": "phone-request",
            "title": {"zh": "接诉即办", "en": "Phone request"},
            "target": {"type": "person", "id": person},
            "due_start": (now + chrono::Duration::hours(1)).with_timezone(&zone).to_rfc3339(),
            "due_end": (now + chrono::Duration::hours(25)).with_timezone(&zone).to_rfc3339(),
            "priority": "urgent",
            "requirements": {"team_size": 1},
        });
        let request = client
            .post(format!("{base}/v1/tasks"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let started = Instant::now();
            let r = request.send().await.map_err(fail)?;
            let status = r.status();
            let task: serde_json::Value = r.json().await.map_err(fail)?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() {
                return Err(fail(format!("POST /v1/tasks answered {status}: {task}")));
            }
            // Offered, or (every volunteer near at capacity) stored with its reasons.
            let offered = task["offers"].as_array().is_some_and(|o| !o.is_empty());
            if !offered && task["unstaffed"].as_array().is_none_or(Vec::is_empty) {
                return Err(fail(format!(
                    "the one-off task for person {person} was neither offered nor told why: {task}"
                )));
            }
            Ok::<(f64, bool), Failure>((took, offered))
        }
    };
    let mut people = people.into_iter().cycle();
    // The first few warm the caches.
    for p in people.by_ref().take(3) {
        one_off(p).await?;
    }
    let n = ids.len();
    let started = Instant::now();
    let batch = tokio::task::spawn_blocking(move || scheduler.staff(&ids, "bench"));
    let mut during = Vec::new();
    while !batch.is_finished() {
        let Some(p) = people.next() else { break };
        during.push(one_off(p).await?);
    }
    let staffed = batch.await.map_err(fail)?.map_err(fail)?;
    println!(
        "staffed {n} tasks in one batch through the scheduler (read, plan, write): {} offers, {} unstaffed in {:.2} s",
        staffed.offered,
        staffed.unstaffed,
        started.elapsed().as_secs_f64()
    );
    let mut after = Vec::new();
    for p in people.by_ref().take(runs) {
        after.push(one_off(p).await?);
    }
    for (when, answers) in [("beside the batch", during), ("after it", after)] {
        let offered = answers.iter().filter(|a| a.1).count();
        let mut times: Vec<f64> = answers.iter().map(|a| a.0).collect();
        times.sort_by(f64::total_cmp);
        if times.is_empty() {
            continue;
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "one-off urgent task {when}, POST /v1/tasks to the answer with its stored offer ({} runs, {offered} offered, the rest stored unstaffed with reasons): median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            times.len(),
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    let _ = tx.send(());
    let _ = server.await;
    Ok(())
}
