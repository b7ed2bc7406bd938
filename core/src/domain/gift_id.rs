use super::{ParseError, Timestamp};
use uuid::Uuid;

/// A gift's primary key: a UUID. New gifts get version 7 ([`GiftId::new`]): the creation
/// time's milliseconds first, so that each new key lands on the right edge of the
/// primary-key indexes of `gifts`, `send_requests` and `outbox` rather than on a random leaf
/// page of a large index (docs/benchmarks.md, "The data's size"), then 74 random bits, so an
/// id is as hard to guess as one that is all random for anyone who knows the creation time
/// (which the gift's `created_at` shows anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct GiftId(Uuid);

impl GiftId {
    /// The id of a gift created at `created_at`, with random bits from `bits` (the caller
    /// supplies time and randomness, from [`crate::ports::Env`]). A time before 1970 counts
    /// as 1970: ids stay unique through their random bits, only their order is lost.
    pub fn new(created_at: Timestamp, bits: u128) -> Self {
        let millis = u64::try_from(created_at.timestamp_millis()).unwrap_or(0);
        let mut random = [0; 10];
        random.copy_from_slice(&bits.to_le_bytes()[..10]);
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    /// An id from 128 random bits alone (version 4), for fixtures that need any id.
    pub fn from_random(bits: u128) -> Self {
        Self(uuid::Builder::from_random_bytes(bits.to_le_bytes()).into_uuid())
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Uuid::try_parse(s).map(Self).map_err(|_| ParseError::new("gift_id must be a UUID"))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The id's last 8 hex digits, random in ids of either version (a version 7 id begins
    /// with its time, which gifts created together share): how traces name a gift.
    pub fn short(&self) -> String {
        format!("{:08x}", self.0.as_u128() as u32)
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
        fn new_ids_follow_their_creation_time(first in 0i64..4_000_000_000_000, later in 1i64..1_000_000, a: u128, b: u128) {
            let at = |ms| chrono::DateTime::from_timestamp_millis(ms).unwrap();
            let (older, newer) = (GiftId::new(at(first), a), GiftId::new(at(first + later), b));
            prop_assert!(older < newer);
            prop_assert_eq!(newer.as_uuid().get_version_num(), 7);
            prop_assert_eq!(GiftId::parse(&newer.to_string()).unwrap(), newer);
            prop_assert!(newer.to_string().ends_with(&newer.short()));
        }

        #[test]
        fn garbage_is_rejected(s in "[g-z!-/]{1,40}") {
            prop_assert!(GiftId::parse(&s).is_err());
        }
    }
}
