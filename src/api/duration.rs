//! Go-style durations (`90s`, `1h30m`, `1.5m`) as used by `spec.interval`, `spec.timeout` and
//! the controller flags.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Not a Go duration (Go's `time.ParseDuration` wording).
    #[error("time: invalid duration {input:?}")]
    Invalid {
        /// The input.
        input: String,
    },
    /// A unit Go does not know.
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The input.
        input: String,
    },
    /// A number without a unit (only `0` may go without).
    #[error("time: missing unit in duration {input:?}")]
    MissingUnit {
        /// The input.
        input: String,
    },
    /// More than Go's `time.Duration` holds (about 292 years).
    #[error("time: invalid duration {input:?}: out of range")]
    Overflow {
        /// The input.
        input: String,
    },
    /// A negative duration where only non-negative ones make sense.
    #[error("invalid duration {input:?}: must not be negative")]
    Negative {
        /// The input.
        input: String,
    },
}

/// Nanoseconds per unit, as Go's `time.ParseDuration` knows them.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a non-negative Go duration (`90s`, `1h30m`, `1.5m`, `0`), as strictly as Go's
/// `time.ParseDuration`: one optional sign, then numbers each with a unit.
///
/// # Errors
/// When `input` is not a Go duration, exceeds Go's range, or is negative.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid {
        input: input.to_string(),
    };
    let (negative, mut rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Go's limit: an int64 of nanoseconds.
    let max = i64::MAX as u128;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit {
                input: input.to_string(),
            });
        }
        let per = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
            input: input.to_string(),
        })?;
        let overflow = || DurationError::Overflow {
            input: input.to_string(),
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u128>().map_err(|_| overflow())?
        };
        let mut nanos = whole.checked_mul(per).ok_or_else(overflow)?;
        // The fraction, digit by digit, truncated as Go does.
        let mut scale = per;
        for digit in frac.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(nanos).ok_or_else(overflow)?;
        if total > max {
            return Err(overflow());
        }
        rest = next;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative {
            input: input.to_string(),
        });
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| invalid())?;
    let sub = u32::try_from(total % 1_000_000_000).map_err(|_| invalid())?;
    Ok(Duration::new(secs, sub))
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
            ("+5s", 5_000),
            ("-0", 0),
            (".5s", 500),
            ("1.s", 1_000),
            ("1h1m1s1ms", 3_661_001),
            ("2562047h", 2_562_047 * 3_600_000),
        ];
        for (input, ms) in cases {
            assert_eq!(parse(input).unwrap(), Duration::from_millis(ms), "{input}");
        }
        assert_eq!(
            parse("1.0000000019s").unwrap(),
            Duration::new(1, 1),
            "truncated as Go"
        );
        assert_eq!(parse("3us").unwrap(), Duration::from_micros(3));
        assert_eq!(parse("3\u{b5}s").unwrap(), Duration::from_micros(3));
        assert_eq!(parse("7ns").unwrap(), Duration::from_nanos(7));
    }

    #[test]
    fn bad_and_negative_durations_are_refused() {
        for input in [
            "5x",
            "",
            "m",
            "five minutes",
            "1h-",
            "1s-1s",
            "1m-1s",
            "--1s",
            "+-1s",
            ".s",
            "1..5s",
            "1.5.5s",
            " 1s",
            "1s ",
            "1",
            "1.5",
            "s1",
            "-",
            "+",
            "1e3s",
            "0x10s",
        ] {
            assert!(parse(input).is_err(), "{input:?}");
        }
        assert!(matches!(parse("-5m"), Err(DurationError::Negative { .. })));
        assert_eq!(
            parse("1s-1s").unwrap_err().to_string(),
            "time: unknown unit \"s-\" in duration \"1s-1s\""
        );
        assert_eq!(
            parse("10").unwrap_err().to_string(),
            "time: missing unit in duration \"10\""
        );
        assert!(matches!(
            parse("2562048h"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::mutation::{config, mutated_text};

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn mutated_durations_parse_or_fail_without_panic(
            text in mutated_text(&["1m", "1h30m", "10s", "1.5h", "300ms", "-1s", "0", "2h45m0.5s"])
        ) {
            let _ = parse(&text);
        }

        /// A duration written as Go prints one (`1h2m3.004s`) parses to its value.
        #[test]
        fn a_formatted_duration_parses_to_its_value(
            h in 0u64..10_000, m in 0u64..60, s in 0u64..60, ms in 0u64..1000,
        ) {
            let text = format!("{h}h{m}m{s}.{ms:03}s");
            let want = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse(&text).ok(), Some(want));
            prop_assert_eq!(parse(&format!("{}ms", want.as_millis())).ok(), Some(want));
        }
    }
}
