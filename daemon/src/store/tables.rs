//! Table definitions. Records are JSON (`&[u8]`) so that fields can be added with serde
//! defaults; anything else is a schema change and bumps [`SCHEMA_VERSION`].

use redb::TableDefinition;

/// The schema this build writes and reads. Bump it on any incompatible change and add the
/// migration to `Store::check_schema`.
pub const SCHEMA_VERSION: u64 = 2;

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
