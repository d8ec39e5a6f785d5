//! `linlid`: arguments, logging set-up, and hand-off to the library. Exit codes:
//! 0 success; 1 runtime failure; 2 bad arguments or config; 3 database refused (not a linli
//! database, damaged, from a newer version, or in use — by another `linlid serve` for serve and
//! demo); 4 import refused (invalid rows).

use std::io::IsTerminal;

/// mimalloc: many small allocations move across the plugin boundary on every call.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use linli::api::AppState;
use linli::api::auth::{self, Scope};
use linli::clock::{self, Clock};
use linli::config::{Config, LogFormat};
use linli::plugins::runtime::{Compiler, Limits, Runtime};
use linli::registry::import::{self, ImportOptions, Kind};
use linli::registry::service::Everything;
use linli::store::{OpenError, OpenOptions, Store};

#[derive(Parser)]
#[command(
    name = "linlid",
    version,
    about = "linli (邻里): registry, action plugins and duties for community care"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve {
        /// The TOML config file (see config/linli.example.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Seed a synthetic Pingliang county into a data folder and serve it.
    Demo {
        /// Data folder (created if missing; seeded if empty).
        #[arg(long, default_value = "linli-demo")]
        data: PathBuf,
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: std::net::SocketAddr,
        /// People in care to generate.
        #[arg(long, default_value_t = 3000)]
        persons: usize,
        /// Volunteers to generate.
        #[arg(long, default_value_t = 300)]
        volunteers: usize,
        /// Seed and print, then exit instead of serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Check a config file and print what it resolves to.
    CheckConfig { file: PathBuf },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Import people in care or volunteers from a CSV file.
    Import {
        kind: ImportKind,
        file: PathBuf,
        /// Import the valid rows and report the invalid ones (default: import nothing if any
        /// row is invalid).
        #[arg(long)]
        skip_invalid: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Work with duty schedules.
    Duty {
        #[command(subcommand)]
        action: DutyAction,
    },
    /// Check, inspect and run plugin components offline.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Benchmarks that need a real file system or process (numbers for the README).
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
    /// (Internal) compile a plugin component read on stdin into an artifact on stdout, within
    /// an address-space limit: the daemon runs this in a child process for every compile.
    #[command(hide = true)]
    CompilePlugin {
        #[arg(long, default_value_t = 4096)]
        memory_mib: u64,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// List tokens: id, scope, label, created, revoked (the tokens themselves are not stored).
    List {
        #[command(flatten)]
        place: Place,
    },
    /// Revoke a token by the id `token list` shows.
    Revoke {
        id: String,
        #[command(flatten)]
        place: Place,
    },
    /// Create a token and print it (it is shown only once).
    Create {
        /// admin, bureau:<region-code>, station:<id> or volunteer:<id>
        #[arg(long)]
        scope: String,
        /// A note on who holds the token.
        #[arg(long)]
        label: Option<String>,
        #[command(flatten)]
        place: Place,
    },
}

#[derive(Subcommand)]
enum DutyAction {
    /// Print the next fire times of a cron expression, one RFC 3339 timestamp per line.
    Preview {
        /// 5-field POSIX cron, or 6/7 fields with seconds (quote it).
        #[arg(long)]
        cron: String,
        /// IANA time zone.
        #[arg(long, default_value = "Asia/Shanghai")]
        tz: String,
        /// Start after this instant (RFC 3339; default now).
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum PluginAction {
    /// Run the checks a deployment runs and print what the plugin describes.
    Check { file: PathBuf },
    /// Write the four shipped plugins (built into linlid) to a folder, e.g. the plugin folder.
    Shipped {
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a built plugin through the real host: `plan` on targets, or `review` on a report.
    Run {
        file: PathBuf,
        #[command(subcommand)]
        call: RunCall,
        /// The plugin's configuration, a JSON file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// Deadline of the call in milliseconds.
        #[arg(long, global = true, default_value_t = 2000)]
        deadline_ms: u64,
    },
}

#[derive(Subcommand)]
enum RunCall {
    /// Print the task drafts (JSON) for the targets in a JSON file.
    Plan {
        /// JSON array of targets: {"type":"person","id":1,"community":"620802001001","age":82,"gender":"female","categories":[...]} or {"type":"community",...}
        #[arg(long)]
        targets: PathBuf,
        /// The action to plan (default: the plugin's first).
        #[arg(long)]
        action: Option<String>,
        /// The occurrence's instant, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Print the review outcome (JSON) of a visit report for a task.
    Review {
        /// JSON task: {"id":1,"kind":"monthly-visit","target":{...},"due_start":…,"due_end":…,"checklist":[...]}
        #[arg(long)]
        task: PathBuf,
        /// JSON visit report: {"visited_at":…,"duration_minutes":30,"reached":true,"answers":[{"item":…,"value":…}]}
        #[arg(long)]
        report: PathBuf,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// One occurrence of the shipped elderly-visit plugin over N elders: plan + persist.
    Duty {
        #[arg(long, default_value_t = 100_000)]
        targets: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// N duties scheduled, the scheduler loop idle between fires: CPU time used.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        duties: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Instantiate + describe (median of many), and plan over many targets, for a plugin.
    Plugin {
        file: PathBuf,
        /// Targets for the plan benchmark.
        #[arg(long, default_value_t = 100_000)]
        targets: usize,
        /// Describe calls to time.
        #[arg(long, default_value_t = 2000)]
        iterations: usize,
    },
    /// Deploy a synthetic component of N empty functions (a compile bomb) the way the daemon
    /// does: refused before compiling above plugins.max_functions, else compiled in a child
    /// process. Reports the time and this process's memory after.
    Bomb {
        #[arg(long, default_value_t = 200_000)]
        functions: usize,
    },
    /// Generate N people in care as CSV, import them into a fresh database, report time and
    /// peak memory.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Folder for the generated CSV and database (default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportKind {
    Persons,
    Volunteers,
}

/// Where the database is: a config file's data_dir, or a data folder.
#[derive(clap::Args)]
struct Place {
    /// Config file naming the data folder.
    #[arg(long, short, conflicts_with = "data")]
    config: Option<PathBuf>,
    /// Data folder (default: ./linli-data).
    #[arg(long)]
    data: Option<PathBuf>,
}

impl Place {
    fn database(&self) -> Result<PathBuf, Failure> {
        if let Some(c) = &self.config {
            let cfg = Config::load(c).map_err(|e| Failure::Usage(e.to_string()))?;
            // Dates (ages, expiry) are judged in the configured zone.
            linli::clock::set_local_zone(cfg.tz());
            return Ok(cfg.database_path());
        }
        let dir = self
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from("linli-data"));
        Ok(dir.join("linli.redb"))
    }
}

/// A failure with its exit code.
enum Failure {
    Usage(String),
    Database(OpenError),
    /// The data folder is held by another daemon.
    Locked(String),
    Rejected(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Database(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
        Err(Failure::Locked(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(3)
        }
        Err(Failure::Rejected(m)) => {
            eprintln!("{m}");
            ExitCode::from(4)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// Logging with a default level; `RUST_LOG` overrides it.
fn init_logging_at(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Takes the data folder's daemon lock (`store::DataLock`).
fn lock_data(database: &Path) -> Result<linli::store::DataLock, Failure> {
    linli::store::DataLock::acquire(database).map_err(|e| Failure::Locked(e.to_string()))
}

fn open_store(path: &Path, check_integrity: bool) -> Result<Store, Failure> {
    Store::open(
        path,
        OpenOptions {
            check_integrity,
            ..OpenOptions::default()
        },
    )
    .map_err(Failure::Database)
}

/// The daemon compiles plugins in a child process of this very binary.
fn compiler() -> Compiler {
    match std::env::current_exe() {
        Ok(exe) => Compiler::Child(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find linlid's own path; compiling plugins in-process");
            Compiler::InProcess
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Runtime)
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { config } => {
            let cfg = Config::load(&config).map_err(|e| Failure::Usage(e.to_string()))?;
            init_logging(cfg.log_format);
            // One daemon per data folder: held until the process ends.
            let _lock = lock_data(&cfg.database_path())?;
            let store = open_store(&cfg.database_path(), true)?;
            let state = AppState::with_plugin_host(
                store,
                clock::system(),
                cfg.tz(),
                &cfg.plugins,
                compiler(),
            )
            .context("starting")
            .map_err(Failure::Runtime)?;
            let mut opts = linli::server::ServeOptions::new(cfg.shutdown_grace());
            opts.plugin_dir = Some(cfg.plugin_dir.clone());
            let rt = runtime()?;
            let grace = cfg.shutdown_grace();
            let served = rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(cfg.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", cfg.listen))?;
                // The bound address: with port 0 the system picks one, and this line says which.
                let address = listener.local_addr().unwrap_or(cfg.listen);
                tracing::info!(%address, data = %cfg.data_dir.display(), "linlid serving");
                linli::server::run(listener, state, linli::server::shutdown_signal(), opts)
                    .await
                    .context("server failed")?;
                Ok::<_, Failure>(())
            });
            // Whatever still runs on a blocking thread gets the grace period, no more.
            rt.shutdown_timeout(grace);
            served
        }
        Command::Demo {
            data,
            listen,
            persons,
            volunteers,
            no_serve,
        } => demo(data, listen, persons, volunteers, no_serve),
        Command::CompilePlugin { memory_mib } => {
            linli::plugins::compile::child_main(memory_mib).map_err(Failure::Rejected)
        }
        Command::CheckConfig { file } => {
            let cfg = Config::load(&file).map_err(|e| Failure::Usage(e.to_string()))?;
            println!("{}: ok", file.display());
            println!("  listen              {}", cfg.listen);
            println!("  data_dir            {}", cfg.data_dir.display());
            println!("  time_zone           {}", cfg.time_zone);
            println!("  plugin_dir          {}", cfg.plugin_dir.display());
            println!("  log_format          {:?}", cfg.log_format);
            println!("  shutdown_grace_secs {}", cfg.shutdown_grace_secs);
            let p = &cfg.plugins;
            println!(
                "  plugins             components ≤ {} MiB, ≤ {} functions, ≤ {} MiB of code, \
                 functions ≤ {} KiB, ≤ {} modules; compile ≤ {} s and {} MiB; \
                 {} calls at once per plugin, {} instance slots; {} versions kept; \
                 {} log lines a minute",
                p.max_component_mib,
                p.max_functions,
                p.max_code_mib,
                p.max_function_kib,
                p.max_modules,
                p.compile_timeout_secs,
                p.compile_memory_mib,
                p.max_concurrent_calls,
                p.instance_slots,
                p.keep_versions,
                p.log_lines_per_minute
            );
            Ok(())
        }
        Command::Token {
            action: TokenAction::List { place },
        } => {
            let store = open_store(&place.database()?, false)?;
            let tokens = auth::list_tokens(&store).map_err(|e| Failure::Runtime(e.into()))?;
            println!(
                "{:<14} {:<24} {:<22} {:<22} label",
                "id", "scope", "created", "revoked"
            );
            for t in tokens {
                println!(
                    "{:<14} {:<24} {:<22} {:<22} {}",
                    t.id,
                    t.scope,
                    t.created_at.format("%Y-%m-%d %H:%M:%S"),
                    t.revoked_at.map_or("-".to_owned(), |r| r
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()),
                    t.label.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Token {
            action: TokenAction::Revoke { id, place },
        } => {
            let store = open_store(&place.database()?, false)?;
            let t =
                auth::revoke_token(&store, &id, clock::SystemClock.now()).map_err(|e| match e {
                    auth::TokenError::Scope(m) => Failure::Usage(m),
                    other => Failure::Runtime(other.into()),
                })?;
            println!(
                "revoked {} ({}); a running daemon stops accepting it within 30 seconds",
                t.id, t.scope
            );
            Ok(())
        }
        Command::Token {
            action:
                TokenAction::Create {
                    scope,
                    label,
                    place,
                },
        } => {
            let scope: Scope = scope.parse().map_err(Failure::Usage)?;
            let store = open_store(&place.database()?, false)?;
            let token = auth::create_token(&store, &scope, label, clock::SystemClock.now())
                .map_err(|e| match e {
                    auth::TokenError::Scope(m) => Failure::Usage(m),
                    other => Failure::Runtime(other.into()),
                })?;
            println!("{token}");
            eprintln!("created a {scope} token; it is shown only this once");
            Ok(())
        }
        Command::Import {
            kind,
            file,
            skip_invalid,
            place,
        } => {
            let store = open_store(&place.database()?, false)?;
            let kind = match kind {
                ImportKind::Persons => Kind::Persons,
                ImportKind::Volunteers => Kind::Volunteers,
            };
            import_file(&store, kind, &file, skip_invalid)
        }
        Command::Bench {
            what: Bench::Import { rows, dir },
        } => bench_import(rows, dir),
        Command::Bench {
            what:
                Bench::Plugin {
                    file,
                    targets,
                    iterations,
                },
        } => bench_plugin(&file, targets, iterations),
        Command::Bench {
            what: Bench::Bomb { functions },
        } => bench_bomb(functions),
        Command::Plugin { action } => plugin_command(action),
        Command::Bench {
            what: Bench::Duty { targets, dir },
        } => bench_duty(targets, dir),
        Command::Bench {
            what:
                Bench::Idle {
                    duties,
                    seconds,
                    dir,
                },
        } => bench_idle(duties, seconds, dir),
        Command::Duty {
            action:
                DutyAction::Preview {
                    cron,
                    tz,
                    after,
                    count,
                },
        } => duty_preview(&cron, &tz, after.as_deref(), count),
    }
}

fn import_file(store: &Store, kind: Kind, file: &Path, skip_invalid: bool) -> Result<(), Failure> {
    let len = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(len * 2);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {percent}% ({eta} left)")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message("checking, then writing");
        Some(bar)
    } else {
        None
    };
    let opts = ImportOptions {
        kind,
        skip_invalid,
        guard: &Everything,
        now: clock::SystemClock.now(),
    };
    let report = import::import_file(store, file, &opts, &mut |done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    })
    .map_err(|e| match e {
        import::ImportError::Header(m) => Failure::Usage(format!("{}: {m}", file.display())),
        other => Failure::Runtime(anyhow::anyhow!("{}: {other}", file.display())),
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for e in &report.errors {
        eprintln!("{}:{}: {}: {}", file.display(), e.row, e.field, e.message);
    }
    if report.error_count as usize > report.errors.len() {
        eprintln!(
            "… and {} more errors",
            report.error_count as usize - report.errors.len()
        );
    }
    if report.error_count > 0 && !skip_invalid {
        return Err(Failure::Rejected(format!(
            "{} invalid row(s) out of {}: nothing was imported. Fix them, or pass --skip-invalid to import the {} valid rows.",
            report.error_count.min(report.rows),
            report.rows,
            report.rows.saturating_sub(bad_rows(&report))
        )));
    }
    println!(
        "imported {} of {} rows ({} skipped)",
        report.imported, report.rows, report.skipped
    );
    Ok(())
}

fn bad_rows(report: &import::ImportReport) -> u64 {
    let mut rows: Vec<u64> = report.errors.iter().map(|e| e.row).collect();
    rows.dedup();
    rows.len() as u64
}

fn demo(
    data: PathBuf,
    listen: std::net::SocketAddr,
    persons: usize,
    volunteers: usize,
    no_serve: bool,
) -> Result<(), Failure> {
    // The demo narrates on stderr itself; logs stay quiet unless RUST_LOG asks.
    init_logging_at(LogFormat::Pretty, "warn");
    let _lock = lock_data(&data.join("linli.redb"))?;
    let store = open_store(&data.join("linli.redb"), true)?;
    let clock = clock::system();
    let now = clock.now();
    let empty = store
        .read(|r| r.region(linli::demo::CITY))
        .map_err(|e| Failure::Runtime(e.into()))?
        .is_none();
    if empty {
        eprintln!(
            "seeding the demo county (平凉市崆峒区) into {} …",
            data.display()
        );
        let seeded = linli::demo::seed(
            &store,
            now,
            linli::demo::Size {
                persons,
                volunteers,
            },
        )
        .context("seeding the demo county")?;
        eprintln!(
            "  {} regions, {} stations, {} people in care, {} volunteers",
            seeded.regions,
            seeded.stations.len(),
            seeded.persons.imported,
            seeded.volunteers.imported
        );
    } else {
        eprintln!("using the demo county already in {}", data.display());
    }
    let state = AppState::with_plugin_host(
        store.clone(),
        clock,
        chrono_tz::Asia::Shanghai,
        &Default::default(),
        compiler(),
    )
    .context("starting")
    .map_err(Failure::Runtime)?;
    let actor = linli::plugins::catalog::Actor {
        label: "demo".into(),
        bureau: None,
    };
    for (name, bytes) in linli::plugins::SHIPPED {
        match state.plugins.deploy(bytes, &actor) {
            Ok(d) if d.changed => eprintln!(
                "  plugin {} {} deployed",
                d.status.id, d.status.active_version
            ),
            Ok(d) => eprintln!(
                "  plugin {} {} already deployed",
                d.status.id, d.status.active_version
            ),
            Err(e) => eprintln!("  plugin {name} refused: {e}"),
        }
    }
    match linli::demo::seed_duties(&state.scheduler, now) {
        Ok(ran) => {
            for (name, o) in ran {
                eprintln!(
                    "  duty {name}: occurrence {} → {} tasks",
                    o.scheduled_at
                        .with_timezone(&chrono_tz::Asia::Shanghai)
                        .format("%Y-%m-%d %H:%M"),
                    o.tasks_created
                );
            }
        }
        Err(e) => eprintln!("  duties not created: {e}"),
    }
    let mk = |scope: Scope, label: &str| {
        auth::create_token(&store, &scope, Some(label.to_owned()), now)
            .map_err(|e| Failure::Runtime(e.into()))
    };
    let admin = mk(Scope::Admin, "demo admin")?;
    let bureau = mk(
        Scope::Bureau(linli::demo::COUNTY.into()),
        "demo 崆峒区民政局",
    )?;
    let station = mk(Scope::Station(1), "demo 东关街道社会工作站")?;
    let url = format!("http://{listen}");
    println!("linli demo — 平凉市崆峒区 (synthetic data)");
    println!("  URL:            {url}");
    println!("  admin token:    {admin}");
    println!(
        "  bureau token:   {bureau}   (bureau:{})",
        linli::demo::COUNTY
    );
    println!("  station token:  {station}   (station:1, 东关街道社会工作站)");
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
    println!("  curl -s {url}/v1/openapi.json | head -c 300");
    println!("  curl -s {url}/metrics | grep linli_store_rows");
    if no_serve {
        return Ok(());
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (pass --listen 127.0.0.1:PORT)"))?;
        eprintln!("serving; Ctrl-C stops");
        linli::server::run(
            listener,
            state,
            linli::server::shutdown_signal(),
            linli::server::ServeOptions::new(std::time::Duration::from_secs(10)),
        )
        .await
        .context("server failed")?;
        Ok(())
    })
}

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

fn bench_bomb(functions: usize) -> Result<(), Failure> {
    let tmp = tempdir_for(None)?;
    let store = open_store(&tmp.join("bomb.redb"), false)?;
    let state = AppState::with_plugin_host(
        store,
        clock::system(),
        chrono_tz::Asia::Shanghai,
        &Default::default(),
        compiler(),
    )
    .context("starting")?;
    let bomb = linli::plugins::checks::synthetic_component(functions);
    let actor = linli::plugins::catalog::Actor {
        label: "bench".into(),
        bureau: None,
    };
    let before = rss_mib().unwrap_or(0.0);
    let (result, took) =
        linli::plugins::runtime::timed(|| state.plugins.deploy(&bomb, &actor).map(|_| ()));
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
    drop(state);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

fn bench_import(rows: usize, dir: Option<PathBuf>) -> Result<(), Failure> {
    let tmp = tempdir_for(dir)?;
    let csv_path = tmp.join("persons.csv");
    let db_path = tmp.join("bench.redb");
    let _ = std::fs::remove_file(&db_path);
    eprintln!("generating {rows} rows into {} …", csv_path.display());
    let store = open_store(&db_path, false)?;
    let now = clock::SystemClock.now();
    linli::demo::bench_fixture(&store, &csv_path, rows, now)
        .context("generating the benchmark file")?;
    let rss_before = peak_rss_mib().unwrap_or(0.0);
    let started = std::time::Instant::now();
    let opts = ImportOptions {
        kind: Kind::Persons,
        skip_invalid: false,
        guard: &Everything,
        now,
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

fn tempdir_for(dir: Option<PathBuf>) -> Result<PathBuf, Failure> {
    let d = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("linli-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        Failure::Usage(format!(
            "{}: {} at line {}, column {}",
            path.display(),
            e,
            e.inner().line(),
            e.inner().column()
        ))
    })
}

fn load_plugin(
    rt: &Runtime,
    file: &Path,
    limits: &Limits,
) -> Result<linli::plugins::runtime::Loaded, Failure> {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
    rt.load(&bytes, limits)
        .map_err(|e| Failure::Rejected(format!("{}: refused: {e}", file.display())))
}

fn plugin_command(action: PluginAction) -> Result<(), Failure> {
    // The same checks and the same child-process compile as a deployment.
    let rt = Runtime::with_config(clock::system(), &Default::default(), compiler())
        .map_err(|e| Failure::Runtime(e.into()))?;
    match action {
        PluginAction::Shipped { out } => {
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::Usage(format!("{}: {e}", out.display())))?;
            for (name, bytes) in linli::plugins::SHIPPED {
                let path = out.join(name);
                std::fs::write(&path, bytes)
                    .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
                println!("{}", path.display());
            }
            Ok(())
        }
        PluginAction::Check { file } => {
            let loaded = load_plugin(&rt, &file, &Limits::default())?;
            let d = &loaded.description;
            println!(
                "{}: ok — a linli:plugin@0.1.0 action plugin",
                file.display()
            );
            println!("  id       {}", d.id);
            println!("  version  {}", d.version);
            println!("  name     {} / {}", d.names.zh, d.names.en);
            println!("  sha256   {}", loaded.sha256);
            println!("  size     {} bytes", loaded.size);
            for a in &d.actions {
                let targets = match a.target_kind {
                    linli::plugins::model::TargetKind::Person => {
                        format!("people in care: {}", a.categories.join(", "))
                    }
                    linli::plugins::model::TargetKind::Community => "communities".to_owned(),
                };
                println!(
                    "  action   {} — {} / {} — default `{}` — {targets}",
                    a.id, a.names.zh, a.names.en, a.default_cron
                );
            }
            Ok(())
        }
        PluginAction::Run {
            file,
            call,
            config,
            deadline_ms,
        } => {
            let limits = Limits {
                deadline_ms,
                ..Limits::default()
            };
            let loaded = load_plugin(&rt, &file, &limits)?;
            let config = match config {
                Some(p) => read_json::<serde_json::Value>(&p)?.to_string(),
                None => "{}".to_owned(),
            };
            let (json, logs) = match call {
                RunCall::Plan {
                    targets,
                    action,
                    at,
                } => {
                    let targets: Vec<linli::plugins::model::Target> = read_json(&targets)?;
                    let action = action
                        .or_else(|| loaded.description.actions.first().map(|a| a.id.clone()))
                        .unwrap_or_default();
                    let tz = chrono_tz::Asia::Shanghai;
                    let at = at.unwrap_or_else(|| {
                        clock::SystemClock
                            .now()
                            .with_timezone(&tz)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                    });
                    let occurrence = linli::plugins::model::Occurrence {
                        duty: "cli".into(),
                        action,
                        scheduled_at: at,
                        time_zone: tz.name().into(),
                    };
                    let (drafts, logs) = rt
                        .plan(&loaded, &config, &limits, &occurrence, &targets)
                        .map_err(|e| Failure::Rejected(format!("plan failed: {e}")))?;
                    (serde_json::to_string_pretty(&drafts), logs)
                }
                RunCall::Review { task, report } => {
                    let task: linli::plugins::model::TaskInfo = read_json(&task)?;
                    let report: linli::plugins::model::VisitReport = read_json(&report)?;
                    let (outcome, logs) = rt
                        .review(&loaded, &config, &limits, &task, &report)
                        .map_err(|e| Failure::Rejected(format!("review failed: {e}")))?;
                    (serde_json::to_string_pretty(&outcome), logs)
                }
            };
            for l in logs {
                eprintln!("[{}] {}", l.level, l.message);
            }
            println!("{}", json.map_err(|e| Failure::Runtime(e.into()))?);
            Ok(())
        }
    }
}

fn bench_plugin(file: &Path, targets: usize, iterations: usize) -> Result<(), Failure> {
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
        let (r, took) = linli::plugins::runtime::timed(|| rt.describe(&loaded, "{}", &limits));
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
    let target_list: Vec<linli::plugins::model::Target> = (0..targets as u64)
        .map(|id| match action.as_ref().map(|a| a.target_kind) {
            Some(linli::plugins::model::TargetKind::Community) => {
                linli::plugins::model::Target::Community(linli::plugins::model::CommunityTarget {
                    code: format!("620802{:06}", 1000 + id % 999_000),
                    name: "社区".into(),
                    settlement: Some("rural".into()),
                    population: Some(1200),
                })
            }
            _ => linli::plugins::model::Target::Person(linli::plugins::model::PersonTarget {
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
                disability: (id % 5 == 0).then(|| linli::plugins::model::DisabilityInfo {
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
    let occurrence = linli::plugins::model::Occurrence {
        duty: "bench".into(),
        action: action.map(|a| a.id).unwrap_or_default(),
        scheduled_at: "2026-12-01T09:00:00+08:00".into(),
        time_zone: "Asia/Shanghai".into(),
    };
    let mut plan_times = Vec::new();
    let mut drafts = 0;
    for _ in 0..5 {
        let (r, took) = linli::plugins::runtime::timed(|| {
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

fn duty_preview(cron: &str, tz: &str, after: Option<&str>, count: usize) -> Result<(), Failure> {
    let expr: linli::schedule::cron::CronExpr = cron
        .parse()
        .map_err(|e: linli::schedule::cron::CronError| Failure::Usage(format!("--cron: {e}")))?;
    let zone = linli::schedule::cron::zone(tz).map_err(|m| Failure::Usage(format!("--tz: {m}")))?;
    let after = match after {
        Some(a) => chrono::DateTime::parse_from_rfc3339(a)
            .map_err(|e| {
                Failure::Usage(format!(
                    "--after {a:?} is not RFC 3339 ({e}), e.g. 2026-12-01T00:00:00+08:00"
                ))
            })?
            .to_utc(),
        None => clock::SystemClock.now(),
    };
    for t in linli::schedule::next_n(&expr, zone, after, count) {
        println!("{}", t.with_timezone(&zone).to_rfc3339());
    }
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
fn bench_state(dir: Option<PathBuf>, rows: usize) -> Result<(PathBuf, AppState), Failure> {
    let tmp = tempdir_for(dir)?;
    let db = tmp.join("bench-duty.redb");
    let _ = std::fs::remove_file(&db);
    let store = open_store(&db, false)?;
    let now = clock::SystemClock.now();
    let csv = tmp.join("elders.csv");
    linli::demo::bench_fixture_with(&store, &csv, rows, true, now).context("generating elders")?;
    let opts = ImportOptions {
        kind: Kind::Persons,
        skip_invalid: false,
        guard: &Everything,
        now,
    };
    import::import_file(&store, &csv, &opts, &mut |_| {})
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let state = AppState::new(store, clock::system())
        .context("starting")
        .map_err(Failure::Runtime)?;
    let actor = linli::plugins::catalog::Actor {
        label: "bench".into(),
        bureau: None,
    };
    state
        .plugins
        .deploy(linli::plugins::SHIPPED[0].1, &actor)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    Ok((tmp, state))
}

fn monthly_duty(cron: &str) -> linli::schedule::DutyInput {
    linli::schedule::DutyInput {
        name: "bench".into(),
        plugin: "elderly-visit".into(),
        action: "monthly-visit".into(),
        cron: Some(cron.into()),
        time_zone: None,
        selector: linli::schedule::Selector {
            region: linli::demo::COUNTY.into(),
            categories: Vec::new(),
            needs: Vec::new(),
            communities: Vec::new(),
        },
        due_window_days: None,
        catch_up: Default::default(),
        paused: false,
    }
}

fn bench_duty(targets: usize, dir: Option<PathBuf>) -> Result<(), Failure> {
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

fn bench_idle(duties: usize, seconds: u64, dir: Option<PathBuf>) -> Result<(), Failure> {
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
            Ok::<_, linli::store::StoreError>(())
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    let cpu0 = cpu_seconds();
    let (next, first_tick) = linli::plugins::runtime::timed(|| state.scheduler.tick());
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
