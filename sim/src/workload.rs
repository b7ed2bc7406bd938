//! What clients send: amounts, messages and idempotency keys of every legal shape, drawn
//! from the seed, so that what the service does with them (stores them, echoes them,
//! tells two keys apart) is observed.

use madsim::rand::{thread_rng, Rng};

fn visible_char() -> char {
    char::from(thread_rng().gen_range(b'!'..=b'~'))
}

fn visible(len: usize) -> String {
    (0..len).map(|_| visible_char()).collect()
}

/// An amount: the edges (1, 2^53, `i64::MAX`) or anything in between.
pub fn amount() -> i64 {
    let mut rng = thread_rng();
    match rng.gen_range(0..6) {
        0 => 1,
        1 => 1 << 53,
        2 => i64::MAX,
        3 => rng.gen_range(1..=i64::MAX),
        _ => rng.gen_range(1..=10_000),
    }
}

/// A message: none, empty, or up to 500 characters mixing ASCII, JSON's escapes and
/// characters outside ASCII (multi-byte in UTF-8).
pub fn message() -> Option<String> {
    const PIECES: [&str; 10] = ["a", "Z", " ", "\"", "\\", "\n", "é", "ギフト", "🎁", "\u{7f}"];
    let mut rng = thread_rng();
    let len = match rng.gen_range(0..5) {
        0 => return None,
        1 => 0,
        2 => 500,
        _ => rng.gen_range(1..=500),
    };
    let mut text = String::new();
    while text.chars().count() < len {
        let piece = PIECES[rng.gen_range(0..PIECES.len())];
        let room = len - text.chars().count();
        text.extend(piece.chars().take(room));
    }
    Some(text)
}

/// The key of sender `sender` of gift `gift` of client `client`: one visible character,
/// 255 of them, any length between, keys that differ only in case, or a plain name.
/// Keys of different senders of one gift may collide by chance (then they share it).
pub fn key(client: usize, gift: usize, sender: usize) -> String {
    let mut rng = thread_rng();
    match rng.gen_range(0..5) {
        0 => visible(1),
        1 => visible(255),
        2 => visible(rng.gen_range(1..=255)),
        3 => {
            let base = format!("Order-{client}-{gift}-ab");
            match sender % 3 {
                0 => base.to_lowercase(),
                1 => base.to_uppercase(),
                _ => base,
            }
        }
        _ => format!("c{client}-g{gift}-s{sender}"),
    }
}

#[cfg(test)]
mod tests {
    use gift_core::domain::{IdempotencyKey, Message};

    use super::*;

    fn draws_are_legal() {
        for i in 0..2_000 {
            let key = key(i % 7, i % 5, i % 3);
            assert!(IdempotencyKey::parse(&key).is_ok(), "{key:?}");
            if let Some(m) = message() {
                assert!(Message::parse(m.clone()).is_ok(), "{m:?}");
            }
            assert!(amount() > 0);
        }
    }

    #[test]
    fn every_drawn_key_and_message_is_legal() {
        // Under madsim the generator belongs to a simulated runtime.
        #[cfg(madsim)]
        madsim::runtime::Runtime::new().block_on(async { draws_are_legal() });
        #[cfg(not(madsim))]
        draws_are_legal();
    }
}
