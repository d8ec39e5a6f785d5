//! `linlid`: arguments, and the exit code of what they ask for (`linli::commands` does the
//! work). Exit codes: 0 success; 1 runtime failure; 2 bad arguments or config; 3 database
//! refused (not a linli database, damaged, from a newer version, or in use — by another
//! `linlid serve` for serve and demo); 4 input refused (invalid rows, a refused plugin).

/// mimalloc: many small allocations move across the plugin boundary on every call.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use linli::commands::{self, Failure, admin, bench, plugin, serve};
use linli::registry::import::Kind;

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
    /// Print the HTTP API's OpenAPI document (what `GET /v1/openapi.json` serves).
    Openapi,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Manage console accounts (staff log in at the console with a username and password).
    User {
        #[command(subcommand)]
        action: UserAction,
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
    /// Reports from the records (coverage against the plan's targets).
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Work with duty schedules.
    Duty {
        #[command(subcommand)]
        action: DutyAction,
    },
    /// Plan volunteer matching offline.
    Match {
        #[command(subcommand)]
        action: MatchAction,
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
enum UserAction {
    /// List console accounts.
    List {
        #[command(flatten)]
        place: Place,
    },
    /// Create an account; prints a generated password unless --password-stdin gives one.
    Create {
        /// 3 to 32 lower-case letters, digits, '.', '_' or '-'.
        name: String,
        /// admin, bureau:<region-code> or station:<id>
        #[arg(long)]
        scope: String,
        /// Who the account is for.
        #[arg(long)]
        label: Option<String>,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Set a new password (generated, or from stdin); the account's sessions end.
    Reset {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Disable an account; its sessions end at once.
    Disable {
        name: String,
        #[command(flatten)]
        place: Place,
    },
    /// Enable a disabled account again.
    Enable {
        name: String,
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
enum MatchAction {
    /// Read tasks and volunteers from a JSON file (see config/match-example.json) and print the
    /// plan: assignments, unstaffed tasks with reasons, staffed count, total distance and cost.
    Plan { file: PathBuf },
}

#[derive(Subcommand)]
enum PluginAction {
    /// Run the checks a deployment runs and print what the plugin describes.
    Check {
        file: PathBuf,
        /// A configuration (JSON file) to check against the plugin's schema.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a new plugin project: skeleton, release profile, a test through the harness, and
    /// sample files for `linlid plugin run`.
    New {
        /// The plugin's id, lower-case with dashes (e.g. legal-aid); also the folder's name.
        name: String,
        #[arg(long, value_enum, default_value_t = PluginLang::Rust)]
        lang: PluginLang,
        /// Where to create the project folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// linli's sdk folder, which the project depends on by path.
        #[arg(long, default_value = "linli/sdk")]
        sdk: PathBuf,
    },
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
    /// Signed webhook deliveries to a local receiver (durable), then the latency of one urgent
    /// message behind a backlog of routine ones.
    Notify {
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
        #[arg(long, default_value_t = 8)]
        endpoints: usize,
        #[arg(long, default_value_t = 100_000)]
        backlog: usize,
        /// Folder for the database (default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Plan a county-sized synthetic matching problem (clustered villages, 20 stations).
    Match {
        #[arg(long, default_value_t = 100_000)]
        tasks: usize,
        #[arg(long, default_value_t = 20_000)]
        volunteers: usize,
        /// Write the county into a store, staff it in one batch through the scheduler, then
        /// time one-off tasks over HTTP (`POST /v1/tasks` to the stored offer).
        #[arg(long)]
        store: bool,
        /// The continuity bonus (0: the exactness benchmark; the daemon's default is 2).
        #[arg(long, default_value_t = 0.0)]
        continuity_km: f64,
        /// The fairness cost per further task (0: the exactness benchmark; the daemon's default
        /// is 0.5).
        #[arg(long, default_value_t = 0.0)]
        fairness_km: f64,
        /// One-off tasks to time (with `--store`).
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// Where the store is written (with `--store`; default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The station dashboard of a township with ~10,000 open tasks over HTTP (median, p95), and
    /// the bytes of the volunteer's task page.
    Console {
        /// Tasks stored in the county (about 15% of them open: 1,400,000 gives ~10,500 per
        /// township).
        #[arg(long, default_value_t = 1_400_000)]
        tasks: usize,
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// Folder for the database (kept, and reused by the next run).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The monthly coverage report over county-sized files (people in care and stored tasks
    /// per county), and the provincial view over every county in the file.
    Coverage {
        #[arg(long, default_value_t = 1)]
        counties: usize,
        /// People in care per county.
        #[arg(long, default_value_t = 100_000)]
        persons: usize,
        /// Stored tasks per county.
        #[arg(long, default_value_t = 1_000_000)]
        tasks: usize,
        /// Folder for the database (default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
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
enum PluginLang {
    Rust,
    Python,
    Js,
}

#[derive(Subcommand)]
enum ReportAction {
    /// Coverage of a region in a month: visit rates against the plan's targets, drills,
    /// information officers, tasks, hours, satisfaction; rows one level down, the ten
    /// communities furthest behind, and the trend.
    Coverage {
        /// The month, e.g. 2026-11 (default: this month).
        #[arg(long)]
        month: Option<String>,
        /// A city, county, township or community code (or a province code, e.g.
        /// 620000000000, for every county in the file).
        #[arg(long)]
        region: String,
        /// Months of trend, this one included (1 to 24).
        #[arg(long, default_value_t = 6)]
        months: u32,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        #[command(flatten)]
        place: Place,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Table,
    Csv,
    Json,
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
        commands::database_path(self.config.as_deref(), self.data.as_deref())
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve { config } => serve::serve(&config),
        Command::Demo {
            data,
            listen,
            persons,
            volunteers,
            no_serve,
        } => serve::demo(serve::DemoOptions {
            data,
            listen,
            size: linli::demo::Size {
                persons,
                volunteers,
            },
            no_serve,
        }),
        Command::CompilePlugin { memory_mib } => {
            linli::plugins::compile::child_main(memory_mib).map_err(Failure::Rejected)
        }
        Command::CheckConfig { file } => admin::check_config(&file),
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(linli::api::openapi::document())
                    .map_err(|e| Failure::Runtime(e.into()))?
            );
            Ok(())
        }
        Command::Token { action } => match action {
            TokenAction::List { place } => admin::token_list(&place.database()?),
            TokenAction::Revoke { id, place } => admin::token_revoke(&place.database()?, &id),
            TokenAction::Create {
                scope,
                label,
                place,
            } => admin::token_create(&place.database()?, &scope, label),
        },
        Command::User { action } => match action {
            UserAction::List { place } => admin::user_list(&place.database()?),
            UserAction::Create {
                name,
                scope,
                label,
                password_stdin,
                place,
            } => admin::user_create(&place.database()?, &name, &scope, label, password_stdin),
            UserAction::Reset {
                name,
                password_stdin,
                place,
            } => admin::user_reset(&place.database()?, &name, password_stdin),
            UserAction::Disable { name, place } => {
                admin::user_disable(&place.database()?, &name, true)
            }
            UserAction::Enable { name, place } => {
                admin::user_disable(&place.database()?, &name, false)
            }
        },
        Command::Import {
            kind,
            file,
            skip_invalid,
            place,
        } => {
            let kind = match kind {
                ImportKind::Persons => Kind::Persons,
                ImportKind::Volunteers => Kind::Volunteers,
            };
            admin::import_file(&place.database()?, kind, &file, skip_invalid)
        }
        Command::Report {
            action:
                ReportAction::Coverage {
                    month,
                    region,
                    months,
                    format,
                    place,
                },
        } => admin::coverage(
            &place.database()?,
            place.config.as_deref(),
            month.as_deref(),
            &region,
            months,
            match format {
                ReportFormat::Table => admin::ReportFormat::Table,
                ReportFormat::Csv => admin::ReportFormat::Csv,
                ReportFormat::Json => admin::ReportFormat::Json,
            },
        ),
        Command::Duty {
            action:
                DutyAction::Preview {
                    cron,
                    tz,
                    after,
                    count,
                },
        } => admin::duty_preview(&cron, &tz, after.as_deref(), count),
        Command::Match {
            action: MatchAction::Plan { file },
        } => commands::matching::plan_file(&file),
        Command::Plugin { action } => match action {
            PluginAction::Shipped { out } => plugin::shipped(&out),
            PluginAction::Check { file, config } => plugin::check(&file, config.as_deref()),
            PluginAction::New {
                name,
                lang,
                dir,
                sdk,
            } => {
                let lang = match lang {
                    PluginLang::Rust => plugin::Lang::Rust,
                    PluginLang::Python => plugin::Lang::Python,
                    PluginLang::Js => plugin::Lang::Js,
                };
                let root = plugin::new_project(&name, lang, &dir, &sdk)?;
                println!("{}", root.display());
                let next = match lang {
                    plugin::Lang::Rust => {
                        "`cargo test` and `cargo build --release --target wasm32-wasip2`"
                    }
                    plugin::Lang::Python | plugin::Lang::Js => "`./build.sh`",
                };
                eprintln!(
                    "created {}: cd there, then {next} (see its README.md)",
                    root.display()
                );
                Ok(())
            }
            PluginAction::Run {
                file,
                call,
                config,
                deadline_ms,
            } => {
                let call = match call {
                    RunCall::Plan {
                        targets,
                        action,
                        at,
                    } => plugin::Call::Plan {
                        targets,
                        action,
                        at,
                    },
                    RunCall::Review { task, report } => plugin::Call::Review { task, report },
                };
                plugin::run(&file, call, config.as_deref(), deadline_ms)
            }
        },
        Command::Bench { what } => match what {
            Bench::Import { rows, dir } => bench::bench_import(rows, dir),
            Bench::Coverage {
                counties,
                persons,
                tasks,
                dir,
            } => commands::bench_coverage::bench_coverage(counties, persons, tasks, dir),
            Bench::Console { tasks, runs, dir } => {
                commands::bench_console::bench_console(tasks, runs, dir)
            }
            Bench::Plugin {
                file,
                targets,
                iterations,
            } => bench::bench_plugin(&file, targets, iterations),
            Bench::Bomb { functions } => bench::bench_bomb(functions),
            Bench::Match {
                tasks,
                volunteers,
                store: false,
                continuity_km,
                fairness_km,
                ..
            } => commands::matching::bench(
                tasks,
                volunteers,
                linli::matching::Weights {
                    continuity_km,
                    fairness_km,
                },
            ),
            Bench::Match {
                tasks,
                volunteers,
                runs,
                dir,
                ..
            } => commands::bench_match::bench_store(tasks, volunteers, runs, dir),
            Bench::Notify {
                messages,
                endpoints,
                backlog,
                dir,
            } => bench::bench_notify(messages, endpoints, backlog, dir),
            Bench::Duty { targets, dir } => bench::bench_duty(targets, dir),
            Bench::Idle {
                duties,
                seconds,
                dir,
            } => bench::bench_idle(duties, seconds, dir),
        },
    }
}
