//! Go-style durations (`90s`, `1h30m`, `1.5m`) as used by `spec.interval`, `spec.timeout` and
//! the controller flags.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Not a Go duration.
    #[error("invalid duration {input:?}")]
    Invalid {
        /// The input.
        input: String,
        /// The parser's complaint.
        #[source]
        source: kube::core::duration::ParseError,
    },
    /// An empty string (Go refuses it; kube would read zero).
    #[error("invalid duration \"\"")]
    Empty,
    /// A negative duration where only non-negative ones make sense.
    #[error("invalid duration {input:?}: must not be negative")]
    Negative {
        /// The input.
        input: String,
    },
}

/// Parses a non-negative Go duration.
///
/// # Errors
/// When `input` is not a Go duration or is negative.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    if input.trim().is_empty() {
        return Err(DurationError::Empty);
    }
    let parsed: kube::core::Duration =
        input
            .trim()
            .parse()
            .map_err(|source| DurationError::Invalid {
                input: input.to_string(),
                source,
            })?;
    if parsed.is_negative() {
        return Err(DurationError::Negative {
            input: input.to_string(),
        });
    }
    Ok(parsed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let cases = [
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1.5s", 1_500),
            ("750ms", 750),
            ("0", 0),
            ("60s", 60_000),
        ];
        for (input, ms) in cases {
            assert_eq!(parse(input).unwrap(), Duration::from_millis(ms), "{input}");
        }
    }

    #[test]
    fn bad_and_negative_durations_are_refused() {
        for input in ["5x", "", "m", "five minutes", "1h-"] {
            assert!(parse(input).is_err(), "{input}");
        }
        assert!(matches!(parse("-5m"), Err(DurationError::Negative { .. })));
    }
}
