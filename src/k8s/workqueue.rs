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

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use tokio::time::{Instant, Sleep};

/// A first-in, first-out work queue with delayed adds and a bound on keys out at once.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    concurrency: usize,
}

#[derive(Debug)]
struct State<K> {
    // Due keys, oldest first; `queued` holds the same keys.
    ready: VecDeque<K>,
    queued: HashSet<K>,
    // Keys handed out and not yet done; `again` those added meanwhile.
    running: HashSet<K>,
    again: HashSet<K>,
    // Keys waiting for a due time: the sequence number of their live timer.
    waiting: HashMap<K, (Instant, u64)>,
    timers: BinaryHeap<Reverse<Timer<K>>>,
    next_seq: u64,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Timer<K> {
    due: Instant,
    seq: u64,
    key: K,
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
                ready: VecDeque::new(),
                queued: HashSet::new(),
                running: HashSet::new(),
                again: HashSet::new(),
                waiting: HashMap::new(),
                timers: BinaryHeap::new(),
                next_seq: 0,
                waker: None,
            }),
            concurrency: concurrency.max(1),
        }
    }

    /// Queues `key` now, behind every key already due (a queued key keeps its place).
    pub fn add(&self, key: K) {
        let mut state = self.lock();
        // Keys that fell due before now go first.
        state.fall_due(Instant::now());
        state.add(key);
        state.wake();
    }

    /// Queues `key` at `due`, unless it is queued, or waits for a sooner time, already.
    pub fn add_after(&self, key: K, due: Instant) {
        let mut state = self.lock();
        let now = Instant::now();
        if due <= now {
            state.fall_due(now);
            state.add(key);
        } else if state.queued.contains(&key)
            || state.waiting.get(&key).is_some_and(|(d, _)| *d <= due)
        {
            return;
        } else {
            let seq = state.next_seq;
            state.next_seq += 1;
            state.waiting.insert(key.clone(), (due, seq));
            state.timers.push(Reverse(Timer { due, seq, key }));
        }
        // A sooner timer: the stream sleeps until the earliest.
        state.wake();
    }

    /// The work on `key` is over: its worker is free, and a key added meanwhile is queued.
    pub fn done(&self, key: &K) {
        let mut state = self.lock();
        if state.running.remove(key) {
            if state.again.remove(key) {
                state.fall_due(Instant::now());
                state.add(key.clone());
            }
            state.wake();
        }
    }

    #[cfg(test)]
    /// Keys due now or running, and keys waiting for a due time.
    pub fn len(&self) -> (usize, usize) {
        let state = self.lock();
        (state.ready.len() + state.running.len(), state.waiting.len())
    }

    #[cfg(test)]
    /// Whether nothing is queued, running or waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// The keys to work on, in the order they fell due, at most `concurrency` out at once
    /// (until [`WorkQueue::done`]); never ends.
    pub fn stream(self: Arc<Self>) -> impl Stream<Item = K> + Send + 'static
    where
        K: Send + 'static,
    {
        let mut sleep: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(Instant::now()));
        futures::stream::poll_fn(move |cx| self.poll_next(cx, &mut sleep))
    }

    fn poll_next(&self, cx: &mut Context<'_>, sleep: &mut Pin<Box<Sleep>>) -> Poll<Option<K>> {
        loop {
            let mut state = self.lock();
            state.fall_due(Instant::now());
            if state.running.len() < self.concurrency
                && let Some(key) = state.ready.pop_front()
            {
                state.queued.remove(&key);
                state.running.insert(key.clone());
                return Poll::Ready(Some(key));
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

impl<K: Clone + Eq + Hash> State<K> {
    fn add(&mut self, key: K) {
        // Now is sooner than any due time it waited for.
        self.waiting.remove(&key);
        if self.running.contains(&key) {
            self.again.insert(key);
        } else if self.queued.insert(key.clone()) {
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
                .waiting
                .get(&timer.key)
                .is_some_and(|(_, s)| *s == timer.seq)
            {
                self.add(timer.key);
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
    use std::time::Duration;

    use futures::StreamExt;
    use futures::task::noop_waker;

    use super::*;

    // What the stream hands out now, without waiting.
    fn ready(stream: &mut Pin<Box<impl Stream<Item = &'static str>>>) -> Vec<&'static str> {
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
        q.add_after("late", Instant::now() + Duration::from_secs(2));
        q.add_after("early", Instant::now() + Duration::from_secs(1));
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
        q.add_after("a", Instant::now() + Duration::from_secs(10));
        q.add_after("a", Instant::now() + Duration::from_secs(1));
        q.add_after("a", Instant::now() + Duration::from_secs(5));
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

        q.add_after("b", Instant::now() + Duration::from_secs(1));
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
        q.add_after("a", Instant::now() + Duration::from_secs(60));
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
                q.add_after(key, Instant::now() + Duration::from_millis(1));
                q.done(&key);
            }
            tokio::time::advance(Duration::from_millis(1)).await;
            round += 1;
            assert!(round < 1000);
        }
        assert_eq!(served, first, "all first reconciles before any second");
    }
}
