//! What the host accepts from a plugin, checked before anything uses it: a component's size and
//! shape before it is compiled, `describe`'s answer, `plan`'s checklists and drafts, and
//! `review`'s outcome. Every refusal names the field, the value's problem and the limit, so a
//! plugin author can fix it from the message alone. Pure: no I/O, no clock.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, TimeDelta};

use super::model::{AnswerKind, ChecklistItem, Description, Names, ReviewOutcome, TaskDraft};
use crate::config::PluginHostConfig;

/// What a component may be before the host spends time compiling it. The defaults admit real
/// interpreters (a CPython component built with componentize-py has about 13,400 functions,
/// 9.2 MB of code, a 427 KB function, 14 core modules and 18 MB in all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComponentLimits {
    pub max_bytes: usize,
    pub max_functions: u64,
    pub max_code_bytes: u64,
    pub max_function_bytes: u64,
    pub max_modules: u64,
}

impl ComponentLimits {
    pub fn from_config(c: &PluginHostConfig) -> Self {
        let mib = |n: u64| n.saturating_mul(1 << 20);
        ComponentLimits {
            max_bytes: usize::try_from(mib(c.max_component_mib)).unwrap_or(usize::MAX),
            max_functions: c.max_functions,
            max_code_bytes: mib(c.max_code_mib),
            max_function_bytes: c.max_function_kib.saturating_mul(1024),
            max_modules: c.max_modules,
        }
    }
}

impl Default for ComponentLimits {
    fn default() -> Self {
        Self::from_config(&PluginHostConfig::default())
    }
}

/// What `inspect` counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Shape {
    pub functions: u64,
    pub code_bytes: u64,
    pub largest_function: u64,
    pub modules: u64,
}

/// Why `inspect` refused a component.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Not well-formed WebAssembly.
    Malformed(String),
    /// Beyond one of the limits (the message names it).
    Beyond(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Malformed(m) | Refusal::Beyond(m) => f.write_str(m),
        }
    }
}

/// Counts a component's core modules, functions and code without compiling anything, and
/// refuses one beyond `limits`. Parsing is linear in the file's size.
pub fn inspect(bytes: &[u8], limits: &ComponentLimits) -> Result<Shape, Refusal> {
    let beyond = |m: String| Err(Refusal::Beyond(m));
    if bytes.len() > limits.max_bytes {
        return beyond(format!(
            "the component is {} bytes; this daemon accepts at most {} MiB \
             (plugins.max_component_mib)",
            bytes.len(),
            limits.max_bytes >> 20
        ));
    }
    let mut shape = Shape::default();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| Refusal::Malformed(e.to_string()))?;
        match payload {
            wasmparser::Payload::ModuleSection { .. } => {
                shape.modules += 1;
                if shape.modules > limits.max_modules {
                    return beyond(format!(
                        "the component holds more than {} core modules (plugins.max_modules)",
                        limits.max_modules
                    ));
                }
            }
            wasmparser::Payload::CodeSectionStart { count, size, .. } => {
                shape.functions += u64::from(count);
                shape.code_bytes += u64::from(size);
                if shape.functions > limits.max_functions {
                    return beyond(format!(
                        "the component defines more than {} functions (plugins.max_functions)",
                        limits.max_functions
                    ));
                }
                if shape.code_bytes > limits.max_code_bytes {
                    return beyond(format!(
                        "the component holds more than {} MiB of code (plugins.max_code_mib)",
                        limits.max_code_bytes >> 20
                    ));
                }
            }
            wasmparser::Payload::CodeSectionEntry(body) => {
                let size = body.range().len() as u64;
                shape.largest_function = shape.largest_function.max(size);
                if size > limits.max_function_bytes {
                    return beyond(format!(
                        "one function is {size} bytes of code; at most {} KiB per function \
                         (plugins.max_function_kib)",
                        limits.max_function_bytes >> 10
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(shape)
}

/// Cuts `s` to at most `max` bytes (on a character boundary), saying how much was cut.
pub fn cap_text(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes cut)", &s[..end], s.len() - end)
}

/// Longest error text from a plugin that is stored or returned.
pub const MAX_ERROR_TEXT: usize = 4096;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A plain text field: at most `max` characters, no control characters; `required` refuses
/// an empty or blank one.
fn text(field: &str, s: &str, max: usize, required: bool) -> Result<(), String> {
    if required && s.trim().is_empty() {
        return Err(format!("{field} is empty"));
    }
    let n = s.chars().count();
    if n > max {
        return Err(format!("{field} is {n} characters long (at most {max})"));
    }
    if has_control(s) {
        return Err(format!(
            "{field} {:?} holds control characters (newlines, tabs, NUL…)",
            preview(s)
        ));
    }
    Ok(())
}

fn names(field: &str, n: &Names, max: usize) -> Result<(), String> {
    text(&format!("{field}.zh"), &n.zh, max, true)?;
    text(&format!("{field}.en"), &n.en, max, true)
}

/// The first 40 characters of a value, for messages.
fn preview(s: &str) -> String {
    let mut p: String = s.chars().take(40).collect();
    if p.len() < s.len() {
        p.push('…');
    }
    p
}

/// An identifier: lower-case ASCII letters and digits, joined by `-` or `_`, starting with a
/// letter, at most 64 bytes.
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn id(field: &str, s: &str) -> Result<(), String> {
    if is_id(s) {
        Ok(())
    } else {
        Err(format!(
            "{field} {:?} must be 1 to 64 lower-case letters, digits, `-` or `_`, starting with a letter",
            preview(s)
        ))
    }
}

/// A list of tags (skills, categories, languages…): at most `max` of them, each a non-empty
/// text of at most 64 characters, no repeats.
fn tags(field: &str, list: &[String], max: usize) -> Result<(), String> {
    if list.len() > max {
        return Err(format!(
            "{field} has {} entries (at most {max})",
            list.len()
        ));
    }
    let mut seen = HashSet::new();
    for t in list {
        text(field, t, 64, true)?;
        if !seen.insert(t.as_str()) {
            return Err(format!("{field} names {t:?} twice"));
        }
    }
    Ok(())
}

/// The largest configuration schema a plugin may declare (its text, before parsing).
pub const MAX_CONFIG_SCHEMA: usize = 64 * 1024;

/// Checks what `describe` answered.
pub fn description(d: &Description) -> Result<(), String> {
    id("plugin id", &d.id)?;
    match &d.config_schema {
        None => {}
        Some(serde_json::Value::String(why)) => {
            return Err(format!(
                "config-schema must be a JSON Schema object of at most {} bytes ({why})",
                MAX_CONFIG_SCHEMA
            ));
        }
        Some(schema) => {
            super::schema::check_schema(schema).map_err(|e| format!("config-schema: {e}"))?;
        }
    }
    if let Err(e) = semver::Version::parse(&d.version) {
        return Err(format!(
            "version {:?} is not a semantic version MAJOR.MINOR.PATCH: {e}",
            preview(&d.version)
        ));
    }
    if d.version.len() > 64 {
        return Err("version is longer than 64 bytes".to_owned());
    }
    names("names", &d.names, 100)?;
    if d.actions.is_empty() {
        return Err("the plugin offers no actions".to_owned());
    }
    if d.actions.len() > 32 {
        return Err(format!(
            "the plugin offers {} actions (at most 32)",
            d.actions.len()
        ));
    }
    let mut seen = HashSet::new();
    for a in &d.actions {
        id("action id", &a.id)?;
        if !seen.insert(a.id.as_str()) {
            return Err(format!("action id {:?} appears twice", a.id));
        }
        let at = |m: String| format!("action {}: {m}", a.id);
        names("names", &a.names, 100).map_err(at)?;
        text("default_cron", &a.default_cron, 200, true).map_err(at)?;
        a.default_cron
            .parse::<crate::cron::CronExpr>()
            .map_err(|e| at(format!("default_cron {:?}: {e}", a.default_cron)))?;
        tags("categories", &a.categories, 32).map_err(at)?;
        // A category linli does not keep would select nobody, silently.
        crate::registry::vocabulary::check_categories(&a.categories).map_err(at)?;
    }
    Ok(())
}

/// Bounds on what one plan may answer.
#[derive(Debug, Clone, Copy)]
pub struct PlanBounds {
    pub targets: usize,
    /// The occurrence's scheduled instant; due windows must lie near it.
    pub scheduled_at: DateTime<FixedOffset>,
}

/// The farthest a due window may start before the occurrence, or end after it.
const WINDOW_BEFORE: TimeDelta = TimeDelta::days(366);
const WINDOW_AFTER: TimeDelta = TimeDelta::days(2 * 366);
/// The most people one task may ask for.
pub const MAX_TEAM: u8 = 20;
/// The farthest a visitor may be asked to travel, in kilometres.
pub const MAX_DISTANCE_KM: f32 = 1000.0;

/// Checks one checklist.
pub fn checklist(items: &[ChecklistItem]) -> Result<(), String> {
    if items.len() > 200 {
        return Err(format!("{} items (at most 200)", items.len()));
    }
    let mut seen = HashSet::new();
    for (i, c) in items.iter().enumerate() {
        let at = |m: String| format!("item {i}: {m}");
        id("id", &c.id).map_err(at)?;
        if !seen.insert(c.id.as_str()) {
            return Err(at(format!("id {:?} appears twice", c.id)));
        }
        names("question", &c.question, 500).map_err(at)?;
        match c.kind {
            AnswerKind::Choice if c.choices.len() < 2 => {
                return Err(at(format!(
                    "a choice item needs at least 2 choices (it has {})",
                    c.choices.len()
                )));
            }
            AnswerKind::Choice => tags("choices", &c.choices, 50).map_err(at)?,
            _ if !c.choices.is_empty() => {
                return Err(at("only a choice item may list choices".to_owned()));
            }
            _ => {}
        }
        if !c.choice_labels.is_empty() {
            if c.choice_labels.len() != c.choices.len() {
                return Err(at(format!(
                    "choice-labels has {} entries for {} choices (one label per choice, in order)",
                    c.choice_labels.len(),
                    c.choices.len()
                )));
            }
            // Each label names one choice: not another choice's id, not another label.
            let mut words: HashSet<String> = c.choices.iter().map(|x| x.to_lowercase()).collect();
            for (k, l) in c.choice_labels.iter().enumerate() {
                names("choice-labels", l, 100).map_err(at)?;
                let own = c
                    .choices
                    .get(k)
                    .map(|x| x.to_lowercase())
                    .unwrap_or_default();
                let mut mine = vec![l.zh.trim().to_lowercase(), l.en.trim().to_lowercase()];
                mine.dedup();
                for w in mine {
                    if w != own && !words.insert(w.clone()) {
                        return Err(at(format!(
                            "choice label {w:?} is also another choice or label: an answer of it would be ambiguous"
                        )));
                    }
                }
            }
        }
        if let Some(w) = &c.required_when {
            if c.required {
                return Err(at(
                    "required-when makes a question required only sometimes: leave required false"
                        .to_owned(),
                ));
            }
            // Only an earlier question, so that the form reads top to bottom and no condition
            // can loop.
            let Some(on) = items[..i].iter().find(|x| x.id == w.item) else {
                return Err(at(format!(
                    "required-when names {:?}, which is not an earlier question of this checklist",
                    w.item
                )));
            };
            let fine = match on.kind {
                AnswerKind::YesNo => matches!(w.equals.as_str(), "yes" | "no"),
                AnswerKind::Choice => on.choices.contains(&w.equals),
                _ => false,
            };
            if !fine {
                return Err(at(format!(
                    "required-when: {:?} is not an answer {:?} can have (a yes/no question's yes or no, or one of a choice question's choices)",
                    w.equals, w.item
                )));
            }
        }
    }
    Ok(())
}

/// Checks one draft; `last_window` remembers the last due window found valid, since most
/// drafts of an occurrence share it.
pub fn draft(
    d: &TaskDraft,
    bounds: &PlanBounds,
    checklists: usize,
    last_window: &mut Option<(String, String)>,
) -> Result<(), String> {
    if d.target as usize >= bounds.targets {
        return Err(format!(
            "target index {} is out of range (there are {} targets)",
            d.target, bounds.targets
        ));
    }
    if d.checklist as usize >= checklists {
        return Err(format!(
            "checklist index {} is out of range (there are {checklists} checklists)",
            d.checklist
        ));
    }
    // The kind is part of the task's idempotency key: keep it a plain identifier.
    id("kind", &d.kind)?;
    names("title", &d.title, 200)?;
    let same = last_window
        .as_ref()
        .is_some_and(|(s, e)| *s == d.due_start && *e == d.due_end);
    if !same {
        window(&d.due_start, &d.due_end, bounds)?;
        *last_window = Some((d.due_start.clone(), d.due_end.clone()));
    }
    let r = &d.requirements;
    if !(1..=MAX_TEAM).contains(&r.team_size) {
        return Err(format!(
            "requirements.team_size {} must be 1 to {MAX_TEAM}",
            r.team_size
        ));
    }
    if let Some(g) = &r.gender
        && g != "female"
        && g != "male"
    {
        return Err(format!(
            "requirements.gender {:?} must be \"female\" or \"male\" (or absent)",
            preview(g)
        ));
    }
    if let Some(km) = r.max_distance_km
        && !(km.is_finite() && km > 0.0 && km <= MAX_DISTANCE_KM)
    {
        return Err(format!(
            "requirements.max_distance_km {km} must be a number above 0 and at most {MAX_DISTANCE_KM} (or absent for no limit)"
        ));
    }
    tags("requirements.skills", &r.skills, 16)?;
    tags("requirements.clearances", &r.clearances, 16)?;
    tags("requirements.languages", &r.languages, 16)?;
    tags("requirements.roles", &r.roles, 16)?;
    // A role nobody can hold would leave every such task unstaffed, silently.
    crate::registry::vocabulary::check_roles(&r.roles)
        .map_err(|e| format!("requirements.roles: {e}"))?;
    Ok(())
}

fn window(start: &str, end: &str, bounds: &PlanBounds) -> Result<(), String> {
    let parse = |field: &str, s: &str| {
        DateTime::parse_from_rfc3339(s).map_err(|_| {
            format!(
                "{field} {:?} is not an RFC 3339 instant such as 2026-12-01T09:00:00+08:00",
                preview(s)
            )
        })
    };
    let (s, e) = (parse("due_start", start)?, parse("due_end", end)?);
    if s > e {
        return Err(format!("due_start {start} is after due_end {end}"));
    }
    let at = bounds.scheduled_at;
    if s < at - WINDOW_BEFORE || e > at + WINDOW_AFTER {
        return Err(format!(
            "due window {start} – {end} is too far from the occurrence at {at} (it may start at \
             most a year before and end at most two years after)"
        ));
    }
    Ok(())
}

/// Checks what `review` answered.
pub fn review(outcome: &ReviewOutcome) -> Result<(), String> {
    match outcome {
        ReviewOutcome::Accepted => Ok(()),
        ReviewOutcome::FollowUp { reason, .. } => text("follow-up reason", reason, 2000, true),
        ReviewOutcome::Rejected { reasons } => {
            if reasons.is_empty() || reasons.len() > 32 {
                return Err(format!(
                    "a rejection gives {} reasons (1 to 32)",
                    reasons.len()
                ));
            }
            reasons
                .iter()
                .try_for_each(|r| text("rejection reason", r, 2000, true))
        }
    }
}

fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len(), out);
    out.extend_from_slice(body);
}

/// A component wrapping one core module of `functions` empty functions: what a compile bomb
/// looks like to `inspect` (tests and benchmarks build them with this).
pub fn synthetic_component(functions: usize) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut module);
    let mut funcs = Vec::new();
    leb(functions, &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, functions));
    section(3, &funcs, &mut module);
    let mut code = Vec::new();
    leb(functions, &mut code);
    for _ in 0..functions {
        code.extend_from_slice(&[2, 0, 0x0b]);
    }
    section(10, &code, &mut module);
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    section(1, &module, &mut component);
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_text_cuts_on_a_character_boundary() {
        assert_eq!(cap_text("short".into(), 10), "short");
        let cut = cap_text("平凉市崆峒区".into(), 4);
        assert_eq!(cut, "平… (15 more bytes cut)");
    }

    #[test]
    fn ids_are_plain() {
        for ok in ["visit", "monthly-visit", "a_1"] {
            assert!(is_id(ok), "{ok}");
        }
        for bad in ["", "Visit", "1st", "a/b", "a\nb", "a\0", &"a".repeat(65)] {
            assert!(!is_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_component_beyond_the_limits_is_refused_before_compiling() {
        let bytes = synthetic_component(1000);
        let limits = ComponentLimits {
            max_functions: 999,
            ..ComponentLimits::default()
        };
        let err = inspect(&bytes, &limits).unwrap_err().to_string();
        assert!(err.contains("more than 999 functions"), "{err}");
        let shape = inspect(&bytes, &ComponentLimits::default()).unwrap_or_default();
        assert_eq!((shape.functions, shape.modules), (1000, 1));
        let small = ComponentLimits {
            max_bytes: 100,
            ..ComponentLimits::default()
        };
        let err = inspect(&bytes, &small).unwrap_err().to_string();
        assert!(err.contains("at most 0 MiB"), "{err}");
        assert!(matches!(
            inspect(&bytes[..bytes.len() - 3], &ComponentLimits::default()),
            Err(Refusal::Malformed(_))
        ));
    }
}
