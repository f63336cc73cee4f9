//! The stdout log contract: one JSON object per line with `timestamp`, `level`, `service`,
//! `message` and the event's own fields, written by a small `tracing` layer.
//!
//! tracing-bunyan-formatter cannot rename or drop bunyan's fixed keys, and tracing-subscriber's
//! JSON formatter cannot add `service` to every line, so the contract gets its own layer.

use std::sync::{Arc, Mutex};

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
    /// The service name, already JSON-escaped (with its quotes): written on every line.
    service: Vec<u8>,
    sink: S,
}

impl<S: LineSink> JsonLogLayer<S> {
    /// A layer stamping every line with `service`.
    pub fn new(service: impl Into<String>, sink: S) -> Self {
        Self {
            service: serde_json::to_vec(&service.into()).unwrap_or_else(|_| b"\"\"".to_vec()),
            sink,
        }
    }

    /// Renders one event as a JSON line (newline included), the contract's keys first so that
    /// a person reading the stream sees them in the same place on every line. Fields are
    /// escaped straight into the line: this runs once per request.
    fn render(&self, event: &Event<'_>, now: OffsetDateTime) -> Vec<u8> {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Vec::with_capacity(192 + fields.rest.len());
        line.extend_from_slice(b"{\"timestamp\":\"");
        // Formatting a valid UTC time with a fixed description cannot fail.
        let _ = now.format_into(&mut line, TIMESTAMP);
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(level_name(event.metadata().level()).as_bytes());
        line.extend_from_slice(b"\",\"service\":");
        line.extend_from_slice(&self.service);
        line.extend_from_slice(b",\"message\":");
        match &fields.message {
            Some(message) => line.extend_from_slice(message),
            None => line.extend_from_slice(b"\"\""),
        }
        line.extend_from_slice(&fields.rest);
        line.extend_from_slice(b"}\n");
        line
    }
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

/// An event's fields, already JSON: the message apart, the others as `,"key":value` entries.
#[derive(Default)]
struct Fields {
    message: Option<Vec<u8>>,
    rest: Vec<u8>,
}

impl Fields {
    /// Starts the entry of `field` and returns the buffer its value goes to. A field named like
    /// one of the contract's keys is renamed `field.<name>`, so it cannot overwrite them.
    fn entry(&mut self, field: &Field) -> &mut Vec<u8> {
        let name = field.name();
        if name == "message" {
            return self.message.insert(Vec::new());
        }
        self.rest.push(b',');
        if RESERVED.contains(&name) {
            let _ = serde_json::to_writer(&mut self.rest, &format!("field.{name}"));
        } else {
            let _ = serde_json::to_writer(&mut self.rest, name);
        }
        self.rest.push(b':');
        &mut self.rest
    }

    /// Writes any serializable value (writing JSON into a Vec cannot fail).
    fn put(&mut self, field: &Field, value: impl serde::Serialize) {
        let _ = serde_json::to_writer(self.entry(field), &value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        self.put(field, value.is_finite().then_some(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
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
    fn formatted_messages_errors_and_non_finite_numbers_stay_valid_json() {
        let error = std::io::Error::other("disk \"full\"");
        let lines = capture(|| {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                ratio = f64::NAN,
                "Listening on {}:{}",
                "::1",
                80
            );
        });
        assert_eq!(lines[0]["message"], "Listening on ::1:80");
        assert_eq!(lines[0]["error"], "disk \"full\"");
        assert_eq!(lines[0]["ratio"], Value::Null);
        assert_eq!(lines[0]["level"], "ERROR");
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
