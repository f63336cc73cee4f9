//! Parsing a line into its stored form: one pass of serde_json over the text that copies the
//! kept keys' values (clipped) into the record and checks the rest without copying it, then
//! keeps the text as an excerpt unless the fields spell it exactly.

use std::fmt::{self, Write as _};

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Kind, LineIssue, MAX_VALUE_BYTES, Record, Slot, compact_pieces, excerpt, key_id};

/// A line's record: the kept fields of a JSON object, or why the line is not one.
pub(super) fn parse_record(text: &str) -> Record {
    if text.trim().is_empty() {
        return issue_record(text, LineIssue::Empty);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de
        .deserialize_any(LineVisitor)
        .and_then(|parsed| de.end().map(|()| parsed));
    match parsed {
        Ok(Parsed::Object(fields)) => fields.into_record(text),
        Ok(Parsed::Other(found)) => issue_record(text, LineIssue::NotAnObject { found }),
        Err(e) => issue_record(
            text,
            LineIssue::NotJson {
                error: e.to_string(),
            },
        ),
    }
}

pub(super) fn issue_record(text: &str, issue: LineIssue) -> Record {
    Record {
        data: Box::from(excerpt(text).as_str()),
        shape: Err(issue),
        excerpt_at: Some(0),
    }
}

/// A line as parsed: an object's kept fields, or the kind of JSON value it is instead.
enum Parsed {
    Object(Fields),
    Other(&'static str),
}

/// An object's kept fields, stored as they are parsed.
struct Fields {
    data: String,
    slots: Vec<Slot>,
    /// Every key was kept, once, and no value clipped: the text may be their compact JSON.
    compact: bool,
}

impl Fields {
    /// Removes the value of `key`, if it came before; returns whether it did.
    fn remove(&mut self, key: u8) -> bool {
        let Some(i) = self.slots.iter().position(|s| s.key == key) else {
            return false;
        };
        let start: usize = self.slots[..i].iter().map(|s| usize::from(s.len)).sum();
        let end = start + usize::from(self.slots[i].len);
        self.data.replace_range(start..end, "");
        self.slots.remove(i);
        true
    }

    /// The record: the text too, unless it is the fields' compact JSON.
    fn into_record(self, text: &str) -> Record {
        let Self {
            mut data,
            slots,
            compact,
        } = self;
        let rebuilt = compact
            && compact_pieces(&slots, &data)
                .try_fold(text, |rest, piece| rest.strip_prefix(piece))
                .is_some_and(str::is_empty);
        let excerpt_at = (!rebuilt).then(|| {
            let at = u32::try_from(data.len()).unwrap_or(u32::MAX);
            data.push_str(&excerpt(text));
            at
        });
        // Copied into exact allocations, not shrunk in place: shrinking leaves a hole behind
        // every line, which cost a third again of what the lines hold.
        Record {
            data: Box::from(data.as_str()),
            shape: Ok(Box::from(slots.as_slice())),
            excerpt_at,
        }
    }
}

/// Parses a line, storing only the kept keys' values (the rest is checked, never copied).
struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Parsed, E> {
        Ok(Parsed::Other("bool"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Parsed, E> {
        Ok(Parsed::Other("number"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Parsed, E> {
        Ok(Parsed::Other("number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Parsed, E> {
        Ok(Parsed::Other("number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Parsed, E> {
        Ok(Parsed::Other("string"))
    }

    fn visit_unit<E>(self) -> Result<Parsed, E> {
        Ok(Parsed::Other("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Parsed::Other("array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        // Scratch space, reused by each line's parse as the allocator hands the same blocks back.
        let mut fields = Fields {
            data: String::with_capacity(512),
            slots: Vec::with_capacity(16),
            compact: true,
        };
        while let Some(id) = map.next_key_seed(KeyId)? {
            let Some(key) = id else {
                fields.compact = false;
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            // A repeated key: the last value wins, as in a parsed map.
            if fields.remove(key) {
                fields.compact = false;
            }
            let start = fields.data.len();
            let (kind, clipped) = map.next_value_seed(StoreValue(&mut fields.data))?;
            fields.compact &= !clipped;
            // A value is at most MAX_VALUE_BYTES plus a 3-byte ellipsis: it fits a u16.
            let len = u16::try_from(fields.data.len() - start).unwrap_or(u16::MAX);
            fields.slots.push(Slot { key, kind, len });
        }
        Ok(Parsed::Object(fields))
    }
}

/// An object key as the id of a kept key, or `None` for a key that is skipped.
struct KeyId;

impl<'de> DeserializeSeed<'de> for KeyId {
    type Value = Option<u8>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u8>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyId {
    type Value = Option<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<u8>, E> {
        Ok(key_id(key))
    }
}

/// Appends a kept value's text to the data, clipped to [`MAX_VALUE_BYTES`]; gives its kind and
/// whether it was clipped.
struct StoreValue<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for StoreValue<'_> {
    type Value = (Kind, bool);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(Kind, bool), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StoreValue<'_> {
    type Value = (Kind, bool);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(Kind, bool), E> {
        Ok((if v { Kind::True } else { Kind::False }, false))
    }

    fn visit_i64<E>(self, v: i64) -> Result<(Kind, bool), E> {
        Ok(self.number(serde_json::Number::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<(Kind, bool), E> {
        Ok(self.number(serde_json::Number::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<(Kind, bool), E> {
        // JSON has no NaN or infinity: a parsed float is always finite.
        Ok(serde_json::Number::from_f64(v).map_or((Kind::Null, false), |n| self.number(n)))
    }

    fn visit_str<E>(self, v: &str) -> Result<(Kind, bool), E> {
        Ok((Kind::String, push_clipped(self.0, v)))
    }

    fn visit_unit<E>(self) -> Result<(Kind, bool), E> {
        Ok((Kind::Null, false))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(Kind, bool), A::Error> {
        let value = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(self.json(&value, Kind::Array, Kind::ClippedArray))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(Kind, bool), A::Error> {
        let value = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(self.json(&value, Kind::Object, Kind::ClippedObject))
    }
}

impl StoreValue<'_> {
    /// A number as JSON writes it (and as [`serde_json::Number`] reads it back).
    fn number(self, n: serde_json::Number) -> (Kind, bool) {
        let _ = write!(self.0, "{n}");
        (Kind::Number, false)
    }

    /// An array or object as compact JSON; past [`MAX_VALUE_BYTES`], its clipped start.
    fn json(self, value: &Value, whole: Kind, clipped: Kind) -> (Kind, bool) {
        let json = value.to_string();
        if push_clipped(self.0, &json) {
            (clipped, true)
        } else {
            (whole, false)
        }
    }
}

/// Appends `s`, or its first [`MAX_VALUE_BYTES`] (at a character boundary) and `…`; returns
/// whether it was clipped.
fn push_clipped(data: &mut String, s: &str) -> bool {
    if s.len() <= MAX_VALUE_BYTES {
        data.push_str(s);
        return false;
    }
    let mut end = MAX_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    data.push_str(&s[..end]);
    data.push('…');
    true
}
