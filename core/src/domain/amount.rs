use super::ParseError;

/// A gift amount: a positive integer (minor units are the client's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    /// Parses a JSON value: integers in `1..=i64::MAX` are amounts, and so are numbers
    /// written with a zero fraction (`100.0`, `1e3`) up to 2^53, where floating point is
    /// still exact — JSON Schema counts those as integers too. `1.5` and `"1"` are not.
    pub fn parse_json(value: Option<&serde_json::Value>) -> Result<Self, ParseError> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        let value = value.ok_or_else(|| ParseError::new("amount is required"))?;
        let n = value
            .as_i64()
            .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64))
            .ok_or_else(|| ParseError::new("amount must be a positive integer"))?;
        Self::try_from(n)
    }

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
            Err(ParseError::new("amount must be a positive integer"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn positive_integers_parse(n in 1i64..=i64::MAX) {
            prop_assert_eq!(Amount::parse_json(Some(&json!(n))).unwrap().get(), n);
        }

        #[test]
        fn zero_and_negatives_are_rejected(n in i64::MIN..=0) {
            prop_assert!(Amount::parse_json(Some(&json!(n))).is_err());
        }

        #[test]
        fn fractions_are_rejected(f in proptest::num::f64::NORMAL) {
            prop_assume!(f.fract() != 0.0);
            prop_assert!(Amount::parse_json(Some(&json!(f))).is_err());
        }
    }

    #[test]
    fn non_numbers_and_missing_are_rejected() {
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
            assert!(Amount::parse_json(Some(&v)).is_err(), "{v} accepted");
        }
        assert_eq!(Amount::parse_json(None).unwrap_err().0, "amount is required");
        assert_eq!(Amount::parse_json(Some(&json!(100.0))).unwrap().get(), 100);
        assert_eq!(Amount::parse_json(Some(&json!(1e3))).unwrap().get(), 1000);
    }
}
