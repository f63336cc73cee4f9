//! The stdout log contract: one JSON object per line with `timestamp`, `level`, `service`,
//! `message` and the event's own fields, written by a small `tracing` layer.
//!
//! tracing-bunyan-formatter cannot rename or drop bunyan's fixed keys, and tracing-subscriber's
//! JSON formatter cannot add `service` to every line, so the contract gets its own layer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// RFC 3339, UTC, milliseconds, `Z`: `2025-12-18T01:23:45.123Z`.
const TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Keys the layer writes itself; an event field with one of these names is renamed rather than
/// allowed to overwrite the contract's keys.
const RESERVED: [&str; 4] = ["timestamp", "level", "service", "message"];

/// Where finished lines go. Each call receives one complete line, newline included, so that a
/// sink can write it with a single call and lines from concurrent requests never interleave.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one line.
    fn write_line(&self, line: &[u8]);
}

/// The process's stdout.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stdout;

impl LineSink for Stdout {
    fn write_line(&self, line: &[u8]) {
        // A closed stdout must not take the service down: the line is lost, the request is not.
        let _ = std::io::stdout().lock().write_all(line);
    }
}

/// An in-memory sink, for tests that read what would have been printed.
#[derive(Debug, Default, Clone)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl LineSink for Captured {
    fn write_line(&self, line: &[u8]) {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(line);
        }
    }
}

/// A `tracing` layer writing every event it is given as one contract-shaped JSON line.
pub struct JsonLogLayer<S: LineSink> {
    service: String,
    sink: S,
}

impl<S: LineSink> JsonLogLayer<S> {
    /// A layer stamping every line with `service`.
    pub fn new(service: impl Into<String>, sink: S) -> Self {
        Self {
            service: service.into(),
            sink,
        }
    }

    /// Renders one event as a JSON line (newline included), the contract's keys first so
    /// that a person reading the stream sees them in the same place on every line.
    fn render(&self, event: &Event<'_>, now: OffsetDateTime) -> Vec<u8> {
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let message = fields
            .0
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        let timestamp = now.format(TIMESTAMP).unwrap_or_default();
        let mut line = Vec::with_capacity(256);
        line.push(b'{');
        push_entry(&mut line, "timestamp", &Value::String(timestamp));
        push_entry(
            &mut line,
            "level",
            &level_name(event.metadata().level()).into(),
        );
        push_entry(&mut line, "service", &Value::String(self.service.clone()));
        push_entry(&mut line, "message", &message);
        for (key, value) in &fields.0 {
            if RESERVED.contains(&key.as_str()) {
                push_entry(&mut line, &format!("field.{key}"), value);
            } else {
                push_entry(&mut line, key, value);
            }
        }
        line.extend_from_slice(b"}\n");
        line
    }
}

/// Appends `"key":value` (with a leading comma unless first), JSON-escaped by serde_json.
fn push_entry(line: &mut Vec<u8>, key: &str, value: &Value) {
    if line.len() > 1 {
        line.push(b',');
    }
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *line, key);
    line.push(b':');
    let _ = serde_json::to_writer(&mut *line, value);
}

impl<Sub: Subscriber, S: LineSink> Layer<Sub> for JsonLogLayer<S> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, Sub>) {
        let line = self.render(event, OffsetDateTime::now_utc());
        self.sink.write_line(&line);
    }
}

/// The contract's level names.
pub fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

/// An event's fields as JSON values, numbers kept as numbers.
#[derive(Default)]
struct FieldMap(Map<String, Value>);

impl Visit for FieldMap {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.0.insert(field.name().into(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let sink = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(JsonLogLayer::new("svc", sink.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("every line is JSON"))
            .collect()
    }

    #[test]
    fn every_line_has_the_contract_keys_and_typed_fields() {
        let lines = capture(|| {
            tracing::warn!(
                status_code = 404_i64,
                duration_ms = 1.5,
                endpoint = "/x",
                "Request completed"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARNING");
        assert_eq!(line["service"], "svc");
        assert_eq!(line["message"], "Request completed");
        assert_eq!(line["status_code"], 404);
        assert_eq!(line["duration_ms"], 1.5);
        let ts = line["timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2025-12-18T01:23:45.123Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
        OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).unwrap();
    }

    #[test]
    fn hostile_values_cannot_forge_a_line_or_a_contract_key() {
        let evil = "x\"}\n{\"level\":\"ERROR\",\"message\":\"forged";
        let lines = capture(|| {
            tracing::info!(endpoint = evil, level = "ERROR", "Request completed");
        });
        assert_eq!(
            lines.len(),
            1,
            "a newline in a value must not start a new line"
        );
        assert_eq!(lines[0]["endpoint"], evil);
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["field.level"], "ERROR");
    }
}
