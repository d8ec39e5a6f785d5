//! `linlid bench …`: benchmarks that need a real file system or process, for the README's
//! performance table. Each prints its numbers on stdout and cleans up its temporary folder.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::plugin::load_plugin;
use super::{Failure, compiler, init_logging, open_store, runtime};
use crate::api::AppState;
use crate::clock::{self, Clock};
use crate::config::LogFormat;
use crate::plugins::runtime::{Limits, Runtime};
use crate::registry::import::{self, ImportOptions, Kind};
use crate::service::Everything;

fn peak_rss_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

fn rss_mib() -> Option<f64> {
    proc_status_mib("VmRSS:")
}

fn proc_status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn bench_bomb(functions: usize) -> Result<(), Failure> {
    let tmp = BenchDir::new(None)?;
    let store = open_store(&tmp.join("bomb.redb"), false)?;
    let state = AppState::with_plugin_host(
        store,
        clock::system(),
        chrono_tz::Asia::Shanghai,
        &Default::default(),
        compiler(),
    )
    .context("starting")?;
    let bomb = crate::plugins::checks::synthetic_component(functions);
    let actor = crate::plugins::catalog::Actor {
        label: "bench".into(),
        bureau: None,
    };
    let before = rss_mib().unwrap_or(0.0);
    let (result, took) =
        crate::plugins::runtime::timed(|| state.plugins.deploy(&bomb, &actor).map(|_| ()));
    println!(
        "{functions} functions, {} KiB: {} in {:.3} s; RSS {before:.0} MiB before, {:.0} MiB after \
         (peak {:.0} MiB)",
        bomb.len() >> 10,
        match &result {
            Ok(()) => "deployed".to_owned(),
            Err(e) => format!("refused ({e})"),
        },
        took.as_secs_f64(),
        rss_mib().unwrap_or(0.0),
        peak_rss_mib().unwrap_or(0.0)
    );
    state.plugins.shutdown();
    Ok(())
}

pub fn bench_import(rows: usize, dir: Option<PathBuf>) -> Result<(), Failure> {
    let tmp = BenchDir::new(dir)?;
    let csv_path = tmp.join("persons.csv");
    let db_path = tmp.join("bench.redb");
    let _ = std::fs::remove_file(&db_path);
    eprintln!("generating {rows} rows into {} …", csv_path.display());
    let store = open_store(&db_path, false)?;
    let now = clock::SystemClock.now();
    crate::demo::bench_fixture(&store, &csv_path, rows, now)
        .context("generating the benchmark file")?;
    let rss_before = peak_rss_mib().unwrap_or(0.0);
    let started = std::time::Instant::now();
    let opts = ImportOptions {
        kind: Kind::Persons,
        skip_invalid: false,
        guard: &Everything,
        now,
        cancel: None,
    };
    let report = import::import_file(&store, &csv_path, &opts, &mut |_| {})
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let secs = started.elapsed().as_secs_f64();
    if report.error_count > 0 {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "benchmark rows were refused: {:?}",
            report.errors.first()
        )));
    }
    println!(
        "import of {} persons: {secs:.2} s ({:.0} rows/s)",
        report.imported,
        report.imported as f64 / secs
    );
    println!(
        "peak RSS: {:.0} MiB (before the import: {rss_before:.0} MiB); database file: {:.0} MiB",
        peak_rss_mib().unwrap_or(0.0),
        store.file_size() as f64 / 1048576.0
    );
    Ok(())
}

/// A bench's working folder: one given with `--dir` is kept for inspection; a temporary one is
/// removed when the bench ends, however it ends.
pub(crate) struct BenchDir {
    path: PathBuf,
    remove: bool,
}

impl BenchDir {
    pub(crate) fn new(dir: Option<PathBuf>) -> Result<Self, Failure> {
        let (path, remove) = match dir {
            Some(d) => (d, false),
            None => (
                std::env::temp_dir().join(format!("linli-bench-{}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(BenchDir { path, remove })
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub fn bench_plugin(file: &Path, targets: usize, iterations: usize) -> Result<(), Failure> {
    let rt = Runtime::new(clock::system()).map_err(|e| Failure::Runtime(e.into()))?;
    let limits = Limits {
        deadline_ms: 60_000,
        memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let loaded = load_plugin(&rt, file, &limits)?;
    println!(
        "plugin {} {} (pooling allocator: {})",
        loaded.description.id,
        loaded.description.version,
        rt.pooling()
    );
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations.max(1) {
        let (r, took) = crate::plugins::runtime::timed(|| rt.describe(&loaded, "{}", &limits));
        r.map_err(|e| Failure::Rejected(format!("describe failed: {e}")))?;
        times.push(took);
    }
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!(
        "instantiate + describe: median {:.1} µs, p99 {:.1} µs over {} calls",
        median.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        times.len()
    );
    let action = loaded.description.actions.first().cloned();
    let target_list: Vec<crate::plugins::model::Target> = (0..targets as u64)
        .map(|id| match action.as_ref().map(|a| a.target_kind) {
            Some(crate::plugins::model::TargetKind::Community) => {
                crate::plugins::model::Target::Community(crate::plugins::model::CommunityTarget {
                    code: format!("620802{:06}", 1000 + id % 999_000),
                    name: "社区".into(),
                    settlement: Some("rural".into()),
                    population: Some(1200),
                })
            }
            _ => crate::plugins::model::Target::Person(crate::plugins::model::PersonTarget {
                id,
                community: "620802001001".into(),
                age: 60 + (id % 35) as u32,
                gender: if id % 2 == 0 {
                    "female".into()
                } else {
                    "male".into()
                },
                categories: action
                    .as_ref()
                    .map(|a| a.categories.clone())
                    .unwrap_or_default(),
                circumstances: if id % 3 == 0 {
                    vec!["living_alone".into()]
                } else {
                    vec![]
                },
                disability: (id % 5 == 0).then(|| crate::plugins::model::DisabilityInfo {
                    kind: "physical".into(),
                    grade: 1 + (id % 4) as u8,
                }),
                living: Some(if id % 3 == 0 {
                    "alone".into()
                } else {
                    "with_family".into()
                }),
                has_guardian: id % 7 == 0,
                needs: vec![],
            }),
        })
        .collect();
    let occurrence = crate::plugins::model::Occurrence {
        duty: "bench".into(),
        action: action.map(|a| a.id).unwrap_or_default(),
        scheduled_at: "2026-12-01T09:00:00+08:00".into(),
        time_zone: "Asia/Shanghai".into(),
    };
    let mut plan_times = Vec::new();
    let mut drafts = 0;
    for _ in 0..5 {
        let (r, took) = crate::plugins::runtime::timed(|| {
            rt.plan(&loaded, "{}", &limits, &occurrence, &target_list)
        });
        drafts = r
            .map_err(|e| Failure::Rejected(format!("plan failed: {e}")))?
            .0
            .drafts
            .len();
        plan_times.push(took);
    }
    plan_times.sort();
    println!(
        "plan over {targets} targets → {drafts} drafts: median {:.0} ms, best {:.0} ms (5 runs)",
        plan_times[2].as_secs_f64() * 1e3,
        plan_times[0].as_secs_f64() * 1e3
    );
    Ok(())
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// A fresh bench store with the elderly-visit plugin deployed; `rows` elders imported.
fn bench_state(dir: Option<PathBuf>, rows: usize) -> Result<(BenchDir, AppState), Failure> {
    let tmp = BenchDir::new(dir)?;
    let db = tmp.join("bench-duty.redb");
    let _ = std::fs::remove_file(&db);
    let store = open_store(&db, false)?;
    let now = clock::SystemClock.now();
    let csv = tmp.join("elders.csv");
    crate::demo::bench_fixture_with(&store, &csv, rows, true, now).context("generating elders")?;
    let opts = ImportOptions {
        kind: Kind::Persons,
        skip_invalid: false,
        guard: &Everything,
        now,
        cancel: None,
    };
    import::import_file(&store, &csv, &opts, &mut |_| {})
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let state = AppState::new(store, clock::system())
        .context("starting")
        .map_err(Failure::Runtime)?;
    let actor = crate::plugins::catalog::Actor {
        label: "bench".into(),
        bureau: None,
    };
    state
        .plugins
        .deploy(crate::plugins::SHIPPED[0].1, &actor)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    Ok((tmp, state))
}

fn monthly_duty(cron: &str) -> crate::schedule::DutyInput {
    crate::schedule::DutyInput {
        name: "bench".into(),
        plugin: "elderly-visit".into(),
        action: "monthly-visit".into(),
        cron: Some(cron.into()),
        time_zone: None,
        selector: crate::schedule::Selector {
            region: crate::demo::COUNTY.into(),
            categories: Vec::new(),
            needs: Vec::new(),
            communities: Vec::new(),
        },
        due_window_days: None,
        catch_up: Default::default(),
        paused: false,
    }
}

pub fn bench_duty(targets: usize, dir: Option<PathBuf>) -> Result<(), Failure> {
    init_logging(LogFormat::Pretty);
    eprintln!("importing {targets} elders and deploying elderly-visit …");
    let (_tmp, state) = bench_state(dir, targets)?;
    let duty = state
        .scheduler
        .create(monthly_duty("0 9 1 * *"), &Everything, None)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let started = std::time::Instant::now();
    let queued = state
        .scheduler
        .trigger(duty.id, &Everything)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    state
        .scheduler
        .tick()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let took = started.elapsed();
    let occ = state
        .scheduler
        .occurrence(duty.id, queued.scheduled_at)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?
        .ok_or_else(|| Failure::Runtime(anyhow::anyhow!("the occurrence was not run")))?;
    if let Some(e) = &occ.error {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "the occurrence failed: {e}"
        )));
    }
    println!(
        "one occurrence over {} targets: {} tasks planned and persisted in {:.2} s (status {:?})",
        occ.targets,
        occ.tasks_created,
        took.as_secs_f64(),
        occ.status
    );
    Ok(())
}

pub fn bench_idle(duties: usize, seconds: u64, dir: Option<PathBuf>) -> Result<(), Failure> {
    let (_tmp, state) = bench_state(dir, 10)?;
    // One duty through the API path, the rest as copies in one transaction (creating 10,000
    // duties one commit at a time would measure fsync, not the scheduler).
    let template = state
        .scheduler
        .create(monthly_duty("0 9 1 1 *"), &Everything, None)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    state
        .store
        .write(|w| {
            let first = w.reserve_ids("duty", duties as u64)?;
            for i in 0..duties as u64 {
                let mut d = template.clone();
                d.id = first + i;
                d.cron = format!(
                    "{} {} {} {} *",
                    i % 60,
                    (i / 60) % 24,
                    1 + (i / 1440) % 28,
                    1 + (i % 12)
                );
                w.put_duty(&d)?;
            }
            Ok::<_, crate::store::StoreError>(())
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    let cpu0 = cpu_seconds();
    let (next, first_tick) = crate::plugins::runtime::timed(|| state.scheduler.tick());
    next.map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let tick_cpu = cpu_seconds() - cpu0;
    let rt = runtime()?;
    let scheduler = state.scheduler.clone();
    let started = std::time::Instant::now();
    // The loop ticks once when it starts (as at a daemon's start); measure after that.
    let first_tick_cpu = rt.block_on(async move {
        let handle = tokio::spawn(scheduler.clone().run());
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let after_start = cpu_seconds();
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
        scheduler.shutdown();
        let _ = handle.await;
        after_start
    });
    let idle_cpu = cpu_seconds() - first_tick_cpu;
    println!(
        "{} duties: first tick {:.2} s ({:.2} s CPU); then idle {} s using {:.3} s CPU ({:.2}% of one core); wall {:.1} s",
        duties + 1,
        first_tick.as_secs_f64(),
        tick_cpu,
        seconds,
        idle_cpu,
        idle_cpu / seconds as f64 * 100.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `linlid bench notify`: signed webhook deliveries to a receiver on this machine, durable
/// state included (each batch of outcomes committed), then one urgent message queued behind a
/// backlog of routine ones.
pub fn bench_notify(
    messages: usize,
    endpoints: usize,
    backlog: usize,
    dir: Option<PathBuf>,
) -> Result<(), Failure> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::notify::model::{Endpoint, EndpointKind, MessageState, Owner, Secret};
    use crate::schedule::{Event, EventKind};

    let endpoints = endpoints.max(1);
    let tmp = BenchDir::new(dir)?;
    let db = tmp.join("bench-notify.redb");
    let _ = std::fs::remove_file(&db);
    let store = open_store(&db, false)?;
    let rt = runtime()?;
    let fail = |e: &dyn std::fmt::Display| Failure::Runtime(anyhow::anyhow!("{e}"));
    rt.block_on(async {
        // The receiver: counts deliveries, notes when the urgent one arrives.
        let count = Arc::new(AtomicU64::new(0));
        let urgent: Arc<std::sync::Mutex<(String, Option<std::time::Instant>)>> = Arc::default();
        let app = axum::Router::new().fallback({
            let (count, urgent) = (count.clone(), urgent.clone());
            move |headers: axum::http::HeaderMap| {
                let (count, urgent) = (count.clone(), urgent.clone());
                async move {
                    count.fetch_add(1, Ordering::Relaxed);
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let mut u = urgent.lock().unwrap_or_else(|p| p.into_inner());
                    if !u.0.is_empty() && u.0 == id && u.1.is_none() {
                        u.1 = Some(std::time::Instant::now());
                    }
                    "ok"
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail(&e))?;
        let url = format!(
            "http://{}/hook",
            listener.local_addr().map_err(|e| fail(&e))?
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let cfg = crate::config::NotifyConfig {
            allow_private_addresses: true,
            allow_http: true,
            max_in_flight: 16,
            ..Default::default()
        };
        let notifier = crate::notify::Notifier::new(store.clone(), clock::system(), cfg)
            .map_err(|e| fail(&e))?;
        let now = clock::SystemClock.now();
        store
            .write(|w| {
                for _ in 0..endpoints {
                    let id = w.reserve_ids("endpoint", 1)?;
                    w.put_endpoint(&Endpoint {
                        id,
                        owner: Owner::Bureau("620802000000".into()),
                        kind: EndpointKind::Webhook,
                        url: url.clone(),
                        description: String::new(),
                        events: Vec::new(),
                        enabled: true,
                        disabled_reason: None,
                        secrets: vec![Secret {
                            value: crate::notify::sign::new_webhook_secret(),
                            expires_at: None,
                        }],
                        created_at: now,
                        updated_at: now,
                    })?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .map_err(|e| fail(&e))?;
        let push = |events: usize| {
            for chunk in 0..events.div_ceil(10_000) {
                store.write(|w| {
                    for i in 0..10_000.min(events - chunk * 10_000) {
                        w.push_event(Event {
                            seq: 0,
                            kind: EventKind::TaskOverdue,
                            at: now,
                            task: Some((chunk * 10_000 + i) as u64 + 1),
                            duty: None,
                            community: Some("620802001001".into()),
                            region: Some("620802001001".into()),
                            detail: "探访逾期".into(),
                            data: None,
                        })?;
                    }
                    Ok::<_, crate::store::StoreError>(())
                })?;
            }
            Ok::<_, crate::store::StoreError>(())
        };
        let delivered = || {
            store.read(|r| {
                let (pending, _) = r.pending_messages()?;
                Ok::<_, crate::store::StoreError>(pending)
            })
        };
        // Phase 1: throughput.
        push(messages / endpoints).map_err(|e| fail(&e))?;
        let total = (messages / endpoints * endpoints) as u64;
        let stop = tokio_util::sync::CancellationToken::new();
        let started = std::time::Instant::now();
        let loop_handle = tokio::spawn(notifier.clone().run(stop.clone()));
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let cursor_done = store
                .read(|r| r.meta("notify_cursor"))
                .map_err(|e| fail(&e))?
                .unwrap_or(0)
                >= (messages / endpoints) as u64;
            if cursor_done && delivered().map_err(|e| fail(&e))? == 0 {
                break;
            }
        }
        let took = started.elapsed().as_secs_f64();
        println!(
            "{total} signed webhook deliveries to {endpoints} endpoints, each outcome committed: \
             {took:.2} s, {:.0} deliveries/s ({} requests seen by the receiver)",
            total as f64 / took,
            count.load(Ordering::Relaxed)
        );
        // Phase 2: an urgent message behind a backlog.
        push(backlog / endpoints).map_err(|e| fail(&e))?;
        let seen_before = count.load(Ordering::Relaxed);
        while count.load(Ordering::Relaxed) < seen_before + 1000 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let first = store
            .read(|r| r.endpoints())
            .map_err(|e| fail(&e))?
            .first()
            .map_or(1, |e| e.id);
        let queued = std::time::Instant::now();
        let m = notifier
            .test_message(first)
            .map_err(|e| fail(&e))?
            .ok_or_else(|| fail(&"no endpoint"))?;
        {
            let mut u = urgent.lock().unwrap_or_else(|p| p.into_inner());
            u.0 = m.webhook_id();
        }
        let written = queued.elapsed();
        let pending_then = delivered().map_err(|e| fail(&e))?;
        let arrived = loop {
            if let Some(t) = urgent.lock().unwrap_or_else(|p| p.into_inner()).1 {
                break t;
            }
            if queued.elapsed() > std::time::Duration::from_secs(120) {
                return Err(fail(&"the urgent message did not arrive within 120 s"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        };
        println!(
            "an urgent message reached its endpoint {:.0} ms after it was queued ({:.0} ms to \
             store it), ahead of a backlog of {pending_then} routine messages still pending",
            arrived.duration_since(queued).as_secs_f64() * 1000.0,
            written.as_secs_f64() * 1000.0
        );
        stop.cancel();
        let _ = loop_handle.await;
        let state = store
            .read(|r| r.message(m.id))
            .map_err(|e| fail(&e))?
            .map(|m| m.state);
        if state != Some(MessageState::Delivered) {
            tracing::warn!(
                ?state,
                "the urgent message's outcome was not recorded before the stop"
            );
        }
        Ok(())
    })
}
