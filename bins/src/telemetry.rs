//! JSON log lines on stdout, one per event:
//! `{"timestamp", "status", "service", "message", "target", …event fields}`.
//! `status` is the level in lowercase and `service` names the process, the attributes
//! Datadog reads as reserved; `gift_id`, `request_id`, `error_code`, `error_message`
//! come from the events that have them.

use std::fmt;

use serde::ser::{SerializeMap, Serializer as _};
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::log_writer::{self, FlushGuard};

/// Writes the log lines still pending when dropped; keep it alive until the process ends.
#[must_use = "log lines written after the guard is dropped are lost"]
pub struct LogGuard(#[allow(dead_code)] FlushGuard);

/// Installs the global subscriber. `level` is a level name or an `EnvFilter` directive string.
///
/// Lines are formatted on the calling thread and written in batches by another
/// ([`log_writer`]): a request never waits for stdout.
pub fn init(service: &'static str, level: &str) -> Result<LogGuard, String> {
    let filter = EnvFilter::try_new(level).map_err(|e| format!("LOG_LEVEL: {level:?} is not a valid filter: {e}"))?;
    let (writer, guard) = log_writer::start().map_err(|e| format!("cannot start the log writer: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(JsonLine { service })
        .with_writer(writer)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(LogGuard(guard))
}

struct JsonLine {
    service: &'static str,
}

/// Keys the line sets itself; an event field of the same name is dropped.
const RESERVED: [&str; 4] = ["timestamp", "status", "service", "target"];

#[derive(Default)]
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        self.0.push((field.name(), value));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Logging is outside the deciding code, so the real clock is the right one here.
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let mut line = Vec::with_capacity(256);
        let mut json = serde_json::Serializer::new(&mut line);
        let write = |json: &mut serde_json::Serializer<&mut Vec<u8>>| -> Result<(), serde_json::Error> {
            let mut map = json.serialize_map(None)?;
            map.serialize_entry("timestamp", &timestamp)?;
            map.serialize_entry("status", &level)?;
            map.serialize_entry("service", self.service)?;
            map.serialize_entry("target", event.metadata().target())?;
            let mut seen: Vec<&str> = Vec::with_capacity(fields.0.len());
            for (key, value) in &fields.0 {
                if !RESERVED.contains(key) && !seen.contains(key) {
                    seen.push(key);
                    map.serialize_entry(key, value)?;
                }
            }
            map.end()
        };
        write(&mut json).map_err(|_| fmt::Error)?;
        let text = std::str::from_utf8(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}
