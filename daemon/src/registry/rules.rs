//! What makes a registry record valid, apart from references to other records (those are
//! checked inside the write transaction by `service`). Every rule reports the field it is about.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use super::*;

/// One thing wrong with one field of a request or a CSV row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `location.lat` or `categories[1]`.
    pub field: String,
    /// What was wrong and what is expected.
    pub message: String,
}

/// Everything wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn into_result(self) -> Result<(), Invalid> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

pub(super) fn name(errs: &mut Invalid, field: &str, value: &str) {
    let n = value.trim().chars().count();
    if n == 0 {
        errs.push(field, "must not be empty");
    } else if n > 100 {
        errs.push(field, "must be at most 100 characters");
    } else if value.chars().any(char::is_control) {
        errs.push(field, "must not contain control characters");
    }
}

fn optional_text(errs: &mut Invalid, field: &str, value: Option<&str>, max: usize) {
    if let Some(v) = value {
        if v.chars().count() > max {
            errs.push(field, format!("must be at most {max} characters"));
        } else if v.chars().any(|c| c.is_control() && c != '\n') {
            errs.push(field, "must not contain control characters");
        }
    }
}

/// Strips spaces and dashes and a `+86` prefix; returns the digits or why they are not a phone.
pub fn normalize_phone(raw: &str) -> Result<String, &'static str> {
    let mut s: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if let Some(rest) = s.strip_prefix("+86") {
        s = rest.to_owned();
    }
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    let mobile = s.len() == 11 && s.starts_with('1') && digits;
    let landline = (10..=12).contains(&s.len()) && s.starts_with('0') && digits;
    if mobile || landline {
        Ok(s)
    } else {
        Err(
            "must be an 11-digit mobile number (13912345678) or a landline with area code (09338211234)",
        )
    }
}

fn phone(errs: &mut Invalid, field: &str, value: &mut String) {
    match normalize_phone(value) {
        Ok(p) => *value = p,
        Err(msg) => errs.push(field, msg),
    }
}

pub(super) fn point(errs: &mut Invalid, field: &str, p: &GeoPoint) {
    if !p.lat.is_finite() || !(-90.0..=90.0).contains(&p.lat) {
        errs.push(
            format!("{field}.lat"),
            "latitude must be between -90 and 90",
        );
    }
    if !p.lon.is_finite() || !(-180.0..=180.0).contains(&p.lon) {
        errs.push(
            format!("{field}.lon"),
            "longitude must be between -180 and 180",
        );
    }
}

/// A tag such as a skill or need: lower-case ASCII letters, digits, `_` and `-`.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// Most entries in a list inside a record (tags, certifications, availability windows,
/// languages, a station's communities); the OpenAPI schemas say the same (`maxItems`).
pub const MAX_TAGS: usize = 32;
pub const MAX_WINDOWS: usize = 42;
pub const MAX_COMMUNITIES: usize = 500;

/// Refuses a list longer than `max` with one error (not one per entry); `true` when it fits.
pub(super) fn at_most<T>(errs: &mut Invalid, field: &str, list: &[T], max: usize) -> bool {
    if list.len() > max {
        errs.push(
            field,
            format!("has {} entries; at most {max} are allowed", list.len()),
        );
        false
    } else {
        true
    }
}

fn slugs(errs: &mut Invalid, field: &str, tags: &mut Vec<String>) {
    if !at_most(errs, field, tags, MAX_TAGS) {
        return;
    }
    for (i, t) in tags.iter_mut().enumerate() {
        *t = t.trim().to_owned();
        if !is_slug(t) {
            errs.push(
                format!("{field}[{i}]"),
                "must be a tag of lower-case letters, digits, '_' or '-' (e.g. first_aid)",
            );
        }
    }
    tags.sort();
    tags.dedup();
}

pub fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

fn resident(errs: &mut Invalid, value: &mut String) -> Option<resident_id::ResidentId> {
    match resident_id::parse(value) {
        Ok((normalized, info)) => {
            *value = normalized;
            Some(info)
        }
        Err(e) => {
            errs.push("resident_id", e.to_string());
            None
        }
    }
}

/// Normalises a person and checks every rule that needs no other record. Returns what the
/// resident ID tells (birth date and sex).
pub fn person(
    input: &mut PersonInput,
    today: NaiveDate,
) -> Result<resident_id::ResidentId, Invalid> {
    let mut errs = Invalid::default();
    name(&mut errs, "name", &input.name);
    input.name = input.name.trim().to_owned();
    let id = resident(&mut errs, &mut input.resident_id);
    if let Some(p) = input.phone.as_mut() {
        phone(&mut errs, "phone", p);
    }
    if RegionCode::parse(&input.community).map(|c| c.level) != Ok(RegionLevel::Community) {
        errs.push(
            "community",
            "must be the 12-digit code of a village or community, e.g. 620802001001",
        );
    }
    if let Some(grid) = &input.grid {
        let ok = RegionCode::parse(grid)
            .ok()
            .and_then(|g| g.parent())
            .is_some_and(|p| p == input.community);
        if !ok {
            errs.push(
                "grid",
                "must be a grid of the person's community, e.g. <community>-1",
            );
        }
    }
    point(&mut errs, "location", &input.location);
    optional_text(&mut errs, "address", input.address.as_deref(), 200);
    if input.categories.is_empty() {
        errs.push("categories", "name at least one priority group");
    }
    input.categories.sort();
    input.categories.dedup();
    input.circumstances.sort();
    input.circumstances.dedup();
    slugs(&mut errs, "needs", &mut input.needs);
    let has = |c: Category| input.categories.contains(&c);
    let age = id.map(|i| age_on(i.birth_date, today));
    if has(Category::SpecialDifficultyElder) {
        if let Some(a) = age.filter(|a| *a < 60) {
            errs.push(
                "categories",
                format!("a special-difficulty elder is 60 or older; the resident ID gives age {a}"),
            );
        }
        if input
            .circumstances
            .contains(&ElderCircumstance::AdvancedAge)
            && let Some(a) = age.filter(|a| *a < 80)
        {
            errs.push(
                "circumstances",
                format!("advanced_age (高龄) means 80 or older; the resident ID gives age {a}"),
            );
        }
    } else if !input.circumstances.is_empty() {
        errs.push(
            "circumstances",
            "only for the special_difficulty_elder category",
        );
    }
    if has(Category::LeftBehindChild) || has(Category::ChildInDifficulty) {
        if let Some(a) = age.filter(|a| *a >= 18) {
            errs.push(
                "categories",
                format!("children's categories are for under-18s; the resident ID gives age {a}"),
            );
        }
        if input.guardian.is_none() {
            errs.push("guardian", "a child in care must have a guardian recorded");
        }
    }
    if let Some(g) = input.guardian.as_mut() {
        name(&mut errs, "guardian.name", &g.name);
        name(&mut errs, "guardian.relation", &g.relation);
        if let Some(p) = g.phone.as_mut() {
            phone(&mut errs, "guardian.phone", p);
        }
    }
    match (&input.disability, has(Category::Disabled)) {
        (Some(d), _) if !(1..=4).contains(&d.grade) => {
            errs.push("disability.grade", "must be 1 (most severe) to 4")
        }
        (None, true) => errs.push(
            "disability",
            "the disabled category needs the disability type and grade",
        ),
        (Some(_), false) => errs.push(
            "categories",
            "a person with a disability record must be in the disabled category",
        ),
        _ => {}
    }
    if let Some(h) = &input.household {
        if h.size == 0 {
            errs.push("household.size", "must be at least 1");
        } else if h.living == LivingArrangement::Alone && h.size != 1 {
            errs.push("household.size", "must be 1 for a person living alone");
        }
    }
    errs.into_result()?;
    id.ok_or_else(|| Invalid::one("resident_id", "is not valid"))
}

fn clock_minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

/// Normalises a volunteer and checks every rule that needs no other record.
pub fn volunteer(
    input: &mut VolunteerInput,
    today: NaiveDate,
) -> Result<resident_id::ResidentId, Invalid> {
    let mut errs = Invalid::default();
    name(&mut errs, "name", &input.name);
    input.name = input.name.trim().to_owned();
    let id = resident(&mut errs, &mut input.resident_id);
    phone(&mut errs, "phone", &mut input.phone);
    if let Some(a) = id.map(|i| age_on(i.birth_date, today)).filter(|a| *a < 16) {
        errs.push(
            "resident_id",
            format!(
                "volunteers registered here must be 16 or older; the resident ID gives age {a}"
            ),
        );
    }
    slugs(&mut errs, "skills", &mut input.skills);
    slugs(&mut errs, "roles", &mut input.roles);
    let certifications_fit = at_most(&mut errs, "certifications", &input.certifications, MAX_TAGS);
    let windows_fit = at_most(&mut errs, "availability", &input.availability, MAX_WINDOWS);
    let languages_fit = at_most(&mut errs, "languages", &input.languages, MAX_TAGS);
    for (i, c) in input
        .certifications
        .iter_mut()
        .enumerate()
        .filter(|_| certifications_fit)
    {
        name(&mut errs, &format!("certifications[{i}].name"), &c.name);
        if let Some(s) = c.skill.as_mut() {
            *s = s.trim().to_owned();
            if !is_slug(s) {
                errs.push(format!("certifications[{i}].skill"), "must be a skill tag");
            }
        }
    }
    for (i, w) in input
        .availability
        .iter()
        .enumerate()
        .filter(|_| windows_fit)
    {
        match (clock_minutes(&w.start), clock_minutes(&w.end)) {
            (Some(s), Some(e)) if s < e => {}
            (None, _) => errs.push(format!("availability[{i}].start"), "must be HH:MM"),
            (_, None) => errs.push(format!("availability[{i}].end"), "must be HH:MM"),
            _ => errs.push(format!("availability[{i}].end"), "must be after start"),
        }
    }
    point(&mut errs, "home", &input.home);
    if input.monthly_capacity > 200 {
        errs.push("monthly_capacity", "must be at most 200 tasks a month");
    }
    for (i, l) in input
        .languages
        .iter_mut()
        .enumerate()
        .filter(|_| languages_fit)
    {
        *l = l.trim().to_owned();
        name(&mut errs, &format!("languages[{i}]"), l);
    }
    errs.into_result()?;
    id.ok_or_else(|| Invalid::one("resident_id", "is not valid"))
}

/// Checks a station's own fields; its regions are checked against the store by `service`.
pub fn station(input: &mut StationInput) -> Result<(), Invalid> {
    let mut errs = Invalid::default();
    name(&mut errs, "name", &input.name);
    input.name = input.name.trim().to_owned();
    if RegionCode::parse(&input.township).map(|c| c.level) != Ok(RegionLevel::Township) {
        errs.push(
            "township",
            "must be the 12-digit code of a township or street",
        );
    }
    at_most(
        &mut errs,
        "communities",
        &input.communities,
        MAX_COMMUNITIES,
    );
    if input.communities.is_empty() {
        errs.push("communities", "a station serves at least one community");
    }
    input.communities.sort();
    input.communities.dedup();
    at_most(&mut errs, "neighbours", &input.neighbours, 50);
    input.neighbours.sort_unstable();
    input.neighbours.dedup();
    name(&mut errs, "contact.name", &input.contact.name);
    phone(&mut errs, "contact.phone", &mut input.contact.phone);
    optional_text(&mut errs, "address", input.address.as_deref(), 200);
    if let Some(p) = &input.location {
        point(&mut errs, "location", p);
    }
    errs.into_result()
}

/// Checks a region's own fields; returns its parsed level and parent.
pub fn region(input: &mut RegionInput) -> Result<(RegionLevel, Option<String>), Invalid> {
    let mut errs = Invalid::default();
    input.code = input.code.trim().to_owned();
    name(&mut errs, "name", &input.name);
    input.name = input.name.trim().to_owned();
    let parsed = RegionCode::parse(&input.code)
        .map(|c| (c.level, c.parent()))
        .map_err(|e| errs.push("code", e.to_string()))
        .ok();
    errs.into_result()?;
    parsed.ok_or_else(|| Invalid::one("code", "is not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default()
    }

    fn elder() -> PersonInput {
        let birth = NaiveDate::from_ymd_opt(1940, 3, 1).unwrap_or_default();
        PersonInput {
            name: " 张桂兰 ".into(),
            resident_id: resident_id::make("620802", birth, 124),
            phone: Some("139-0933-1234".into()),
            community: "620802001001".into(),
            grid: Some("620802001001-2".into()),
            location: GeoPoint {
                lat: 35.54,
                lon: 106.66,
            },
            address: None,
            categories: vec![Category::SpecialDifficultyElder],
            circumstances: vec![
                ElderCircumstance::LivingAlone,
                ElderCircumstance::AdvancedAge,
            ],
            disability: None,
            household: Some(Household {
                living: LivingArrangement::Alone,
                size: 1,
            }),
            guardian: None,
            needs: vec!["meals".into()],
        }
    }

    fn fields(r: Result<resident_id::ResidentId, Invalid>) -> Vec<String> {
        r.err()
            .map(|e| e.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_valid_elder_is_normalised() {
        let mut p = elder();
        assert!(person(&mut p, today()).is_ok());
        assert_eq!(p.name, "张桂兰");
        assert_eq!(p.phone.as_deref(), Some("13909331234"));
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut p = elder();
        p.location.lat = 91.0;
        p.grid = Some("620802001002-1".into());
        p.needs = vec!["Meals!".into()];
        assert_eq!(
            fields(person(&mut p, today())),
            ["grid", "location.lat", "needs[0]"]
        );

        let mut young = elder();
        young.resident_id = resident_id::make(
            "620802",
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
            1,
        );
        assert_eq!(
            fields(person(&mut young, today())),
            ["categories", "circumstances"]
        );

        let mut child = elder();
        child.categories = vec![Category::LeftBehindChild];
        child.circumstances.clear();
        assert_eq!(
            fields(person(&mut child, today())),
            ["categories", "guardian"]
        );

        let mut disabled = elder();
        disabled.categories.push(Category::Disabled);
        assert_eq!(fields(person(&mut disabled, today())), ["disability"]);
        disabled.disability = Some(Disability {
            kind: DisabilityType::Hearing,
            grade: 5,
        });
        assert_eq!(fields(person(&mut disabled, today())), ["disability.grade"]);
    }

    #[test]
    fn availability_windows_are_checked() {
        assert_eq!(clock_minutes("09:30"), Some(570));
        assert_eq!(clock_minutes("24:00"), Some(1440));
        assert_eq!(clock_minutes("24:30"), None);
        assert_eq!(clock_minutes("9:30"), None);
    }

    #[test]
    fn phones() {
        assert_eq!(
            normalize_phone("+86 139 0933 1234"),
            Ok("13909331234".into())
        );
        assert_eq!(normalize_phone("0933-8211234"), Ok("09338211234".into()));
        assert!(normalize_phone("12345").is_err());
    }
}
