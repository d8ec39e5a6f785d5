//! `linlid bench console`: the station dashboard of a township with about 10,000 open tasks
//! (in a county file of 100,000 people in care and 1,400,000 stored tasks, most of them done),
//! served over HTTP by the real router to a logged-in station worker; and what a phone
//! downloads for the volunteer's task page.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Failure, bench_coverage::county_file};
use crate::schedule::{Offer, OfferState, TaskStatus};

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("{e}"))
}

const STATION: u64 = 1;

pub fn bench_console(tasks: usize, runs: usize, dir: Option<PathBuf>) -> Result<(), Failure> {
    let (_tmp, store) = county_file(1, 100_000, tasks, dir, "console.redb")?;
    let station = store
        .read(|r| r.station(STATION))
        .map_err(fail)?
        .ok_or_else(|| fail("the bench file has no station 1"))?;
    // The month the file's tasks run up to.
    let month = 202611;
    let started = Instant::now();
    let d = store
        .read(|r| crate::console::station::dashboard(r, &station, month))
        .map_err(fail)?;
    println!(
        "station {} ({}): {} open tasks due by the month's end ({} unstaffed, {} overdue); dashboard data read in {:.1} ms",
        station.id,
        station.name,
        d.active_total,
        d.unstaffed_total,
        d.overdue_total,
        started.elapsed().as_secs_f64() * 1000.0
    );
    // A volunteer of the station holding one of its open tasks, for the phone page.
    let (volunteer, found) = store
        .read(|r| {
            let v = r
                .volunteers_of_station(STATION, 0, 1, |_| true)?
                .items
                .into_iter()
                .next()
                .map_or(0, |v| v.id);
            let t = r
                .tasks_in_status(TaskStatus::Offered, 0, 1, |t| station.serves(&t.community))?
                .items
                .into_iter()
                .next();
            Ok::<_, crate::store::StoreError>((v, t))
        })
        .map_err(fail)?;
    let mut t = found.ok_or_else(|| fail("the station has no offered task"))?;
    let task = t.id;
    if !t.offers.iter().any(|o| o.volunteer == volunteer) {
        let now = crate::clock::system().now();
        t.offers.push(Offer {
            volunteer,
            state: OfferState::Accepted,
            offered_at: now,
            respond_by: now + chrono::Duration::days(1),
            responded_at: Some(now),
            reason: None,
            checked_in_at: None,
            checked_in_position: None,
            checked_out_at: None,
            checked_out_position: None,
        });
        t.status = TaskStatus::Accepted;
        store
            .write(|w| {
                let mut tw = w.task_writer()?;
                tw.put(&t)
            })
            .map_err(fail)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    rt.block_on(serve_and_time(store, volunteer, task, runs))
}

async fn serve_and_time(
    store: crate::store::Store,
    volunteer: u64,
    task: u64,
    runs: usize,
) -> Result<(), Failure> {
    let state = crate::api::AppState::new(store, crate::clock::system()).map_err(fail)?;
    let accounts = state.accounts.clone();
    let password = crate::console::accounts::generate_password();
    if accounts.user_info("bench").map_err(fail)?.is_some() {
        accounts.reset_password("bench", &password).map_err(fail)?;
    } else {
        accounts
            .create_user("bench", &format!("station:{STATION}"), None, &password)
            .map_err(fail)?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(fail)?;
    let base = format!("http://{}", listener.local_addr().map_err(fail)?);
    let link = accounts
        .issue_login_link(volunteer, "bench", &base)
        .map_err(fail)?;
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
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(fail)?;
    let staff = login(
        &client,
        &base,
        "/login",
        &[("name", "bench"), ("password", &password)],
    )
    .await?;
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for i in 0..runs + 3 {
        let started = Instant::now();
        let r = client
            .get(format!("{base}/station?month=2026-11"))
            .header("cookie", &staff)
            .send()
            .await
            .map_err(fail)?;
        if !r.status().is_success() {
            return Err(fail(format!("dashboard answered {}", r.status())));
        }
        bytes = r.bytes().await.map_err(fail)?.len();
        if i >= 3 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "GET /station (station dashboard, {} runs): median {:.1} ms, p95 {:.1} ms, max {:.1} ms; page {:.1} KB",
        times.len(),
        at(0.5),
        at(0.95),
        at(1.0),
        bytes as f64 / 1024.0
    );
    // The volunteer's phone: log in with the link, then the task page and what it loads.
    let code = link.code.clone();
    let phone = login(&client, &base, &format!("/login/v/{code}"), &[]).await?;
    let mut total = 0;
    for path in [
        format!("/v/tasks/{task}"),
        "/assets/console.css".into(),
        "/assets/console.js".into(),
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .header("cookie", &phone)
            .send()
            .await
            .map_err(fail)?;
        if !r.status().is_success() {
            return Err(fail(format!("{path} answered {}", r.status())));
        }
        let n = r.bytes().await.map_err(fail)?.len();
        println!("  {path}: {:.1} KB", n as f64 / 1024.0);
        total += n;
    }
    println!(
        "volunteer's task page: {:.1} KB transferred in all (uncompressed)",
        total as f64 / 1024.0
    );
    let _ = tx.send(());
    let _ = server.await;
    Ok(())
}

/// Logs in through a console form (the login page's token first); answers the session cookie.
async fn login(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Result<String, Failure> {
    let page = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_err(fail)?;
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|kv| kv.starts_with("linli_login="))
        })
        .map(str::to_owned)
        .ok_or_else(|| fail("the login page set no form cookie"))?;
    let token = cookie.trim_start_matches("linli_login=").to_owned();
    let mut form: Vec<(&str, &str)> = vec![("_csrf", &token)];
    form.extend_from_slice(fields);
    let r = client
        .post(format!("{base}{path}"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).map_err(fail)?)
        .send()
        .await
        .map_err(fail)?;
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .filter(|kv| kv.starts_with("linli_session="))
        })
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("logging in at {path} answered {}", r.status())))
}
