//! One line for an error and its causes, each said once.
//!
//! Error types disagree on whether `Display` repeats the source (the AWS SDK's do, several levels
//! deep; Herald's own wrappers carry their cause in the text): walking `source()` and printing every
//! level repeats the same words two or three times. [`ErrorChain`] skips a cause whose text the line
//! already holds, so a storage failure is logged once with everything it said.

use std::error::Error;
use std::fmt;

/// `Display`s `"outer: cause: root cause"` without repeats.
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !text.is_empty() && !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            source = cause.source();
        }
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("root cause")]
    struct Root;

    #[derive(Debug, thiserror::Error)]
    #[error("middle: {0}")]
    struct Repeats(#[source] Root);

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Terse(#[source] Repeats);

    #[test]
    fn each_cause_once() {
        assert_eq!(ErrorChain(&Repeats(Root)).to_string(), "middle: root cause");
        assert_eq!(
            ErrorChain(&Terse(Repeats(Root))).to_string(),
            "outer: middle: root cause"
        );
        assert_eq!(ErrorChain(&Root).to_string(), "root cause");
    }
}
