//! The registry: regions, township social-work stations, people in care and volunteers.
//! This module owns the types and the rules that make a record valid; it stores nothing
//! itself (that is `store`'s job) and knows nothing of HTTP or scopes.

pub mod import;
pub mod region;
pub mod resident_id;
pub mod rules;
pub mod service;
pub mod vocabulary;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use region::{RegionCode, RegionLevel};
pub use rules::{FieldError, Invalid, age_on as rules_age};

/// A point on the map, WGS-84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude, -90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    /// Longitude, -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
}

/// Urban community (社区) or rural village (村).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    Urban,
    Rural,
}

// ---------------------------------------------------------------------------------------------
// Regions

/// A region as clients write it. The level and parent follow from the code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionInput {
    /// 12-digit division code, or `<community code>-<n>` for a grid.
    #[schema(example = "620802001001")]
    #[schema(pattern = "^[0-9]{12}(-[0-9]{1,4})?$")]
    pub code: String,
    #[schema(example = "东关街道中山社区")]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Urban or rural; meaningful for communities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    /// Resident population, when known (sizes drill teams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<u32>,
}

/// A stored region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub level: RegionLevel,
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Settlement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<u32>,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

impl Region {
    pub fn to_input(&self) -> RegionInput {
        RegionInput {
            code: self.code.clone(),
            name: self.name.clone(),
            settlement: self.settlement,
            population: self.population,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stations

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[schema(example = "李华")]
    pub name: String,
    #[schema(example = "09338211234")]
    pub phone: String,
}

/// A township social-work station (乡镇（街道）社会工作站) as clients write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StationInput {
    #[schema(example = "东关街道社会工作站")]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The township-level region the station belongs to.
    #[schema(example = "620802001000")]
    #[schema(pattern = "^[0-9]{12}$")]
    pub township: String,
    /// Community codes the station serves; each must lie in its county.
    #[schema(max_items = 500)]
    #[schema(min_items = 1)]
    pub communities: Vec<String>,
    /// Stations whose volunteers may also take this station's tasks (the bureau decides).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub neighbours: Vec<u64>,
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Station {
    pub id: u64,
    pub name: String,
    pub township: String,
    pub communities: Vec<String>,
    #[serde(default)]
    pub neighbours: Vec<u64>,
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<GeoPoint>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Station {
    pub fn to_input(&self) -> StationInput {
        StationInput {
            name: self.name.clone(),
            township: self.township.clone(),
            communities: self.communities.clone(),
            neighbours: self.neighbours.clone(),
            contact: self.contact.clone(),
            address: self.address.clone(),
            location: self.location,
        }
    }

    /// Whether the station serves this community (or a grid inside it).
    pub fn serves(&self, community_or_grid: &str) -> bool {
        let community = community_or_grid
            .split_once('-')
            .map_or(community_or_grid, |(c, _)| c);
        self.communities.iter().any(|c| c == community)
    }
}

// ---------------------------------------------------------------------------------------------
// People in care

/// An enum whose values have an English slug (its serde name) and the Chinese name users know
/// it by; `parse` accepts either.
macro_rules! labelled_enum {
    ($(#[$m:meta])* pub enum $name:ident {
        $($(#[$vm:meta])* $variant:ident = ($slug:literal, $zh:literal)),* $(,)?
    }) => {
        $(#[$m])*
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $slug)] $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $slug),*
                }
            }

            pub fn zh(self) -> &'static str {
                match self {
                    $($name::$variant => $zh),*
                }
            }

            /// Accepts the English slug or the Chinese name.
            pub fn parse(s: &str) -> Option<$name> {
                let s = s.trim();
                Self::ALL.iter().copied().find(|c| c.as_str() == s || c.zh() == s)
            }
        }

        // Written out rather than derived: the derive cannot see a `rename` that a macro
        // substitutes, and would publish the Rust names instead of the wire's.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($slug),*]))
                    .description(Some(concat!(
                        "On the wire: ", $("`", $slug, "` (", $zh, ") ",)*
                        "; CSV files may use the Chinese names."
                    )))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

labelled_enum! {
    /// The plan's priority groups (服务对象).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum Category {
        SpecialDifficultyElder = ("special_difficulty_elder", "特殊困难老人"),
        LeftBehindChild = ("left_behind_child", "留守儿童"),
        ChildInDifficulty = ("child_in_difficulty", "困境儿童"),
        Disabled = ("disabled", "残疾人"),
        Unemployed = ("unemployed", "登记失业人员"),
        Veteran = ("veteran", "退役军人"),
        CommunityCorrection = ("community_correction", "社区矫正对象"),
    }
}

labelled_enum! {
    /// Kinds of special difficulty for elders (特殊困难老人的类型).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub enum ElderCircumstance {
        LivingAlone = ("living_alone", "独居"),
        EmptyNest = ("empty_nest", "空巢"),
        LeftBehind = ("left_behind", "留守"),
        Incapacitated = ("incapacitated", "失能"),
        SemiIncapacitated = ("semi_incapacitated", "半失能"),
        /// 80 or older.
        AdvancedAge = ("advanced_age", "高龄"),
        SubsistenceAllowance = ("subsistence_allowance", "低保"),
        ExtremePoverty = ("extreme_poverty", "特困"),
    }
}

labelled_enum! {
    /// Disability types of the national disability certificate.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub enum DisabilityType {
        Visual = ("visual", "视力"),
        Hearing = ("hearing", "听力"),
        Speech = ("speech", "言语"),
        Physical = ("physical", "肢体"),
        Intellectual = ("intellectual", "智力"),
        Mental = ("mental", "精神"),
        Multiple = ("multiple", "多重"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Disability {
    #[serde(rename = "type")]
    pub kind: DisabilityType,
    /// 1 (most severe) to 4.
    #[schema(minimum = 1, maximum = 4)]
    pub grade: u8,
}

/// Who the person lives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LivingArrangement {
    Alone,
    /// An elderly couple with no one else (空巢).
    ElderlyCouple,
    WithFamily,
    /// A child living with grandparents or other relatives while parents work away.
    WithRelatives,
    Institution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Household {
    pub living: LivingArrangement,
    /// People in the household, the person included.
    #[schema(minimum = 1)]
    pub size: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guardian {
    pub name: String,
    /// e.g. 祖母, 父亲, 村委会.
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A person in care as clients write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    #[schema(example = "张桂兰")]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 18-character resident ID; the check digit is verified.
    #[schema(example = "11010519491231002X")]
    #[schema(pattern = "^[0-9]{17}[0-9Xx]$")]
    pub resident_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Community code (12 digits).
    #[schema(pattern = "^[0-9]{12}$")]
    pub community: String,
    /// Grid code inside the community, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    pub location: GeoPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// At least one priority group.
    #[schema(min_items = 1)]
    pub categories: Vec<Category>,
    /// For special-difficulty elders: which difficulties apply.
    #[serde(default)]
    pub circumstances: Vec<ElderCircumstance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disability: Option<Disability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<Household>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian: Option<Guardian>,
    /// Needs tags such as `meals`, `home_care`, `medical`, `rehabilitation`.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub needs: Vec<String>,
}

/// A stored person in care.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub resident_id: String,
    /// From the resident ID.
    pub gender: Gender,
    /// From the resident ID.
    pub birth_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub community: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    pub location: GeoPoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub categories: Vec<Category>,
    #[serde(default)]
    pub circumstances: Vec<ElderCircumstance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disability: Option<Disability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household: Option<Household>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian: Option<Guardian>,
    #[serde(default)]
    pub needs: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What planning needs of a person: a projection of [`Person`] read without the rest of the
/// record (names, IDs, contacts and timestamps are not even decoded).
#[derive(Debug, Clone, Deserialize)]
pub struct PersonFacts {
    pub id: u64,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub community: String,
    #[serde(default)]
    pub grid: Option<String>,
    pub categories: Vec<Category>,
    #[serde(default)]
    pub circumstances: Vec<ElderCircumstance>,
    #[serde(default)]
    pub disability: Option<Disability>,
    #[serde(default)]
    pub household: Option<Household>,
    #[serde(default)]
    pub guardian: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub needs: Vec<String>,
    pub active: bool,
}

impl Person {
    pub fn to_input(&self) -> PersonInput {
        PersonInput {
            name: self.name.clone(),
            resident_id: self.resident_id.clone(),
            phone: self.phone.clone(),
            community: self.community.clone(),
            grid: self.grid.clone(),
            location: self.location,
            address: self.address.clone(),
            categories: self.categories.clone(),
            circumstances: self.circumstances.clone(),
            disability: self.disability,
            household: self.household,
            guardian: self.guardian.clone(),
            needs: self.needs.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Volunteers

/// A certification with its expiry, e.g. a first-aid certificate (红十字救护员证).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Certification {
    #[schema(example = "红十字救护员证")]
    pub name: String,
    /// The skill this certification attests, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "first_aid")]
    pub skill: Option<String>,
    pub expires_on: NaiveDate,
}

/// A safeguarding clearance (e.g. a criminal-record check for work with children).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Clearance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub expires_on: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }
}

/// A weekly window in which the volunteer is available, local time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    pub day: Weekday,
    /// `HH:MM`, 24-hour.
    #[schema(example = "09:00")]
    pub start: String,
    /// `HH:MM`, after `start`; `24:00` for the end of the day.
    #[schema(example = "12:00")]
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum VolunteerStatus {
    #[default]
    Active,
    /// Temporarily not taking tasks.
    Paused,
    /// Deactivated.
    Inactive,
}

/// A volunteer (志愿者) as clients write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VolunteerInput {
    #[schema(example = "王明")]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(pattern = "^[0-9]{17}[0-9Xx]$")]
    pub resident_id: String,
    pub phone: String,
    /// Home station id.
    pub station: u64,
    /// Skill slugs such as `first_aid`, `rehabilitation`, `sign_language`, `elder_care`.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub skills: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub certifications: Vec<Certification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safeguarding: Option<Clearance>,
    #[serde(default)]
    #[schema(max_items = 42)]
    pub availability: Vec<Availability>,
    pub home: GeoPoint,
    /// Tasks the volunteer takes in a month.
    #[serde(default = "default_capacity")]
    #[schema(maximum = 200)]
    pub monthly_capacity: u32,
    /// Languages or dialects, e.g. 普通话, 平凉话, 手语.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub languages: Vec<String>,
    /// Community roles: `child_director` (儿童主任), `disaster_info_officer` (灾害信息员),
    /// `grid_worker` (网格员), `social_worker` (社工), or another tag.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub roles: Vec<String>,
    /// Accident insurance (志愿服务条例 Art. 17: risky activities such as drills need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurance: Option<Clearance>,
    /// The village or community (12-digit code) the volunteer is posted to — for community
    /// roles such as 灾害信息员, the one they serve; it must be one their station serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{12}$")]
    pub community: Option<String>,
    #[serde(default)]
    pub status: VolunteerStatus,
}

fn default_capacity() -> u32 {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Volunteer {
    pub id: u64,
    pub name: String,
    pub resident_id: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub station: u64,
    pub skills: Vec<String>,
    pub certifications: Vec<Certification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safeguarding: Option<Clearance>,
    pub availability: Vec<Availability>,
    pub home: GeoPoint,
    pub monthly_capacity: u32,
    pub languages: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurance: Option<Clearance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    pub status: VolunteerStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Volunteer {
    pub fn to_input(&self) -> VolunteerInput {
        VolunteerInput {
            name: self.name.clone(),
            resident_id: self.resident_id.clone(),
            phone: self.phone.clone(),
            station: self.station,
            skills: self.skills.clone(),
            certifications: self.certifications.clone(),
            safeguarding: self.safeguarding.clone(),
            availability: self.availability.clone(),
            home: self.home,
            monthly_capacity: self.monthly_capacity,
            languages: self.languages.clone(),
            roles: self.roles.clone(),
            insurance: self.insurance.clone(),
            community: self.community.clone(),
            status: self.status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_the_serde_names() {
        for c in Category::ALL {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
            assert_eq!(Category::parse(c.zh()), Some(*c));
        }
        for c in ElderCircumstance::ALL {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
        for c in DisabilityType::ALL {
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::json!(c.as_str()))
            );
        }
    }
}
