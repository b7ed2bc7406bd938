use super::ParseError;

/// The redeemable code printed on a gift: `GIFT-XXXX-XXXX-XXXX` over Crockford's base32
/// alphabet (no I, L, O, U), 60 random bits. Uniqueness is the store's job; a collision
/// is retried with a fresh draw.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct GiftCode(String);

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl GiftCode {
    /// Renders 60 of the given random bits as a code.
    pub fn from_random(mut bits: u64) -> Self {
        let mut s = String::with_capacity(19);
        s.push_str("GIFT");
        for _group in 0..3 {
            s.push('-');
            for _ in 0..4 {
                s.push(ALPHABET[(bits & 31) as usize] as char);
                bits >>= 5;
            }
        }
        Self(s)
    }

    /// Accepts a code read back from storage; rejects anything this type would not produce.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        // `GIFT` and three groups of four, each group led by a dash: bytes 4, 9 and 14.
        let ok = s.len() == 19
            && s.starts_with("GIFT")
            && s.bytes().enumerate().skip(4).all(|(i, b)| if i % 5 == 4 { b == b'-' } else { ALPHABET.contains(&b) });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::new("malformed gift code"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_draw_renders_a_parseable_code(bits: u64) {
            let code = GiftCode::from_random(bits);
            prop_assert_eq!(GiftCode::parse(code.as_str()).unwrap(), code.clone());
            prop_assert_eq!(code.as_str().len(), 19);
        }

        #[test]
        fn distinct_low_60_bits_give_distinct_codes(a: u64, b: u64) {
            let mask = (1u64 << 60) - 1;
            prop_assume!(a & mask != b & mask);
            prop_assert_ne!(GiftCode::from_random(a), GiftCode::from_random(b));
        }
    }

    /// The shape spelled out group by group, against which the byte-wise parse is checked.
    fn is_code_by_groups(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.len() == 4
            && groups[0] == "GIFT"
            && groups[1..].iter().all(|g| g.len() == 4 && g.bytes().all(|b| ALPHABET.contains(&b)))
    }

    proptest! {
        /// A drawn code with one character replaced, inserted or removed: the near misses.
        #[test]
        fn parse_accepts_exactly_the_codes_spelled_group_by_group(
            bits: u64,
            at in 0usize..20,
            edit in 0u8..3,
            c in prop::sample::select(vec!['-', 'A', 'Z', '0', 'I', 'a', '\u{e9}', ' ']),
        ) {
            let mut s: Vec<char> = GiftCode::from_random(bits).as_str().chars().collect();
            // A replacement or removal needs a character at `at`; an insertion may also append.
            let at = if edit == 1 { at.min(s.len()) } else { at.min(s.len() - 1) };
            match edit {
                0 => s[at] = c,
                1 => s.insert(at, c),
                _ => drop(s.remove(at)),
            }
            let s: String = s.into_iter().collect();
            prop_assert_eq!(GiftCode::parse(&s).is_ok(), is_code_by_groups(&s), "{}", s);
        }
    }

    #[test]
    fn rejects_foreign_shapes() {
        for s in [
            "",
            "GIFT",
            "GIFT-AAAA-AAAA",
            "GIFT-AAAA-AAAA-AAAI",
            "gift-AAAA-AAAA-AAAA",
            "GIFTXAAAA-AAAA-AAAA",
            "GIFT-AAAAA-AAA-AAAA",
            "GIFT-AAAA-AAAA-AAAA-",
            "GIFT-AAAA-AAAA-AA\u{e9}",
        ] {
            assert!(GiftCode::parse(s).is_err(), "{s}");
        }
    }
}
