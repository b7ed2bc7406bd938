use super::ParseError;

/// The optional note that goes with a gift: at most 500 characters, no NUL
/// (PostgreSQL text cannot store it, so accepting it would turn into a 500 later).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Message(String);

impl Message {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(s: String) -> Result<Self, ParseError> {
        if s.chars().count() > Self::MAX_CHARS {
            return Err(ParseError::new(format!("message must be at most {} characters", Self::MAX_CHARS)));
        }
        if s.contains('\0') {
            return Err(ParseError::new("message must not contain NUL characters"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Message {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn up_to_500_chars_parse(s in "[^\u{0}]{0,500}") {
            let m = Message::parse(s.clone()).unwrap();
            prop_assert_eq!(m.as_str(), s.as_str());
        }

        #[test]
        fn over_500_chars_is_rejected(s in "[^\u{0}]{501,600}") {
            prop_assert!(Message::parse(s).is_err());
        }
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Message::parse("é".repeat(500)).is_ok());
        assert!(Message::parse("é".repeat(501)).is_err());
    }

    #[test]
    fn nul_and_non_strings_are_rejected() {
        assert!(Message::parse("a\0b".into()).is_err());
        assert!(serde_json::from_value::<Message>(serde_json::json!(5)).is_err());
        assert_eq!(serde_json::from_value::<Option<Message>>(serde_json::Value::Null).unwrap(), None);
        assert!(serde_json::from_value::<Message>(serde_json::json!("a\0b")).is_err());
    }
}
