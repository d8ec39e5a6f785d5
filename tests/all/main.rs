//! One integration-test binary (so it links once): each module starts the real daemon on
//! 127.0.0.1:0 with a temporary redb file and talks HTTP to it, or runs `linlid` itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod harness;
mod wasm;

mod api_crud;
mod bad_input;
mod browser;
mod cli;
mod console;
mod crash;
mod dates;
mod duties;
mod import;
mod interface;
mod languages;
mod leaks;
mod matching;
mod notify;
mod ownership;
mod persistence;
mod plugins;
mod records;
mod sandbox;
mod scopes;
mod shipped;
mod staffing;
