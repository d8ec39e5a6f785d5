//! The synthetic county behind `linlid demo`: Pingliang City (平凉市) with its seven
//! county-level units, and 崆峒区 filled in — townships and streets, villages and communities,
//! one social-work station per township, a few thousand people in care across the plan's
//! priority groups and a few hundred volunteers. Names and division codes of the city and
//! counties are real; townships follow the district's real names; communities, people and
//! codes below the township are synthetic. People and volunteers go in through the CSV
//! importer, so the demo exercises the same checks as real data.

use std::fmt::Write as _;
use std::io::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::registry::import::{self, ImportOptions, ImportReport, Kind};
use crate::registry::service;
use crate::registry::{Contact, GeoPoint, RegionInput, Settlement, StationInput, resident_id};
use crate::service::{Everything, ServiceError};
use crate::store::Store;

/// The demo county.
pub const COUNTY: &str = "620802000000";
pub const CITY: &str = "620800000000";

const COUNTIES: [(&str, &str); 7] = [
    ("620802000000", "崆峒区"),
    ("620821000000", "泾川县"),
    ("620822000000", "灵台县"),
    ("620823000000", "崇信县"),
    ("620825000000", "庄浪县"),
    ("620826000000", "静宁县"),
    ("620881000000", "华亭市"),
];

/// 崆峒区's streets (街道) and townships (镇/乡), with synthetic codes.
const TOWNSHIPS: [(&str, &str, bool); 20] = [
    ("001", "东关街道", true),
    ("002", "中街街道", true),
    ("003", "西郊街道", true),
    ("101", "崆峒镇", false),
    ("102", "白水镇", false),
    ("103", "草峰镇", false),
    ("104", "安国镇", false),
    ("105", "柳湖镇", false),
    ("106", "四十里铺镇", false),
    ("107", "花所镇", false),
    ("201", "索罗乡", false),
    ("202", "香莲乡", false),
    ("203", "西阳回族乡", false),
    ("204", "大寨回族乡", false),
    ("205", "上杨回族乡", false),
    ("206", "麻武乡", false),
    ("207", "峡门回族乡", false),
    ("208", "寨河回族乡", false),
    ("209", "大秦回族乡", false),
    ("210", "杨庄乡", false),
];

const URBAN: [&str; 8] = [
    "新民路",
    "广场",
    "东大街",
    "南苑",
    "和平",
    "崆峒路",
    "柳湖",
    "紫金城",
];
const VILLAGE: [&str; 24] = [
    "王寨",
    "李家庄",
    "高家湾",
    "南台",
    "白庙",
    "焦家",
    "刘湾",
    "马莲",
    "杨湾",
    "张家沟",
    "下关",
    "上店",
    "红崖",
    "何家洼",
    "寺沟",
    "沟口",
    "庙庄",
    "大庄",
    "新庄",
    "蒋家湾",
    "杏树岔",
    "峡口",
    "韩家山",
    "赵家河",
];
const SURNAMES: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "马", "周", "吴", "徐", "孙", "朱", "胡", "郭", "何",
    "高", "罗", "梁", "宋", "韩", "唐", "冯", "苏",
];
const GIVEN_OLD: [&str; 16] = [
    "桂兰", "秀英", "玉珍", "凤英", "淑珍", "建国", "德福", "有才", "明山", "志强", "国华", "春花",
    "兰英", "福海", "金花", "永福",
];
const GIVEN_YOUNG: [&str; 16] = [
    "子涵", "欣怡", "浩然", "雨轩", "梓萱", "宇航", "佳怡", "俊杰", "思远", "一诺", "家豪", "诗琪",
    "晨曦", "博文", "若曦", "天佑",
];
const SKILLS: [&str; 9] = [
    "elder_care",
    "first_aid",
    "rehabilitation",
    "sign_language",
    "counselling",
    "child_care",
    "driving",
    "home_repair",
    "cooking",
];

/// How many people in care and volunteers the demo county gets.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub persons: usize,
    pub volunteers: usize,
}

impl Default for Size {
    fn default() -> Self {
        Size {
            persons: 3000,
            volunteers: 300,
        }
    }
}

/// What was seeded.
#[derive(Debug)]
pub struct Seeded {
    pub regions: usize,
    pub stations: Vec<u64>,
    pub persons: ImportReport,
    pub volunteers: ImportReport,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Registry(#[from] ServiceError),
    #[error(transparent)]
    Import(#[from] import::ImportError),
    #[error("the generated {0} were refused: {1}")]
    Generated(&'static str, String),
}

struct Community {
    code: String,
    centre: GeoPoint,
}

/// Seeds the demo county into an empty store.
pub fn seed(store: &Store, now: DateTime<Utc>, size: Size) -> Result<Seeded, DemoError> {
    let mut rng = StdRng::seed_from_u64(20221);
    let (regions, communities, stations) = seed_places(store, now, &mut rng)?;
    let today = crate::clock::local_date(now);
    let mut persons = Vec::new();
    persons_csv(
        &mut rng,
        &communities,
        today,
        size.persons,
        false,
        &mut persons,
    )
    .map_err(|e| DemoError::Generated("people in care", e.to_string()))?;
    let volunteers_csv = volunteers_csv(&mut rng, &communities, &stations, today, size.volunteers);
    let persons = run_import(store, Kind::Persons, persons, now)?;
    let volunteers = run_import(store, Kind::Volunteers, volunteers_csv.into_bytes(), now)?;
    Ok(Seeded {
        regions,
        stations,
        persons,
        volunteers,
    })
}

/// Seeds the county's regions and stations into an empty store and writes `rows` generated
/// people in care to `csv`, for the import benchmark.
pub fn bench_fixture(
    store: &Store,
    csv: &std::path::Path,
    rows: usize,
    now: DateTime<Utc>,
) -> Result<(), DemoError> {
    bench_fixture_with(store, csv, rows, false, now)
}

/// As `bench_fixture`; `elders_only` makes every row a special-difficulty elder.
pub fn bench_fixture_with(
    store: &Store,
    csv: &std::path::Path,
    rows: usize,
    elders_only: bool,
    now: DateTime<Utc>,
) -> Result<(), DemoError> {
    let mut rng = StdRng::seed_from_u64(7);
    let (_, communities, _) = seed_places(store, now, &mut rng)?;
    let io = |e: std::io::Error| DemoError::Generated("benchmark rows", e.to_string());
    let mut out = std::io::BufWriter::new(std::fs::File::create(csv).map_err(io)?);
    persons_csv(
        &mut rng,
        &communities,
        crate::clock::local_date(now),
        rows,
        elders_only,
        &mut out,
    )
    .map_err(io)?;
    out.flush().map_err(io)
}

type Places = (usize, Vec<Community>, Vec<u64>);

/// Regions of the city and the demo county, and a station per township.
fn seed_places(store: &Store, now: DateTime<Utc>, rng: &mut StdRng) -> Result<Places, DemoError> {
    let g = &Everything;
    let region = |code: &str, name: &str, settlement, population| RegionInput {
        code: code.to_owned(),
        name: name.to_owned(),
        settlement,
        population,
    };
    let mut regions = 0;
    service::create_region(store, g, region(CITY, "平凉市", None, Some(1_848_600)), now)?;
    regions += 1;
    for (code, name) in COUNTIES {
        service::create_region(store, g, region(code, name, None, None), now)?;
        regions += 1;
    }
    // One township and community in each other county, so bureau scopes have something to
    // keep apart.
    for (code, name) in &COUNTIES[1..] {
        let township = format!("{}001000", &code[..6]);
        service::create_region(
            store,
            g,
            region(&township, &format!("{name}城关镇"), None, None),
            now,
        )?;
        let community = format!("{}001001", &code[..6]);
        service::create_region(
            store,
            g,
            region(&community, "城关社区", Some(Settlement::Urban), Some(4200)),
            now,
        )?;
        regions += 2;
    }
    let centre = GeoPoint {
        lat: 35.543,
        lon: 106.665,
    };
    let mut communities: Vec<Community> = Vec::new();
    let mut stations = Vec::new();
    for (i, (t, name, urban)) in TOWNSHIPS.iter().enumerate() {
        let township = format!("620802{t}000");
        service::create_region(store, g, region(&township, name, None, None), now)?;
        regions += 1;
        let spread = if *urban { 0.02 } else { 0.2 };
        let t_centre = GeoPoint {
            lat: centre.lat + rng.random_range(-spread..spread),
            lon: centre.lon + rng.random_range(-spread..spread) * 1.3,
        };
        let count = if *urban { 6 } else { 8 };
        let mut served = Vec::new();
        for c in 1..=count {
            let code = format!("620802{t}{c:03}");
            let (cname, settlement, population) = if *urban {
                (
                    format!("{}社区", URBAN[(i + c) % URBAN.len()]),
                    Settlement::Urban,
                    rng.random_range(3000..9000),
                )
            } else {
                (
                    format!("{}村", VILLAGE[(i * 3 + c) % VILLAGE.len()]),
                    Settlement::Rural,
                    rng.random_range(600..2400),
                )
            };
            service::create_region(
                store,
                g,
                region(&code, &cname, Some(settlement), Some(population)),
                now,
            )?;
            regions += 1;
            if *urban {
                for grid in 1..=2 {
                    let gcode = format!("{code}-{grid}");
                    service::create_region(
                        store,
                        g,
                        region(&gcode, &format!("第{grid}网格"), None, None),
                        now,
                    )?;
                    regions += 1;
                }
            }
            communities.push(Community {
                code: code.clone(),
                centre: GeoPoint {
                    lat: t_centre.lat + rng.random_range(-0.03..0.03),
                    lon: t_centre.lon + rng.random_range(-0.03..0.03),
                },
            });
            served.push(code);
        }
        let station = service::create_station(
            store,
            g,
            StationInput {
                name: format!("{name}社会工作站"),
                township: township.clone(),
                communities: served,
                neighbours: Vec::new(),
                contact: Contact {
                    name: format!("{}站长", SURNAMES[i % SURNAMES.len()]),
                    phone: format!("0933{:07}", 8_200_000 + i * 17),
                },
                address: Some(format!("平凉市崆峒区{name}便民服务中心")),
                location: Some(t_centre),
            },
            now,
        )?;
        stations.push(station.id);
    }
    Ok((regions, communities, stations))
}

fn run_import(
    store: &Store,
    kind: Kind,
    bytes: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<ImportReport, DemoError> {
    let opts = ImportOptions {
        kind,
        skip_invalid: false,
        guard: &Everything,
        now,
        cancel: None,
    };
    let report = import::import(
        store,
        || Ok(std::io::Cursor::new(bytes.as_slice())),
        &opts,
        &mut |_| {},
    )?;
    if report.error_count > 0 {
        let what = if kind == Kind::Persons {
            "people in care"
        } else {
            "volunteers"
        };
        let first = report
            .errors
            .first()
            .map(|e| format!("line {}: {}: {}", e.row, e.field, e.message))
            .unwrap_or_default();
        return Err(DemoError::Generated(what, first));
    }
    Ok(report)
}

fn birth(rng: &mut StdRng, today: NaiveDate, min_age: i32, max_age: i32) -> NaiveDate {
    let age = rng.random_range(min_age..=max_age);
    let year = today.year() - age - 1;
    let day = rng.random_range(0..365);
    NaiveDate::from_ymd_opt(year, 1, 1).map_or(today, |d| d + Duration::days(day))
}

fn near(rng: &mut StdRng, c: &GeoPoint) -> (f64, f64) {
    (
        c.lat + rng.random_range(-0.01..0.01),
        c.lon + rng.random_range(-0.01..0.01),
    )
}

fn phone(rng: &mut StdRng) -> String {
    let prefix = ["139", "138", "137", "151", "177", "188", "133", "199"];
    format!(
        "{}{:08}",
        prefix[rng.random_range(0..prefix.len())],
        rng.random_range(0..100_000_000u32)
    )
}

/// Generates the people in care as the CSV a station would keep.
fn persons_csv(
    rng: &mut StdRng,
    communities: &[Community],
    today: NaiveDate,
    n: usize,
    elders_only: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    writeln!(out, "{}", import::person_header())?;
    for i in 0..n {
        let c = &communities[i % communities.len()];
        let roll = if elders_only {
            0
        } else {
            rng.random_range(0..100)
        };
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let (lat, lon) = near(rng, &c.centre);
        let grid = if c.code[6..9].starts_with('0') {
            format!("{}-{}", c.code, 1 + i % 2)
        } else {
            String::new()
        };
        let mut row = Row::default();
        if roll < 58 {
            // Special-difficulty elder.
            let born = birth(rng, today, 62, 96);
            let age = today.year() - born.year();
            let mut circ = vec![];
            let living = match rng.random_range(0..10) {
                0..=3 => {
                    circ.push("living_alone");
                    "alone"
                }
                4..=6 => {
                    circ.push("empty_nest");
                    "elderly_couple"
                }
                _ => {
                    circ.push("left_behind");
                    "with_relatives"
                }
            };
            if age >= 81 {
                circ.push("advanced_age");
            }
            match rng.random_range(0..10) {
                0 => circ.push("incapacitated"),
                1 | 2 => circ.push("semi_incapacitated"),
                _ => {}
            }
            if rng.random_bool(0.3) {
                circ.push("subsistence_allowance");
            }
            let disabled = rng.random_bool(0.12);
            row.name = format!(
                "{surname}{}",
                GIVEN_OLD[rng.random_range(0..GIVEN_OLD.len())]
            );
            row.born = born;
            row.categories = if disabled {
                "special_difficulty_elder;disabled".into()
            } else {
                "special_difficulty_elder".into()
            };
            row.circumstances = circ.join(";");
            if disabled {
                row.disability = Some(("physical", rng.random_range(1..=4)));
            }
            row.living = living.into();
            row.household_size = if living == "alone" { 1 } else { 2 };
            row.needs =
                ["meals", "home_care", "medical", "companionship"][rng.random_range(0..4)].into();
        } else if roll < 78 {
            let left_behind = roll < 72;
            row.name = format!(
                "{surname}{}",
                GIVEN_YOUNG[rng.random_range(0..GIVEN_YOUNG.len())]
            );
            row.born = birth(rng, today, 3, 16);
            row.categories = if left_behind {
                "left_behind_child".into()
            } else {
                "child_in_difficulty".into()
            };
            row.living = "with_relatives".into();
            row.household_size = rng.random_range(2..5);
            let relation = ["祖母", "祖父", "外祖母", "叔叔"][rng.random_range(0..4)];
            row.guardian = Some((
                format!(
                    "{surname}{}",
                    GIVEN_OLD[rng.random_range(0..GIVEN_OLD.len())]
                ),
                relation.into(),
                phone(rng),
            ));
            row.needs = ["schooling", "companionship", "psychological_support"]
                [rng.random_range(0..3)]
            .into();
        } else {
            let kinds = [
                "visual",
                "hearing",
                "speech",
                "physical",
                "intellectual",
                "mental",
                "multiple",
            ];
            row.name = format!(
                "{surname}{}",
                GIVEN_OLD[rng.random_range(0..GIVEN_OLD.len())]
            );
            row.born = birth(rng, today, 20, 59);
            row.categories = "disabled".into();
            row.disability = Some((
                kinds[rng.random_range(0..kinds.len())],
                rng.random_range(1..=4),
            ));
            row.living = "with_family".into();
            row.household_size = rng.random_range(2..6);
            row.needs = [
                "rehabilitation",
                "assistive_device",
                "day_care",
                "home_care",
            ][rng.random_range(0..4)]
            .into();
        }
        // Birthplace codes and sequence numbers differ row by row, so IDs never repeat.
        let area = format!("{:06}", 620_000 + (i / 1000) % 10_000);
        let rid = resident_id::make(&area, row.born, (i % 1000) as u16);
        let (dt, dg) = row
            .disability
            .map_or((String::new(), String::new()), |(t, g)| {
                (t.to_owned(), g.to_string())
            });
        let (gn, gr, gp) = row.guardian.clone().unwrap_or_default();
        let phone = if rng.random_bool(0.7) {
            phone(rng)
        } else {
            String::new()
        };
        let street = ["和平路", "东环路", "柳湖路", "崆峒大道", "村", "组"][i % 6];
        writeln!(
            out,
            "{},{},{},{},{},{:.6},{:.6},{street}{}号,{},{},{},{},{},{},{},{},{},{}",
            row.name,
            rid,
            phone,
            c.code,
            grid,
            lat,
            lon,
            1 + i % 90,
            row.categories,
            row.circumstances,
            dt,
            dg,
            row.living,
            row.household_size,
            gn,
            gr,
            gp,
            row.needs
        )?;
    }
    Ok(())
}

#[derive(Default)]
struct Row {
    name: String,
    born: NaiveDate,
    categories: String,
    circumstances: String,
    disability: Option<(&'static str, u8)>,
    living: String,
    household_size: u8,
    guardian: Option<(String, String, String)>,
    needs: String,
}

/// Generates the volunteers as a station's CSV.
fn volunteers_csv(
    rng: &mut StdRng,
    communities: &[Community],
    stations: &[u64],
    today: NaiveDate,
    n: usize,
) -> String {
    let mut out = import::volunteer_header();
    out.push('\n');
    let per_station = communities.len().div_ceil(stations.len().max(1));
    for i in 0..n {
        let station = stations[i % stations.len().max(1)];
        let home = &communities[((i % stations.len().max(1)) * per_station
            + i / stations.len().max(1))
            % communities.len()];
        let (lat, lon) = near(rng, &home.centre);
        let born = birth(rng, today, 19, 68);
        let rid = resident_id::make(&home.code[..6], born, (500 + i % 500) as u16);
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let name = format!(
            "{surname}{}",
            ["志", "红", "军", "芳", "伟", "丽", "强", "敏"][rng.random_range(0..8)]
        );
        let mut skills: Vec<&str> = (0..rng.random_range(1..4))
            .map(|_| SKILLS[rng.random_range(0..SKILLS.len())])
            .collect();
        skills.sort();
        skills.dedup();
        let expires = |rng: &mut StdRng| today + Duration::days(rng.random_range(-60..720));
        let mut certs = Vec::new();
        if skills.contains(&"first_aid") {
            certs.push(format!("红十字救护员证#first_aid@{}", expires(rng)));
        }
        if skills.contains(&"rehabilitation") {
            certs.push(format!("康复治疗师资格证#rehabilitation@{}", expires(rng)));
        }
        let safeguarding = if rng.random_bool(0.45) {
            expires(rng).to_string()
        } else {
            String::new()
        };
        let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let availability: Vec<String> = (0..rng.random_range(1..4))
            .map(|k| {
                let d = days[(i + k * 2) % 7];
                if rng.random_bool(0.5) {
                    format!("{d} 09:00-12:00")
                } else {
                    format!("{d} 14:00-18:00")
                }
            })
            .collect();
        let mut langs = vec!["普通话", "平凉话"];
        if skills.contains(&"sign_language") {
            langs.push("手语");
        }
        // Community roles: an information officer (灾害信息员) and a grid worker posted to a
        // village of the station's township; some child directors.
        let s_idx = i % stations.len().max(1);
        let prefix = TOWNSHIPS
            .get(s_idx)
            .map(|(t, _, _)| format!("620802{t}"))
            .unwrap_or_default();
        let own: Vec<&Community> = communities
            .iter()
            .filter(|c| !prefix.is_empty() && c.code.starts_with(&prefix))
            .collect();
        let round = i / stations.len().max(1);
        let (roles, posted) = match (round % 4, own.get(round / 4 % own.len().max(1))) {
            (0, Some(c)) => ("disaster_info_officer", c.code.as_str()),
            (1, Some(c)) => ("grid_worker", c.code.as_str()),
            (2, _) => ("child_director", ""),
            _ => ("", ""),
        };
        let insurance = if rng.random_bool(0.6) {
            expires(rng).to_string()
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{name},{rid},{},{station},{},{},{safeguarding},{},{lat:.6},{lon:.6},{},{},{roles},{posted},{insurance},active",
            phone(rng),
            skills.join(";"),
            certs.join(";"),
            availability.join(";"),
            rng.random_range(2..10),
            langs.join(";"),
        );
    }
    out
}

/// The shipped plugins' duties for the demo county, each with its most recent occurrence run
/// (within the last 100 days), so the demo has tasks from occurrences that already fired.
/// Duties are created only once; returns (duty name, occurrence) for what ran.
pub fn seed_duties(
    scheduler: &crate::schedule::Scheduler,
    now: DateTime<Utc>,
) -> Result<Vec<(String, crate::schedule::Occurrence)>, ServiceError> {
    use crate::schedule::{DutyInput, Selector};
    if !scheduler.list(&Everything)?.is_empty() {
        return Ok(Vec::new());
    }
    let plan: [(&str, &str, &str); 7] = [
        ("崆峒区特殊困难老人月探访", "elderly-visit", "monthly-visit"),
        ("崆峒区高风险老人周巡查", "elderly-visit", "weekly-check"),
        (
            "崆峒区留守困境儿童月探访",
            "child-protection",
            "monthly-visit",
        ),
        ("崆峒区重度残疾人每周照护", "disability-care", "weekly-care"),
        ("崆峒区残疾人月探访", "disability-care", "monthly-visit"),
        (
            "崆峒区社区季度应急演练",
            "emergency-drill",
            "quarterly-drill",
        ),
        (
            "崆峒区防灾减灾日演练",
            "emergency-drill",
            "disaster-prevention-day",
        ),
    ];
    let mut ran = Vec::new();
    for (name, plugin, action) in plan {
        let duty = scheduler.create(
            DutyInput {
                name: name.into(),
                plugin: plugin.into(),
                action: action.into(),
                cron: None,
                time_zone: None,
                selector: Selector {
                    region: COUNTY.into(),
                    categories: Vec::new(),
                    needs: Vec::new(),
                    communities: Vec::new(),
                },
                due_window_days: None,
                catch_up: Default::default(),
                paused: false,
            },
            &Everything,
            None,
        )?;
        // Only the most recent fire time before now, as if the daemon had been running.
        let expr: crate::schedule::cron::CronExpr =
            duty.cron
                .parse()
                .map_err(|e: crate::schedule::cron::CronError| {
                    ServiceError::Invalid(crate::registry::Invalid::one("cron", e.to_string()))
                })?;
        let tz = crate::schedule::cron::zone(&duty.time_zone).unwrap_or(chrono_tz::Asia::Shanghai);
        if let Some(last) = expr
            .between(now - Duration::days(100), now, tz, 10_000)
            .last()
        {
            let queued = scheduler.backfill(duty.id, *last, *last, &Everything)?;
            ran.extend(queued.into_iter().map(|o| (name.to_owned(), o)));
        }
    }
    // The demo runs before the daemon serves: it may run the queued occurrences itself.
    scheduler.tick()?;
    ran.into_iter()
        .map(|(name, o)| {
            let done = scheduler.occurrence(o.duty, o.scheduled_at)?;
            Ok((name, done.unwrap_or(o)))
        })
        .collect()
}

/// A demo county ready to serve, with the tokens to try it with.
pub struct Prepared {
    pub state: crate::api::AppState,
    pub admin: String,
    pub bureau: String,
    pub station: String,
    /// A volunteer with offers waiting, and their token.
    pub volunteer: Option<(u64, String)>,
    /// The code of a certificate issued to a volunteer who made demo visits.
    pub certificate: Option<String>,
}

/// Everything `linlid demo` does before serving: seeds the county into an empty store (or
/// keeps the one already there), deploys the shipped plugins, creates their duties and runs
/// their first occurrences, and makes an admin, a bureau and a station token. `say` narrates
/// each step for the person watching.
pub fn prepare(
    store: Store,
    clock: crate::clock::SharedClock,
    size: Size,
    compiler: crate::plugins::runtime::Compiler,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Prepared> {
    use anyhow::Context;

    use crate::api::auth::{self, Scope};

    let now = clock.now();
    if store.read(|r| r.region(CITY))?.is_none() {
        say("seeding the demo county (平凉市崆峒区) …".into());
        let seeded = seed(&store, now, size).context("seeding the demo county")?;
        say(format!(
            "  {} regions, {} stations, {} people in care, {} volunteers",
            seeded.regions,
            seeded.stations.len(),
            seeded.persons.imported,
            seeded.volunteers.imported
        ));
    } else {
        say("using the demo county already there".into());
    }
    let state = crate::api::AppState::with_plugin_host(
        store.clone(),
        clock,
        chrono_tz::Asia::Shanghai,
        &Default::default(),
        compiler,
    )
    .context("starting")?;
    let actor = crate::plugins::catalog::Actor {
        label: "demo".into(),
        bureau: None,
    };
    for (name, bytes) in crate::plugins::SHIPPED {
        match state.plugins.deploy(bytes, &actor) {
            Ok(d) if d.changed => say(format!(
                "  plugin {} {} deployed",
                d.status.id, d.status.active_version
            )),
            Ok(d) => say(format!(
                "  plugin {} {} already deployed",
                d.status.id, d.status.active_version
            )),
            Err(e) => say(format!("  plugin {name} refused: {e}")),
        }
    }
    match seed_duties(&state.scheduler, now) {
        Ok(ran) => {
            for (name, o) in ran {
                say(format!(
                    "  duty {name}: occurrence {} → {} tasks",
                    o.scheduled_at
                        .with_timezone(&chrono_tz::Asia::Shanghai)
                        .format("%Y-%m-%d %H:%M"),
                    o.tasks_created
                ));
            }
        }
        Err(e) => say(format!("  duties not created: {e}")),
    }
    // What matching made of the tasks.
    let count = |status: crate::schedule::TaskStatus| {
        store
            .read(|r| r.tasks_in_status(status, 0, usize::MAX, |_| true))
            .map(|p| p.items)
    };
    let offered = count(crate::schedule::TaskStatus::Offered)?;
    let unstaffed = count(crate::schedule::TaskStatus::Unstaffed)?;
    say(format!(
        "  matching: {} tasks offered to volunteers, {} unstaffed (GET /v1/reports/shortage says why)",
        offered.len(),
        unstaffed.len()
    ));
    let volunteer = offered
        .iter()
        .flat_map(|t| t.offers.iter())
        .map(|o| o.volunteer)
        .next();
    let certificate = match seed_visits(&state, volunteer, &offered, now) {
        Ok((visits, follow_ups, cert)) => {
            if visits > 0 {
                say(format!(
                    "  records: {visits} visits made earlier today reported and accepted by the plugins' reviews, {follow_ups} with a follow-up task"
                ));
            }
            cert
        }
        Err(e) => {
            say(format!("  demo visits not made: {e}"));
            None
        }
    };
    let mk =
        |scope: Scope, label: &str| auth::create_token(&store, &scope, Some(label.to_owned()), now);
    Ok(Prepared {
        admin: mk(Scope::Admin, "demo admin")?,
        bureau: mk(Scope::Bureau(COUNTY.into()), "demo 崆峒区民政局")?,
        station: mk(Scope::Station(1), "demo 东关街道社会工作站")?,
        volunteer: match volunteer {
            Some(v) => Some((v, mk(Scope::Volunteer(v), "demo volunteer")?)),
            None => None,
        },
        certificate,
        state,
    })
}

/// Visits made earlier today: up to forty of the offered tasks are accepted and reported (the
/// answers mostly reassuring, so the plugins' reviews vary as they would), and the volunteer
/// with the most visits gets a certificate. Skipped when the data folder already has reports.
fn seed_visits(
    state: &crate::api::AppState,
    keep_waiting: Option<u64>,
    offered: &[crate::schedule::Task],
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, usize, Option<String>)> {
    use crate::records::model::{ReportAnswer, ReportInput, ReportState};
    use crate::schedule::AnswerKind;

    let store = &state.store;
    if store.read(|r| r.report(1))?.is_some() {
        return Ok((0, 0, None));
    }
    let zone = chrono_tz::Asia::Shanghai;
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).fixed_offset();
    let (mut visits, mut follow_ups) = (0, 0);
    let mut by_volunteer: std::collections::HashMap<u64, usize> = Default::default();
    let careful = [
        "fell", "hazard", "abuse", "danger", "injur", "neglect", "need",
    ];
    for (i, task) in offered.iter().enumerate() {
        if visits >= 40 {
            break;
        }
        let Some(v) = task.offers.first().map(|o| o.volunteer) else {
            continue;
        };
        let start = now - Duration::minutes(170 - 2 * (i as i64 % 60));
        if Some(v) == keep_waiting
            || task.requirements.team_size != 1
            || task.due_start.to_utc() > start
            || task.due_end.to_utc() < now
        {
            continue;
        }
        let checklist = match task.checklist {
            0 => Vec::new(),
            id => store.read(|r| r.checklist(id))?.unwrap_or_default(),
        };
        let answers = checklist
            .iter()
            .filter_map(|q| {
                let value = match q.kind {
                    AnswerKind::YesNo if careful.iter().any(|c| q.id.contains(c)) => "no".into(),
                    AnswerKind::YesNo => "yes".into(),
                    AnswerKind::Choice => q.choices.first()?.clone(),
                    AnswerKind::Number => "1".into(),
                    AnswerKind::Text if q.required => "无".into(),
                    AnswerKind::Text => return None,
                };
                Some(ReportAnswer {
                    item: q.id.clone(),
                    value,
                })
            })
            .collect();
        if state.scheduler.accept(task.id, v).is_err() {
            continue;
        }
        let reached = i % 10 != 9;
        let report = state.records.file_report(
            task.id,
            ReportInput {
                checked_in_at: Some(local(start)),
                checked_out_at: Some(local(start + Duration::minutes(45))),
                position: None,
                reached,
                answers,
                notes: if reached {
                    "身体状况良好，家中整洁".into()
                } else {
                    "敲门无人应答，邻居说去了女儿家".into()
                },
                visitors: Vec::new(),
            },
            &crate::records::Actor::Volunteer(v),
        )?;
        if report.state == ReportState::Accepted {
            visits += 1;
            *by_volunteer.entry(v).or_default() += 1;
            if report
                .review
                .as_ref()
                .is_some_and(|r| r.follow_up_task.is_some())
            {
                follow_ups += 1;
            }
        }
    }
    let best = by_volunteer
        .into_iter()
        .max_by_key(|(v, n)| (*n, std::cmp::Reverse(*v)));
    let cert = match best {
        Some((v, _)) => Some(
            state
                .records
                .issue_certificate(v, Default::default(), None, "station:1")?
                .code,
        ),
        None => None,
    };
    Ok((visits, follow_ups, cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_county_seeds_cleanly() {
        let dir = tempfile::tempdir().ok();
        let path = dir
            .as_ref()
            .map(|d| d.path().join("demo.redb"))
            .unwrap_or_default();
        let store = Store::open(&path, Default::default()).ok();
        let Some(store) = store else {
            panic!("store did not open");
        };
        let now = DateTime::parse_from_rfc3339("2026-11-29T08:00:00+08:00")
            .map(|d| d.to_utc())
            .unwrap_or_default();
        let seeded = seed(
            &store,
            now,
            Size {
                persons: 600,
                volunteers: 80,
            },
        );
        let seeded = seeded.map_err(|e| e.to_string());
        let (p, v) = seeded
            .as_ref()
            .map(|s| (s.persons.imported, s.volunteers.imported))
            .unwrap_or_default();
        assert_eq!((p, v), (600, 80), "{seeded:?}");
    }
}
