//! Resident identity numbers (居民身份证号码, GB 11643-1999): 18 characters — a 6-digit
//! division code, an 8-digit birth date, a 3-digit sequence whose parity gives the sex, and a
//! mod 11-2 check character (`0`–`9` or `X`).

use chrono::NaiveDate;

use super::Gender;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// What a valid resident ID tells about its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentId {
    pub birth_date: NaiveDate,
    pub gender: Gender,
}

/// Why a resident ID was refused; the message is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    #[error("must be 18 characters (17 digits and a check digit or X), got {0}")]
    Length(usize),
    #[error("characters 1-17 must be digits")]
    NotDigits,
    #[error("characters 7-14 are not a real birth date (YYYYMMDD)")]
    BirthDate,
    #[error("check digit is {found} but should be {expected}: the number is mistyped")]
    CheckDigit { found: char, expected: char },
}

/// The check character for the first 17 digits.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (b, w) in first17.iter().zip(WEIGHTS) {
        let d = char::from(*b).to_digit(10)?;
        sum += d * w;
    }
    Some(CHECK[(sum % 11) as usize])
}

/// Normalises (trim, upper-case `x`) and validates a resident ID.
pub fn parse(raw: &str) -> Result<(String, ResidentId), ResidentIdError> {
    let id = raw.trim().to_ascii_uppercase();
    let bytes = id.as_bytes();
    if bytes.len() != 18 || id.chars().count() != 18 {
        return Err(ResidentIdError::Length(id.chars().count()));
    }
    if !bytes[..17].iter().all(u8::is_ascii_digit) {
        return Err(ResidentIdError::NotDigits);
    }
    let expected = check_char(&bytes[..17]).ok_or(ResidentIdError::NotDigits)?;
    let found = char::from(bytes[17]);
    let year: i32 = id[6..10].parse().map_err(|_| ResidentIdError::BirthDate)?;
    let month: u32 = id[10..12].parse().map_err(|_| ResidentIdError::BirthDate)?;
    let day: u32 = id[12..14].parse().map_err(|_| ResidentIdError::BirthDate)?;
    let birth_date = NaiveDate::from_ymd_opt(year, month, day)
        .filter(|d| (1880..=2100).contains(&d.year_ce().1))
        .ok_or(ResidentIdError::BirthDate)?;
    if found != expected {
        return Err(ResidentIdError::CheckDigit { found, expected });
    }
    let gender = if (bytes[16] - b'0') % 2 == 1 {
        Gender::Male
    } else {
        Gender::Female
    };
    Ok((id, ResidentId { birth_date, gender }))
}

use chrono::Datelike;

/// Builds a valid ID from a 6-digit area code, birth date and 3-digit sequence; for demo data
/// and tests.
pub fn make(area: &str, birth: NaiveDate, sequence: u16) -> String {
    let mut s = format!(
        "{area:0>6.6}{}{:03}",
        birth.format("%Y%m%d"),
        sequence % 1000
    );
    let c = check_char(s.as_bytes()).unwrap_or('0');
    s.push(c);
    s
}

/// Masks an ID for display where the full number is not needed: `620802********123X`.
pub fn mask(id: &str) -> String {
    if id.len() != 18 {
        return "*".repeat(id.chars().count());
    }
    format!("{}********{}", &id[..6], &id[14..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_number() {
        // The sample number printed in GB 11643-1999.
        let (id, info) = parse("11010519491231002x")
            .map_err(|e| e.to_string())
            .ok()
            .unzip();
        assert_eq!(id.as_deref(), Some("11010519491231002X"));
        assert_eq!(
            info.map(|i| (i.birth_date.to_string(), i.gender)),
            Some(("1949-12-31".to_owned(), Gender::Female))
        );
    }

    #[test]
    fn check_digit_mistakes_are_named() {
        assert_eq!(
            parse("110105194912310021"),
            Err(ResidentIdError::CheckDigit {
                found: '1',
                expected: 'X'
            })
        );
        assert_eq!(parse("1101051949123100"), Err(ResidentIdError::Length(16)));
        assert_eq!(parse("11010519491331002X"), Err(ResidentIdError::BirthDate));
        assert_eq!(parse("1101051949123100AX"), Err(ResidentIdError::NotDigits));
    }

    #[test]
    fn made_numbers_validate() {
        for seq in 0..200u16 {
            let birth = NaiveDate::from_ymd_opt(1940, 2, 29).unwrap_or_default();
            let id = make("620802", birth, seq);
            let parsed = parse(&id).map(|(_, i)| i.birth_date);
            assert_eq!(parsed, Ok(birth), "{id}");
        }
    }
}
