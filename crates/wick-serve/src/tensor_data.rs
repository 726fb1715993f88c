//! A tensor's `data` as it is parsed: nested arrays flattened on the way in, numbers kept as plain
//! `f64`s (8 bytes each, where a `serde_json::Value` takes 32), and the element count checked while
//! parsing, so an oversized request is refused before it is held in memory.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The flat values of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// Only numbers (the common case, and the large one).
    Numbers(Vec<f64>),
    /// Anything else: text, booleans, nulls, or a mix.
    Values(Vec<serde_json::Value>),
}

thread_local! {
    /// Most elements one request may hold, over all its tensors; set by [`parse_with_element_limit`].
    static REMAINING: Cell<usize> = const { Cell::new(usize::MAX) };
    static EXCEEDED: Cell<bool> = const { Cell::new(false) };
}

/// Why a request body was not parsed.
pub enum ParseError {
    /// The tensors hold more than the limit's elements; parsing stopped there.
    TooManyElements,
    Invalid(serde_json::Error),
}

/// Parses `body` as `T`, stopping as soon as its tensors hold more than `limit` elements.
pub fn parse_with_element_limit<T: serde::de::DeserializeOwned>(
    body: &[u8],
    limit: usize,
) -> Result<T, ParseError> {
    REMAINING.with(|r| r.set(limit));
    EXCEEDED.with(|e| e.set(false));
    let result = serde_json::from_slice(body);
    REMAINING.with(|r| r.set(usize::MAX));
    match result {
        Ok(v) => Ok(v),
        Err(_) if EXCEEDED.with(Cell::get) => Err(ParseError::TooManyElements),
        Err(e) => Err(ParseError::Invalid(e)),
    }
}

impl Default for TensorData {
    fn default() -> Self {
        Self::Numbers(Vec::new())
    }
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            Self::Numbers(v) => v.len(),
            Self::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_number<E: de::Error>(&mut self, v: f64) -> Result<(), E> {
        take_one()?;
        match self {
            Self::Numbers(n) => n.push(v),
            Self::Values(vals) => vals.push(number_value(v)),
        }
        Ok(())
    }

    fn push_value<E: de::Error>(&mut self, v: serde_json::Value) -> Result<(), E> {
        take_one()?;
        if let Self::Numbers(n) = self {
            *self = Self::Values(n.drain(..).map(number_value).collect());
        }
        if let Self::Values(vals) = self {
            vals.push(v);
        }
        Ok(())
    }
}

/// A number as the text a client meant by it (`3`, not `3.0`).
pub fn number_text(v: f64) -> String {
    number_value(v).to_string()
}

/// A number as JSON: integral values as integers, so they print as `3`, not `3.0`, as sent.
fn number_value(v: f64) -> serde_json::Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        serde_json::Value::from(v as i64)
    } else {
        serde_json::Value::from(v)
    }
}

fn take_one<E: de::Error>() -> Result<(), E> {
    REMAINING.with(|r| match r.get() {
        0 => {
            EXCEEDED.with(|e| e.set(true));
            Err(E::custom(
                "the request holds more tensor elements than the server's limit",
            ))
        }
        n => {
            r.set(n - 1);
            Ok(())
        }
    })
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Numbers(v) => v.serialize(s),
            Self::Values(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut data = TensorData::Numbers(Vec::new());
        Append(&mut data).deserialize(d)?;
        Ok(data)
    }
}

/// Appends every scalar of a (possibly nested) value to the data.
struct Append<'a>(&'a mut TensorData);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Append<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("numbers, strings or booleans, possibly nested in arrays")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push_number(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_number(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push_number(v as f64)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_value(serde_json::Value::Bool(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_value(serde_json::Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.0.push_value(serde_json::Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.push_value(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Append(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, limit: usize) -> Result<TensorData, ParseError> {
        parse_with_element_limit(json.as_bytes(), limit)
    }

    #[test]
    fn nested_numbers_flatten_to_f64s() {
        let Ok(d) = parse("[[1, 2.5], [-3, 4e2]]", 100) else {
            panic!("parses")
        };
        assert_eq!(d, TensorData::Numbers(vec![1.0, 2.5, -3.0, 400.0]));
        let Ok(d) = parse("7", 100) else {
            panic!("a scalar parses")
        };
        assert_eq!(d, TensorData::Numbers(vec![7.0]));
    }

    #[test]
    fn text_and_mixed_data_keep_their_values() {
        let Ok(d) = parse(r#"[1, "rain", true, null]"#, 100) else {
            panic!("parses")
        };
        assert_eq!(
            d,
            TensorData::Values(vec![
                1.into(),
                "rain".into(),
                true.into(),
                serde_json::Value::Null
            ])
        );
        assert_eq!(
            serde_json::to_string(&d).ok().as_deref(),
            Some(r#"[1,"rain",true,null]"#)
        );
    }

    #[test]
    fn parsing_stops_at_the_element_limit() {
        assert!(matches!(parse("[1, 2, 3]", 3), Ok(TensorData::Numbers(_))));
        assert!(matches!(
            parse("[1, 2, 3, 4]", 3),
            Err(ParseError::TooManyElements)
        ));
        assert!(
            matches!(parse("[1, {}]", 3), Err(ParseError::Invalid(_))),
            "objects are not tensor data"
        );
        // The limit is reset after each parse.
        assert!(parse_with_element_limit::<TensorData>(b"[1, 2, 3, 4]", usize::MAX).is_ok());
    }
}
