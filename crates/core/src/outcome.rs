//! What the result of one HTTP attempt means for its delivery.
//!
//! 2xx is success. 3xx is a failure and is never followed (a redirect could lead anywhere, including
//! past the address checks). 410 Gone disables the subscription. 408, 425, 429, 5xx, timeouts,
//! connection and DNS errors are worth retrying. Other 4xx and refused addresses are permanent: the
//! same request will fail the same way.

use std::time::Duration;

use crate::ports::SendError;

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Try again later; `retry_after` is the receiver's wish, if it said one.
    Retryable {
        retry_after: Option<Duration>,
    },
    /// Do not try again.
    Permanent,
    /// The receiver says the endpoint is gone for good: disable the subscription.
    Gone,
}

/// The verdict on an attempt that produced an HTTP status.
pub fn classify_status(status: u16, retry_after: Option<Duration>) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Succeeded,
        410 => AttemptOutcome::Gone,
        408 | 425 | 429 | 500..=599 => AttemptOutcome::Retryable { retry_after },
        _ => AttemptOutcome::Permanent,
    }
}

/// The verdict on an attempt that produced no HTTP status.
pub fn classify_error(error: &SendError) -> AttemptOutcome {
    match error {
        SendError::Timeout | SendError::Connect(_) | SendError::Dns(_) | SendError::Io(_) => {
            AttemptOutcome::Retryable { retry_after: None }
        }
        SendError::BlockedAddress(_) | SendError::InvalidRequest(_) => AttemptOutcome::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(classify_status(200, None), AttemptOutcome::Succeeded);
        assert_eq!(classify_status(204, None), AttemptOutcome::Succeeded);
        assert_eq!(classify_status(301, None), AttemptOutcome::Permanent);
        assert_eq!(classify_status(307, None), AttemptOutcome::Permanent);
        assert_eq!(classify_status(400, None), AttemptOutcome::Permanent);
        assert_eq!(classify_status(404, None), AttemptOutcome::Permanent);
        assert_eq!(classify_status(410, None), AttemptOutcome::Gone);
        let ra = Some(Duration::from_secs(3));
        assert_eq!(
            classify_status(429, ra),
            AttemptOutcome::Retryable { retry_after: ra }
        );
        assert_eq!(
            classify_status(500, None),
            AttemptOutcome::Retryable { retry_after: None }
        );
        assert_eq!(
            classify_status(503, None),
            AttemptOutcome::Retryable { retry_after: None }
        );
    }

    #[test]
    fn transport_errors() {
        let retry = AttemptOutcome::Retryable { retry_after: None };
        assert_eq!(classify_error(&SendError::Timeout), retry);
        assert_eq!(classify_error(&SendError::Connect("refused".into())), retry);
        assert_eq!(classify_error(&SendError::Dns("nxdomain".into())), retry);
        assert_eq!(
            classify_error(&SendError::BlockedAddress("10.0.0.1".into())),
            AttemptOutcome::Permanent
        );
    }
}
