//! JSON log lines on stdout, one per event:
//! `{"timestamp", "status", "service", "message", "target", …event fields}`.
//! `status` is the level in lowercase and `service` names the process, the attributes
//! Datadog reads as reserved; `gift_id`, `request_id`, `error_code`, `error_message`
//! come from the events that have them.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `level` is a level name or an `EnvFilter` directive string.
pub fn init(service: &'static str, level: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(level).map_err(|e| format!("LOG_LEVEL: {level:?} is not a valid filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(JsonLine { service })
        .with_writer(std::io::stdout)
        .try_init()
        .map_err(|e| e.to_string())
}

struct JsonLine {
    service: &'static str,
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::from(format!("{value:?}")));
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
        let mut line = Map::new();
        // Logging is outside the deciding code, so the real clock is the right one here.
        line.insert(
            "timestamp".into(),
            Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("status".into(), Value::from(event.metadata().level().as_str().to_ascii_lowercase()));
        line.insert("service".into(), Value::from(self.service));
        line.insert("target".into(), Value::from(event.metadata().target()));
        for (k, v) in fields.0 {
            line.entry(k).or_insert(v);
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}
