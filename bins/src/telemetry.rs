//! JSON log lines on stdout, one per event:
//! `{"timestamp", "status", "service", "message", "target", …event fields}`.
//! `status` is the level in lowercase and `service` names the process, the attributes
//! Datadog reads as reserved; `gift_id`, `request_id`, `error_code`, `error_message`
//! come from the events that have them.

use std::fmt;
use std::ops::Range;

use serde::ser::Serializer as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::log_writer::{self, FlushGuard};

/// Writes the log lines still pending when dropped; keep it alive until the process ends.
#[must_use = "log lines written after the guard is dropped are lost"]
pub struct LogGuard(#[allow(dead_code)] FlushGuard);

/// Installs the global subscriber. `level` is a level, or `target=level` directives with an
/// optional default level (`info,sqlx=warn`): tracing-subscriber's `Targets`, which needs
/// no regex engine in the build.
///
/// Lines are formatted on the calling thread and written in batches by another
/// ([`log_writer`]): a request never waits for stdout.
pub fn init(service: &'static str, level: &str) -> Result<LogGuard, String> {
    let filter: Targets =
        level.parse().map_err(|e| format!("LOG_LEVEL: {level:?} is not a valid filter (e.g. info,sqlx=warn): {e}"))?;
    let (writer, guard) = log_writer::start().map_err(|e| format!("cannot start the log writer: {e}"))?;
    subscriber(service, writer).with(filter).try_init().map_err(|e| e.to_string())?;
    Ok(LogGuard(guard))
}

/// JSON lines to `writer`, each with the fields of the spans it is in (also what gift-bench's
/// `log-format` measures).
pub fn subscriber<W>(service: &'static str, writer: W) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .fmt_fields(NoText)
        .event_format(JsonLine { service })
        .with_writer(writer)
        .finish()
        .with(SpanFieldsLayer)
}

/// The fmt layer renders every new span's fields as text, for formatters that print them;
/// [`JsonLine`] prints them from [`SpanFields`] instead, so that text is never built (it was
/// over half of what a request's span cost, docs/benchmarks.md).
struct NoText;

impl<'w> FormatFields<'w> for NoText {
    fn format_fields<R: RecordFields>(&self, _writer: Writer<'w>, _fields: R) -> fmt::Result {
        Ok(())
    }
}

/// A span's fields as ready JSON fragments (`,"name":value`), written back to back into one
/// buffer kept in the span's extensions, with where each lies: every line logged inside the
/// span appends them, so a field given to a span (`info_span!`, `#[instrument]`) reaches
/// each of its lines. One buffer, not one per field: a request's span has five.
struct SpanFields {
    json: Vec<u8>,
    /// Each field's name and its fragment in `json`; a field recorded again points at its
    /// new fragment.
    at: Vec<(&'static str, Range<usize>)>,
}

impl SpanFields {
    fn new(values: &tracing::span::Record<'_>) -> Self {
        let mut json = Vec::with_capacity(256);
        let mut fields = Fields::new(&mut json);
        values.record(&mut fields);
        let at = fields.seen;
        Self { json, at }
    }

    fn record(&mut self, values: &tracing::span::Record<'_>) {
        let mut fields = Fields::new(&mut self.json);
        values.record(&mut fields);
        for (name, fragment) in fields.seen {
            self.at.retain(|(n, _)| *n != name);
            self.at.push((name, fragment));
        }
    }

    fn fragments(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        self.at.iter().map(|(name, fragment)| (*name, &self.json[fragment.clone()]))
    }
}

struct SpanFieldsLayer;

impl<S> tracing_subscriber::Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        span.extensions_mut().insert(SpanFields::new(&tracing::span::Record::new(attrs.values())));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                fields.record(values);
            }
        }
    }
}

struct JsonLine {
    service: &'static str,
}

/// Keys the line sets itself; an event field of the same name is dropped.
const RESERVED: [&str; 4] = ["timestamp", "status", "service", "target"];

/// Writes each event field as `,"name":value` straight into the line, escaped by serde_json:
/// no `serde_json::Value` or `String` per field (a create logs two lines; this cut their cost
/// from 15.8k to 11.8k instructions, docs/benchmarks.md).
struct Fields<'a> {
    line: &'a mut Vec<u8>,
    /// Each field written, and where in `line`.
    seen: Vec<(&'static str, Range<usize>)>,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(line: &'a mut Vec<u8>) -> Self {
        Self { line, seen: Vec::with_capacity(8), failed: false }
    }

    fn write(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut serde_json::Serializer<&mut Vec<u8>>) -> serde_json::Result<()>,
    ) {
        let name = field.name();
        if RESERVED.contains(&name) || self.seen.iter().any(|(n, _)| *n == name) {
            return;
        }
        let start = self.line.len();
        self.line.push(b',');
        push_str(self.line, name);
        self.line.push(b':');
        let written = value(&mut serde_json::Serializer::new(&mut *self.line));
        self.seen.push((name, start..self.line.len()));
        self.failed |= written.is_err();
    }
}

/// Lets serde_json escape a `Debug` value as it is formatted, without an intermediate String.
struct DebugAsDisplay<'a>(&'a dyn fmt::Debug);

impl fmt::Display for DebugAsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, |json| json.serialize_str(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.write(field, |json| json.serialize_i64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.write(field, |json| json.serialize_u64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null.
        self.write(field, |json| json.serialize_f64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.write(field, |json| json.serialize_bool(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, |json| json.collect_str(&DebugAsDisplay(value)));
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // Logging is outside the deciding code, so the real clock is the right one here.
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut line = Vec::with_capacity(512);
        // The object is left open: the event's fields follow, then the closing brace.
        for (key, value) in [
            ("{\"timestamp\":", timestamp.as_str()),
            (",\"status\":", level_name(event.metadata().level())),
            (",\"service\":", self.service),
            (",\"target\":", event.metadata().target()),
        ] {
            line.extend_from_slice(key.as_bytes());
            push_str(&mut line, value);
        }
        let mut fields = Fields::new(&mut line);
        event.record(&mut fields);
        if fields.failed {
            return Err(fmt::Error);
        }
        // Then the fields of the spans the event is in, innermost first; a name the line
        // already has (from the event or an inner span) keeps its first value.
        let mut seen = fields.seen;
        for span in ctx.event_scope().into_iter().flatten() {
            if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                for (name, json) in span_fields.fragments() {
                    if !RESERVED.contains(&name) && !seen.iter().any(|(n, _)| *n == name) {
                        // Only the name matters from here on: the fragment is in the span's buffer.
                        seen.push((name, 0..0));
                        line.extend_from_slice(json);
                    }
                }
            }
        }
        line.extend_from_slice(b"}\n");
        writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
    }
}

/// Writes `text` as a JSON string: as it is when no byte of it needs escaping, which holds
/// for field names (Rust identifiers), targets, levels, the service's name and timestamps,
/// else escaped by serde_json. Most of a line is such text, and a scan is cheaper than the
/// serializer (docs/benchmarks.md, "2 December, later").
fn push_str(line: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-+ ".contains(&b)) {
        line.push(b'"');
        line.extend_from_slice(text.as_bytes());
        line.push(b'"');
    } else {
        // Writing to a Vec cannot fail, and a &str always serialises.
        let _ = serde_json::to_writer(&mut *line, text);
    }
}

fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        tracing::Level::DEBUG => "debug",
        tracing::Level::TRACE => "trace",
    }
}

/// What tests of this crate log, captured as the service would write it.
#[cfg(test)]
pub(crate) mod capture {
    use std::sync::{Arc, Mutex};

    use super::subscriber;

    /// The lines one closure logs.
    pub(crate) fn lines_of(log: impl FnOnce()) -> Vec<String> {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        tracing::subscriber::with_default(subscriber("test", move || Capture(sink.clone())), log);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    pub(crate) fn parse(line: &str) -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
    }

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::capture::{lines_of, parse};

    #[test]
    fn a_line_is_one_json_object_with_the_reserved_keys_and_the_fields() {
        let lines = lines_of(|| {
            tracing::warn!(addr = %std::net::Ipv4Addr::LOCALHOST, items = ?["a\"b"], receive_count = 5_u64, latency_ms = 1.5, ok = false, delta = -2_i64,
                error_message = "said \"no\"\nthen left", event = "FAILED", "retry budget exhausted");
        });
        let [line] = lines.as_slice() else { panic!("one line expected, got {lines:?}") };
        let line = parse(line);
        assert_eq!(line["status"], "warn");
        assert_eq!(line["service"], "test");
        assert!(line["timestamp"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
        assert_eq!(line["message"], "retry budget exhausted");
        assert_eq!(line["addr"], "127.0.0.1");
        assert_eq!(line["items"], r#"["a\"b"]"#);
        assert_eq!(line["receive_count"], 5);
        assert_eq!(line["latency_ms"], 1.5);
        assert_eq!(line["ok"], false);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["error_message"], "said \"no\"\nthen left");
        assert_eq!(line["event"], "FAILED");
    }

    #[test]
    fn names_and_values_that_need_escaping_are_escaped() {
        let lines = lines_of(|| tracing::info!("odd\"name\\" = "a \"quoted\"\n value", "line\twith \"quotes\""));
        let line = parse(&lines[0]);
        assert_eq!(line["odd\"name\\"], "a \"quoted\"\n value", "{}", lines[0]);
        assert_eq!(line["message"], "line\twith \"quotes\"", "{}", lines[0]);
    }

    #[test]
    fn fields_named_like_reserved_keys_do_not_replace_them() {
        let lines = lines_of(|| tracing::error!(status = "SENT", service = "worker", target = "x", "clash"));
        let line = parse(&lines[0]);
        assert_eq!(line["status"], "error");
        assert_eq!(line["service"], "test");
        assert_ne!(line["target"], "x");
        for key in ["\"status\"", "\"service\"", "\"target\""] {
            assert_eq!(lines[0].matches(key).count(), 1, "{key} once in {}", lines[0]);
        }
    }

    #[test]
    fn a_line_carries_the_fields_of_its_spans_innermost_first() {
        let lines = lines_of(|| {
            let request = tracing::info_span!("request", http.request_id = "req-1", route = "/gifts");
            let _request = request.enter();
            tracing::info!("outside the inner span");
            let inner = tracing::info_span!("send", gift_id = tracing::field::Empty, route = "inner");
            let _inner = inner.enter();
            inner.record("gift_id", "g-7");
            tracing::info!(route = "event", "inside both");
        });
        let [outer, both] = lines.as_slice() else { panic!("two lines expected, got {lines:?}") };
        let outer = parse(outer);
        assert_eq!(outer["http.request_id"], "req-1");
        assert_eq!(outer["route"], "/gifts");
        assert_eq!(outer["gift_id"], serde_json::Value::Null);
        let line = parse(both);
        assert_eq!(line["http.request_id"], "req-1");
        assert_eq!(line["gift_id"], "g-7");
        assert_eq!(line["route"], "event", "the event's own field wins over its spans'");
        assert_eq!(both.matches("\"route\"").count(), 1, "{both}");
    }
}
