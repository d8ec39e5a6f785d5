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
    let w = word.trim().to_lowercase();
    if w.is_empty() {
        return None;
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
        assert_eq!(closest("", &["a"]), None);
    }
}
