//! Condition bookkeeping with Flux's setter semantics: a set refreshes `observedGeneration`,
//! moves `lastTransitionTime` only when status, reason or message change, caps the message, and
//! keeps the list sorted Stalled, Reconciling, Ready, then by type.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::conditions::{reasons, types};

/// The API caps condition messages at this many bytes.
pub const MAX_MESSAGE_BYTES: usize = 32768;

/// Condition status values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `"True"`
    True,
    /// `"False"`
    False,
    /// `"Unknown"`
    Unknown,
}

impl Status {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "True" => Status::True,
            "False" => Status::False,
            _ => Status::Unknown,
        }
    }
}

/// The conditions of one object at one generation, edited in memory and written once.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions {
    list: Vec<Condition>,
    generation: i64,
    now: Time,
}

impl Conditions {
    /// Wraps `list` for an object at `generation`; `now` stamps transitions (UTC, seconds).
    pub fn new(list: Vec<Condition>, generation: i64, now: Time) -> Conditions {
        let now =
            Time(k8s_openapi::jiff::Timestamp::from_second(now.0.as_second()).unwrap_or(now.0));
        Conditions {
            list,
            generation,
            now,
        }
    }

    /// The conditions, sorted.
    pub fn list(&self) -> &[Condition] {
        &self.list
    }

    /// Consumes the set and returns the list.
    pub fn into_list(self) -> Vec<Condition> {
        self.list
    }

    /// The condition of type `t`.
    pub fn get(&self, t: &str) -> Option<&Condition> {
        self.list.iter().find(|c| c.type_ == t)
    }

    /// The status of condition `t`, if present.
    pub fn status(&self, t: &str) -> Option<Status> {
        self.get(t).map(|c| Status::parse(&c.status))
    }

    /// Whether condition `t` is present with status True.
    pub fn is_true(&self, t: &str) -> bool {
        self.status(t) == Some(Status::True)
    }

    /// Whether condition `t` is present with status False.
    pub fn is_false(&self, t: &str) -> bool {
        self.status(t) == Some(Status::False)
    }

    /// Sets condition `t`. The transition time moves only if status, reason or message change;
    /// the observed generation is always the current one.
    pub fn set(&mut self, t: &str, status: Status, reason: &str, message: &str) {
        let message = cap_message(message);
        let generation = self.generation;
        if let Some(existing) = self.list.iter_mut().find(|c| c.type_ == t) {
            let same = existing.status == status.as_str()
                && existing.reason == reason
                && existing.message == message;
            if !same {
                existing.status = status.as_str().to_string();
                existing.reason = reason.to_string();
                existing.message = message;
                existing.last_transition_time = self.now.clone();
            }
            existing.observed_generation = Some(generation);
        } else {
            self.list.push(Condition {
                type_: t.to_string(),
                status: status.as_str().to_string(),
                reason: reason.to_string(),
                message,
                last_transition_time: self.now.clone(),
                observed_generation: Some(generation),
            });
        }
        self.list
            .sort_by(|a, b| order(&a.type_).cmp(&order(&b.type_)));
    }

    /// Sets `t` to True.
    pub fn mark_true(&mut self, t: &str, reason: &str, message: &str) {
        self.set(t, Status::True, reason, message);
    }

    /// Sets `t` to False.
    pub fn mark_false(&mut self, t: &str, reason: &str, message: &str) {
        self.set(t, Status::False, reason, message);
    }

    /// Sets `t` to Unknown.
    pub fn mark_unknown(&mut self, t: &str, reason: &str, message: &str) {
        self.set(t, Status::Unknown, reason, message);
    }

    /// Removes condition `t`.
    pub fn delete(&mut self, t: &str) {
        self.list.retain(|c| c.type_ != t);
    }

    /// Reconciling=True and no Stalled, as at the start of each reconcile.
    pub fn mark_reconciling(&mut self, reason: &str, message: &str) {
        self.delete(types::STALLED);
        self.mark_true(types::RECONCILING, reason, message);
    }

    /// Stalled=True and no Reconciling.
    pub fn mark_stalled(&mut self, reason: &str, message: &str) {
        self.delete(types::RECONCILING);
        self.mark_true(types::STALLED, reason, message);
    }

    /// Flux's progressive status for mid-reconcile patches: Reconciling=True, and Ready=Unknown
    /// with the same message when `drift` or when Ready is missing or Unknown; otherwise Ready
    /// keeps its value (a re-check of an unchanged source stays Ready=True).
    pub fn progressive(&mut self, drift: bool, message: &str) {
        self.mark_reconciling(reasons::PROGRESSING, message);
        let ready_unknown = matches!(self.status(types::READY), None | Some(Status::Unknown));
        if drift || ready_unknown {
            self.mark_unknown(types::READY, reasons::PROGRESSING, message);
        }
    }
}

fn order(t: &str) -> (u8, &str) {
    match t {
        types::STALLED => (0, ""),
        types::RECONCILING => (1, ""),
        types::READY => (2, ""),
        other => (3, other),
    }
}

/// Truncates `message` to the API limit at a character boundary, marking the cut with `...`.
pub fn cap_message(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn set_keeps_the_transition_time_when_only_the_generation_changes() {
        let mut c = Conditions::new(vec![], 1, time("2026-01-01T00:00:00Z"));
        c.mark_true(types::READY, reasons::SUCCEEDED, "ok");
        let first = c.get(types::READY).unwrap().clone();
        assert_eq!(first.observed_generation, Some(1));

        let mut c = Conditions::new(c.into_list(), 2, time("2026-01-01T01:00:00Z"));
        c.mark_true(types::READY, reasons::SUCCEEDED, "ok");
        let second = c.get(types::READY).unwrap();
        assert_eq!(second.last_transition_time, first.last_transition_time);
        assert_eq!(second.observed_generation, Some(2));

        c.mark_false(types::READY, reasons::FAILED, "broken");
        let third = c.get(types::READY).unwrap();
        assert_eq!(third.last_transition_time, time("2026-01-01T01:00:00Z"));
        assert_eq!(third.status, "False");
    }

    #[test]
    fn transition_times_are_truncated_to_seconds() {
        let mut c = Conditions::new(vec![], 1, time("2026-01-01T00:00:00.75Z"));
        c.mark_true(types::READY, reasons::SUCCEEDED, "ok");
        let t = &c.get(types::READY).unwrap().last_transition_time;
        assert_eq!(t.0.subsec_nanosecond(), 0);
    }

    #[test]
    fn conditions_sort_stalled_reconciling_ready_then_by_type() {
        let mut c = Conditions::new(vec![], 1, time("2026-01-01T00:00:00Z"));
        for t in [
            types::SOURCE_VERIFIED,
            types::ARTIFACT_IN_STORAGE,
            types::READY,
            types::FETCH_FAILED,
            types::RECONCILING,
        ] {
            c.mark_true(t, reasons::SUCCEEDED, "");
        }
        c.mark_stalled(reasons::URL_INVALID, "");
        let order: Vec<_> = c.list().iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            order,
            [
                "Stalled",
                "Ready",
                "ArtifactInStorage",
                "FetchFailed",
                "SourceVerified"
            ],
            "marking Stalled removes Reconciling"
        );
        c.mark_reconciling(reasons::PROGRESSING, "again");
        let order: Vec<_> = c.list().iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(order[0], "Reconciling");
        assert!(c.get(types::STALLED).is_none());
    }

    #[test]
    fn long_messages_are_capped_at_the_api_limit() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let capped = cap_message(&long);
        assert!(capped.len() <= MAX_MESSAGE_BYTES);
        assert!(capped.ends_with("..."));
        assert_eq!(cap_message("short"), "short");
    }

    #[test]
    fn progressive_status_keeps_ready_true_without_drift() {
        let mut c = Conditions::new(vec![], 1, time("2026-01-01T00:00:00Z"));
        c.mark_true(types::READY, reasons::SUCCEEDED, "stored");
        c.progressive(false, "reconciliation in progress");
        assert!(c.is_true(types::READY));
        assert!(c.is_true(types::RECONCILING));
        c.progressive(true, "building artifact");
        assert_eq!(c.status(types::READY), Some(Status::Unknown));
        assert_eq!(c.get(types::READY).unwrap().message, "building artifact");
    }
}
