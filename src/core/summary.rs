//! The pure end of every reconcile: from the conditions left by the steps and how the attempt
//! ended, compute the final conditions (Ready summary included), whether `observedGeneration`
//! advances, and what the runtime does next. Also the kstatus invariants upstream tests check.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::conditions::{Conditions, Status};
use crate::api::conditions::{reasons, types};

/// How a reconcile attempt ended, before summarising.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every step succeeded: requeue after the jittered interval.
    Success,
    /// The finalizer was just added: requeue at once.
    RequeueNow,
    /// Nothing more to do (suspended, or deleted).
    Done,
    /// An error only a spec change can fix: no retry.
    Stalled {
        /// Flux reason.
        reason: &'static str,
        /// Rendered error.
        message: String,
    },
    /// A retryable error with a Flux reason (emits a Warning event).
    Failed {
        /// Flux reason.
        reason: &'static str,
        /// Rendered error.
        message: String,
    },
    /// A retryable error without a reason (no event).
    FailedPlain {
        /// Rendered error.
        message: String,
    },
}

/// What the runtime does after the status is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Requeue after the object's interval (jittered by the caller).
    AfterInterval,
    /// Requeue immediately.
    Now,
    /// Wait for a change of the object.
    Nothing,
    /// Back off and retry (per-object exponential backoff).
    Retry {
        /// The Flux reason, when the error has one (then a Warning event is due).
        reason: Option<&'static str>,
        /// The error text.
        message: String,
    },
}

/// The final status facts of one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Final conditions, sorted.
    pub conditions: Vec<Condition>,
    /// Final `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// What happens next.
    pub next: Next,
}

// Priority order of the conditions Ready summarises, and which of them are negative polarity.
const SUMMARY_ORDER: [&str; 7] = [
    types::STORAGE_OPERATION_FAILED,
    types::FETCH_FAILED,
    types::ARTIFACT_OUTDATED,
    types::ARTIFACT_IN_STORAGE,
    types::SOURCE_VERIFIED,
    types::STALLED,
    types::RECONCILING,
];
const NEGATIVE: [&str; 5] = [
    types::STORAGE_OPERATION_FAILED,
    types::FETCH_FAILED,
    types::ARTIFACT_OUTDATED,
    types::STALLED,
    types::RECONCILING,
];

/// Finishes a reconcile as Flux's `summarize` does: result rules, Ready summary, bipolar
/// SourceVerified override, success-but-not-Ready turned into a retry, observedGeneration.
pub fn summarize(
    mut conditions: Conditions,
    generation: i64,
    observed_generation: Option<i64>,
    ending: Ending,
) -> Summary {
    if ending == Ending::Success {
        conditions.delete(types::RECONCILING);
    }
    // A Reconciling condition that survives means the attempt did not finish its work.
    if let Some(reconciling) = conditions.get(types::RECONCILING) {
        let message = reconciling.message.clone();
        conditions.mark_true(
            types::RECONCILING,
            reasons::PROGRESSING_WITH_RETRY,
            &message,
        );
    }
    let (mut next, observe) = match &ending {
        Ending::Stalled { reason, message } => {
            conditions.mark_stalled(reason, message);
            (Next::Nothing, true)
        }
        Ending::Success => {
            conditions.delete(types::STALLED);
            (Next::AfterInterval, true)
        }
        Ending::Done => {
            conditions.delete(types::STALLED);
            (Next::Nothing, true)
        }
        Ending::RequeueNow => {
            conditions.delete(types::STALLED);
            (Next::Now, false)
        }
        Ending::Failed { reason, message } => {
            conditions.delete(types::STALLED);
            let next = Next::Retry {
                reason: Some(reason),
                message: message.clone(),
            };
            (next, false)
        }
        Ending::FailedPlain { message } => {
            conditions.delete(types::STALLED);
            let next = Next::Retry {
                reason: None,
                message: message.clone(),
            };
            (next, false)
        }
    };

    set_ready_summary(&mut conditions);

    if next == Next::AfterInterval
        && let Some(ready) = conditions.get(types::READY)
        && ready.status != Status::True.as_str()
    {
        next = Next::Retry {
            reason: None,
            message: ready.message.clone(),
        };
    }

    let observed_generation = if observe && !conditions.list().is_empty() {
        Some(generation)
    } else {
        observed_generation
    };
    Summary {
        conditions: conditions.into_list(),
        observed_generation,
        next,
    }
}

fn set_ready_summary(conditions: &mut Conditions) {
    let rank = |t: &str, status: Status| -> u8 {
        let negative = NEGATIVE.contains(&t);
        match (status, negative) {
            (Status::True, true) => 0,
            (Status::False, false) => 1,
            (Status::True, false) => 2,
            (Status::False, true) => 3,
            (Status::Unknown, _) => 4,
        }
    };
    let top = SUMMARY_ORDER
        .iter()
        .enumerate()
        .filter_map(|(i, t)| conditions.status(t).map(|s| (rank(t, s), i, *t)))
        .min();
    if let Some((group, _, t)) = top
        && let Some(source) = conditions.get(t)
    {
        let (reason, message) = (source.reason.clone(), source.message.clone());
        let status = match group {
            0 | 1 => Status::False,
            2 | 3 => Status::True,
            _ => Status::Unknown,
        };
        conditions.set(types::READY, status, &reason, &message);
    }
    // SourceVerified is bipolar: False is meaningful and always wins.
    if let Some(verified) = conditions.get(types::SOURCE_VERIFIED)
        && verified.status == Status::False.as_str()
    {
        let (reason, message) = (verified.reason.clone(), verified.message.clone());
        conditions.mark_false(types::READY, &reason, &message);
    }
}

/// The kstatus invariants of a final status (Flux's condition checks FAIL0001 to FAIL0009):
/// returns one line per violation, empty when the status is sound.
pub fn kstatus_violations(
    conditions: &[Condition],
    generation: i64,
    observed_generation: Option<i64>,
) -> Vec<String> {
    let mut out = vec![];
    let get = |t: &str| conditions.iter().find(|c| c.type_ == t);
    let is = |t: &str, s: Status| get(t).is_some_and(|c| c.status == s.as_str());
    let Some(ready) = get(types::READY) else {
        out.push("Ready condition is missing".into());
        return out;
    };
    let ready_true = ready.status == Status::True.as_str();
    if ready_true {
        for t in NEGATIVE {
            if is(t, Status::True) {
                out.push(format!(
                    "negative condition {t} is True while Ready is True"
                ));
            }
        }
    }
    if (is(types::RECONCILING, Status::True) || is(types::STALLED, Status::True))
        && ready.status != Status::False.as_str()
    {
        out.push("Reconciling or Stalled is True but Ready is not False".into());
    }
    if get(types::RECONCILING).is_some() && get(types::STALLED).is_some() {
        out.push("Reconciling and Stalled are both present".into());
    }
    let observed = observed_generation.unwrap_or(-1);
    if observed > generation {
        out.push(format!(
            "observedGeneration {observed} > generation {generation}"
        ));
    }
    if observed < generation && ready_true {
        out.push("Ready is True for an unobserved generation".into());
    }
    if ready_true {
        for c in conditions {
            if c.observed_generation != Some(generation) {
                out.push(format!(
                    "condition {} observed generation {:?} != {generation}",
                    c.type_, c.observed_generation
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn now() -> Time {
        Time("2026-01-01T00:00:00Z".parse().unwrap())
    }

    fn conds(generation: i64, set: &[(&str, Status, &str, &str)]) -> Conditions {
        let mut c = Conditions::new(vec![], generation, now());
        for (t, s, r, m) in set {
            c.set(t, *s, r, m);
        }
        c
    }

    fn ready(s: &Summary) -> (String, String, String) {
        let r = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        (r.status.clone(), r.reason.clone(), r.message.clone())
    }

    #[test]
    fn happy_path_is_ready_with_the_artifact_message_and_observes_the_generation() {
        let msg = "stored artifact for digest 'latest@sha256:abc'";
        let c = conds(
            2,
            &[
                (
                    types::RECONCILING,
                    Status::True,
                    reasons::PROGRESSING,
                    "building artifact",
                ),
                (
                    types::ARTIFACT_IN_STORAGE,
                    Status::True,
                    reasons::SUCCEEDED,
                    msg,
                ),
                (
                    types::SOURCE_VERIFIED,
                    Status::True,
                    reasons::SUCCEEDED,
                    "verified",
                ),
            ],
        );
        let s = summarize(c, 2, Some(1), Ending::Success);
        assert_eq!(ready(&s), ("True".into(), "Succeeded".into(), msg.into()));
        assert_eq!(s.next, Next::AfterInterval);
        assert_eq!(s.observed_generation, Some(2));
        assert!(s.conditions.iter().all(|c| c.type_ != "Reconciling"));
        assert!(kstatus_violations(&s.conditions, 2, s.observed_generation).is_empty());
    }

    #[test]
    fn a_fetch_error_outranks_reconciling_and_keeps_the_old_generation() {
        let c = conds(
            3,
            &[
                (
                    types::RECONCILING,
                    Status::True,
                    reasons::PROGRESSING,
                    "building artifact: new revision",
                ),
                (
                    types::ARTIFACT_OUTDATED,
                    Status::True,
                    reasons::NEW_REVISION,
                    "new revision",
                ),
                (
                    types::FETCH_FAILED,
                    Status::True,
                    reasons::OCI_ARTIFACT_PULL_FAILED,
                    "failed to pull",
                ),
                (
                    types::ARTIFACT_IN_STORAGE,
                    Status::True,
                    reasons::SUCCEEDED,
                    "stored",
                ),
            ],
        );
        let ending = Ending::Failed {
            reason: reasons::OCI_ARTIFACT_PULL_FAILED,
            message: "failed to pull".into(),
        };
        let s = summarize(c, 3, Some(2), ending);
        assert_eq!(
            ready(&s),
            (
                "False".into(),
                "OCIArtifactPullFailed".into(),
                "failed to pull".into()
            )
        );
        let rec = s
            .conditions
            .iter()
            .find(|c| c.type_ == "Reconciling")
            .unwrap();
        assert_eq!(rec.reason, "ProgressingWithRetry");
        assert_eq!(rec.message, "building artifact: new revision");
        assert_eq!(s.observed_generation, Some(2));
        assert!(matches!(
            s.next,
            Next::Retry {
                reason: Some("OCIArtifactPullFailed"),
                ..
            }
        ));
        assert!(kstatus_violations(&s.conditions, 3, s.observed_generation).is_empty());
    }

    #[test]
    fn a_verification_failure_makes_ready_false_through_the_bipolar_override() {
        let c = conds(
            1,
            &[
                (
                    types::RECONCILING,
                    Status::True,
                    reasons::PROGRESSING,
                    "building artifact",
                ),
                (
                    types::SOURCE_VERIFIED,
                    Status::False,
                    reasons::VERIFICATION_ERROR,
                    "failed to verify",
                ),
            ],
        );
        let ending = Ending::Failed {
            reason: reasons::VERIFICATION_ERROR,
            message: "failed to verify".into(),
        };
        let s = summarize(c, 1, Some(-1), ending);
        assert_eq!(
            ready(&s),
            (
                "False".into(),
                "VerificationError".into(),
                "failed to verify".into()
            )
        );
    }

    #[test]
    fn an_invalid_url_stalls_with_the_fetch_failed_message() {
        let msg = "URL validation failed for 'oci://ghcr.io/test/test:v1': URL must not contain a tag; remove ':v1'";
        let c = conds(
            1,
            &[
                (
                    types::RECONCILING,
                    Status::True,
                    reasons::PROGRESSING,
                    "reconciliation in progress",
                ),
                (types::FETCH_FAILED, Status::True, reasons::URL_INVALID, msg),
            ],
        );
        let ending = Ending::Stalled {
            reason: reasons::URL_INVALID,
            message: msg.into(),
        };
        let s = summarize(c, 1, Some(-1), ending);
        assert_eq!(ready(&s), ("False".into(), "URLInvalid".into(), msg.into()));
        assert!(s.conditions.iter().any(|c| c.type_ == "Stalled"));
        assert!(s.conditions.iter().all(|c| c.type_ != "Reconciling"));
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.next, Next::Nothing);
        assert!(kstatus_violations(&s.conditions, 1, s.observed_generation).is_empty());
    }

    #[test]
    fn a_feature_gate_stall_without_fetch_failed_reports_the_stall_reason() {
        let c = conds(
            1,
            &[(types::RECONCILING, Status::True, reasons::PROGRESSING, "x")],
        );
        let ending = Ending::Stalled {
            reason: reasons::FEATURE_GATE_DISABLED,
            message: "enable the gate".into(),
        };
        let s = summarize(c, 1, None, ending);
        assert_eq!(
            ready(&s),
            (
                "False".into(),
                "FeatureGateDisabled".into(),
                "enable the gate".into()
            )
        );
    }

    #[test]
    fn success_without_ready_true_becomes_a_plain_retry() {
        let c = conds(
            1,
            &[(
                types::ARTIFACT_OUTDATED,
                Status::True,
                reasons::NEW_REVISION,
                "new revision",
            )],
        );
        let s = summarize(c, 1, None, Ending::Success);
        assert_eq!(
            s.next,
            Next::Retry {
                reason: None,
                message: "new revision".into()
            }
        );
    }

    #[test]
    fn finalizer_requeue_does_not_observe_the_generation() {
        let s = summarize(conds(1, &[]), 1, Some(-1), Ending::RequeueNow);
        assert_eq!(s.next, Next::Now);
        assert_eq!(s.observed_generation, Some(-1));
        assert!(
            s.conditions.is_empty(),
            "no inputs: Ready is left untouched"
        );
    }

    #[test]
    fn suspend_observes_the_generation_when_conditions_exist() {
        let c = conds(
            4,
            &[(
                types::ARTIFACT_IN_STORAGE,
                Status::True,
                reasons::SUCCEEDED,
                "stored",
            )],
        );
        let s = summarize(c, 4, Some(3), Ending::Done);
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.next, Next::Nothing);
        assert_eq!(ready(&s).0, "True");
    }

    #[test]
    fn kstatus_checks_catch_each_broken_invariant() {
        let ok = conds(2, &[(types::READY, Status::True, reasons::SUCCEEDED, "ok")]).into_list();
        assert!(kstatus_violations(&ok, 2, Some(2)).is_empty());
        assert_eq!(kstatus_violations(&[], 1, Some(1)).len(), 1);
        assert!(
            !kstatus_violations(&ok, 3, Some(2)).is_empty(),
            "stale generation"
        );
        assert!(
            !kstatus_violations(&ok, 2, Some(3)).is_empty(),
            "future generation"
        );
        let neg = conds(
            2,
            &[
                (types::READY, Status::True, reasons::SUCCEEDED, "ok"),
                (
                    types::FETCH_FAILED,
                    Status::True,
                    reasons::OCI_ARTIFACT_PULL_FAILED,
                    "x",
                ),
            ],
        )
        .into_list();
        assert!(!kstatus_violations(&neg, 2, Some(2)).is_empty());
        let unknown = conds(
            2,
            &[
                (types::READY, Status::Unknown, reasons::PROGRESSING, "x"),
                (types::RECONCILING, Status::True, reasons::PROGRESSING, "x"),
            ],
        )
        .into_list();
        assert!(!kstatus_violations(&unknown, 2, Some(1)).is_empty());
    }
}
