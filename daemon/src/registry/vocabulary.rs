//! The registry's vocabulary as plugins and duties name it — categories of people in care,
//! elders' circumstances — and the check that refuses a name linli does not know, with the
//! closest one it does. A misspelled category would otherwise select nobody, silently.

use super::{Category, ElderCircumstance};

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Skills stations commonly register (slug, Chinese name), as the SDK's `vocab::Skill` lists
/// them; stations may register others.
pub const SKILLS: &[(&str, &str)] = &[
    ("first_aid", "急救"),
    ("elder_care", "养老护理"),
    ("rehabilitation", "康复"),
    ("sign_language", "手语"),
    ("counselling", "心理疏导"),
    ("child_care", "儿童照护"),
    ("driving", "驾驶"),
    ("home_repair", "家居维修"),
    ("cooking", "烹饪"),
];

/// The known word nearest to `word`: the one with the fewest edits, or one that contains it or
/// is contained in it (`disabled_person` → `disabled`), if any is near enough to be a slip.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    // Dashes for underscores is the commonest slip (`child-director`).
    let w = word.trim().to_lowercase().replace('-', "_");
    if w.is_empty() {
        return None;
    }
    // Word by word, each part a short form of the other (`info` for `information`).
    let parts: Vec<&str> = w.split('_').collect();
    if let Some(k) = known.iter().find(|k| {
        let kp: Vec<&str> = k.split('_').collect();
        kp.len() == parts.len()
            && kp.iter().zip(&parts).all(|(a, b)| {
                !a.is_empty() && !b.is_empty() && (a.starts_with(b) || b.starts_with(a))
            })
    }) {
        return Some(k);
    }
    if let Some(k) = known
        .iter()
        .filter(|k| w.contains(**k) || k.contains(w.as_str()))
        .max_by_key(|k| k.len())
    {
        return Some(k);
    }
    known
        .iter()
        .map(|k| (distance(&w, k), *k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Why a name was refused: what it was, the nearest known one, and every known one.
fn unknown(what: &str, word: &str, known: &[&str]) -> String {
    let hint = closest(word, known)
        .map(|k| format!("; did you mean {k:?}?"))
        .unwrap_or_default();
    format!(
        "{what} {word:?} is not one linli knows{hint} (known: {})",
        known.join(", ")
    )
}

/// The community roles linli knows (slug, Chinese title): what volunteers' `roles` and a
/// task's `requirements.roles` name, as the SDK's `vocab::Role` lists them.
pub const ROLES: &[(&str, &str)] = &[
    ("child_director", "儿童主任"),
    ("disaster_info_officer", "灾害信息员"),
    ("grid_worker", "网格员"),
    ("social_worker", "社工"),
];

/// Checks role names a task requires: an unknown one would leave the task unstaffable, so it
/// is refused with the nearest known one.
pub fn check_roles(names: &[String]) -> Result<(), String> {
    let known: Vec<&str> = ROLES.iter().map(|(slug, _)| *slug).collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            return Err(unknown("role", n, &known));
        }
    }
    Ok(())
}

/// The Chinese name of a vocabulary slug (category, circumstance, role, skill), if it is one.
pub fn zh(slug: &str) -> Option<&'static str> {
    ROLES
        .iter()
        .chain(SKILLS.iter())
        .find(|(s, _)| *s == slug)
        .map(|(_, zh)| *zh)
        .or_else(|| {
            Category::ALL
                .iter()
                .find(|c| c.as_str() == slug)
                .map(|c| c.zh())
        })
        .or_else(|| {
            ElderCircumstance::ALL
                .iter()
                .find(|c| c.as_str() == slug)
                .map(|c| c.zh())
        })
}

/// Every category slug.
pub fn category_slugs() -> Vec<&'static str> {
    Category::ALL.iter().map(|c| c.as_str()).collect()
}

/// Checks category names (the English slugs): each must be a category linli keeps.
pub fn check_categories(names: &[String]) -> Result<(), String> {
    let known = category_slugs();
    for n in names {
        if !known.contains(&n.as_str()) {
            return Err(unknown("category", n, &known));
        }
    }
    Ok(())
}

/// Checks elder circumstance names (`living_alone`, …).
pub fn check_circumstances(names: &[String]) -> Result<(), String> {
    let known: Vec<&str> = ElderCircumstance::ALL.iter().map(|c| c.as_str()).collect();
    for n in names {
        if !known.contains(&n.as_str()) {
            return Err(unknown("circumstance", n, &known));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_categories_are_refused_with_the_nearest() {
        let e = check_categories(&["disabled_person".into()]).unwrap_err();
        assert!(e.contains("did you mean \"disabled\""), "{e}");
        let e = check_categories(&["special_dificulty_elder".into()]).unwrap_err();
        assert!(e.contains("\"special_difficulty_elder\""), "{e}");
        let e = check_categories(&["left_behind_children".into()]).unwrap_err();
        assert!(e.contains("\"left_behind_child\""), "{e}");
        let e = check_categories(&["astronaut".into()]).unwrap_err();
        assert!(!e.contains("did you mean") && e.contains("known: special_difficulty_elder"));
        assert!(check_categories(&["disabled".into(), "veteran".into()]).is_ok());
        assert_eq!(distance("kitten", "sitting"), 3);
        let e = check_roles(&["disaster-information-officer".into()]).unwrap_err();
        assert!(e.contains("did you mean \"disaster_info_officer\""), "{e}");
        let e = check_roles(&["child-director".into()]).unwrap_err();
        assert!(e.contains("\"child_director\""), "{e}");
        assert_eq!(zh("disaster_info_officer"), Some("灾害信息员"));
        assert_eq!(zh("first_aid"), Some("急救"));
        assert_eq!(closest("", &["a"]), None);
    }
}
