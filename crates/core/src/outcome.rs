//! What the result of one HTTP attempt means for its delivery.
//!
//! 2xx is success. 410 Gone is final and disables the subscription. Every other answer is a failure
//! retried on the schedule, 4xx included (a receiver answering 400, 401 or 404 during a deployment or
//! a misconfiguration must not lose the event), and 3xx too: redirects are never followed, since one
//! could lead anywhere, past the address checks. Timeouts, connection and DNS errors are retried.
//! Only what Herald itself refuses (a blocked address, a request it cannot build) is permanent: the
//! same request would be refused the same way.

use crate::ports::SendError;
use crate::retry::RetryAfter;

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Try again later; `retry_after` is the receiver's wish, if it said one.
    Retryable {
        retry_after: Option<RetryAfter>,
    },
    /// Do not try again: Herald refused the request itself (blocked address, unbuildable request).
    Permanent,
    /// The receiver says the endpoint is gone for good: disable the subscription.
    Gone,
}

/// The verdict on an attempt that produced an HTTP status.
pub fn classify_status(status: u16, retry_after: Option<RetryAfter>) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Succeeded,
        410 => AttemptOutcome::Gone,
        _ => AttemptOutcome::Retryable { retry_after },
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
        let retry = AttemptOutcome::Retryable { retry_after: None };
        for status in [301, 307, 400, 401, 403, 404, 408, 422, 429, 451] {
            assert_eq!(classify_status(status, None), retry, "{status}");
        }
        assert_eq!(classify_status(410, None), AttemptOutcome::Gone);
        let ra = Some(RetryAfter::Delay(std::time::Duration::from_secs(3)));
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
