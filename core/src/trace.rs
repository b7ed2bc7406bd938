//! Log–trace correlation. A span made with [`traced_span!`](crate::traced_span) carries its
//! trace's ids in the W3C form (`trace_id`, 32 hex digits; `span_id`, 16) and in Datadog's
//! (`dd.trace_id`, `dd.span_id`: the low 64 bits in decimal, what Datadog's log pipeline
//! links to APM traces), so every log line inside it names the trace. The API request's span
//! and the worker's span for each gift are the two ends of one send's trace.

/// An `info` span named `$name` carrying `$trace`'s trace id and `$span_id`, then any further
/// fields as `tracing` takes them.
#[macro_export]
macro_rules! traced_span {
    ($name:literal, $trace:expr, $span_id:expr $(, $($fields:tt)+)?) => {{
        let trace: &$crate::domain::TraceParent = $trace;
        let span_id: u64 = $span_id;
        ::tracing::info_span!(
            $name,
            trace_id = %$crate::trace::Hex32(trace.trace_id()),
            span_id = %$crate::trace::Hex16(span_id),
            dd.trace_id = %(trace.trace_id() as u64),
            dd.span_id = %span_id,
            $($($fields)+)?
        )
    }};
}

/// A trace id as its 32 hex digits, written where it is logged: no `String` per span.
pub struct Hex32(pub u128);

impl std::fmt::Display for Hex32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A span id as its 16 hex digits.
pub struct Hex16(pub u64);

impl std::fmt::Display for Hex16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
