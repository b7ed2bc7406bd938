use super::ParseError;
use uuid::Uuid;

/// A gift's primary key: a UUID (version 4 layout, drawn from [`crate::ports::Env`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct GiftId(Uuid);

impl GiftId {
    /// Builds an id from 128 random bits; the caller supplies the randomness.
    pub fn from_random(bits: u128) -> Self {
        Self(uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid())
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Uuid::try_parse(s).map(Self).map_err(|_| ParseError::new("gift_id must be a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for GiftId {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl std::fmt::Display for GiftId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn display_then_parse_round_trips(bits: u128) {
            let id = GiftId::from_random(bits);
            prop_assert_eq!(GiftId::parse(&id.to_string()).unwrap(), id);
            prop_assert_eq!(id.as_uuid().get_version_num(), 4);
        }

        #[test]
        fn garbage_is_rejected(s in "[g-z!-/]{1,40}") {
            prop_assert!(GiftId::parse(&s).is_err());
        }
    }
}
