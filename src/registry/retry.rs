//! When and how long to wait before retrying a registry request.
//!
//! Like go-containerregistry, HTTP 408, 499, 500, 502, 503, 504 and 522 are retried with an
//! exponential backoff and 10 % jitter. Unlike it, HTTP 429 is retried too, waiting at least
//! what `Retry-After` asks (seconds or an HTTP date) plus jitter, and never past the caller's
//! deadline: a wait that would end after the deadline is not started.
//!
//! Network errors are not retried with this policy (see `Client::send`): a dead endpoint
//! (refused, unresolvable, unreachable, connect timeout) fails at once so that it costs the
//! controller's worker nothing and the per-object backoff takes over; a connection broken after
//! it was established gets one immediate retry of a `GET` or `HEAD`.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often and how patiently requests are retried.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub attempts: u32,
    /// The first backoff.
    pub backoff: Duration,
    /// The factor applied to the backoff after each retry.
    pub factor: u32,
    /// The longest `Retry-After` honoured; a registry asking for more fails the request at once
    /// (the reconcile is retried later anyway).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// go-containerregistry's: 3 attempts, 1 s then 3 s; `Retry-After` up to 2 minutes.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_secs(1),
            factor: 3,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0 for the first retry), with jitter.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(self.factor.max(1).saturating_pow(retry));
        with_jitter(base)
    }
}

/// Statuses worth another try (go-containerregistry's list plus 429).
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 499 | 500 | 502 | 503 | 504 | 522)
}

/// `d` plus up to 10 % random jitter.
pub(crate) fn with_jitter(d: Duration) -> Duration {
    let tenth = d / 10;
    let nanos = u64::try_from(tenth.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return d;
    }
    d + Duration::from_nanos(random_u64() % nanos)
}

/// A random number from the standard library's per-process random hasher keys.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (IMF-fixdate, RFC 850 or
/// asctime) relative to `now`. A date in the past gives zero; garbage gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses the three HTTP date formats of RFC 9110 §5.6.7 (GMT only).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (*d, *m, y.parse::<i64>().ok()?, *t),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut it = dmy.split('-');
            let (d, m, y) = (it.next()?, it.next()?, it.next()?);
            let y: i64 = y.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years in the future is in the past.
            let y = if y < 100 {
                if y < 70 { 2000 + y } else { 1900 + y }
            } else {
                y
            };
            (d, m, y, *t)
        }
        // Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (*d, *m, y.parse::<i64>().ok()?, *t),
        _ => return None,
    };
    let day: i64 = day.parse().ok()?;
    let month = match month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let mut hms = time.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next()?.parse().ok()?;
    if hms.next().is_some()
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&mi)
        || !(0..=60).contains(&sec)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        // 1994-11-06T08:49:37Z = 784111777
        let now = at(784_111_777 - 30);
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(v, now),
                Some(Duration::from_secs(30)),
                "{v}"
            );
        }
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // In the past: retry now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(784_111_777 + 5)),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "soon",
            "-1",
            "1.5",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 25), 20_782);
    }

    #[test]
    fn backoff_grows_by_the_factor_with_at_most_ten_percent_jitter() {
        let p = RetryPolicy::default();
        for (retry, base) in [(0, 1000u64), (1, 3000), (2, 9000)] {
            let d = p.backoff(retry).as_millis() as u64;
            assert!(
                (base..=base + base / 10).contains(&d),
                "retry {retry}: {d} ms"
            );
        }
    }

    #[test]
    fn retryable_statuses_are_gcrs_plus_429() {
        for s in [408, 429, 499, 500, 502, 503, 504, 522] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
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
        fn mutated_retry_after_values_never_panic(
            value in mutated_text(&["120", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e9"])
        ) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            let _ = parse_retry_after(&value, now);
        }

        /// A number of seconds is that many seconds.
        #[test]
        fn seconds_are_read_as_seconds(seconds in 0u64..1_000_000) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            prop_assert_eq!(
                parse_retry_after(&seconds.to_string(), now),
                Some(Duration::from_secs(seconds))
            );
        }
    }
}
