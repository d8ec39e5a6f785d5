//! `linlid check-config`, `token …`, `import …` and `duty preview`: the administrator's tools
//! beside a running daemon (they open the database briefly; `serve` need not stop).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use super::{Failure, open_store};
use crate::api::auth::{self, Scope};
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::registry::import::{self, ImportOptions, Kind};
use crate::service::Everything;

/// `linlid check-config FILE`: loads a config and prints what it resolves to.
pub fn check_config(file: &Path) -> Result<(), Failure> {
    let cfg = Config::load(file).map_err(|e| Failure::Usage(e.to_string()))?;
    println!("{}: ok", file.display());
    println!("  listen              {}", cfg.listen);
    println!("  data_dir            {}", cfg.data_dir.display());
    println!("  time_zone           {}", cfg.time_zone);
    println!("  plugin_dir          {}", cfg.plugin_dir.display());
    println!("  log_format          {:?}", cfg.log_format);
    println!("  shutdown_grace_secs {}", cfg.shutdown_grace_secs);
    println!(
        "  api                 JSON bodies ≤ {} KiB, CSV imports ≤ {} MiB, /metrics {}",
        cfg.api.max_json_kib,
        cfg.api.max_import_mib,
        if cfg.api.public_metrics {
            "public"
        } else {
            "for admin tokens"
        }
    );
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
    let n = &cfg.notify;
    println!(
        "  notify              attempts ≤ {} s, {} at once per webhook, robots {} a minute; kept {} days; old secrets sign {} h; {}{}; links to {}",
        n.timeout_secs,
        n.max_in_flight,
        n.robot_per_minute,
        n.retention_days,
        n.rotation_overlap_hours,
        if n.allow_http {
            "http allowed"
        } else {
            "https only"
        },
        if n.allow_private_addresses {
            ", internal addresses allowed"
        } else {
            ", no internal addresses"
        },
        n.public_base_url.as_deref().unwrap_or("(none)")
    );
    let r = &cfg.records;
    let t = &r.targets;
    println!(
        "  records             targets: elders {:.0}%, children {:.0}%, disability care {:.0}%, drills {:.0}% (within {} months), information officers {:.0}%, satisfied {:.0}%; audit kept {} days; rating links {} days; certificates point at {}",
        t.elder_visit_rate * 100.0,
        t.child_visit_rate * 100.0,
        t.disability_care_rate * 100.0,
        t.drill_rate * 100.0,
        r.drill_window_months,
        t.info_officer_rate * 100.0,
        t.satisfaction_rate * 100.0,
        r.audit_retention_days,
        r.rating_link_days,
        cfg.records_base_url()
    );
    let years: Vec<String> = cfg
        .work_calendar()
        .years()
        .map(|(y, _)| y.to_string())
        .collect();
    println!(
        "  calendar            holidays and adjusted working days known for {} (other years: plain weeks)",
        years.join(", ")
    );
    Ok(())
}

/// `linlid token list`.
pub fn token_list(database: &Path) -> Result<(), Failure> {
    let store = open_store(database, false)?;
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

/// `linlid token revoke ID`.
pub fn token_revoke(database: &Path, id: &str) -> Result<(), Failure> {
    let store = open_store(database, false)?;
    let t =
        auth::revoke_token(&store, id, clock::SystemClock.now(), false).map_err(|e| match e {
            auth::TokenError::Scope(m) => Failure::Usage(m),
            auth::TokenError::Label(m) => Failure::Usage(format!("--label: {m}")),
            other => Failure::Runtime(other.into()),
        })?;
    println!(
        "revoked {} ({}); a running daemon stops accepting it within 30 seconds",
        t.id, t.scope
    );
    Ok(())
}

/// `linlid token create --scope S`: prints the token (shown only this once).
pub fn token_create(database: &Path, scope: &str, label: Option<String>) -> Result<(), Failure> {
    let scope: Scope = scope.parse().map_err(Failure::Usage)?;
    let store = open_store(database, false)?;
    let token = auth::create_token(&store, &scope, label, clock::SystemClock.now()).map_err(
        |e| match e {
            auth::TokenError::Scope(m) => Failure::Usage(m),
            auth::TokenError::Label(m) => Failure::Usage(format!("--label: {m}")),
            other => Failure::Runtime(other.into()),
        },
    )?;
    println!("{token}");
    eprintln!("created a {scope} token; it is shown only this once");
    Ok(())
}

fn accounts(database: &Path) -> Result<crate::console::accounts::Accounts, Failure> {
    let store = open_store(database, false)?;
    Ok(crate::console::accounts::Accounts::new(
        store,
        clock::system(),
        Default::default(),
    ))
}

fn account_failure(e: crate::service::ServiceError) -> Failure {
    use crate::service::ServiceError as E;
    match e {
        E::Invalid(i) => Failure::Usage(i.to_string()),
        E::Conflict { message, .. } => Failure::Usage(message),
        E::NotFound { id, .. } => Failure::Usage(format!(
            "there is no account {id}; `linlid user list` shows them"
        )),
        other => Failure::Runtime(other.into()),
    }
}

/// The password from stdin's first line, or a generated one (printed).
fn password_from(stdin: bool) -> Result<(String, bool), Failure> {
    if !stdin {
        return Ok((crate::console::accounts::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::Usage(format!("--password-stdin: cannot read stdin: {e}")))?;
    Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
}

/// `linlid user list`.
pub fn user_list(database: &Path) -> Result<(), Failure> {
    let users = accounts(database)?
        .users()
        .map_err(|e| Failure::Runtime(e.into()))?;
    println!("{:<24} {:<24} {:<9} label", "name", "scope", "state");
    for u in users {
        println!(
            "{:<24} {:<24} {:<9} {}",
            u.name,
            u.scope,
            if u.disabled { "disabled" } else { "active" },
            u.label.unwrap_or_default()
        );
    }
    Ok(())
}

/// `linlid user create NAME --scope S`.
pub fn user_create(
    database: &Path,
    name: &str,
    scope: &str,
    label: Option<String>,
    password_stdin: bool,
) -> Result<(), Failure> {
    let (password, generated) = password_from(password_stdin)?;
    let u = accounts(database)?
        .create_user(name, scope, label, &password)
        .map_err(account_failure)?;
    if generated {
        println!("{password}");
        eprintln!(
            "created {} ({}); the password above is shown only this once",
            u.name, u.scope
        );
    } else {
        eprintln!("created {} ({})", u.name, u.scope);
    }
    Ok(())
}

/// `linlid user reset NAME`.
pub fn user_reset(database: &Path, name: &str, password_stdin: bool) -> Result<(), Failure> {
    let (password, generated) = password_from(password_stdin)?;
    accounts(database)?
        .reset_password(name, &password)
        .map_err(account_failure)?;
    if generated {
        println!("{password}");
    }
    eprintln!("{name}: new password set; the account's sessions ended");
    Ok(())
}

/// `linlid user disable|enable NAME`.
pub fn user_disable(database: &Path, name: &str, disabled: bool) -> Result<(), Failure> {
    accounts(database)?
        .set_disabled(name, disabled)
        .map_err(account_failure)?;
    eprintln!(
        "{name}: {}",
        if disabled {
            "disabled; its sessions ended"
        } else {
            "enabled"
        }
    );
    Ok(())
}

/// `linlid import persons|volunteers FILE`: imports a CSV file (with a progress bar on a
/// terminal), printing each refused row as `file:row: field: message`.
/// How `linlid report coverage` prints.
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

/// `linlid report coverage`: the coverage report of a region and month, from the database
/// (targets from the config file when one is given). Recorded in the audit log as an export.
pub fn coverage(
    database: &Path,
    config: Option<&Path>,
    month: Option<&str>,
    region: &str,
    months: u32,
    format: ReportFormat,
) -> Result<(), Failure> {
    use crate::records::coverage;
    let cfg = match config {
        Some(c) => Config::load(c).map_err(|e| Failure::Usage(e.to_string()))?,
        None => Config::default(),
    };
    let month = match month {
        Some(m) => coverage::parse_month(m).map_err(|e| Failure::Usage(e.to_string()))?,
        None => {
            crate::records::model::month_key(crate::clock::local_date(clock::SystemClock.now()))
        }
    };
    if !(1..=24).contains(&months) {
        return Err(Failure::Usage("--months must be 1 to 24".into()));
    }
    let store = open_store(database, false)?;
    let report = store
        .read(|r| {
            coverage::report(
                r,
                region,
                month,
                months,
                &cfg.records.targets,
                cfg.records.drill_window_months,
            )
        })
        .map_err(|e| match e {
            coverage::CoverageError::Store(s) => Failure::Runtime(s.into()),
            other => Failure::Usage(other.to_string()),
        })?;
    store
        .write(|w| {
            w.append_audit(crate::records::model::AuditEntry {
                seq: 0,
                at: clock::SystemClock.now(),
                token: "cli".into(),
                scope: "admin".into(),
                action: crate::records::model::AuditAction::Export,
                subject: format!("coverage:{region}:{}", report.month),
                count: Some(report.rows.len() as u64 + 1),
                route: "linlid report coverage".into(),
                region: Some(region.to_owned()),
            })
        })
        .map_err(|e| Failure::Runtime(e.into()))?;
    let out = match format {
        ReportFormat::Table => coverage::to_table(&report),
        ReportFormat::Csv => coverage::to_csv(&report),
        ReportFormat::Json => {
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.into()))? + "\n"
        }
    };
    print!("{out}");
    Ok(())
}

pub fn import_file(
    database: &Path,
    kind: Kind,
    file: &Path,
    skip_invalid: bool,
) -> Result<(), Failure> {
    let store = open_store(database, false)?;
    let store = &store;
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
        cancel: None,
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

/// `linlid duty preview`: the next fire times of a cron expression.
pub fn duty_preview(
    cron: &str,
    tz: &str,
    after: Option<&str>,
    count: usize,
) -> Result<(), Failure> {
    let expr: crate::schedule::cron::CronExpr = cron
        .parse()
        .map_err(|e: crate::schedule::cron::CronError| Failure::Usage(format!("--cron: {e}")))?;
    let zone = crate::schedule::cron::zone(tz).map_err(|m| Failure::Usage(format!("--tz: {m}")))?;
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
    for t in crate::schedule::next_n(&expr, zone, after, count) {
        println!("{}", t.with_timezone(&zone).to_rfc3339());
    }
    Ok(())
}
