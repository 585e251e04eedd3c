//! `herald verify`: checks a received delivery's Standard Webhooks signature, for subscribers.
//!
//! Input is the delivery as text: header lines (`name: value`), an empty line, then the body exactly
//! as received.

use herald_core::signing::{verify, SignatureError, SigningSecret};

/// A delivery read from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedDelivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the input has no `{0}` header")]
    MissingHeader(&'static str),
    #[error("the input has no empty line between the headers and the body")]
    NoBody,
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Splits `headers \n\n body` and picks the three webhook headers.
pub fn parse_delivery(input: &[u8]) -> Result<ReceivedDelivery, VerifyError> {
    let (head, body) = split_head(input).ok_or(VerifyError::NoBody)?;
    let head = String::from_utf8_lossy(head);
    let mut id = None;
    let mut timestamp = None;
    let mut signature = None;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            "webhook-id" => id = Some(value),
            "webhook-timestamp" => timestamp = Some(value),
            "webhook-signature" => signature = Some(value),
            _ => {}
        }
    }
    Ok(ReceivedDelivery {
        id: id.ok_or(VerifyError::MissingHeader("webhook-id"))?,
        timestamp: timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?,
        signature: signature.ok_or(VerifyError::MissingHeader("webhook-signature"))?,
        body: body.to_vec(),
    })
}

fn split_head(input: &[u8]) -> Option<(&[u8], &[u8])> {
    for sep in [&b"\r\n\r\n"[..], &b"\n\n"[..]] {
        if let Some(pos) = input.windows(sep.len()).position(|w| w == sep) {
            return Some((&input[..pos], &input[pos + sep.len()..]));
        }
    }
    None
}

/// Verifies; a single trailing newline added by a terminal or editor is forgiven.
pub fn verify_delivery(
    secret: &SigningSecret,
    delivery: &ReceivedDelivery,
    now_unix: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let check = |body: &[u8]| {
        verify(
            secret,
            &delivery.id,
            &delivery.timestamp,
            &delivery.signature,
            body,
            now_unix,
            tolerance_s,
        )
    };
    match check(&delivery.body) {
        Err(SignatureError::NoMatch) => {
            let trimmed = delivery
                .body
                .strip_suffix(b"\n")
                .map(|b| b.strip_suffix(b"\r").unwrap_or(b));
            match trimmed {
                Some(body) => Ok(check(body)?),
                None => Err(SignatureError::NoMatch.into()),
            }
        }
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::signing::signature_header;

    #[test]
    fn verifies_a_delivery_written_as_text() {
        let secret = SigningSecret::generate();
        let body = br#"{"id":"evt_1","type":"document.created"}"#;
        let sig = signature_header([&secret], "evt_1", 1_700_000_000, body);
        let text = format!(
            "content-type: application/json\nwebhook-id: evt_1\nwebhook-timestamp: 1700000000\nwebhook-signature: {sig}\n\n{}\n",
            std::str::from_utf8(body).unwrap()
        );
        let delivery = parse_delivery(text.as_bytes()).unwrap();
        verify_delivery(&secret, &delivery, 1_700_000_010, 300).unwrap();
        let other = SigningSecret::generate();
        assert!(verify_delivery(&other, &delivery, 1_700_000_010, 300).is_err());
    }

    #[test]
    fn missing_parts_are_reported() {
        assert!(matches!(
            parse_delivery(b"webhook-id: x"),
            Err(VerifyError::NoBody)
        ));
        assert!(matches!(
            parse_delivery(b"webhook-id: x\n\n{}"),
            Err(VerifyError::MissingHeader("webhook-timestamp"))
        ));
    }
}
