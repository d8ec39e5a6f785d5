//! linli — the daemon that keeps county civil-affairs bureaus' registry of people in care and
//! volunteers, hosts their action plugins, and schedules recurring duties.
//!
//! Layout (see ARCHITECTURE.md):
//! - `config`   — TOML configuration, errors located by file, line and column.
//! - `clock`    — the only source of the current time.
//! - `cron`     — cron expressions (POSIX and extended) and their next fire times; pure.
//! - `task`     — tasks as plain data: status, offers, requirements, reasons.
//! - `store`    — redb tables; the only code that touches the database.
//! - `registry` — regions, stations, people in care, volunteers: types, rules, import.
//! - `service`  — what service operations share: the caller's guard, errors, merge patches.
//! - `matching` — who takes which task: hard constraints, an exact min-cost plan; pure.
//! - `api`      — HTTP routes, authentication and scopes, OpenAPI, metrics.
//! - `server`   — serve until shutdown, with a grace period.
//! - `commands` — what each `linlid` subcommand does (`main.rs` only parses and exits).
//! - `demo`     — the synthetic Pingliang county behind `linlid demo`.

pub mod api;
pub mod clock;
pub mod commands;
pub mod config;
pub mod console;
pub mod cron;
pub mod demo;
pub mod matching;
pub mod notify;
pub mod plugins;
pub mod records;
pub mod registry;
pub mod schedule;
pub mod server;
pub mod service;
pub mod store;
pub mod task;
