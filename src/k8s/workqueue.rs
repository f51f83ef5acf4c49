//! The controller's work queue: what is due is served first in, first out.
//!
//! kube-runtime's runner, once all its workers are busy, parks whatever falls due in a hash set
//! and takes the next request from it in hash order. With many objects and short intervals the
//! queue never empties, and an object whose key hashes late waits until it does: at 10,000
//! objects on a 60 s interval, the last new object was first reconciled after 34 minutes while
//! the others had been reconciled every minute (docs/benchmarks.md, section (j)). client-go's
//! work queue, which Flux's controllers use, is first in, first out.
//!
//! So the controller keeps its own queue and hands kube at most `concurrency` keys at a time:
//! kube's runner then always has a free worker and never reorders. Like client-go's queue a key
//! is queued once ([`WorkQueue::add`] of a queued key does nothing), a key added while it runs
//! is queued again when it is done, and [`WorkQueue::add_after`] waits until the key falls due;
//! like kube's scheduler the sooner of two due times wins.
//!
//! The queue also counts what controller-runtime's `workqueue_*` metrics report
//! ([`WorkQueue::sample`], [`WorkQueue::started`], [`WorkQueue::done`]), as client-go's queue
//! does: a key joins the depth and the adds when it falls due (a delayed key not before), a key
//! added while it runs is part of the depth, and every delayed add is a retry.
//!
//! Each key is held once (one `Arc` shared by its slot, the due list and its timer): the queue
//! keeps a slot for every object waiting for its next interval.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::Stream;
use tokio::time::{Instant, Sleep};

use crate::metrics::QueueSample;

/// A first-in, first-out work queue with delayed adds and a bound on keys out at once.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    concurrency: usize,
}

#[derive(Debug)]
struct State<K> {
    // Every key the queue knows: queued, running or waiting for a due time.
    slots: HashMap<Arc<K>, Slot>,
    // Due keys not running, oldest first; their slots are `queued`.
    ready: VecDeque<Arc<K>>,
    timers: BinaryHeap<Reverse<Timer<K>>>,
    next_seq: u64,
    // Keys handed out and not yet done, and those of them queued again meanwhile.
    running: usize,
    again: usize,
    adds: u64,
    retries: u64,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct Slot {
    // Fell due at this instant and waits for a worker (behind its own work, if running).
    queued: Option<Instant>,
    // Waits for a due time: the due time and the sequence number of its live timer.
    waiting: Option<(Instant, u64)>,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    since: Instant,
    // How long it was queued, until `started` takes it.
    waited: Option<Duration>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.queued.is_none() && self.waiting.is_none() && self.running.is_none()
    }
}

#[derive(Debug)]
struct Timer<K> {
    due: Instant,
    seq: u64,
    key: Arc<K>,
}

impl<K> PartialEq for Timer<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<K> Eq for Timer<K> {}

impl<K> PartialOrd for Timer<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Timer<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// An empty queue handing out at most `concurrency` keys at a time (at least one).
    pub fn new(concurrency: usize) -> WorkQueue<K> {
        WorkQueue {
            state: Mutex::new(State {
                slots: HashMap::new(),
                ready: VecDeque::new(),
                timers: BinaryHeap::new(),
                next_seq: 0,
                running: 0,
                again: 0,
                adds: 0,
                retries: 0,
                waker: None,
            }),
            concurrency: concurrency.max(1),
        }
    }

    /// Queues `key` now, behind every key already due (a queued key keeps its place).
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        let now = Instant::now();
        // Keys that fell due before now go first.
        state.fall_due(now);
        let key = state.intern(key);
        state.add(key, now);
        state.wake();
    }

    /// Queues `key` once `after` has passed, unless it is queued, or waits for a sooner time,
    /// already. Counts a retry, as every requeue does in controller-runtime.
    pub fn add_after(&self, key: K, after: Duration) {
        let mut state = self.lock();
        state.retries += 1;
        let now = Instant::now();
        // A due time beyond the clock's range never comes.
        let Some(due) = now.checked_add(after) else {
            return;
        };
        if due <= now {
            state.fall_due(now);
            let key = state.intern(key);
            state.add(key, now);
        } else if state.slots.get(&key).is_some_and(|slot| {
            slot.queued.is_some() || slot.waiting.is_some_and(|(d, _)| d <= due)
        }) {
            return;
        } else {
            let seq = state.next_seq;
            state.next_seq += 1;
            let key = state.intern(key);
            if let Some(slot) = state.slots.get_mut(&key) {
                slot.waiting = Some((due, seq));
            }
            state.timers.push(Reverse(Timer { due, seq, key }));
        }
        // A sooner timer: the stream sleeps until the earliest.
        state.wake();
    }

    /// The work on `key` begins: how long it was queued, once per hand-out.
    pub fn started(&self, key: &K) -> Option<Duration> {
        let mut state = self.lock();
        state.slots.get_mut(key)?.running.as_mut()?.waited.take()
    }

    /// The work on `key` is over: its worker is free, and a key added meanwhile is queued.
    /// Returns how long it ran.
    pub fn done(&self, key: &K) -> Option<Duration> {
        let mut state = self.lock();
        let now = Instant::now();
        let (key, slot) = state.slots.get_key_value(key)?;
        let key = key.clone();
        let since = slot.running.as_ref()?.since;
        let again = slot.queued.is_some();
        if again {
            // Behind the keys that fell due while it ran.
            state.fall_due(now);
        }
        let State {
            slots,
            ready,
            running,
            again: queued_again,
            ..
        } = &mut *state;
        if let Some(slot) = slots.get_mut(&key) {
            slot.running = None;
            if again {
                *queued_again -= 1;
                ready.push_back(key.clone());
            } else if slot.is_empty() {
                slots.remove(&key);
            }
        }
        *running -= 1;
        state.wake();
        Some(now.saturating_duration_since(since))
    }

    /// The queue's gauges and counters now.
    pub fn sample(&self) -> QueueSample {
        let mut state = self.lock();
        let now = Instant::now();
        state.fall_due(now);
        let mut sample = QueueSample {
            depth: i64::try_from(state.ready.len() + state.again).unwrap_or(i64::MAX),
            adds: state.adds,
            retries: state.retries,
            active_workers: i64::try_from(state.running).unwrap_or(i64::MAX),
            ..QueueSample::default()
        };
        if state.running > 0 {
            for running in state.slots.values().filter_map(|s| s.running.as_ref()) {
                let age = now.saturating_duration_since(running.since).as_secs_f64();
                sample.unfinished_work_seconds += age;
                sample.longest_running_processor_seconds =
                    sample.longest_running_processor_seconds.max(age);
            }
        }
        sample
    }

    #[cfg(test)]
    /// Keys due now or running, and keys waiting for a due time.
    pub fn len(&self) -> (usize, usize) {
        let state = self.lock();
        let waiting = state.slots.values().filter(|s| s.waiting.is_some()).count();
        (state.ready.len() + state.running, waiting)
    }

    #[cfg(test)]
    /// Whether nothing is queued, running or waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().slots.is_empty()
    }

    /// The keys to work on, in the order they fell due, at most `concurrency` out at once
    /// (until [`WorkQueue::done`]); never ends.
    pub fn stream(self: Arc<Self>) -> impl Stream<Item = K> + Send + 'static
    where
        K: Send + Sync + 'static,
    {
        let mut sleep: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(Instant::now()));
        futures::stream::poll_fn(move |cx| self.poll_next(cx, &mut sleep))
    }

    fn poll_next(&self, cx: &mut Context<'_>, sleep: &mut Pin<Box<Sleep>>) -> Poll<Option<K>> {
        loop {
            let mut state = self.lock();
            let now = Instant::now();
            state.fall_due(now);
            while state.running < self.concurrency
                && let Some(key) = state.ready.pop_front()
            {
                let Some(slot) = state.slots.get_mut(&key) else {
                    continue;
                };
                let Some(since) = slot.queued.take() else {
                    continue;
                };
                slot.running = Some(Running {
                    since: now,
                    waited: Some(now.saturating_duration_since(since)),
                });
                state.running += 1;
                return Poll::Ready(Some(K::clone(&key)));
            }
            state.waker = Some(cx.waker().clone());
            let Some(Reverse(next)) = state.timers.peek() else {
                return Poll::Pending;
            };
            let due = next.due;
            drop(state);
            if sleep.deadline() != due {
                sleep.as_mut().reset(due);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Eq + Hash> State<K> {
    // The queue's one copy of `key`, with a slot.
    fn intern(&mut self, key: K) -> Arc<K> {
        if let Some((held, _)) = self.slots.get_key_value(&key) {
            return held.clone();
        }
        let key = Arc::new(key);
        self.slots.insert(key.clone(), Slot::default());
        key
    }

    // Queues an interned key that is due at `now`.
    fn add(&mut self, key: Arc<K>, now: Instant) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        // Now is sooner than any due time it waited for.
        slot.waiting = None;
        if slot.queued.is_some() {
            return;
        }
        slot.queued = Some(now);
        self.adds += 1;
        if slot.running.is_some() {
            self.again += 1;
        } else {
            self.ready.push_back(key);
        }
    }

    fn fall_due(&mut self, now: Instant) {
        while let Some(Reverse(timer)) = self.timers.peek()
            && timer.due <= now
        {
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            // A timer replaced by a sooner one, or by an add, is stale.
            if self
                .slots
                .get(&timer.key)
                .and_then(|slot| slot.waiting)
                .is_some_and(|(_, seq)| seq == timer.seq)
            {
                // It fell due at its due time, which is what its queue wait counts from.
                self.add(timer.key, timer.due);
            }
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use futures::task::noop_waker;

    use super::*;

    // What the stream hands out now, without waiting.
    fn ready<K>(stream: &mut Pin<Box<impl Stream<Item = K>>>) -> Vec<K> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(key)) = stream.as_mut().poll_next(&mut cx) {
            out.push(key);
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn serves_in_the_order_keys_fell_due() {
        let q = Arc::new(WorkQueue::new(10));
        let mut s = Box::pin(q.clone().stream());
        q.add_after("late", Duration::from_secs(2));
        q.add_after("early", Duration::from_secs(1));
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(ready(&mut s), ["a", "b"], "a queued key keeps its place");
        tokio::time::advance(Duration::from_millis(1500)).await;
        q.add("c");
        assert_eq!(ready(&mut s), ["early", "c"]);
        assert_eq!(
            s.next().await,
            Some("late"),
            "the stream wakes at the due time"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn hands_out_at_most_concurrency_keys() {
        let q = Arc::new(WorkQueue::new(2));
        let mut s = Box::pin(q.clone().stream());
        for key in ["a", "b", "c", "d"] {
            q.add(key);
        }
        assert_eq!(ready(&mut s), ["a", "b"]);
        q.done(&"b");
        assert_eq!(ready(&mut s), ["c"]);
        q.done(&"a");
        q.done(&"c");
        assert_eq!(ready(&mut s), ["d"]);
        assert_eq!(q.len(), (1, 0));
        q.done(&"d");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_it_runs_comes_back_when_done_behind_others() {
        let q = Arc::new(WorkQueue::new(1));
        let mut s = Box::pin(q.clone().stream());
        q.add("a");
        assert_eq!(ready(&mut s), ["a"]);
        q.add("a");
        q.add("b");
        assert_eq!(ready(&mut s), Vec::<&str>::new(), "one worker, busy");
        q.done(&"a");
        assert_eq!(ready(&mut s), ["b"]);
        q.done(&"b");
        assert_eq!(ready(&mut s), ["a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sooner_due_time_wins() {
        let q = Arc::new(WorkQueue::new(10));
        let mut s = Box::pin(q.clone().stream());
        q.add_after("a", Duration::from_secs(10));
        q.add_after("a", Duration::from_secs(1));
        q.add_after("a", Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(ready(&mut s), ["a"]);
        q.done(&"a");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            ready(&mut s),
            Vec::<&str>::new(),
            "the later timers are stale"
        );
        assert!(q.is_empty());

        q.add_after("b", Duration::from_secs(1));
        q.add("b");
        assert_eq!(ready(&mut s), ["b"], "an add is sooner than any due time");
        q.done(&"b");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(ready(&mut s), Vec::<&str>::new());
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeue_during_the_work_waits_for_its_time() {
        let q = Arc::new(WorkQueue::new(1));
        let mut s = Box::pin(q.clone().stream());
        q.add("a");
        assert_eq!(ready(&mut s), ["a"]);
        // What a reconcile does at its end: ask for the next interval, then finish.
        q.add_after("a", Duration::from_secs(60));
        q.done(&"a");
        assert_eq!(ready(&mut s), Vec::<&str>::new());
        assert_eq!(q.len(), (0, 1));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(ready(&mut s), ["a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn due_keys_are_not_overtaken_by_later_ones_under_load() {
        // The case kube's runner gets wrong: the workers are never idle, keys keep falling
        // due, and the oldest due key must still come next.
        let q = Arc::new(WorkQueue::new(2));
        let mut s = Box::pin(q.clone().stream());
        let first: Vec<String> = (0..100).map(|i| format!("new-{i}")).collect();
        let first: Vec<&'static str> = first.into_iter().map(|k| &*k.leak()).collect();
        for key in &first {
            q.add(*key);
        }
        let mut served = Vec::new();
        let mut round = 0;
        while served.len() < first.len() {
            for key in ready(&mut s) {
                served.push(key);
                // Each served key falls due again a moment later, as a short interval would.
                q.add_after(key, Duration::from_millis(1));
                q.done(&key);
            }
            tokio::time::advance(Duration::from_millis(1)).await;
            round += 1;
            assert!(round < 1000);
        }
        assert_eq!(served, first, "all first reconciles before any second");
    }

    const S: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn depth_and_adds_count_keys_once_they_fall_due() {
        let q = Arc::new(WorkQueue::new(10));
        q.add("a");
        q.add_after("b", 10 * S);
        let s = q.sample();
        assert_eq!(
            (s.depth, s.adds, s.retries),
            (1, 1, 1),
            "b waits outside the depth"
        );
        tokio::time::advance(9 * S).await;
        assert_eq!((q.sample().depth, q.sample().adds), (1, 1));
        tokio::time::advance(S).await;
        let s = q.sample();
        assert_eq!((s.depth, s.adds), (2, 2), "b joins when due");
        tokio::time::advance(S).await;
        q.add("b");
        let s = q.sample();
        assert_eq!((s.depth, s.adds), (2, 2), "a queued key is added once");
    }

    #[tokio::test(start_paused = true)]
    async fn queue_and_work_durations_and_running_gauges() {
        let q = Arc::new(WorkQueue::new(10));
        let mut s = Box::pin(q.clone().stream());
        q.add("a");
        q.add_after("b", S);
        tokio::time::advance(2 * S).await;
        assert_eq!(ready(&mut s), ["a", "b"]);
        assert_eq!(q.started(&"a"), Some(2 * S), "queued since its add");
        assert_eq!(q.started(&"b"), Some(S), "queued since its due time");
        assert_eq!(q.started(&"b"), None, "once per hand-out");
        tokio::time::advance(3 * S).await;
        let sample = q.sample();
        assert_eq!((sample.depth, sample.active_workers), (0, 2));
        assert!(
            (sample.unfinished_work_seconds - 6.0).abs() < 1e-9,
            "3 s + 3 s"
        );
        assert!((sample.longest_running_processor_seconds - 3.0).abs() < 1e-9);
        assert_eq!(q.done(&"a"), Some(3 * S));
        assert_eq!(q.done(&"a"), None, "done once");
        tokio::time::advance(S).await;
        assert_eq!(q.done(&"b"), Some(4 * S));
        let sample = q.sample();
        assert_eq!(sample.active_workers, 0);
        assert_eq!(sample.unfinished_work_seconds, 0.0);
        assert_eq!(sample.longest_running_processor_seconds, 0.0);
        assert_eq!((sample.adds, sample.retries), (2, 1));
        assert!(q.is_empty(), "nothing is kept for a finished key");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_it_runs_is_in_the_depth_and_its_wait_counts_from_the_add() {
        let q = Arc::new(WorkQueue::new(10));
        let mut s = Box::pin(q.clone().stream());
        q.add("a");
        assert_eq!(ready(&mut s), ["a"]);
        tokio::time::advance(S).await;
        q.add("a");
        let sample = q.sample();
        assert_eq!(
            (sample.depth, sample.active_workers, sample.adds),
            (1, 1, 2)
        );
        // It ends with a requeue after its interval; the pending add is sooner.
        tokio::time::advance(S).await;
        q.add_after("a", 600 * S);
        assert_eq!(q.done(&"a"), Some(2 * S));
        assert_eq!(ready(&mut s), ["a"]);
        assert_eq!(q.started(&"a"), Some(S));
        q.done(&"a");
        assert_eq!(q.sample().depth, 0);
        tokio::time::advance(600 * S).await;
        assert_eq!(
            ready(&mut s),
            Vec::<&str>::new(),
            "the requeue merged into the add"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_requeue_keeps_the_earlier_slot_and_a_far_one_never_comes() {
        let q = Arc::new(WorkQueue::new(10));
        q.add_after("a", 10 * S);
        q.add_after("a", 600 * S);
        tokio::time::advance(10 * S).await;
        let s = q.sample();
        assert_eq!((s.depth, s.adds, s.retries), (1, 1, 2), "one slot, one add");
        q.add_after("b", Duration::MAX);
        tokio::time::advance(3600 * S).await;
        let s = q.sample();
        assert_eq!((s.depth, s.retries), (1, 3), "b is never due");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_done_without_its_work_leaves_nothing_behind() {
        // A key whose object left the store: kube reports it and the controller calls `done`.
        let q = Arc::new(WorkQueue::new(10));
        let mut s = Box::pin(q.clone().stream());
        q.add("gone");
        assert_eq!(ready(&mut s), ["gone"]);
        assert!(q.done(&"gone").is_some());
        assert!(q.is_empty());
        assert_eq!(q.done(&"never"), None, "never handed out");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn one_copy_of_each_key() {
        let q = Arc::new(WorkQueue::new(10));
        let mut s = Box::pin(q.clone().stream());
        q.add(String::from("a"));
        assert_eq!(ready(&mut s), ["a"]);
        q.add_after(String::from("a"), 60 * S);
        q.add_after(String::from("a"), 30 * S);
        q.done(&String::from("a"));
        let state = q.lock();
        let (held, _) = state
            .slots
            .get_key_value(&String::from("a"))
            .expect("a waits");
        assert_eq!(Arc::strong_count(held), 3, "its slot and its two timers");
        assert!(
            state
                .timers
                .iter()
                .all(|Reverse(t)| Arc::ptr_eq(&t.key, held))
        );
    }
}
