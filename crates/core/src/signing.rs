//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//!
//! Herald signs the exact bytes it sends. During a rotation two secrets are valid and the header
//! carries both signatures, space-separated, so subscribers can switch keys without losing events.
//! Secrets are never printed: `SigningSecret`'s `Debug` hides the key.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key material in a generated secret (Standard Webhooks asks for 24 to 64).
const GENERATED_SECRET_BYTES: usize = 32;

/// Why a secret or a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the secret must be `whsec_` followed by base64 of 24 to 64 bytes")]
    InvalidSecret,
    #[error("the webhook-timestamp header is missing or not a number")]
    BadTimestamp,
    #[error("the webhook-timestamp is too far from now ({0} s)")]
    TimestampOutOfTolerance(i64),
    #[error("no signature in webhook-signature matches")]
    NoMatch,
}

/// A signing secret (`whsec_…`).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    pub fn parse(input: &str) -> Result<Self, SignatureError> {
        let encoded = input.strip_prefix(SECRET_PREFIX).unwrap_or(input);
        let key = B64
            .decode(encoded)
            .map_err(|_| SignatureError::InvalidSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignatureError::InvalidSecret);
        }
        Ok(Self { key })
    }

    /// The secret in its shareable text form. Callers decide where it may go (API answers only).
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
    }

    /// The bare signature (base64 of the HMAC) of one message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        B64.encode(self.mac(msg_id, timestamp, body))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

impl serde::Serialize for SigningSecret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for SigningSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The `webhook-signature` header value for a message signed with every given secret.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| format!("v1,{}", s.sign(msg_id, timestamp, body)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a received message the way a subscriber should: timestamp within `tolerance_s` of `now`,
/// and at least one `v1` signature matching in constant time.
pub fn verify(
    secret: &SigningSecret,
    msg_id: &str,
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_s: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now_unix - timestamp;
    if skew.abs() > tolerance_s {
        return Err(SignatureError::TimestampOutOfTolerance(skew));
    }
    let expected = secret.mac(msg_id, timestamp, body);
    let matched = signature_header
        .split_whitespace()
        .filter_map(|part| part.strip_prefix("v1,"))
        .filter_map(|sig| B64.decode(sig).ok())
        .any(|sig| bool::from(sig.as_slice().ct_eq(&expected)));
    if matched {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vector published with the Standard Webhooks specification and its libraries.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn matches_the_specification_vector() {
        let secret = SigningSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            signature_header([&secret], SPEC_ID, SPEC_TS, SPEC_BODY),
            SPEC_SIG
        );
        verify(
            &secret,
            SPEC_ID,
            "1614265330",
            SPEC_SIG,
            SPEC_BODY,
            SPEC_TS,
            300,
        )
        .unwrap();
    }

    #[test]
    fn two_secrets_give_two_signatures_each_verifiable() {
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        let header = signature_header([&new, &old], "evt_1", 1700000000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        verify(&old, "evt_1", "1700000000", &header, b"{}", 1700000000, 300).unwrap();
        verify(&new, "evt_1", "1700000000", &header, b"{}", 1700000000, 300).unwrap();
        let other = SigningSecret::generate();
        assert_eq!(
            verify(
                &other,
                "evt_1",
                "1700000000",
                &header,
                b"{}",
                1700000000,
                300
            ),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn tampering_and_stale_timestamps_fail() {
        let s = SigningSecret::generate();
        let h = signature_header([&s], "evt_1", 1700000000, b"{\"a\":1}");
        assert!(verify(&s, "evt_1", "1700000000", &h, b"{\"a\":2}", 1700000000, 300).is_err());
        assert!(verify(&s, "evt_2", "1700000000", &h, b"{\"a\":1}", 1700000000, 300).is_err());
        assert!(matches!(
            verify(&s, "evt_1", "1700000000", &h, b"{\"a\":1}", 1700001000, 300),
            Err(SignatureError::TimestampOutOfTolerance(_))
        ));
    }

    #[test]
    fn generated_secrets_are_long_and_round_trip() {
        let s = SigningSecret::generate();
        let text = s.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&text).unwrap(), s);
        assert!(!format!("{s:?}").contains(&text[6..]));
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
    }
}
