//! Personal data in tables: columns that look like e-mail addresses, phone numbers, IP addresses,
//! card or ID numbers or person names, and what training, serving and request logs do with them.
//!
//! A column the user marks is either dropped before training (never a feature) or replaced by a
//! salted SHA-256 of each value. The choice and the salt travel in the model's preprocessing, so
//! prediction hashes raw inputs exactly as training did, and the endpoint's request log writes
//! every marked column hashed, never as sent.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, WickError};

/// What a column's values look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonalKind {
    Email,
    Phone,
    IpAddress,
    /// Payment card numbers (13–19 digits passing the Luhn check) and US social security numbers.
    CardOrId,
    PersonName,
}

impl PersonalKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Email => "e-mail addresses",
            Self::Phone => "phone numbers",
            Self::IpAddress => "IP addresses",
            Self::CardOrId => "card or ID numbers",
            Self::PersonName => "person names",
        }
    }
}

/// What happens to a personal column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonalAction {
    /// Left out of training; never a feature.
    Drop,
    /// Each value replaced by a salted SHA-256 (16 hex digits) before training and prediction.
    Hash,
}

impl std::str::FromStr for PersonalAction {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "drop" => Ok(Self::Drop),
            "hash" => Ok(Self::Hash),
            other => Err(format!(
                "`{other}` is not an action for a personal column: use drop or hash"
            )),
        }
    }
}

/// The user's choices for personal columns, and the salt hashed values are made with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersonalData {
    pub columns: BTreeMap<String, PersonalAction>,
    /// Random, made once per project when the first column is hashed, and kept in the model so the
    /// endpoint hashes a value to what training saw. Not a secret from whoever holds the package.
    pub salt: String,
}

/// Hex digits kept of a hashed value: 64 bits, enough to join and count values without a collision
/// in any table Wick trains on, short enough to read.
const HASH_HEX_DIGITS: usize = 16;

impl PersonalData {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Marks `column` (or unmarks it with `None`); the first hashed column gets a fresh salt.
    pub fn set(&mut self, column: &str, action: Option<PersonalAction>) {
        match action {
            Some(a) => {
                self.columns.insert(column.to_string(), a);
                if a == PersonalAction::Hash && self.salt.is_empty() {
                    self.salt = hex::encode(rand::random::<[u8; 16]>());
                }
            }
            None => {
                self.columns.remove(column);
            }
        }
    }

    pub fn action(&self, column: &str) -> Option<PersonalAction> {
        self.columns.get(column).copied()
    }

    pub fn is_hashed(&self, column: &str) -> bool {
        self.action(column) == Some(PersonalAction::Hash)
    }

    /// The salted SHA-256 of one value, as [`HASH_HEX_DIGITS`] hex digits.
    pub fn hash_value(&self, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.salt.as_bytes());
        h.update([0u8]);
        h.update(value.as_bytes());
        let mut s = hex::encode(h.finalize());
        s.truncate(HASH_HEX_DIGITS);
        s
    }

    /// The frame with dropped columns removed and hashed columns' values replaced (as text;
    /// missing values stay missing). Columns not in the frame are passed over: a prediction request
    /// need not send a dropped column.
    pub fn apply(&self, df: &DataFrame) -> Result<DataFrame> {
        if self.is_empty() {
            return Ok(df.clone());
        }
        let mut out = df.clone();
        for (name, action) in &self.columns {
            if out.column(name).is_err() {
                continue;
            }
            match action {
                PersonalAction::Drop => {
                    out = out.drop(name).map_err(|e| {
                        WickError::polars(format!("dropping personal column `{name}`"), e)
                    })?;
                }
                PersonalAction::Hash => {
                    let hashed = self.hash_column(
                        out.column(name)
                            .map_err(|e| WickError::polars(format!("column `{name}`"), e))?,
                    )?;
                    out.with_column(hashed).map_err(|e| {
                        WickError::polars(format!("hashing personal column `{name}`"), e)
                    })?;
                }
            }
        }
        Ok(out)
    }

    fn hash_column(&self, column: &Column) -> Result<Column> {
        let name = column.name().clone();
        let text = column
            .cast(&DataType::String)
            .map_err(|e| WickError::polars(format!("column `{name}`"), e))?;
        let text = text
            .str()
            .map_err(|e| WickError::polars(format!("column `{name}`"), e))?;
        let hashed: StringChunked = text.iter().map(|v| v.map(|v| self.hash_value(v))).collect();
        Ok(hashed.with_name(name).into_series().into())
    }

    /// Hashes text values of a hashed column in place (tensors from a request, log entries).
    pub fn hash_values(&self, column: &str, values: &mut [Option<String>]) {
        if self.is_hashed(column) {
            for v in values.iter_mut().flatten() {
                *v = self.hash_value(v);
            }
        }
    }
}

/// Share of a sample's non-empty values that must match a pattern for the column to be flagged.
const MATCH_SHARE: f64 = 0.8;
/// Values looked at per column.
const SAMPLE_VALUES: usize = 1000;

/// What a column looks like, if it looks personal: its name and (up to 1,000 of) its values are
/// checked. Text columns are matched on values; a name-only hint (`phone`, `first_name`) needs the
/// values to agree too, so a city column is not taken for names.
pub fn detect_personal(series: &Series) -> Option<PersonalKind> {
    let key: String = series
        .name()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let values: Vec<String> = match series.dtype() {
        DataType::String => series
            .str()
            .ok()?
            .iter()
            .flatten()
            .filter(|v| !v.trim().is_empty())
            .take(SAMPLE_VALUES)
            .map(str::to_string)
            .collect(),
        // Phone numbers stored as integers are only recognisable by the column's name.
        dt if dt.is_integer() && name_says_phone(&key) => series
            .cast(&DataType::String)
            .ok()?
            .str()
            .ok()?
            .iter()
            .flatten()
            .take(SAMPLE_VALUES)
            .map(str::to_string)
            .collect(),
        _ => return None,
    };
    if values.is_empty() {
        return None;
    }
    let share = |f: &dyn Fn(&str) -> bool| {
        values.iter().filter(|v| f(v.trim())).count() as f64 / values.len() as f64
    };
    if share(&looks_like_email) >= MATCH_SHARE {
        return Some(PersonalKind::Email);
    }
    if share(&|v| v.parse::<std::net::IpAddr>().is_ok()) >= MATCH_SHARE {
        return Some(PersonalKind::IpAddress);
    }
    if share(&|v| looks_like_card(v) || looks_like_ssn(v)) >= MATCH_SHARE {
        return Some(PersonalKind::CardOrId);
    }
    if share(&|v| looks_like_phone(v, name_says_phone(&key))) >= MATCH_SHARE {
        return Some(PersonalKind::Phone);
    }
    if name_says_person(&key) && share(&looks_like_name) >= MATCH_SHARE {
        return Some(PersonalKind::PersonName);
    }
    None
}

fn name_says_phone(key: &str) -> bool {
    ["phone", "mobile", "cell", "telephone", "tel", "fax"]
        .iter()
        .any(|k| key == *k || key.starts_with(k) || key.ends_with(k))
}

fn name_says_person(key: &str) -> bool {
    const NAMES: [&str; 16] = [
        "name",
        "firstname",
        "lastname",
        "surname",
        "fullname",
        "givenname",
        "familyname",
        "forename",
        "customer",
        "customername",
        "contact",
        "contactname",
        "person",
        "patient",
        "patientname",
        "employee",
    ];
    NAMES.contains(&key)
        || key.ends_with("firstname")
        || key.ends_with("lastname")
        || key.ends_with("fullname")
}

fn looks_like_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !v.contains(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|p| !p.is_empty())
}

fn digits(v: &str) -> Vec<u32> {
    v.chars().filter_map(|c| c.to_digit(10)).collect()
}

fn looks_like_card(v: &str) -> bool {
    if !v
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return false;
    }
    let d = digits(v);
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    // The Luhn check every payment card number passes.
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                if x * 2 > 9 {
                    x * 2 - 9
                } else {
                    x * 2
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn looks_like_ssn(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.len() == 3
        && [3, 2, 4]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_digit()))
}

/// 7–15 digits with the punctuation phone numbers are written with; without a name that says
/// phone, the value must be written like one (a leading `+`, or separators), not be a bare number.
fn looks_like_phone(v: &str, named_phone: bool) -> bool {
    if !v
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        return false;
    }
    let n = digits(v).len();
    if !(7..=15).contains(&n) || looks_like_date(v) {
        return false;
    }
    named_phone || v.starts_with('+') || v.chars().any(|c| " -()".contains(c))
}

/// Dates written with digits and separators (`2012-01-01`, `01/02/2012`, `1.2.2012`), which the
/// phone pattern would otherwise take.
fn looks_like_date(v: &str) -> bool {
    const FORMATS: [&str; 6] = [
        "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%d.%m.%Y",
    ];
    FORMATS
        .iter()
        .any(|f| chrono::NaiveDate::parse_from_str(v, f).is_ok())
}

/// One to eight words of letters and name punctuation, each starting with a capital letter or a
/// particle (de, van, …). Commas, brackets and quotes may stand between them, as in passenger
/// lists: "Cumings, Mrs. John Bradley (Florence Briggs Thayer)".
fn looks_like_name(v: &str) -> bool {
    const PARTICLES: [&str; 12] = [
        "de", "van", "von", "der", "den", "da", "del", "della", "di", "du", "la", "y",
    ];
    let cleaned: String = v
        .chars()
        .map(|c| if ",()\"".contains(c) { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    (1..=8).contains(&words.len())
        && words.iter().all(|w| {
            (w.chars().next().is_some_and(char::is_uppercase) || PARTICLES.contains(w))
                && w.chars().all(|c| c.is_alphabetic() || "'-.".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str, values: &[&str]) -> Option<PersonalKind> {
        detect_personal(&Series::new(name.into(), values))
    }

    #[test]
    fn each_kind_is_recognised_by_its_values() {
        assert_eq!(
            kind(
                "contact",
                &["ann@example.com", "bo.b@mail.co.uk", "c+tag@x.org"]
            ),
            Some(PersonalKind::Email)
        );
        assert_eq!(
            kind("client", &["192.168.1.20", "10.0.0.1", "2001:db8::1"]),
            Some(PersonalKind::IpAddress)
        );
        assert_eq!(
            kind(
                "pan",
                &[
                    "4111 1111 1111 1111",
                    "5500-0000-0000-0004",
                    "378282246310005"
                ]
            ),
            Some(PersonalKind::CardOrId)
        );
        assert_eq!(
            kind("ssn", &["078-05-1120", "219-09-9999"]),
            Some(PersonalKind::CardOrId)
        );
        assert_eq!(
            kind(
                "reach",
                &["+44 20 7946 0958", "(555) 010-4477", "555-0100 22"]
            ),
            Some(PersonalKind::Phone)
        );
        assert_eq!(
            kind(
                "customer_name",
                &["Ada Lovelace", "Grace Hopper", "Alan Mathison Turing"]
            ),
            Some(PersonalKind::PersonName)
        );
        let phones = Series::new("phone".into(), &[5550100i64, 2025550123]);
        assert_eq!(detect_personal(&phones), Some(PersonalKind::Phone));
    }

    #[test]
    fn ordinary_columns_are_not_flagged() {
        assert_eq!(
            kind("city", &["Seattle", "New York", "Paris"]),
            None,
            "names need a name-like column"
        );
        // The Titanic passenger list's `name` column.
        let passengers = [
            "Braund, Mr. Owen Harris",
            "Cumings, Mrs. John Bradley (Florence Briggs Thayer)",
            "Heikkinen, Miss. Laina",
            "Palsson, Master. Gosta Leonard",
            "Johnson, Mrs. Oscar W (Elisabeth Vilhelmina Berg)",
        ];
        assert_eq!(kind("name", &passengers), Some(PersonalKind::PersonName));
        assert_eq!(
            kind(
                "Name",
                &[
                    "van der Berg, Mr. Jan",
                    "de la Cruz, Ms. Ana",
                    "O'Brien, Mr. Timothy"
                ]
            ),
            Some(PersonalKind::PersonName)
        );
        assert_eq!(
            kind("name", &["rain", "sun", "fog"]),
            None,
            "a column called name of lower-case words"
        );
        assert_eq!(kind("weather", &["rain", "sun", "drizzle"]), None);
        assert_eq!(
            kind("code", &["1234567", "7654321"]),
            None,
            "bare numbers are not phones without the name"
        );
        assert_eq!(
            kind("card", &["4111 1111 1111 1112"]),
            None,
            "fails the Luhn check"
        );
        assert_eq!(kind("date", &["2012-01-01", "2012-01-02"]), None);
        assert_eq!(
            detect_personal(&Series::new("phone".into(), &[1.5f64, 2.5])),
            None,
            "floats are measurements"
        );
        // One value in five personal is not a personal column.
        assert_eq!(kind("note", &["a@b.co", "x", "y", "z", "w"]), None);
    }

    #[test]
    fn hashing_is_salted_stable_and_keeps_missing_values() {
        let mut p = PersonalData::default();
        p.set("email", Some(PersonalAction::Hash));
        p.set("name", Some(PersonalAction::Drop));
        assert_eq!(p.salt.len(), 32);
        let salt = p.salt.clone();
        p.set("phone", Some(PersonalAction::Hash));
        assert_eq!(p.salt, salt, "the salt is made once");
        let df = df!("email" => [Some("ann@example.com"), None, Some("ann@example.com")], "name" => ["A", "B", "C"], "x" => [1, 2, 3]).unwrap();
        let out = p.apply(&df).unwrap();
        assert_eq!(out.get_column_names(), ["email", "x"]);
        let e = out.column("email").unwrap().str().unwrap().clone();
        let first = e.get(0).unwrap();
        assert_eq!(first.len(), 16);
        assert_eq!(e.get(1), None);
        assert_eq!(e.get(2), Some(first));
        assert_eq!(first, p.hash_value("ann@example.com"));
        // sha256("<salt>\0ann@example.com")[..16], computed independently:
        // python3 -c "import hashlib; print(hashlib.sha256(b'00112233445566778899aabbccddeeff\x00ann@example.com').hexdigest()[:16])"
        let fixed = PersonalData {
            salt: "00112233445566778899aabbccddeeff".into(),
            ..Default::default()
        };
        assert_eq!(fixed.hash_value("ann@example.com"), "cf82632e41262348");
        let other = PersonalData {
            salt: "ffeeddccbbaa99887766554433221100".into(),
            ..Default::default()
        };
        assert_ne!(
            other.hash_value("ann@example.com"),
            fixed.hash_value("ann@example.com")
        );
        p.set("email", None);
        assert!(!p.is_hashed("email"));
    }
}
