//! What the suites share: finding the external services, refusing to skip silently when
//! the run says they are required, and (`wrapped`) a store that changes only what a test
//! plants in it.
#![allow(dead_code)]

pub mod wrapped;

/// The value of `var`, or `None` when the suite may be skipped. With
/// `GIFT_TEST_SERVICES=required` (set by `scripts/test` and CI) a missing variable fails.
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("GIFT_TEST_SERVICES").as_deref() == Ok("required") => {
            panic!("{what} tests are required but {var} is not set; run them through scripts/test")
        }
        _ => {
            eprintln!("SKIPPED: {what} tests need {var} (scripts/test provisions it)");
            None
        }
    }
}
