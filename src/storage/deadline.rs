//! The reconcile deadline (`spec.timeout`) as the blocking storage steps see it: a point in time
//! plus the timeout it came from, so that a step past it fails with a message naming both.

use std::time::{Duration, Instant};

use super::error::Error;

/// When a blocking storage step must give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// The deadline `timeout` after `start`.
    #[must_use]
    pub fn new(start: Instant, timeout: Duration) -> Self {
        Self {
            at: start.checked_add(timeout).unwrap_or(start),
            timeout,
        }
    }

    /// The deadline `timeout` from now.
    #[must_use]
    pub fn after(timeout: Duration) -> Self {
        Self::new(Instant::now(), timeout)
    }

    /// The instant it falls due.
    #[must_use]
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The timeout it was derived from.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fails once the deadline has passed.
    ///
    /// # Errors
    ///
    /// [`Error::DeadlineExceeded`] naming `step`.
    pub fn check(&self, step: &'static str) -> Result<(), Error> {
        if Instant::now() >= self.at {
            Err(Error::DeadlineExceeded {
                step,
                timeout: self.timeout,
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_deadline_names_the_step_and_the_timeout() {
        let d = Deadline::new(
            Instant::now() - Duration::from_secs(2),
            Duration::from_secs(1),
        );
        let e = d.check("archiving the artifact").unwrap_err();
        assert_eq!(
            e.to_string(),
            "archiving the artifact did not finish within the timeout of 1s (spec.timeout)"
        );
        assert!(matches!(e, Error::DeadlineExceeded { .. }), "{e:?}");
        assert!(Deadline::after(Duration::from_secs(60)).check("x").is_ok());
    }
}
