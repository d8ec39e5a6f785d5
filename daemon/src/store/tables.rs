//! Table definitions. Records are JSON (`&[u8]`) so that fields can be added with serde
//! defaults; anything else is a schema change and bumps [`SCHEMA_VERSION`].

use redb::TableDefinition;

/// The schema this build writes and reads. Bump it on any incompatible change and add the
/// migration to `Store::check_schema`.
pub const SCHEMA_VERSION: u64 = 4;

pub(super) const SCHEMA_KEY: &str = "schema_version";

/// Counters and settings: `schema_version`, `next_id:<kind>`.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

pub(super) const REGIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("regions");
pub(super) const STATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("stations");

pub(super) const PERSONS: TableDefinition<u64, &[u8]> = TableDefinition::new("persons");
/// (community code, person id)
pub(super) const PERSONS_BY_COMMUNITY: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("persons_by_community");
/// (category, person id)
pub(super) const PERSONS_BY_CATEGORY: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("persons_by_category");
/// resident id → person id
pub(super) const PERSONS_BY_RESIDENT_ID: TableDefinition<&str, u64> =
    TableDefinition::new("persons_by_resident_id");

pub(super) const VOLUNTEERS: TableDefinition<u64, &[u8]> = TableDefinition::new("volunteers");
/// (station id, volunteer id)
pub(super) const VOLUNTEERS_BY_STATION: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("volunteers_by_station");
/// resident id → volunteer id
pub(super) const VOLUNTEERS_BY_RESIDENT_ID: TableDefinition<&str, u64> =
    TableDefinition::new("volunteers_by_resident_id");

/// SHA-256 of the token (hex) → token record
pub(super) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// Console staff accounts: username → account (argon2id password hash, scope, disabled)
pub(super) const CONSOLE_USERS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("console_users");
/// Console sessions: SHA-256 of the cookie's secret (hex) → session
pub(super) const CONSOLE_SESSIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("console_sessions");
/// Volunteers' one-time login links: SHA-256 of the code (hex) → link
pub(super) const CONSOLE_LOGIN_LINKS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("console_login_links");

/// Plugin id → plugin record (versions, active version, configuration, quarantine)
pub(super) const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugins");
/// (plugin id, version) → the component's bytes; every deployed version is kept
pub(super) const PLUGIN_WASM: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("plugin_wasm");
/// (component SHA-256, engine key) → the precompiled artifact, so a restart compiles nothing
pub(super) const PLUGIN_COMPILED: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("plugin_compiled");

/// Duty id → duty
pub(super) const DUTIES: TableDefinition<u64, &[u8]> = TableDefinition::new("duties");
/// (duty id, scheduled instant as Unix seconds) → occurrence
pub(super) const OCCURRENCES: TableDefinition<(u64, i64), &[u8]> =
    TableDefinition::new("occurrences");
/// Occurrences the scheduler loop still has to run: queued, being planned (or interrupted by a
/// crash), or failed with a retry to come
pub(super) const OCCURRENCES_PENDING: TableDefinition<(u64, i64), ()> =
    TableDefinition::new("occurrences_pending");
/// Task id → task
pub(super) const TASKS: TableDefinition<u64, &[u8]> = TableDefinition::new("tasks");
/// Tasks still to do: (community, task id) → a 20-byte summary (status, priority, overdue,
/// follow-up, due start and end), so a station's month is counted without reading a task
pub(super) const TASKS_ACTIVE: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("tasks_active");
/// The idempotency key of a task: (duty, occurrence instant, target and kind) → task id
pub(super) const TASK_KEYS: TableDefinition<(u64, i64, &str), u64> =
    TableDefinition::new("task_keys");
/// (duty, task id)
pub(super) const TASKS_BY_DUTY: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("tasks_by_duty");
/// (community code, task id)
pub(super) const TASKS_BY_COMMUNITY: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("tasks_by_community");
/// (task status, task id): lists by status scan only the tasks in it
pub(super) const TASKS_BY_STATUS: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("tasks_by_status");
/// Tasks still to do and not yet flagged overdue, by due end: (Unix seconds, task id)
pub(super) const TASKS_OPEN_BY_DUE: TableDefinition<(i64, u64), ()> =
    TableDefinition::new("tasks_open_by_due");
/// (volunteer id, task id) for every task ever offered to the volunteer
pub(super) const TASKS_BY_VOLUNTEER: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("tasks_by_volunteer");
/// SHA-256 of a volunteer's calendar-feed secret → volunteer id
pub(super) const CALENDARS: TableDefinition<&str, u64> = TableDefinition::new("calendars");
/// Offers waiting for an answer, by deadline: (Unix seconds, task id)
pub(super) const OFFERS_BY_DEADLINE: TableDefinition<(i64, u64), ()> =
    TableDefinition::new("offers_by_deadline");
/// Checklist id → the checklist's items (tasks refer to one by id)
pub(super) const CHECKLISTS: TableDefinition<u64, &[u8]> = TableDefinition::new("checklists");
/// Event sequence number → event (the outbox notifications deliver from)
pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Notification endpoints by id.
pub(super) const ENDPOINTS: TableDefinition<u64, &[u8]> = TableDefinition::new("endpoints");
/// Notification messages (one event for one endpoint, with its delivery log) by id.
pub(super) const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
/// Pending messages by (endpoint; lane: 0 urgent, 1 routine; next attempt, Unix ms; id): each
/// endpoint has its own queue, so one endpoint's backlog never hides another's messages.
pub(super) const MESSAGES_DUE: TableDefinition<(u64, u8, i64, u64), ()> =
    TableDefinition::new("messages_due");
/// Pending messages by id (the oldest first).
pub(super) const MESSAGES_PENDING: TableDefinition<u64, ()> =
    TableDefinition::new("messages_pending");
/// Messages by (endpoint, id).
pub(super) const MESSAGES_BY_ENDPOINT: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("messages_by_endpoint");

// ------------------------------------------------------------------------------------ records

/// Visit reports by id (every version is kept).
pub(super) const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports");
/// (task id, report id): a task's reports, oldest first.
pub(super) const REPORTS_BY_TASK: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("reports_by_task");
/// Reports filed but not yet reviewed (the plugin could not be called): retried.
pub(super) const REPORTS_UNREVIEWED: TableDefinition<u64, ()> =
    TableDefinition::new("reports_unreviewed");
/// Service records (志愿服务记录) by id.
pub(super) const SERVICE_RECORDS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("service_records");
/// (volunteer id, service record id)
pub(super) const SERVICE_BY_VOLUNTEER: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("service_by_volunteer");
/// Certificates by their verification code.
pub(super) const CERTIFICATES: TableDefinition<&str, &[u8]> = TableDefinition::new("certificates");
/// (volunteer id, issued at Unix seconds, code)
pub(super) const CERTIFICATES_BY_VOLUNTEER: TableDefinition<(u64, i64, &str), ()> =
    TableDefinition::new("certificates_by_volunteer");
/// Satisfaction ratings by task id (one per task).
pub(super) const RATINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("ratings");
/// SHA-256 of a one-time rating link's code → (task id, expiry as Unix seconds).
pub(super) const RATING_LINKS: TableDefinition<&str, (u64, i64)> =
    TableDefinition::new("rating_links");
/// When people were in care: (category, community, person) → spans of days in that community
/// (`records::CareSpan`, 16 bytes each), kept by every person write. Keyed by community first,
/// so a region's people are one range.
pub(super) const CARE_SPANS: TableDefinition<(&str, &str, u64), &[u8]> =
    TableDefinition::new("care_spans");
/// Accepted visits that reached the person: (month YYYYMM, community of the task, person) →
/// visits.
pub(super) const PERSON_VISITS: TableDefinition<(u32, &str, u64), u32> =
    TableDefinition::new("person_visits");
/// Accepted visits to communities: (month, community, task kind) → visits.
pub(super) const COMMUNITY_VISITS: TableDefinition<(u32, &str, &str), u32> =
    TableDefinition::new("community_visits");
/// Tasks by the month of their due end: (month, community, plugin/action) → counts
/// (`records::TaskCounts`), kept by every task write.
pub(super) const TASK_COUNTS: TableDefinition<(u32, &str, &str), &[u8]> =
    TableDefinition::new("task_counts");
/// Service minutes recorded: (month, community or township code) → minutes.
pub(super) const SERVICE_MINUTES: TableDefinition<(u32, &str), u64> =
    TableDefinition::new("service_minutes");
/// Ratings: (month of the visit, community) → [satisfied, neutral, dissatisfied].
pub(super) const RATING_COUNTS: TableDefinition<(u32, &str), (u32, u32, u32)> =
    TableDefinition::new("rating_counts");
/// Active volunteers holding a community role where they are posted: (role, community,
/// volunteer).
pub(super) const ROLE_HOLDERS: TableDefinition<(&str, &str, u64), ()> =
    TableDefinition::new("role_holders");
/// The audit log of personal data: sequence number → entry. Append-only: no route edits it,
/// and only pruning past the retention removes the oldest.
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
