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
            trace_id = %::std::format!("{:032x}", trace.trace_id()),
            span_id = %::std::format!("{span_id:016x}"),
            dd.trace_id = %(trace.trace_id() as u64),
            dd.span_id = %span_id,
            $($($fields)+)?
        )
    }};
}
