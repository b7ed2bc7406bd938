//! SCRAM-SHA-256 password verifiers (RFC 5802, RFC 7677) in the form PostgreSQL stores
//! them: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. `ALTER ROLE … PASSWORD`
//! given a verifier stores it as it is, so the clear password never reaches the server —
//! which matters because RDS logs every DDL statement here (`log_statement = ddl`) and
//! exports that log to CloudWatch. psql's `\password` does the same.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default `scram_iterations`.
const ITERATIONS: u32 = 4096;

/// A password the SCRAM exchange cannot carry: SASLprep refuses it, and so would the
/// driver when the application logs in with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpreparable;

/// The verifier of `password` with `salt`.
pub(super) fn verifier(password: &str, salt: &[u8; 16]) -> Result<String, Unpreparable> {
    let prepared = stringprep::saslprep(password).map_err(|_| Unpreparable)?;
    let salted = salted_password(prepared.as_bytes(), salt, ITERATIONS);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    Ok(format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        BASE64.encode(salt),
        BASE64.encode(stored_key),
        BASE64.encode(server_key)
    ))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi(password, salt, i)`: PBKDF2-HMAC-SHA-256 with one output block.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut hi = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        hi.iter_mut().zip(u).for_each(|(h, x)| *h ^= x);
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(b64: &str) -> Vec<u8> {
        BASE64.decode(b64).unwrap()
    }

    /// RFC 7677's example exchange (user "user", password "pencil"): a server holding our
    /// verifier accepts the client's proof and answers with the RFC's server signature.
    #[test]
    fn the_verifier_checks_the_rfc_7677_exchange() {
        let salt: [u8; 16] = decode("W22ZaJ0SNY7soEsUEjb6gQ==").try_into().unwrap();
        let verifier = verifier("pencil", &salt).unwrap();
        let (head, keys) = verifier.split_once('$').unwrap().1.split_once('$').unwrap();
        assert_eq!(head, "4096:W22ZaJ0SNY7soEsUEjb6gQ==");
        let (stored_key, server_key) = keys.split_once(':').unwrap();
        let (stored_key, server_key) = (decode(stored_key), decode(server_key));

        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth_message =
            format!("n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}");
        let proof = decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(client_signature).map(|(p, s)| p ^ s).collect();
        assert_eq!(Sha256::digest(&client_key).as_slice(), stored_key.as_slice(), "the client's proof is accepted");
        assert_eq!(
            BASE64.encode(hmac(&server_key, auth_message.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn a_password_saslprep_refuses_is_refused() {
        assert_eq!(verifier("bad\u{0007}bell", &[0; 16]), Err(Unpreparable));
        // SASLprep maps a non-ASCII space to a space, as the driver does when it logs in.
        assert_eq!(verifier("a\u{00A0}b", &[0; 16]), verifier("a b", &[0; 16]));
    }
}
