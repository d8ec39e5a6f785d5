//! `linlid serve` and `linlid demo`: hold the data folder, open the store, start the plugin host
//! and the scheduler, and serve HTTP until a signal, within the shutdown grace.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::{Failure, compiler, init_logging, init_logging_at, lock_data, open_store, runtime};
use crate::api::AppState;
use crate::clock;
use crate::config::{Config, LogFormat};
use crate::server::{self, ServeOptions};

/// `linlid serve --config FILE`.
pub fn serve(config: &Path) -> Result<(), Failure> {
    let cfg = Config::load(config).map_err(|e| Failure::Usage(e.to_string()))?;
    init_logging(cfg.log_format);
    // One daemon per data folder: held until the process ends.
    let _lock = lock_data(&cfg.database_path())?;
    let store = open_store(&cfg.database_path(), true)?;
    let mut state =
        AppState::with_plugin_host(store, clock::system(), cfg.tz(), &cfg.plugins, compiler())
            .context("starting")
            .map_err(Failure::Runtime)?;
    state.api = cfg.api.clone();
    state.scheduler.set_matching(cfg.matching);
    state
        .set_notify(cfg.notify.clone())
        .context("starting")
        .map_err(Failure::Runtime)?;
    let base = cfg.records_base_url();
    state.set_records(cfg.records.clone(), cfg.work_calendar(), base);
    state.set_console(crate::console::accounts::ConsoleSettings::from_config(
        &cfg.console,
        cfg.secure_cookies(),
    ));
    let mut opts = ServeOptions::new(cfg.shutdown_grace());
    opts.plugin_dir = Some(cfg.plugin_dir.clone());
    tracing::info!(data = %cfg.data_dir.display(), "opening");
    serve_on(cfg.listen, state, opts, "")
}

/// Binds `listen` and serves `state` until SIGTERM or Ctrl-C. Whatever still runs on a blocking
/// thread after that gets the grace period, no more.
fn serve_on(
    listen: SocketAddr,
    state: AppState,
    opts: ServeOptions,
    hint: &str,
) -> Result<(), Failure> {
    let grace = opts.grace;
    let rt = runtime()?;
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}{hint}"))?;
        // The bound address: with port 0 the system picks one, and this line says which.
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!(%address, "linlid serving");
        server::run(listener, state, server::shutdown_signal(), opts)
            .await
            .context("server failed")?;
        Ok::<_, Failure>(())
    });
    rt.shutdown_timeout(grace);
    served
}

/// What `linlid demo` is asked for.
pub struct DemoOptions {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub size: crate::demo::Size,
    /// Seed and print, then exit instead of serving.
    pub no_serve: bool,
}

/// `linlid demo`: the synthetic county (`crate::demo::prepare`), the tokens and commands to try,
/// then serving.
pub fn demo(o: DemoOptions) -> Result<(), Failure> {
    // The demo narrates on stderr itself; logs stay quiet unless RUST_LOG asks.
    init_logging_at(LogFormat::Pretty, "warn");
    let database = o.data.join("linli.redb");
    let _lock = lock_data(&database)?;
    let store = open_store(&database, true)?;
    eprintln!("data folder {}", o.data.display());
    let p = crate::demo::prepare(store, clock::system(), o.size, compiler(), &mut |line| {
        eprintln!("{line}")
    })?;
    let (admin, bureau, station) = (&p.admin, &p.bureau, &p.station);
    let url = format!("http://{}", o.listen);
    println!("linli demo — 平凉市崆峒区 (synthetic data)");
    println!("  URL:            {url}");
    println!("  admin token:    {admin}");
    println!(
        "  bureau token:   {bureau}   (bureau:{})",
        crate::demo::COUNTY
    );
    println!("  station token:  {station}   (station:1, 东关街道社会工作站)");
    if let Some((id, token)) = &p.volunteer {
        println!("  volunteer token: {token}   (volunteer:{id}, with offers waiting)");
    }
    println!();
    println!("Try:");
    println!("  curl -s {url}/healthz");
    println!(
        "  curl -s -H 'Authorization: Bearer {admin}' '{url}/v1/persons?region=620802001000&category=special_difficulty_elder&limit=5'"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {station}' '{url}/v1/volunteers?skill=first_aid&limit=5'"
    );
    println!("  curl -s -H 'Authorization: Bearer {admin}' '{url}/v1/plugins'");
    println!("  curl -s -H 'Authorization: Bearer {admin}' '{url}/v1/duties'");
    println!("  curl -s -H 'Authorization: Bearer {station}' '{url}/v1/tasks?limit=3'");
    if let Some((_, token)) = &p.volunteer {
        println!("  curl -s -H 'Authorization: Bearer {token}' '{url}/v1/me/tasks?limit=3'");
    }
    println!("  curl -s -H 'Authorization: Bearer {bureau}' '{url}/v1/reports/shortage'");
    println!(
        "  curl -s -H 'Authorization: Bearer {bureau}' '{url}/v1/reports/coverage?format=csv'   # visit rates against the plan"
    );
    // Console logins: a station worker, a bureau worker and a volunteer's one-time link
    // (passwords new at every start, so the printed ones always work).
    let accounts = p.state.accounts.clone();
    let login = |name: &str, scope: &str, label: &str| -> Option<String> {
        let password = crate::console::accounts::generate_password();
        let done = match accounts.user_info(name) {
            Ok(Some(_)) => accounts.reset_password(name, &password).map(|_| ()),
            _ => accounts
                .create_user(name, scope, Some(label.to_owned()), &password)
                .map(|_| ()),
        };
        done.ok().map(|()| password)
    };
    let station_pw = login("dongguan", "station:1", "东关街道社会工作站");
    let bureau_pw = login(
        "kongtong",
        &format!("bureau:{}", crate::demo::COUNTY),
        "崆峒区民政局",
    );
    let link = p
        .volunteer
        .as_ref()
        .and_then(|(id, _)| accounts.issue_login_link(*id, "demo", &url).ok());
    println!();
    println!("Console (open in a browser):  {url}/");
    if let Some(pw) = &station_pw {
        println!("  station worker:  dongguan / {pw}   (东关街道社会工作站)");
    }
    if let Some(pw) = &bureau_pw {
        println!("  bureau worker:   kongtong / {pw}   (崆峒区民政局)");
    }
    if let Some(l) = &link {
        println!(
            "  volunteer phone: {}   (one-time login link; open it on a phone or at 360 px)",
            l.url
        );
    }
    println!();
    if let Some(code) = &p.certificate {
        println!(
            "  open {url}/certificates/{code}   # a printable certificate; its QR code verifies at {url}/verify/{code}"
        );
    }
    println!(
        "  # tell station 1's WeCom group (paste its robot's address; then POST /v1/endpoints/ID/test):"
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {station}' -X POST {url}/v1/endpoints -d '{{\"owner\": {{\"station\": 1}}, \"kind\": \"wecom\", \"url\": \"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…\"}}'"
    );
    println!("  curl -s {url}/v1/openapi.json | head -c 300");
    println!("  curl -s -H 'Authorization: Bearer {admin}' {url}/metrics | grep linli_store_rows");
    if o.no_serve {
        println!(
            "  linlid report coverage --data {} --region {}",
            o.data.display(),
            crate::demo::COUNTY
        );
        return Ok(());
    }
    eprintln!("serving; Ctrl-C stops");
    let mut state = p.state;
    state.set_records(
        Default::default(),
        crate::records::calendar::WorkCalendar::builtin(),
        url.clone(),
    );
    serve_on(
        o.listen,
        state,
        ServeOptions::new(Duration::from_secs(10)),
        " (pass --listen 127.0.0.1:PORT)",
    )
}
