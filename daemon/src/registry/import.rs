//! CSV import of people in care and volunteers, from the spreadsheets stations already keep.
//! UTF-8 with or without a BOM; English or Chinese headers (see README). All rows are checked
//! first; nothing is written unless every row is valid, or the caller asked to skip invalid
//! rows. The write is one transaction, so an import is all or nothing even if the process dies.
//!
//! Two passes over the file keep memory flat: the first validates and remembers only resident
//! IDs, the second re-reads and writes.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::service;
use super::*;
use crate::service::{Guard, ServiceError};
use crate::store::{ReadTx, Store, StoreError};

/// What to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Persons,
    Volunteers,
}

/// One bad row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// Line number in the file (the header is line 1).
    pub row: u64,
    pub field: String,
    pub message: String,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    /// Rows written.
    pub imported: u64,
    /// Invalid rows left out (only with skip-invalid).
    pub skipped: u64,
    /// The first errors found (at most 1,000), in file order.
    pub errors: Vec<RowError>,
    /// All errors found.
    pub error_count: u64,
}

const MAX_REPORTED: usize = 1000;

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Header(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] ServiceError),
    #[error("the daemon is stopping; nothing was imported — send the file again once it is back")]
    Cancelled,
}

/// Columns: (field, English header, Chinese headers).
const PERSON_COLUMNS: &[(&str, &[&str])] = &[
    ("name", &["name", "姓名"]),
    (
        "resident_id",
        &["resident_id", "身份证号", "身份证号码", "公民身份号码"],
    ),
    ("phone", &["phone", "联系电话", "电话", "手机号"]),
    (
        "community",
        &["community", "社区代码", "村（社区）代码", "社区"],
    ),
    ("grid", &["grid", "网格", "网格代码"]),
    ("lat", &["lat", "纬度"]),
    ("lon", &["lon", "经度"]),
    ("address", &["address", "地址", "住址"]),
    ("categories", &["categories", "类别", "人员类别"]),
    ("circumstances", &["circumstances", "困难类型"]),
    (
        "disability_type",
        &["disability_type", "残疾类别", "残疾类型"],
    ),
    ("disability_grade", &["disability_grade", "残疾等级"]),
    ("living", &["living", "居住情况"]),
    ("household_size", &["household_size", "家庭人口"]),
    ("guardian_name", &["guardian_name", "监护人", "监护人姓名"]),
    (
        "guardian_relation",
        &["guardian_relation", "监护关系", "与监护人关系"],
    ),
    ("guardian_phone", &["guardian_phone", "监护人电话"]),
    ("needs", &["needs", "需求"]),
];
const PERSON_REQUIRED: &[&str] = &[
    "name",
    "resident_id",
    "community",
    "lat",
    "lon",
    "categories",
];

const VOLUNTEER_COLUMNS: &[(&str, &[&str])] = &[
    ("name", &["name", "姓名"]),
    (
        "resident_id",
        &["resident_id", "身份证号", "身份证号码", "公民身份号码"],
    ),
    ("phone", &["phone", "联系电话", "电话", "手机号"]),
    ("station", &["station", "工作站", "所属工作站"]),
    ("skills", &["skills", "技能", "专长"]),
    ("certifications", &["certifications", "证书", "资格证书"]),
    (
        "safeguarding_expires",
        &[
            "safeguarding_expires",
            "安全审查有效期",
            "无犯罪记录证明有效期",
        ],
    ),
    ("availability", &["availability", "服务时间"]),
    ("lat", &["lat", "纬度"]),
    ("lon", &["lon", "经度"]),
    ("monthly_capacity", &["monthly_capacity", "每月任务上限"]),
    ("languages", &["languages", "语言", "方言"]),
    ("roles", &["roles", "角色", "岗位"]),
    ("community", &["community", "所在村社区", "村社区", "社区"]),
    (
        "insurance_expires",
        &["insurance_expires", "保险有效期", "意外险有效期"],
    ),
    ("status", &["status", "状态"]),
];
const VOLUNTEER_REQUIRED: &[&str] = &["name", "resident_id", "phone", "station", "lat", "lon"];

/// Where each known column sits in this file.
struct Columns(HashMap<&'static str, usize>);

impl Columns {
    fn from_header(header: &csv::ByteRecord, kind: Kind) -> Result<Self, ImportError> {
        let (spec, required) = match kind {
            Kind::Persons => (PERSON_COLUMNS, PERSON_REQUIRED),
            Kind::Volunteers => (VOLUNTEER_COLUMNS, VOLUNTEER_REQUIRED),
        };
        let mut map = HashMap::new();
        for (i, raw) in header.iter().enumerate() {
            let text = std::str::from_utf8(raw).map_err(|_| {
                ImportError::Header(
                    "the header is not UTF-8: save the spreadsheet as \"CSV UTF-8\" and try again"
                        .into(),
                )
            })?;
            let name = text.trim_start_matches('\u{feff}').trim();
            match spec.iter().find(|(_, names)| names.contains(&name)) {
                Some((field, _)) => {
                    if map.insert(*field, i).is_some() {
                        return Err(ImportError::Header(format!(
                            "column {name:?} appears twice in the header"
                        )));
                    }
                }
                None if name.is_empty() => {}
                None => {
                    let known: Vec<&str> = spec.iter().map(|(f, _)| *f).collect();
                    return Err(ImportError::Header(format!(
                        "unknown column {name:?}; the columns are: {}",
                        known.join(", ")
                    )));
                }
            }
        }
        let missing: Vec<&str> = required
            .iter()
            .filter(|f| !map.contains_key(*f))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::Header(format!(
                "missing required column(s): {}",
                missing.join(", ")
            )));
        }
        Ok(Columns(map))
    }

    fn get<'r>(&self, row: &'r csv::ByteRecord, field: &str) -> Result<&'r str, Invalid> {
        let Some(&i) = self.0.get(field) else {
            return Ok("");
        };
        let raw = row.get(i).unwrap_or_default();
        std::str::from_utf8(raw)
            .map(str::trim)
            .map_err(|_| Invalid::one(field, "is not UTF-8 text: save the file as \"CSV UTF-8\""))
    }
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split([';', '；', '、', '|'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
}

fn number(field: &str, s: &str) -> Result<Value, Invalid> {
    let n: f64 = s
        .parse()
        .map_err(|_| Invalid::one(field, format!("{s:?} is not a number")))?;
    Ok(json!(n))
}

fn enum_list<T: Copy>(
    field: &str,
    s: &str,
    parse: impl Fn(&str) -> Option<T>,
    show: impl Fn(T) -> &'static str,
) -> Result<Vec<Value>, Invalid> {
    list(s)
        .map(|x| {
            parse(x)
                .map(|v| json!(show(v)))
                .ok_or_else(|| Invalid::one(field, format!("unknown value {x:?}")))
        })
        .collect()
}

fn living(s: &str) -> Option<&'static str> {
    Some(match s {
        "alone" | "独居" => "alone",
        "elderly_couple" | "空巢" | "老年夫妇" => "elderly_couple",
        "with_family" | "与家人同住" | "与子女同住" => "with_family",
        "with_relatives" | "与亲属同住" | "隔代抚养" => "with_relatives",
        "institution" | "机构" | "机构养护" => "institution",
        _ => return None,
    })
}

fn person_row(cols: &Columns, row: &csv::ByteRecord) -> Result<PersonInput, Invalid> {
    let get = |f: &str| cols.get(row, f);
    let mut obj = Map::new();
    let mut put = |k: &str, v: Value| {
        obj.insert(k.to_owned(), v);
    };
    put("name", json!(get("name")?));
    put("resident_id", json!(get("resident_id")?));
    for f in ["phone", "grid", "address"] {
        let v = get(f)?;
        if !v.is_empty() {
            put(f, json!(v));
        }
    }
    put("community", json!(get("community")?));
    put(
        "location",
        json!({"lat": number("lat", get("lat")?)?, "lon": number("lon", get("lon")?)?}),
    );
    put(
        "categories",
        Value::Array(enum_list(
            "categories",
            get("categories")?,
            Category::parse,
            Category::as_str,
        )?),
    );
    put(
        "circumstances",
        Value::Array(enum_list(
            "circumstances",
            get("circumstances")?,
            ElderCircumstance::parse,
            ElderCircumstance::as_str,
        )?),
    );
    let (dt, dg) = (get("disability_type")?, get("disability_grade")?);
    if !dt.is_empty() || !dg.is_empty() {
        let kind = DisabilityType::parse(dt).ok_or_else(|| {
            Invalid::one("disability_type", format!("unknown disability type {dt:?}"))
        })?;
        let grade: u8 = dg
            .trim_end_matches('级')
            .parse()
            .map_err(|_| Invalid::one("disability_grade", format!("{dg:?} is not a grade 1-4")))?;
        put("disability", json!({"type": kind.as_str(), "grade": grade}));
    }
    let (lv, hs) = (get("living")?, get("household_size")?);
    if !lv.is_empty() {
        let living =
            living(lv).ok_or_else(|| Invalid::one("living", format!("unknown value {lv:?}")))?;
        let size: u8 = if hs.is_empty() {
            u8::from(living == "alone").max(1)
        } else {
            hs.parse()
                .map_err(|_| Invalid::one("household_size", format!("{hs:?} is not a number")))?
        };
        put("household", json!({"living": living, "size": size}));
    }
    let gn = get("guardian_name")?;
    if !gn.is_empty() {
        let mut g = json!({"name": gn, "relation": get("guardian_relation")?});
        let gp = get("guardian_phone")?;
        if !gp.is_empty() {
            g["phone"] = json!(gp);
        }
        put("guardian", g);
    }
    put(
        "needs",
        Value::Array(list(get("needs")?).map(|x| json!(x)).collect()),
    );
    crate::service::from_json(Value::Object(obj))
}

fn weekday(s: &str) -> Option<Weekday> {
    let s = s.to_lowercase();
    let zh = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
    let zh2 = [
        "星期一",
        "星期二",
        "星期三",
        "星期四",
        "星期五",
        "星期六",
        "星期日",
    ];
    Weekday::ALL.into_iter().enumerate().find_map(|(i, d)| {
        (d.as_str() == s || zh[i] == s || zh2[i] == s || (i == 6 && (s == "周天" || s == "星期天")))
            .then_some(d)
    })
}

fn date(field: &str, s: &str) -> Result<NaiveDate, Invalid> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
        .map_err(|_| Invalid::one(field, format!("{s:?} is not a date (YYYY-MM-DD)")))
}

fn volunteer_row(cols: &Columns, row: &csv::ByteRecord) -> Result<VolunteerInput, Invalid> {
    let get = |f: &str| cols.get(row, f);
    let station: u64 = get("station")?
        .parse()
        .map_err(|_| Invalid::one("station", "must be the station's numeric id"))?;
    let mut certs = Vec::new();
    for entry in list(get("certifications")?) {
        // NAME@YYYY-MM-DD or NAME#skill@YYYY-MM-DD
        let (head, expires) = entry.rsplit_once('@').ok_or_else(|| {
            Invalid::one(
                "certifications",
                format!("{entry:?} should be NAME@YYYY-MM-DD or NAME#skill@YYYY-MM-DD"),
            )
        })?;
        let (name, skill) = match head.split_once('#') {
            Some((n, s)) => (n.trim(), Some(s.trim())),
            None => (head.trim(), None),
        };
        let mut c = json!({"name": name, "expires_on": date("certifications", expires.trim())?});
        if let Some(s) = skill {
            c["skill"] = json!(s);
        }
        certs.push(c);
    }
    let mut windows = Vec::new();
    for entry in list(get("availability")?) {
        // "mon 09:00-12:00" or "周一 09:00-12:00"
        let bad = || {
            Invalid::one(
                "availability",
                format!("{entry:?} should look like \"mon 09:00-12:00\""),
            )
        };
        let (day, span) = entry.split_once(char::is_whitespace).ok_or_else(bad)?;
        let (start, end) = span.trim().split_once('-').ok_or_else(bad)?;
        let day = weekday(day.trim()).ok_or_else(bad)?;
        windows.push(json!({"day": day.as_str(), "start": start.trim(), "end": end.trim()}));
    }
    let mut obj = json!({
        "name": get("name")?,
        "resident_id": get("resident_id")?,
        "phone": get("phone")?,
        "station": station,
        "skills": list(get("skills")?).collect::<Vec<_>>(),
        "certifications": certs,
        "availability": windows,
        "home": {"lat": number("lat", get("lat")?)?, "lon": number("lon", get("lon")?)?},
        "languages": list(get("languages")?).collect::<Vec<_>>(),
    });
    let sg = get("safeguarding_expires")?;
    if !sg.is_empty() {
        obj["safeguarding"] = json!({"expires_on": date("safeguarding_expires", sg)?});
    }
    let roles: Vec<String> = list(get("roles")?)
        .map(|r| role_slug(r).to_owned())
        .collect();
    if !roles.is_empty() {
        obj["roles"] = json!(roles);
    }
    let posted = get("community")?;
    if !posted.is_empty() {
        obj["community"] = json!(posted);
    }
    let ins = get("insurance_expires")?;
    if !ins.is_empty() {
        obj["insurance"] = json!({"expires_on": date("insurance_expires", ins)?});
    }
    let cap = get("monthly_capacity")?;
    if !cap.is_empty() {
        let n: u32 = cap.parse().map_err(|_| {
            Invalid::one("monthly_capacity", format!("{cap:?} is not a whole number"))
        })?;
        obj["monthly_capacity"] = json!(n);
    }
    let st = get("status")?;
    if !st.is_empty() {
        let s = match st {
            "active" | "在册" | "正常" => "active",
            "paused" | "暂停" => "paused",
            "inactive" | "注销" => "inactive",
            other => return Err(Invalid::one("status", format!("unknown status {other:?}"))),
        };
        obj["status"] = json!(s);
    }
    crate::service::from_json(obj)
}

/// A row checked against the rules and the registry, ready to write.
enum Checked {
    Person(PersonInput, resident_id::ResidentId),
    Volunteer(VolunteerInput, resident_id::ResidentId),
}

/// Checks rows against the registry as it stands, caching region and station look-ups.
struct RefCheck<'a> {
    read: &'a ReadTx,
    guard: &'a dyn Guard,
    regions: HashMap<String, Option<(RegionLevel, bool)>>,
    stations: HashMap<u64, Option<Station>>,
}

impl RefCheck<'_> {
    fn region(&mut self, code: &str) -> Result<Option<(RegionLevel, bool)>, StoreError> {
        if let Some(r) = self.regions.get(code) {
            return Ok(*r);
        }
        let r = self.read.region(code)?.map(|r| (r.level, r.active));
        self.regions.insert(code.to_owned(), r);
        Ok(r)
    }

    fn check(
        &mut self,
        kind: Kind,
        cols: &Columns,
        row: &csv::ByteRecord,
        today: NaiveDate,
    ) -> Result<Result<Checked, Invalid>, StoreError> {
        match kind {
            Kind::Persons => {
                let mut p = match person_row(cols, row) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let rid = match rules::person(&mut p, today) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                // Scope before existence: a community outside the caller's reach answers the
                // same whether it exists or not.
                if !self.guard.community(&p.community) {
                    return Ok(Err(Invalid::one(
                        "community",
                        "is outside the communities your token covers",
                    )));
                }
                match self.region(&p.community)? {
                    Some((RegionLevel::Community, true)) => {}
                    _ => {
                        return Ok(Err(Invalid::one(
                            "community",
                            format!("{} is not a registered, active community", p.community),
                        )));
                    }
                }
                if let Some(g) = &p.grid
                    && self.region(g)?.is_none()
                {
                    return Ok(Err(Invalid::one(
                        "grid",
                        format!("grid {g} is not registered"),
                    )));
                }
                if let Some(id) = self.read.person_id_by_resident_id(&p.resident_id)? {
                    let visible = match self.read.person(id)? {
                        Some(other) if self.guard.community(&other.community) => Some(id),
                        _ => None,
                    };
                    return Ok(Err(Invalid::one(
                        "resident_id",
                        crate::service::resident_id_taken("person", visible),
                    )));
                }
                Ok(Ok(Checked::Person(p, rid)))
            }
            Kind::Volunteers => {
                let mut v = match volunteer_row(cols, row) {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(e)),
                };
                let rid = match rules::volunteer(&mut v, today) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                let station = match self.stations.get(&v.station) {
                    Some(s) => s.clone(),
                    None => {
                        let s = self.read.station(v.station)?;
                        self.stations.insert(v.station, s.clone());
                        s
                    }
                };
                match station {
                    Some(s) if s.active && self.guard.station(&s) => {
                        if let Some(c) = v.community.as_deref().filter(|c| !s.serves(c)) {
                            return Ok(Err(Invalid::one(
                                "community",
                                format!(
                                    "{c} is not one of the communities station {} serves",
                                    s.id
                                ),
                            )));
                        }
                    }
                    _ => {
                        return Ok(Err(Invalid::one(
                            "station",
                            format!(
                                "station {} is not a registered, active station you cover",
                                v.station
                            ),
                        )));
                    }
                }
                if let Some(id) = self.read.volunteer_id_by_resident_id(&v.resident_id)? {
                    let station = match self.read.volunteer(id)? {
                        Some(other) => self.read.station(other.station)?,
                        None => None,
                    };
                    let visible = station.filter(|s| self.guard.station(s)).map(|_| id);
                    return Ok(Err(Invalid::one(
                        "resident_id",
                        crate::service::resident_id_taken("volunteer", visible),
                    )));
                }
                Ok(Ok(Checked::Volunteer(v, rid)))
            }
        }
    }
}

fn resident_id_of(c: &Checked) -> &str {
    match c {
        Checked::Person(p, _) => &p.resident_id,
        Checked::Volunteer(v, _) => &v.resident_id,
    }
}

/// Options of one import.
pub struct ImportOptions<'a> {
    pub kind: Kind,
    /// Import the valid rows and report the others, instead of importing nothing.
    pub skip_invalid: bool,
    pub guard: &'a dyn Guard,
    pub now: DateTime<Utc>,
    /// When cancelled, the import stops at its next block of rows and writes nothing.
    pub cancel: Option<&'a tokio_util::sync::CancellationToken>,
}

impl ImportOptions<'_> {
    fn check_cancelled(&self) -> Result<(), ImportError> {
        match self.cancel {
            Some(c) if c.is_cancelled() => Err(ImportError::Cancelled),
            _ => Ok(()),
        }
    }
}

/// Imports a CSV file. `open` is called twice (check, then write) and must give the same bytes.
/// `progress` receives the bytes processed so far, out of twice the file's length.
pub fn import<R: Read>(
    store: &Store,
    open: impl Fn() -> std::io::Result<R>,
    opts: &ImportOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let today = crate::clock::local_date(opts.now);
    let mut report = ImportReport::default();
    let mut bad_rows: HashSet<u64> = HashSet::new();
    let mut seen: HashMap<[u8; 18], u64> = HashMap::new();
    let mut first_pass_bytes = 0;

    // Pass 1: check everything.
    store.read(|read| -> Result<(), ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(open()?);
        let cols = Columns::from_header(reader.byte_headers().map_err(csv_error)?, opts.kind)?;
        let mut check = RefCheck {
            read,
            guard: opts.guard,
            regions: HashMap::new(),
            stations: HashMap::new(),
        };
        let mut row = csv::ByteRecord::new();
        while reader.read_byte_record(&mut row).map_err(csv_error)? {
            let line = row.position().map_or(0, |p| p.line());
            report.rows += 1;
            let outcome = check.check(opts.kind, &cols, &row, today)?.and_then(|c| {
                let key = rid_key(resident_id_of(&c));
                match seen.insert(key, line) {
                    Some(first) => Err(Invalid::one(
                        "resident_id",
                        format!("the same resident ID is on line {first} of this file"),
                    )),
                    None => Ok(()),
                }
            });
            if let Err(e) = outcome {
                bad_rows.insert(line);
                for f in e.0 {
                    report.error_count += 1;
                    if report.errors.len() < MAX_REPORTED {
                        report.errors.push(RowError {
                            row: line,
                            field: f.field,
                            message: f.message,
                        });
                    }
                }
            }
            if report.rows % 4096 == 0 {
                progress(row.position().map_or(0, |p| p.byte()));
                opts.check_cancelled()?;
            }
        }
        first_pass_bytes = reader.position().byte();
        Ok(())
    })?;
    drop(seen);
    progress(first_pass_bytes);
    if !bad_rows.is_empty() && !opts.skip_invalid {
        return Ok(report);
    }
    report.skipped = bad_rows.len() as u64;
    opts.check_cancelled()?;
    let to_write = report.rows - report.skipped;

    // Pass 2: write the valid rows in one transaction.
    let imported = store.write(|w| -> Result<u64, ImportError> {
        let kind_name = match opts.kind {
            Kind::Persons => "person",
            Kind::Volunteers => "volunteer",
        };
        let mut next = w.reserve_ids(kind_name, to_write)?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(open()?);
        let cols = Columns::from_header(reader.byte_headers().map_err(csv_error)?, opts.kind)?;
        let mut persons = w.person_writer()?;
        let mut volunteers = w.volunteer_writer()?;
        let mut row = csv::ByteRecord::new();
        let mut written = 0;
        while reader.read_byte_record(&mut row).map_err(csv_error)? {
            let line = row.position().map_or(0, |p| p.line());
            if bad_rows.contains(&line) {
                continue;
            }
            let conflict = |field: &str, message: String| ServiceError::Conflict {
                field: format!("line {line}: {field}"),
                message: format!("{message}; the registry changed during the import, run it again"),
            };
            let checked = match opts.kind {
                Kind::Persons => person_row(&cols, &row)
                    .and_then(|mut p| rules::person(&mut p, today).map(|r| Checked::Person(p, r))),
                Kind::Volunteers => volunteer_row(&cols, &row).and_then(|mut v| {
                    rules::volunteer(&mut v, today).map(|r| Checked::Volunteer(v, r))
                }),
            }
            .map_err(|e| conflict("row", format!("the file changed between passes ({e})")))?;
            match checked {
                Checked::Person(p, rid) => {
                    let record = service::person_record(next, p, rid, opts.now, opts.now);
                    // Registered meanwhile (between the passes): named to nobody.
                    persons.put(&record)?.map_err(|_| {
                        conflict(
                            "resident_id",
                            crate::service::resident_id_taken("person", None),
                        )
                    })?;
                }
                Checked::Volunteer(v, rid) => {
                    let record = service::volunteer_record(next, v, rid, opts.now, opts.now);
                    volunteers.put(&record)?.map_err(|_| {
                        conflict(
                            "resident_id",
                            crate::service::resident_id_taken("volunteer", None),
                        )
                    })?;
                }
            }
            next += 1;
            written += 1;
            if written % 4096 == 0 {
                progress(first_pass_bytes + row.position().map_or(0, |p| p.byte()));
                // Dropping the transaction uncommitted writes nothing.
                opts.check_cancelled()?;
            }
        }
        // A stop that came during the last block still writes nothing.
        opts.check_cancelled()?;
        Ok(written)
    })?;
    progress(first_pass_bytes * 2);
    report.imported = imported;
    Ok(report)
}

/// Imports a CSV file from disk (read twice: check, then write).
pub fn import_file(
    store: &Store,
    path: &std::path::Path,
    opts: &ImportOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, ImportError> {
    import(
        store,
        || std::fs::File::open(path).map(std::io::BufReader::new),
        opts,
        progress,
    )
}

/// A role as written in a spreadsheet: the Chinese titles map to the role tags.
fn role_slug(r: &str) -> &str {
    match r.trim() {
        "儿童主任" => "child_director",
        "灾害信息员" => "disaster_info_officer",
        "网格员" => "grid_worker",
        "社工" | "社会工作者" => "social_worker",
        other => other,
    }
}

/// A cell as a CSV export must write it: text that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading apostrophe,
/// which spreadsheets show as text (OWASP's CSV-injection advice). Imports keep every cell as
/// the text it is, never evaluating it; every CSV linli writes goes through this.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

fn rid_key(rid: &str) -> [u8; 18] {
    let mut key = [0u8; 18];
    for (k, b) in key.iter_mut().zip(rid.bytes()) {
        *k = b;
    }
    key
}

fn csv_error(e: csv::Error) -> ImportError {
    let line = e.position().map(|p| p.line());
    let msg = match e.kind() {
        csv::ErrorKind::Io(io) => format!("cannot read the file: {io}"),
        csv::ErrorKind::UnequalLengths { .. } => "a row has a different number of columns".into(),
        _ => e.to_string(),
    };
    match line {
        Some(l) => ImportError::Header(format!("line {l}: {msg}")),
        None => ImportError::Header(msg),
    }
}

/// The header line of a persons CSV in English, for documentation and templates.
pub fn person_header() -> String {
    PERSON_COLUMNS
        .iter()
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(",")
}

/// The header line of a volunteers CSV in English.
pub fn volunteer_header() -> String {
    VOLUNTEER_COLUMNS
        .iter()
        .map(|(f, _)| *f)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_cells_are_escaped_for_spreadsheets() {
        use super::spreadsheet_safe;
        for (cell, safe) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+86 139", "'+86 139"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("张桂兰", "张桂兰"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), safe);
        }
    }
}
