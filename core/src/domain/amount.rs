use serde::de::{self, Visitor};

use super::ParseError;

/// A gift amount: a positive integer (minor units are the client's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    /// The largest float that still holds every integer below it exactly: 2^53.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Amount {
    type Error = ParseError;
    fn try_from(n: i64) -> Result<Self, ParseError> {
        if n > 0 {
            Ok(Self(n))
        } else {
            Err(not_positive())
        }
    }
}

fn not_positive() -> ParseError {
    ParseError::new("amount must be a positive integer")
}

/// Integers in `1..=i64::MAX` are amounts, and so are numbers written with a zero fraction
/// (`100.0`, `1e3`) up to 2^53, where floating point is still exact — JSON Schema counts
/// those as integers too. `1.5` and `"1"` are not.
impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a positive integer")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Amount, E> {
        Amount::try_from(n).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Amount, E> {
        i64::try_from(n).map_err(|_| E::custom(not_positive())).and_then(|n| self.visit_i64(n))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Amount, E> {
        if f.fract() == 0.0 && f.abs() <= Amount::EXACT {
            self.visit_i64(f as i64)
        } else {
            Err(E::custom(not_positive()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Amount, serde_json::Error> {
        serde_json::from_value(v)
    }

    proptest! {
        #[test]
        fn positive_integers_parse(n in 1i64..=i64::MAX) {
            prop_assert_eq!(parse(json!(n)).unwrap().get(), n);
        }

        #[test]
        fn zero_and_negatives_are_rejected(n in i64::MIN..=0) {
            prop_assert!(parse(json!(n)).is_err());
        }

        #[test]
        fn fractions_are_rejected(f in proptest::num::f64::NORMAL) {
            prop_assume!(f.fract() != 0.0);
            prop_assert!(parse(json!(f)).is_err());
        }
    }

    #[test]
    fn non_numbers_are_rejected() {
        for v in [
            json!("5"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"a": 1}),
            json!(0.0),
            json!(1e300),
            json!(u64::MAX),
        ] {
            assert!(parse(v.clone()).is_err(), "{v} accepted");
        }
        assert_eq!(parse(json!(0)).unwrap_err().to_string(), "amount must be a positive integer");
        assert_eq!(parse(json!(100.0)).unwrap().get(), 100);
        assert_eq!(parse(json!(1e3)).unwrap().get(), 1000);
    }
}
