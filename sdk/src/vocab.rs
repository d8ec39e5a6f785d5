//! linli's vocabulary, typed: the categories of people in care, elders' circumstances, living
//! arrangements, disability kinds, community roles and common skills, each with its slug (what
//! the wire carries) and its Chinese name. Use these instead of string literals, so a slip such
//! as `disabled_person` is a compile error rather than a duty that selects nobody. (The host
//! also refuses an unknown category when the plugin is checked or deployed, naming the closest.)
//!
//! ```
//! use linli_sdk::vocab::Category;
//! let categories: Vec<String> = vec![Category::Disabled.into()];
//! assert_eq!(categories, ["disabled"]);
//! assert_eq!(Category::Disabled.zh(), "残疾人");
//! ```

macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = ($slug:literal, $zh:literal)),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),*
        }

        impl $name {
            /// Every value, in a fixed order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The slug on the wire, e.g. `special_difficulty_elder`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $slug),*
                }
            }

            /// The Chinese name users read.
            pub const fn zh(self) -> &'static str {
                match self {
                    $($name::$variant => $zh),*
                }
            }

            /// The value with this slug (or Chinese name).
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s || v.zh() == s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Categories of people in care (服务对象类别): what an action's `categories` name.
    Category {
        SpecialDifficultyElder = ("special_difficulty_elder", "特殊困难老人"),
        LeftBehindChild = ("left_behind_child", "留守儿童"),
        ChildInDifficulty = ("child_in_difficulty", "困境儿童"),
        Disabled = ("disabled", "残疾人"),
        Unemployed = ("unemployed", "登记失业人员"),
        Veteran = ("veteran", "退役军人"),
        CommunityCorrection = ("community_correction", "社区矫正对象"),
    }
}

vocabulary! {
    /// Kinds of special difficulty of elders (`Person::circumstances`).
    Circumstance {
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

vocabulary! {
    /// How a person lives (`Person::living`; `household.living` in the HTTP API).
    Living {
        Alone = ("alone", "独居"),
        ElderlyCouple = ("elderly_couple", "空巢"),
        WithFamily = ("with_family", "与家人同住"),
        WithRelatives = ("with_relatives", "与亲属同住"),
        Institution = ("institution", "机构"),
    }
}

vocabulary! {
    /// Kinds of disability (`Disability::kind`; `disability.type` in the HTTP API).
    DisabilityKind {
        Visual = ("visual", "视力"),
        Hearing = ("hearing", "听力"),
        Speech = ("speech", "言语"),
        Physical = ("physical", "肢体"),
        Intellectual = ("intellectual", "智力"),
        Mental = ("mental", "精神"),
        Multiple = ("multiple", "多重"),
    }
}

vocabulary! {
    /// Community roles volunteers and community workers hold (`Requirements::roles`).
    Role {
        ChildDirector = ("child_director", "儿童主任"),
        DisasterInfoOfficer = ("disaster_info_officer", "灾害信息员"),
        GridWorker = ("grid_worker", "网格员"),
        SocialWorker = ("social_worker", "社工"),
    }
}

vocabulary! {
    /// Skills stations commonly register (`Requirements::skills`); stations may add others.
    Skill {
        FirstAid = ("first_aid", "急救"),
        ElderCare = ("elder_care", "养老护理"),
        Rehabilitation = ("rehabilitation", "康复"),
        SignLanguage = ("sign_language", "手语"),
        Counselling = ("counselling", "心理疏导"),
        ChildCare = ("child_care", "儿童照护"),
        Driving = ("driving", "驾驶"),
        HomeRepair = ("home_repair", "家居维修"),
        Cooking = ("cooking", "烹饪"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(*c));
            assert_eq!(Category::parse(c.zh()), Some(*c));
        }
        assert_eq!(Category::parse("disabled_person"), None);
        assert_eq!(
            String::from(Role::DisasterInfoOfficer),
            "disaster_info_officer"
        );
    }
}
