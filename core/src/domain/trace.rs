use std::fmt;

use super::ParseError;

/// A W3C trace context (`traceparent`, version 00): the trace a send belongs to and the span
/// that caused the next step. It travels from the API request through the outbox row and the
/// queue message's attributes to the worker, so one send is one trace across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraceParent {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

impl TraceParent {
    /// Bit 0 of the flags: the caller sampled this trace.
    pub const SAMPLED: u8 = 1;

    /// A context with the given ids; `None` if either is zero (invalid in W3C trace context).
    pub fn new(trace_id: u128, parent_id: u64, flags: u8) -> Option<Self> {
        (trace_id != 0 && parent_id != 0).then_some(Self { trace_id, parent_id, flags })
    }

    /// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lower-case hex, ids
    /// not all zero. A later version's header is read by its first four fields, as the
    /// specification asks; version `ff` is invalid.
    pub fn parse(header: &str) -> Result<Self, ParseError> {
        let invalid = || ParseError::new("traceparent must be 00-<32 hex>-<16 hex>-<2 hex>");
        let mut parts = header.trim().splitn(5, '-');
        let (version, trace, parent, flags) = (
            parts.next().ok_or_else(invalid)?,
            parts.next().ok_or_else(invalid)?,
            parts.next().ok_or_else(invalid)?,
            parts.next().ok_or_else(invalid)?,
        );
        let rest = parts.next();
        let hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let fields_ok = hex(version, 2) && hex(trace, 32) && hex(parent, 16) && hex(flags, 2);
        if !fields_ok || version == "ff" || (version == "00" && rest.is_some()) {
            return Err(invalid());
        }
        let parsed = (u128::from_str_radix(trace, 16), u64::from_str_radix(parent, 16), u8::from_str_radix(flags, 16));
        match parsed {
            (Ok(trace_id), Ok(parent_id), Ok(flags)) => Self::new(trace_id, parent_id, flags).ok_or_else(invalid),
            _ => Err(invalid()),
        }
    }

    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The span that caused what follows.
    pub fn parent_id(&self) -> u64 {
        self.parent_id
    }

    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The same trace with `span_id` as the parent of what follows; a zero id keeps the
    /// current parent.
    pub fn child(&self, span_id: u64) -> Self {
        Self { parent_id: if span_id == 0 { self.parent_id } else { span_id }, ..*self }
    }
}

/// The header form, `00-…-…-…`.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specifications_example_round_trips() {
        let t = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(t.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(t.parent_id(), 0x00f067aa0ba902b7);
        assert_eq!(t.flags(), TraceParent::SAMPLED);
        assert_eq!(t.to_string(), EXAMPLE);
        assert_eq!(t.child(7).to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000007-01");
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let t = TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next").unwrap();
        assert_eq!(t.to_string(), EXAMPLE);
    }
}
