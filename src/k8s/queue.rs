//! A model of the controller's work queue, observed from outside, for controller-runtime's
//! `workqueue_*` and worker metrics.
//!
//! kube-runtime's scheduler cannot be inspected, so this module replays what it is told: a watch
//! event queues a key now ([`Queue::request`]), an `Action::requeue(d)` queues it at `now + d`
//! ([`Queue::requeue`]), and a reconcile takes it off the queue ([`Queue::start`]) and runs it
//! until [`Queue::finish`]. As in kube's scheduler a key holds one slot, and the sooner due time
//! wins. As in client-go's delaying queue, a delayed key joins the depth (and counts as an add)
//! only when it falls due; a key queued again while it runs is part of the depth, as client-go's
//! "dirty while processing" item is. Gauges are computed at scrape time by [`Queue::sample`],
//! which also forgets keys whose object left the store (the controller drops those requests).
//!
//! Every method takes the current instant, so that tests drive time explicitly.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::QueueSample;

/// The observed queue of a controller, keyed by object.
#[derive(Debug)]
pub struct Queue<K> {
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    items: HashMap<K, Item>,
    adds: u64,
    retries: u64,
}

#[derive(Debug, Default)]
struct Item {
    queued: Option<Queued>,
    // When the current reconcile of this key started.
    running: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    due: Instant,
    // Whether the key has fallen due and been counted in `adds`.
    added: bool,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(State {
                items: HashMap::new(),
                adds: 0,
                retries: 0,
            }),
        }
    }
}

impl<K: Eq + Hash> Queue<K> {
    /// An empty queue.
    pub fn new() -> Queue<K> {
        Queue::default()
    }

    /// A watch event asks for `key` to be reconciled now.
    pub fn request(&self, key: K, now: Instant) {
        self.lock().enqueue(key, now, now);
    }

    /// A reconcile asked for `key` again after `after`. Like controller-runtime, whose every
    /// requeue (error, `Requeue`, `RequeueAfter`) goes through client-go's `AddAfter`, this
    /// counts as a retry.
    pub fn requeue(&self, key: K, now: Instant, after: Duration) {
        let mut state = self.lock();
        state.retries += 1;
        // A due time beyond the clock's range never comes.
        if let Some(due) = now.checked_add(after) {
            state.enqueue(key, due, now);
        }
    }

    /// A reconcile of `key` starts: the key leaves the queue and runs. Returns how long it waited
    /// since it fell due, if it was queued.
    pub fn start(&self, key: K, now: Instant) -> Option<Duration> {
        let mut state = self.lock();
        let item = state.items.entry(key).or_default();
        item.running = Some(now);
        let queued = item.queued.take();
        // The controller ran it, so it was added by now, even if our clock disagrees by a hair.
        if queued.is_none_or(|q| !q.added) {
            state.adds += 1;
        }
        queued.map(|q| now.saturating_duration_since(q.due))
    }

    /// The reconcile of `key` ended. Returns how long it ran.
    pub fn finish(&self, key: &K, now: Instant) -> Option<Duration> {
        let mut state = self.lock();
        let item = state.items.get_mut(key)?;
        let started = item.running.take()?;
        if item.queued.is_none() {
            state.items.remove(key);
        }
        Some(now.saturating_duration_since(started))
    }

    /// The queue's gauges and counters at `now`. Queued keys for which `exists` is false are
    /// forgotten first: the controller drops a request for an object that left its store.
    pub fn sample(&self, now: Instant, mut exists: impl FnMut(&K) -> bool) -> QueueSample {
        let mut state = self.lock();
        let State {
            items,
            adds,
            retries,
        } = &mut *state;
        items.retain(|key, item| {
            if item.queued.is_some() && !exists(key) {
                item.queued = None;
            }
            item.queued.is_some() || item.running.is_some()
        });
        let mut sample = QueueSample::default();
        for item in items.values_mut() {
            if let Some(q) = &mut item.queued
                && q.due <= now
            {
                if !q.added {
                    q.added = true;
                    *adds += 1;
                }
                sample.depth += 1;
            }
            if let Some(started) = item.running {
                let age = now.saturating_duration_since(started).as_secs_f64();
                sample.active_workers += 1;
                sample.unfinished_work_seconds += age;
                sample.longest_running_processor_seconds =
                    sample.longest_running_processor_seconds.max(age);
            }
        }
        sample.adds = *adds;
        sample.retries = *retries;
        sample
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Eq + Hash> State<K> {
    // One slot per key; the sooner due time wins, as in kube's scheduler. A key due already is
    // added at once, as client-go's `Add`; a later one when it falls due.
    fn enqueue(&mut self, key: K, due: Instant, now: Instant) {
        let item = self.items.entry(key).or_default();
        let mut queued = match item.queued {
            Some(q) if q.due <= due => q,
            _ => Queued { due, added: false },
        };
        if !queued.added && queued.due <= now {
            queued.added = true;
            self.adds += 1;
        }
        item.queued = Some(queued);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn all(_: &&str) -> bool {
        true
    }

    #[test]
    fn depth_counts_only_keys_that_fell_due() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.request("a", t0);
        q.requeue("b", t0, 10 * S);
        let s = q.sample(t0, all);
        assert_eq!((s.depth, s.adds), (1, 1), "b waits outside the depth");
        let s = q.sample(t0 + 9 * S, all);
        assert_eq!((s.depth, s.adds), (1, 1));
        let s = q.sample(t0 + 10 * S, all);
        assert_eq!(
            (s.depth, s.adds),
            (2, 2),
            "b joins the depth and the adds when due"
        );
        let s = q.sample(t0 + 11 * S, all);
        assert_eq!((s.depth, s.adds), (2, 2), "an add is counted once");
    }

    #[test]
    fn the_sooner_due_time_wins_and_a_key_holds_one_slot() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.requeue("a", t0, 600 * S);
        q.request("a", t0 + S);
        let s = q.sample(t0 + S, all);
        assert_eq!((s.depth, s.adds), (1, 1));
        // A later requeue keeps the earlier due time, and the wait counts from it.
        q.requeue("a", t0 + 2 * S, 600 * S);
        let s = q.sample(t0 + 3 * S, all);
        assert_eq!((s.depth, s.adds), (1, 1), "no second slot, no second add");
        assert_eq!(q.start("a", t0 + 4 * S), Some(3 * S));
        let s = q.sample(t0 + 700 * S, all);
        assert_eq!(s.depth, 0, "the merged requeue is gone");
    }

    #[test]
    fn a_request_for_a_queued_key_does_not_add_again() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.request("a", t0);
        q.request("a", t0 + S);
        assert_eq!(
            q.start("a", t0 + 2 * S),
            Some(2 * S),
            "waited since the first"
        );
        assert_eq!(q.sample(t0 + 2 * S, all).adds, 1);
    }

    #[test]
    fn queue_and_work_durations_and_running_gauges() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.request("a", t0);
        q.request("b", t0);
        assert_eq!(q.start("a", t0 + 2 * S), Some(2 * S));
        assert_eq!(q.start("b", t0 + 3 * S), Some(3 * S));
        let s = q.sample(t0 + 5 * S, all);
        assert_eq!(s.depth, 0);
        assert_eq!(s.active_workers, 2);
        assert!((s.unfinished_work_seconds - 5.0).abs() < 1e-9, "3 s + 2 s");
        assert!((s.longest_running_processor_seconds - 3.0).abs() < 1e-9);
        assert_eq!(q.finish(&"a", t0 + 6 * S), Some(4 * S));
        assert_eq!(q.finish(&"a", t0 + 6 * S), None, "finished once");
        let s = q.sample(t0 + 6 * S, all);
        assert_eq!(s.active_workers, 1);
        assert!((s.longest_running_processor_seconds - 3.0).abs() < 1e-9);
        assert_eq!(q.finish(&"b", t0 + 7 * S), Some(4 * S));
        let s = q.sample(t0 + 7 * S, all);
        assert_eq!(s.active_workers, 0);
        assert_eq!(s.unfinished_work_seconds, 0.0);
        assert_eq!(s.longest_running_processor_seconds, 0.0);
        assert_eq!(s.adds, 2);
    }

    #[test]
    fn a_key_queued_while_running_is_in_the_depth_and_waits_for_the_worker() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.request("a", t0);
        q.start("a", t0);
        q.request("a", t0 + S);
        let s = q.sample(t0 + 2 * S, all);
        assert_eq!((s.depth, s.active_workers, s.adds), (1, 1, 2));
        // It ends with a requeue after its interval; the pending request is sooner.
        q.requeue("a", t0 + 3 * S, 600 * S);
        assert_eq!(q.finish(&"a", t0 + 3 * S), Some(3 * S));
        assert_eq!(q.start("a", t0 + 3 * S), Some(2 * S));
        assert_eq!(q.sample(t0 + 3 * S, all).depth, 0);
    }

    #[test]
    fn every_requeue_is_a_retry_and_a_watch_event_is_not() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.request("a", t0);
        q.start("a", t0);
        q.requeue("a", t0 + S, Duration::ZERO);
        q.finish(&"a", t0 + S);
        q.start("a", t0 + S);
        q.requeue("a", t0 + 2 * S, 600 * S);
        q.finish(&"a", t0 + 2 * S);
        let s = q.sample(t0 + 2 * S, all);
        assert_eq!((s.retries, s.adds, s.depth), (2, 2, 0));
    }

    #[test]
    fn a_start_without_a_seen_request_still_counts_one_add() {
        let q = Queue::new();
        let t0 = Instant::now();
        assert_eq!(q.start("a", t0), None);
        assert_eq!(q.finish(&"a", t0 + S), Some(S));
        assert_eq!(q.sample(t0 + S, all).adds, 1);
        assert_eq!(q.finish(&"b", t0 + S), None, "never started");
    }

    #[test]
    fn keys_absent_from_the_store_are_pruned_but_running_ones_finish() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.request("gone", t0);
        q.requeue("later", t0, 60 * S);
        q.request("kept", t0);
        q.request("running", t0);
        q.start("running", t0);
        let present = |k: &&str| *k == "kept";
        let s = q.sample(t0 + 120 * S, present);
        assert_eq!(s.depth, 1, "only kept");
        assert_eq!(s.active_workers, 1, "a running reconcile is not cut short");
        assert_eq!(s.adds, 3, "added at once; later never fell due");
        assert_eq!(q.finish(&"running", t0 + 121 * S), Some(121 * S));
        assert_eq!(q.state.lock().unwrap().items.len(), 1, "nothing leaks");
        let s = q.sample(t0 + 122 * S, |_: &&str| false);
        assert_eq!((s.depth, s.active_workers), (0, 0));
        assert!(q.state.lock().unwrap().items.is_empty());
    }

    #[test]
    fn a_requeue_far_in_the_future_does_not_overflow() {
        let q = Queue::new();
        let t0 = Instant::now();
        q.requeue("a", t0, Duration::MAX);
        let s = q.sample(t0 + 600 * S, all);
        assert_eq!((s.depth, s.retries), (0, 1), "never due");
    }
}
