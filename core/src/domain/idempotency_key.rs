use super::ParseError;

/// The client's `Idempotency-Key`: 1–255 visible ASCII characters (`!`..=`~`).
/// It doubles as the send's `request_id` in logs and queue messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ParseError::new(format!("Idempotency-Key must be 1 to {} characters", Self::MAX_LEN)));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::new("Idempotency-Key must contain only visible ASCII characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn visible_ascii_up_to_255_parses(s in "[!-~]{1,255}") {
            let key = IdempotencyKey::parse(&s).unwrap();
            prop_assert_eq!(key.as_str(), s.as_str());
        }

        #[test]
        fn longer_than_255_is_rejected(s in "[!-~]{256,300}") {
            prop_assert!(IdempotencyKey::parse(&s).is_err());
        }

        #[test]
        fn any_invisible_char_is_rejected(a in "[!-~]{0,10}", c in "[ \t\u{7f}\u{80}-\u{10ffff}]", b in "[!-~]{0,10}") {
            let s = format!("{a}{c}{b}");
            prop_assert!(IdempotencyKey::parse(&s).is_err());
        }
    }

    #[test]
    fn empty_is_rejected() {
        assert!(IdempotencyKey::parse("").is_err());
    }
}
