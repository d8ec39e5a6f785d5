//! The daemon's TOML configuration. Unknown keys are rejected, and every error names the file,
//! the line and the column, so an operator can go straight to the mistake.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when stderr is a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The whole configuration file. See `config/linli.example.toml` for each key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Folder holding the redb database file (`linli.redb`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// IANA time zone used when a duty or request names none.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Folder watched for action plugins (`*.wasm`).
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// `pretty` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// What the plugin host admits and how it compiles (`[plugins]`).
    #[serde(default)]
    pub plugins: PluginHostConfig,
    /// Request limits and what the HTTP API shows without a token (`[api]`).
    #[serde(default)]
    pub api: ApiConfig,
    /// How matching weighs continuity and fairness, and how long offers wait (`[matching]`).
    #[serde(default)]
    pub matching: MatchingSettings,
    /// Where notifications may go and how they are retried (`[notify]`).
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The working-day calendar (`[calendar]`).
    #[serde(default)]
    pub calendar: CalendarConfig,
    /// Visit records, certificates, coverage targets and the audit log (`[records]`).
    #[serde(default)]
    pub records: RecordsConfig,
    /// The web console's sessions and cookies (`[console]`).
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// The web console (`[console]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Mark the console's cookies `Secure` (sent over HTTPS only). Unset: on when the public
    /// base URL (`[records]` or `[notify] public_base_url`) is `https://`, as it is behind a
    /// TLS-terminating proxy.
    pub secure_cookies: Option<bool>,
    /// Hours a staff login lasts (then the password is asked again).
    pub staff_session_hours: u32,
    /// Days a volunteer's phone stays logged in (the station can end it sooner).
    pub volunteer_session_days: u32,
    /// Days a volunteer's one-time login link (or QR code) stays valid before it is used.
    pub login_link_days: u32,
    /// Addresses of reverse proxies in front of the daemon: from them (only), the client's
    /// address is read from `X-Forwarded-For`, so that failed logins are counted per client,
    /// not for everyone behind the proxy together.
    pub trusted_proxies: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            secure_cookies: None,
            staff_session_hours: 12,
            volunteer_session_days: 180,
            login_link_days: 7,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Visit records, coverage targets and the audit log (`[records]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// Days an audit-log entry is kept (the log is append-only until then).
    pub audit_retention_days: u32,
    /// Days a one-time rating link stays valid.
    pub rating_link_days: u32,
    /// A community counts as drilled when it held a drill within this many months up to the
    /// month reported.
    pub drill_window_months: u32,
    /// The address certificates' QR codes and rating links point at
    /// (`https://linli.example.gov.cn`); default `[notify] public_base_url`, else the API's
    /// listening address.
    pub public_base_url: Option<String>,
    /// Targets per indicator, as fractions (1.0 = 100%).
    pub targets: Targets,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            audit_retention_days: 1095,
            rating_link_days: 14,
            drill_window_months: 12,
            public_base_url: None,
            targets: Targets::default(),
        }
    }
}

/// What the plan asks for, per indicator (`[records.targets]`), as fractions of 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// Special-difficulty elders visited in the month (the plan: 100%).
    pub elder_visit_rate: f64,
    /// Left-behind children and children in difficulty visited in the month.
    pub child_visit_rate: f64,
    /// Persons with disabilities given a care session in the month.
    pub disability_care_rate: f64,
    /// Communities that held a drill within the drill window.
    pub drill_rate: f64,
    /// Communities with at least one disaster information officer (the plan: every one).
    pub info_officer_rate: f64,
    /// Satisfied ratings among all ratings.
    pub satisfaction_rate: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            elder_visit_rate: 1.0,
            child_visit_rate: 1.0,
            disability_care_rate: 0.5,
            drill_rate: 1.0,
            info_officer_rate: 1.0,
            satisfaction_rate: 0.9,
        }
    }
}

/// The working-day calendar (`[calendar]` in the config file).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// A TOML file of holidays and adjusted working days for years linli does not ship (or
    /// corrections), in the format of `daemon/data/holidays.toml`; relative to the config file.
    pub holidays_file: Option<PathBuf>,
}

/// Notification delivery (`[notify]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The console's public address, for links in messages (`https://linli.example.gov.cn`);
    /// none: messages carry no links.
    pub public_base_url: Option<String>,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
    /// Days a delivered event (and a delivered message's body) is kept; the delivery log stays.
    pub retention_days: u32,
    /// Days a message's delivery log is kept (then the message goes).
    pub log_retention_days: u32,
    /// Allow receivers on loopback, private, link-local and other internal addresses (a
    /// county IT system on the intranet). Off: a URL that resolves to one is refused, so an
    /// endpoint cannot be aimed at the daemon's own network.
    pub allow_private_addresses: bool,
    /// Allow `http://` webhook URLs (an intranet without TLS). Off: `https://` only.
    pub allow_http: bool,
    /// Where WeCom robots live; a robot URL must start with it.
    pub wecom_base: String,
    /// Where DingTalk robots live; a robot URL must start with it.
    pub dingtalk_base: String,
    /// Attempts in flight at once per webhook endpoint (a robot gets one).
    pub max_in_flight: u32,
    /// Messages a minute one robot accepts (both vendors document about 20).
    pub robot_per_minute: u32,
    /// Hours an old webhook secret keeps signing after a rotation.
    pub rotation_overlap_hours: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            public_base_url: None,
            timeout_secs: 10,
            retention_days: 30,
            log_retention_days: 365,
            allow_private_addresses: false,
            allow_http: false,
            wecom_base: "https://qyapi.weixin.qq.com".into(),
            dingtalk_base: "https://oapi.dingtalk.com".into(),
            max_in_flight: 4,
            robot_per_minute: 20,
            rotation_overlap_hours: 24,
        }
    }
}

/// How matching weighs and how long offers wait (`[matching]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingSettings {
    /// Taken off the travel cost when the volunteer has visited the person before, in km.
    pub continuity_km: f64,
    /// Added per task a volunteer already holds this month, per further task, in km.
    pub fairness_km: f64,
    /// Hours an offer waits for an answer.
    pub offer_hours: u32,
    /// Hours an offer of an urgent task waits.
    pub urgent_offer_hours: u32,
}

impl Default for MatchingSettings {
    fn default() -> Self {
        MatchingSettings {
            continuity_km: 2.0,
            fairness_km: 0.5,
            offer_hours: 24,
            urgent_offer_hours: 1,
        }
    }
}

/// The HTTP API's limits (`[api]` in the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Largest JSON request body, in KiB (a bigger one answers 413 before it is read).
    pub max_json_kib: u64,
    /// Largest CSV body `POST /v1/imports/{kind}` accepts, in MiB (larger files: `linlid import`).
    pub max_import_mib: u64,
    /// Serve `/metrics` without a token (for a Prometheus on a private network); otherwise
    /// scraping needs an admin token.
    pub public_metrics: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_json_kib: 1024,
            max_import_mib: 64,
            public_metrics: false,
        }
    }
}

/// The plugin host's limits (`[plugins]` in the config file). The defaults admit plugins built
/// with real interpreters (CPython through componentize-py, JavaScript through jco), and refuse
/// compile bombs before any compiling starts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginHostConfig {
    /// Largest component file accepted (upload or plugin folder), in MiB.
    pub max_component_mib: u64,
    /// Most functions a component may define, over all its core modules.
    pub max_functions: u64,
    /// Most code a component may hold, over all its core modules, in MiB.
    pub max_code_mib: u64,
    /// Largest single function, in KiB of code.
    pub max_function_kib: u64,
    /// Most core modules a component may hold.
    pub max_modules: u64,
    /// Seconds one compile may take before it is stopped (compiles run one at a time, in a child
    /// process).
    pub compile_timeout_secs: u64,
    /// Address space a compile may use, in MiB.
    pub compile_memory_mib: u64,
    /// Calls one plugin may have running at once; more answer "busy, retry".
    pub max_concurrent_calls: u32,
    /// Plugin instances (so calls) the host holds at once over all plugins; each reserves
    /// address space (not memory) for its linear memory.
    pub instance_slots: u32,
    /// Versions kept per plugin (the live one and the one before it are always kept).
    pub keep_versions: usize,
    /// Log lines one plugin may write to the daemon's log per minute (the rest are counted and
    /// summarised).
    pub log_lines_per_minute: u32,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        Self {
            max_component_mib: 64,
            max_functions: 50_000,
            max_code_mib: 32,
            max_function_kib: 4096,
            max_modules: 64,
            compile_timeout_secs: 180,
            compile_memory_mib: 4096,
            max_concurrent_calls: 32,
            instance_slots: 256,
            keep_versions: 5,
            log_lines_per_minute: 120,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("linli-data")
}
fn default_time_zone() -> String {
    "Asia/Shanghai".to_owned()
}
fn default_plugin_dir() -> PathBuf {
    PathBuf::from("plugins-enabled")
}
fn default_grace() -> u64 {
    10
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            data_dir: default_data_dir(),
            time_zone: default_time_zone(),
            plugin_dir: default_plugin_dir(),
            log_format: LogFormat::default(),
            shutdown_grace_secs: default_grace(),
            plugins: PluginHostConfig::default(),
            api: ApiConfig::default(),
            matching: Default::default(),
            notify: NotifyConfig::default(),
            calendar: CalendarConfig::default(),
            records: RecordsConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

/// A configuration error, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is only used in error messages. Relative folders are taken
    /// relative to the config file's folder.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = line_column(text, offset);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            invalid(offset, e.message().trim().to_owned())
        })?;
        if config.time_zone.parse::<chrono_tz::Tz>().is_err() {
            let offset = key_offset(text, "time_zone");
            return Err(invalid(
                offset,
                format!(
                    "unknown time zone {:?}: use an IANA name such as \"Asia/Shanghai\"",
                    config.time_zone
                ),
            ));
        }
        if config.shutdown_grace_secs > 3600 {
            return Err(invalid(
                key_offset(text, "shutdown_grace_secs"),
                "shutdown_grace_secs must be at most 3600".to_owned(),
            ));
        }
        let p = &config.plugins;
        let checks: [(&str, bool, &str); 6] = [
            (
                "instance_slots",
                (4..=4096).contains(&p.instance_slots),
                "must be 4 to 4096",
            ),
            (
                "compile_timeout_secs",
                (10..=3600).contains(&p.compile_timeout_secs),
                "must be 10 to 3600",
            ),
            (
                "compile_memory_mib",
                p.compile_memory_mib >= 256,
                "must be at least 256",
            ),
            (
                "max_concurrent_calls",
                p.max_concurrent_calls >= 1,
                "must be at least 1",
            ),
            (
                "keep_versions",
                p.keep_versions >= 2,
                "must be at least 2 (the live version and the one before it)",
            ),
            (
                "max_component_mib",
                (1..=1024).contains(&p.max_component_mib),
                "must be 1 to 1024",
            ),
        ];
        if let Some((key, _, rule)) = checks.iter().find(|(_, ok, _)| !ok) {
            return Err(invalid(
                key_offset(text, key),
                format!("plugins.{key} {rule}"),
            ));
        }
        let a = &config.api;
        let api_checks: [(&str, bool, &str); 2] = [
            (
                "max_json_kib",
                (16..=65536).contains(&a.max_json_kib),
                "must be 16 to 65536",
            ),
            (
                "max_import_mib",
                (1..=1024).contains(&a.max_import_mib),
                "must be 1 to 1024",
            ),
        ];
        if let Some((key, _, rule)) = api_checks.iter().find(|(_, ok, _)| !ok) {
            return Err(invalid(key_offset(text, key), format!("api.{key} {rule}")));
        }
        let m = &config.matching;
        let matching_checks: [(&str, bool, &str); 4] = [
            (
                "continuity_km",
                (0.0..=1000.0).contains(&m.continuity_km),
                "must be 0 to 1000",
            ),
            (
                "fairness_km",
                (0.0..=1000.0).contains(&m.fairness_km),
                "must be 0 to 1000",
            ),
            (
                "offer_hours",
                (1..=720).contains(&m.offer_hours),
                "must be 1 to 720",
            ),
            (
                "urgent_offer_hours",
                (1..=72).contains(&m.urgent_offer_hours),
                "must be 1 to 72",
            ),
        ];
        if let Some((key, _, rule)) = matching_checks.iter().find(|(_, ok, _)| !ok) {
            return Err(invalid(
                key_offset(text, key),
                format!("matching.{key} {rule}"),
            ));
        }
        let n = &config.notify;
        let url_ok = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        let notify_checks: [(&str, bool, &str); 8] = [
            (
                "log_retention_days",
                n.log_retention_days >= n.retention_days && n.log_retention_days <= 3650,
                "must be retention_days to 3650",
            ),
            (
                "timeout_secs",
                (1..=120).contains(&n.timeout_secs),
                "must be 1 to 120",
            ),
            (
                "retention_days",
                (1..=3650).contains(&n.retention_days),
                "must be 1 to 3650",
            ),
            (
                "max_in_flight",
                (1..=64).contains(&n.max_in_flight),
                "must be 1 to 64",
            ),
            (
                "robot_per_minute",
                (1..=600).contains(&n.robot_per_minute),
                "must be 1 to 600",
            ),
            (
                "rotation_overlap_hours",
                n.rotation_overlap_hours <= 720,
                "must be 0 to 720",
            ),
            (
                "wecom_base",
                url_ok(&n.wecom_base),
                "must be an http(s) URL",
            ),
            (
                "public_base_url",
                n.public_base_url.as_deref().is_none_or(url_ok),
                "must be an http(s) URL like https://linli.example.gov.cn",
            ),
        ];
        if let Some((key, _, rule)) = notify_checks.iter().find(|(_, ok, _)| !ok) {
            return Err(invalid(
                key_offset(text, key),
                format!("notify.{key} {rule}"),
            ));
        }
        if !url_ok(&n.dingtalk_base) {
            return Err(invalid(
                key_offset(text, "dingtalk_base"),
                "notify.dingtalk_base must be an http(s) URL".into(),
            ));
        }
        let r = &config.records;
        let t = &r.targets;
        let records_checks: [(&str, bool, &str); 10] = [
            (
                "audit_retention_days",
                (30..=36500).contains(&r.audit_retention_days),
                "must be 30 to 36500",
            ),
            (
                "rating_link_days",
                (1..=90).contains(&r.rating_link_days),
                "must be 1 to 90",
            ),
            (
                "drill_window_months",
                (1..=36).contains(&r.drill_window_months),
                "must be 1 to 36",
            ),
            (
                "public_base_url",
                r.public_base_url.as_deref().is_none_or(url_ok),
                "must be an http(s) URL like https://linli.example.gov.cn",
            ),
            (
                "elder_visit_rate",
                (0.0..=1.0).contains(&t.elder_visit_rate),
                "must be a fraction from 0 to 1 (1.0 is 100%)",
            ),
            (
                "child_visit_rate",
                (0.0..=1.0).contains(&t.child_visit_rate),
                "must be a fraction from 0 to 1 (1.0 is 100%)",
            ),
            (
                "disability_care_rate",
                (0.0..=1.0).contains(&t.disability_care_rate),
                "must be a fraction from 0 to 1 (1.0 is 100%)",
            ),
            (
                "drill_rate",
                (0.0..=1.0).contains(&t.drill_rate),
                "must be a fraction from 0 to 1 (1.0 is 100%)",
            ),
            (
                "info_officer_rate",
                (0.0..=1.0).contains(&t.info_officer_rate),
                "must be a fraction from 0 to 1 (1.0 is 100%)",
            ),
            (
                "satisfaction_rate",
                (0.0..=1.0).contains(&t.satisfaction_rate),
                "must be a fraction from 0 to 1 (1.0 is 100%)",
            ),
        ];
        if let Some((key, _, rule)) = records_checks.iter().find(|(_, ok, _)| !ok) {
            let section = if key.ends_with("_rate") {
                "records.targets"
            } else {
                "records"
            };
            return Err(invalid(
                key_offset(text, key),
                format!("{section}.{key} {rule}"),
            ));
        }
        let c = &config.console;
        let console_checks: [(&str, bool, &str); 3] = [
            (
                "staff_session_hours",
                (1..=720).contains(&c.staff_session_hours),
                "must be 1 to 720",
            ),
            (
                "volunteer_session_days",
                (1..=400).contains(&c.volunteer_session_days),
                "must be 1 to 400",
            ),
            (
                "login_link_days",
                (1..=30).contains(&c.login_link_days),
                "must be 1 to 30",
            ),
        ];
        if let Some((key, _, rule)) = console_checks.iter().find(|(_, ok, _)| !ok) {
            return Err(invalid(
                key_offset(text, key),
                format!("console.{key} {rule}"),
            ));
        }
        if let Some(bad) = c
            .trusted_proxies
            .iter()
            .find(|p| p.trim().parse::<std::net::IpAddr>().is_err())
        {
            return Err(invalid(
                key_offset(text, "trusted_proxies"),
                format!(
                    "console.trusted_proxies: {bad:?} is not an IP address (e.g. \"127.0.0.1\")"
                ),
            ));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        if config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        if config.plugin_dir.is_relative() {
            config.plugin_dir = base.join(&config.plugin_dir);
        }
        if let Some(file) = &config.calendar.holidays_file {
            let file = if file.is_relative() {
                base.join(file)
            } else {
                file.clone()
            };
            let holidays = std::fs::read_to_string(&file).map_err(|e| {
                invalid(
                    key_offset(text, "holidays_file"),
                    format!("calendar.holidays_file {}: {e}", file.display()),
                )
            })?;
            crate::records::calendar::WorkCalendar::with_file(&holidays).map_err(|e| {
                invalid(
                    key_offset(text, "holidays_file"),
                    format!("calendar.holidays_file {}: {e}", file.display()),
                )
            })?;
            config.calendar.holidays_file = Some(file);
        }
        Ok(config)
    }

    /// Where certificates' QR codes and rating links point: `[records] public_base_url`, else
    /// `[notify] public_base_url`, else the listening address.
    pub fn records_base_url(&self) -> String {
        self.records
            .public_base_url
            .clone()
            .or_else(|| self.notify.public_base_url.clone())
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Whether the console's cookies are `Secure`: as configured, else when the public base
    /// URL is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.console
            .secure_cookies
            .unwrap_or_else(|| self.records_base_url().starts_with("https://"))
    }

    /// The working-day calendar: the shipped years and the configured file's.
    pub fn work_calendar(&self) -> crate::records::calendar::WorkCalendar {
        use crate::records::calendar::WorkCalendar;
        self.calendar
            .holidays_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| WorkCalendar::with_file(&t).ok())
            .unwrap_or_else(WorkCalendar::builtin)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The redb file inside the data folder.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("linli.redb")
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Byte offset of the line that sets `key`, for errors found after parsing.
fn key_offset(text: &str, key: &str) -> usize {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(key) && trimmed[key.len()..].trim_start().starts_with('=') {
            return offset + (line.len() - trimmed.len());
        }
        offset += line.len();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Config::parse(text, Path::new("linli.toml")) {
            Ok(_) => String::from("ok"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_holidays_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("linli.toml");
        std::fs::write(
            dir.path().join("h.toml"),
            "[[year]]\nyear = 2027\noff = [\"2027-02-05..2027-02-13\"]\n",
        )
        .unwrap();
        let c = Config::parse("[calendar]\nholidays_file = \"h.toml\"\n", &cfg).unwrap();
        assert!(c.work_calendar().knows(2027));
        std::fs::write(
            dir.path().join("bad.toml"),
            "[[year]]\nyear = 2027\nwork = [\"2027-02-10\"]\n",
        )
        .unwrap();
        let e = Config::parse("[calendar]\nholidays_file = \"bad.toml\"\n", &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains("is a weekday"), "{e}");
        assert!(e.contains("linli.toml:2:"), "located at the key: {e}");
        let e = Config::parse("[calendar]\nholidays_file = \"missing.toml\"\n", &cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }

    #[test]
    fn console_settings_are_checked() {
        let e = err("[console]\nstaff_session_hours = 0\n");
        assert!(
            e.starts_with("linli.toml:2:1: console.staff_session_hours must be 1 to 720"),
            "{e}"
        );
        let e = err("[console]\nlogin_link_days = 90\n");
        assert!(e.contains("console.login_link_days must be 1 to 30"), "{e}");
        let e = err("[console]\ntrusted_proxies = [\"nginx\"]\n");
        assert!(
            e.contains("console.trusted_proxies: \"nginx\" is not an IP address"),
            "{e}"
        );
        let e = err("[console]\ncookies = true\n");
        assert!(e.contains("cookies"), "{e}");
    }

    #[test]
    fn records_settings_are_checked() {
        let e = err("[records.targets]\nelder_visit_rate = 100\n");
        assert!(
            e.starts_with("linli.toml:2:1: records.targets.elder_visit_rate must be a fraction"),
            "{e}"
        );
        let e = err("[records]\naudit_retention_days = 0\n");
        assert!(
            e.contains("records.audit_retention_days must be 30 to 36500"),
            "{e}"
        );
        let e = err("[records]\ndrill_window_months = 40\n");
        assert!(e.contains("records.drill_window_months"), "{e}");
        let e = err("[records.targets]\nsatisfaction = 0.9\n");
        assert!(
            e.contains("satisfaction"),
            "an unknown target is named: {e}"
        );
        assert_eq!(
            err("[records]\nrating_link_days = 30\n[records.targets]\nsatisfaction_rate = 0.8\n"),
            "ok"
        );
    }

    #[test]
    fn notify_settings_are_checked() {
        let e = err("[notify]\ntimeout_secs = 0\n");
        assert!(
            e.starts_with("linli.toml:2:1: notify.timeout_secs must be 1 to 120"),
            "{e}"
        );
        let e = err("[notify]\npublic_base_url = \"linli.example.gov.cn\"\n");
        assert!(
            e.contains("notify.public_base_url must be an http(s) URL"),
            "{e}"
        );
        let e = err("[notify]\ndingtalk_base = \"oapi.dingtalk.com\"\n");
        assert!(
            e.contains("notify.dingtalk_base must be an http(s) URL"),
            "{e}"
        );
        assert_eq!(
            err(
                "[notify]\npublic_base_url = \"https://linli.example.gov.cn\"\nallow_http = true\n"
            ),
            "ok"
        );
    }

    #[test]
    fn plugin_limits_are_checked() {
        let e = err("[plugins]\nmax_functions = 10\nkeep_versions = 1\n");
        assert!(
            e.starts_with("linli.toml:3:1: plugins.keep_versions must be at least 2"),
            "{e}"
        );
        let e = err("[plugins]\nmax_fns = 10\n");
        assert!(
            e.starts_with("linli.toml:2:1: unknown field `max_fns`"),
            "{e}"
        );
        assert_eq!(err("[plugins]\nmax_functions = 100000\n"), "ok");
    }

    #[test]
    fn unknown_key_is_located() {
        let e = err("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        assert!(
            e.starts_with("linli.toml:2:1: unknown field `listen_port`"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_is_located() {
        let e = err("\n\nshutdown_grace_secs = \"ten\"\n");
        assert!(e.starts_with("linli.toml:3:23:"), "{e}");
    }

    #[test]
    fn bad_time_zone_is_located() {
        let e = err("log_format = \"json\"\ntime_zone = \"Asia/Beijing\"\n");
        assert!(e.starts_with("linli.toml:2:1: unknown time zone"), "{e}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", Path::new("/etc/linli/linli.toml")).ok();
        let c = c.map(|c| (c.listen.port(), c.data_dir, c.log_format));
        assert_eq!(
            c,
            Some((
                7878,
                PathBuf::from("/etc/linli/linli-data"),
                LogFormat::Pretty
            ))
        );
    }
}
