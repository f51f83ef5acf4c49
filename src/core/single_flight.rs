//! The bounded, process-wide store of answers behind every cache that lets objects share work:
//! the registry's answers ([`super::resolution_cache`]) and signature verifications
//! ([`super::verification_cache`]).
//!
//! An answer is kept under a key (a hash of everything that can change it) and shared with
//! later askers while it is young enough for them. Askers that come while the answer is being
//! asked for wait for that one request instead of repeating it (single flight). Failures are
//! never kept: when the request in flight fails (or its asker gives up), each waiter asks
//! itself and gets its own error, so an outage costs what it costs without sharing. A waiter
//! never waits past its own deadline. At most `capacity` keys are held; the oldest is forgotten
//! first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// What an answer is kept under: a hash of everything that can change it.
pub type Key = [u8; 32];

/// Whether an answer was asked for by this caller or shared with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This caller's own request produced it.
    Asked,
    /// Another caller's request produced it.
    Shared,
}

/// Bounded answers of type `V` shared between askers, with single flight.
#[derive(Debug)]
pub struct SingleFlight<V> {
    capacity: usize,
    entries: Mutex<Entries<V>>,
    runs: AtomicU64,
    shared: AtomicU64,
}

#[derive(Debug)]
struct Entries<V> {
    by_key: HashMap<Key, Entry<V>>,
    order: VecDeque<Key>,
}

#[derive(Debug)]
struct Entry<V> {
    /// The newest answer and when it arrived.
    answer: Option<(V, Instant)>,
    /// The request in flight, if any: its sender is dropped when it ends.
    flight: Option<watch::Receiver<()>>,
}

enum Look<V> {
    Answer(V),
    Lead(watch::Sender<()>),
    Wait(watch::Receiver<()>),
}

impl<V: Clone> SingleFlight<V> {
    /// An empty store holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> SingleFlight<V> {
        SingleFlight {
            capacity: capacity.max(1),
            entries: Mutex::new(Entries {
                by_key: HashMap::new(),
                order: VecDeque::new(),
            }),
            runs: AtomicU64::new(0),
            shared: AtomicU64::new(0),
        }
    }

    /// Requests that ran (asked by their caller).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Answers shared with a caller that did not ask for them.
    pub fn shared(&self) -> u64 {
        self.shared.load(Ordering::Relaxed)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the answer kept for `key`, if any (a request in flight goes on); the next asker
    /// asks anew.
    pub fn forget(&self, key: &Key) {
        if let Some(entry) = self.lock().by_key.get_mut(key) {
            entry.answer = None;
        }
    }

    /// Runs `ask` without sharing anything: counted as a run, its answer not kept.
    pub async fn ask_unshared<F, Fut, E>(&self, ask: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.runs.fetch_add(1, Ordering::Relaxed);
        ask().await
    }

    /// The answer for `key`: a kept one younger than `max_age` (zero: never; `Duration::MAX`:
    /// any), the one being asked for (waited for until `deadline` at most), or `ask`'s, which is
    /// then kept for the others. Errors are the caller's own and never kept.
    pub async fn get_or_ask<F, Fut, E>(
        &self,
        key: Key,
        max_age: Duration,
        deadline: Option<Instant>,
        ask: F,
    ) -> Result<(V, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if max_age.is_zero() {
            return self.ask_alone(key, ask).await;
        }
        let mut waiting = match self.look(key, max_age) {
            Look::Answer(answer) => {
                self.shared.fetch_add(1, Ordering::Relaxed);
                return Ok((answer, Source::Shared));
            }
            Look::Lead(sender) => return self.lead(key, sender, ask).await,
            Look::Wait(receiver) => receiver,
        };
        let ended = waiting.changed();
        // Past its own deadline the asker goes on alone (its own request then fails at once).
        match deadline {
            Some(d) => {
                let _ = tokio::time::timeout_at(d, ended).await;
            }
            None => {
                let _ = ended.await;
            }
        }
        if let Some(answer) = self.young(key, max_age) {
            self.shared.fetch_add(1, Ordering::Relaxed);
            return Ok((answer, Source::Shared));
        }
        // The request in flight failed or was given up: this asker's own request, its own error.
        self.ask_alone(key, ask).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        // A panic while holding the lock leaves consistent data (no multi-step update).
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks without joining or starting a flight; keeps the answer for the others.
    async fn ask_alone<F, Fut, E>(&self, key: Key, ask: F) -> Result<(V, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let answer = ask().await?;
        self.keep(key, &answer);
        Ok((answer, Source::Asked))
    }

    /// Asks as the flight's leader: the waiters learn that it ended when `sender` drops.
    async fn lead<F, Fut, E>(
        &self,
        key: Key,
        sender: watch::Sender<()>,
        ask: F,
    ) -> Result<(V, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.runs.fetch_add(1, Ordering::Relaxed);
        // Ends the flight however the request ends, cancellation included.
        let _flight = Flight {
            store: self,
            key,
            sender,
        };
        let answer = ask().await?;
        self.keep(key, &answer);
        Ok((answer, Source::Asked))
    }

    fn young(&self, key: Key, max_age: Duration) -> Option<V> {
        let entries = self.lock();
        let (answer, at) = entries.by_key.get(&key)?.answer.as_ref()?;
        (at.elapsed() < max_age).then(|| answer.clone())
    }

    fn look(&self, key: Key, max_age: Duration) -> Look<V> {
        let mut entries = self.lock();
        if let Some(entry) = entries.by_key.get_mut(&key) {
            if let Some((answer, at)) = &entry.answer
                && at.elapsed() < max_age
            {
                return Look::Answer(answer.clone());
            }
            if let Some(flight) = &entry.flight
                && flight.has_changed().is_ok()
            {
                return Look::Wait(flight.clone());
            }
            let (sender, receiver) = watch::channel(());
            entry.flight = Some(receiver);
            return Look::Lead(sender);
        }
        let (sender, receiver) = watch::channel(());
        self.insert(
            &mut entries,
            key,
            Entry {
                answer: None,
                flight: Some(receiver),
            },
        );
        Look::Lead(sender)
    }

    fn keep(&self, key: Key, answer: &V) {
        let mut entries = self.lock();
        let now = Instant::now();
        if let Some(entry) = entries.by_key.get_mut(&key) {
            entry.answer = Some((answer.clone(), now));
            return;
        }
        self.insert(
            &mut entries,
            key,
            Entry {
                answer: Some((answer.clone(), now)),
                flight: None,
            },
        );
    }

    /// Inserts a new key, forgetting the oldest ones beyond the capacity.
    fn insert(&self, entries: &mut Entries<V>, key: Key, entry: Entry<V>) {
        while entries.by_key.len() >= self.capacity {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
        entries.by_key.insert(key, entry);
        entries.order.push_back(key);
    }
}

/// A request in flight; dropping it tells the waiters that it ended.
struct Flight<'a, V: Clone> {
    store: &'a SingleFlight<V>,
    key: Key,
    sender: watch::Sender<()>,
}

impl<V: Clone> Drop for Flight<'_, V> {
    fn drop(&mut self) {
        let mut entries = self.store.lock();
        if let Some(entry) = entries.by_key.get_mut(&self.key)
            && entry
                .flight
                .as_ref()
                .is_some_and(|r| r.same_channel(&self.sender.subscribe()))
        {
            entry.flight = None;
        }
        // The sender drops after the entry is updated: a woken waiter finds the answer.
    }
}

/// A counting backend for the tests of the caches built on [`SingleFlight`].
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts its calls and answers `content` (or fails) after `pause`.
    pub(crate) struct Backend {
        calls: AtomicUsize,
        /// While set, requests fail.
        pub(crate) fail: AtomicBool,
        pause: Duration,
    }

    impl Backend {
        pub(crate) fn new(pause: Duration) -> Backend {
            Backend {
                calls: AtomicUsize::new(0),
                fail: AtomicBool::new(false),
                pause,
            }
        }

        pub(crate) fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }

        pub(crate) async fn ask(&self, content: &str) -> Result<String, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.pause).await;
            if self.fail.load(Ordering::SeqCst) {
                Err(format!("failure {}", self.calls()))
            } else {
                Ok(content.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Backend;
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn key(name: &str) -> Key {
        let mut k = [0u8; 32];
        k[..name.len()].copy_from_slice(name.as_bytes());
        k
    }

    async fn ask(
        store: &SingleFlight<String>,
        backend: &Backend,
        key: Key,
        max_age: Duration,
        content: &str,
    ) -> Result<String, String> {
        store
            .get_or_ask(key, max_age, None, || backend.ask(content))
            .await
            .map(|(answer, _)| answer)
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_shared_while_younger_than_the_askers_max_age() {
        let store = SingleFlight::new(16);
        let backend = Backend::new(Duration::ZERO);
        let got = store
            .get_or_ask(key("a"), MINUTE, None, || backend.ask("one"))
            .await;
        assert_eq!(got, Ok(("one".to_string(), Source::Asked)));

        tokio::time::advance(Duration::from_secs(10)).await;
        let got = store
            .get_or_ask(key("a"), MINUTE, None, || backend.ask("two"))
            .await;
        assert_eq!(got, Ok(("one".to_string(), Source::Shared)));
        // Too old for this asker: asked again, and the new answer is the one kept.
        let got = ask(&store, &backend, key("a"), Duration::from_secs(5), "two").await;
        assert_eq!(got.as_deref(), Ok("two"));
        let got = ask(&store, &backend, key("a"), MINUTE, "three").await;
        assert_eq!(got.as_deref(), Ok("two"));
        // Another key is another question.
        let got = ask(&store, &backend, key("b"), MINUTE, "three").await;
        assert_eq!(got.as_deref(), Ok("three"));
        assert_eq!((backend.calls(), store.runs(), store.shared()), (3, 3, 2));

        // A zero age asks and still serves the others; Duration::MAX takes any age.
        let got = ask(&store, &backend, key("a"), Duration::ZERO, "four").await;
        assert_eq!(got.as_deref(), Ok("four"));
        tokio::time::advance(100 * MINUTE).await;
        let got = ask(&store, &backend, key("a"), Duration::MAX, "five").await;
        assert_eq!(got.as_deref(), Ok("four"));
        assert_eq!(backend.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unshared_request_is_counted_and_never_kept() {
        let store = SingleFlight::new(16);
        let backend = Backend::new(Duration::ZERO);
        for _ in 0..3 {
            let got = store.ask_unshared(|| backend.ask("one")).await;
            assert_eq!(got.as_deref(), Ok("one"));
        }
        assert_eq!((backend.calls(), store.runs(), store.shared()), (3, 3, 0));
        assert!(store.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_askers_wait_for_the_first_request() {
        let store = SingleFlight::new(16);
        let backend = Backend::new(Duration::from_millis(200));
        let all = futures::future::join_all(
            (0..50).map(|_| ask(&store, &backend, key("a"), MINUTE, "one")),
        )
        .await;
        assert!(all.iter().all(|d| d.as_deref() == Ok("one")));
        assert_eq!((backend.calls(), store.runs(), store.shared()), (1, 1, 49));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_never_kept_and_waiters_then_ask_themselves() {
        let store = SingleFlight::new(16);
        let backend = Backend::new(Duration::from_millis(200));
        backend.fail.store(true, Ordering::SeqCst);
        let failed = ask(&store, &backend, key("a"), MINUTE, "one").await;
        assert_eq!(failed, Err("failure 1".into()));
        let again = ask(&store, &backend, key("a"), MINUTE, "one").await;
        assert_eq!(again, Err("failure 2".into()));

        // Five at once: the first asks; when it fails, each waiter gets its own error.
        let all = futures::future::join_all(
            (0..5).map(|_| ask(&store, &backend, key("a"), MINUTE, "one")),
        )
        .await;
        assert!(all.iter().all(Result::is_err), "{all:?}");
        assert_eq!(backend.calls(), 2 + 5);
        assert_eq!(store.shared(), 0);

        // The backend is back: the next asker gets the answer, shared from then on.
        backend.fail.store(false, Ordering::SeqCst);
        for _ in 0..3 {
            let got = ask(&store, &backend, key("a"), MINUTE, "one").await;
            assert_eq!(got.as_deref(), Ok("one"));
        }
        assert_eq!((backend.calls(), store.shared()), (8, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_goes_alone_at_its_deadline_and_an_abandoned_flight_ends() {
        let store = SingleFlight::new(16);
        let slow = Backend::new(Duration::from_secs(3600));
        let quick = Backend::new(Duration::ZERO);
        let leader = ask(&store, &slow, key("a"), MINUTE, "slow");
        let waiter = async {
            // Starts after the leader, gives up waiting after 5 s.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            store
                .get_or_ask(key("a"), MINUTE, Some(deadline), || quick.ask("quick"))
                .await
        };
        let got = tokio::select! {
            _ = leader => panic!("the slow request answered"),
            got = waiter => got,
        };
        assert_eq!(got, Ok(("quick".to_string(), Source::Asked)));
        assert_eq!((slow.calls(), quick.calls()), (1, 1));
        // The leader was dropped with the select: its flight is over, and the waiter's answer
        // is shared.
        let shared = ask(&store, &quick, key("a"), MINUTE, "other").await;
        assert_eq!(shared.as_deref(), Ok("quick"));
        assert_eq!(quick.calls(), 1);
        assert!(store.lock().by_key[&key("a")].flight.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_key_is_forgotten_beyond_the_capacity() {
        let store = SingleFlight::new(2);
        let backend = Backend::new(Duration::ZERO);
        for name in ["a", "b", "c"] {
            ask(&store, &backend, key(name), MINUTE, name)
                .await
                .unwrap();
        }
        assert_eq!(store.len(), 2);
        ask(&store, &backend, key("c"), MINUTE, "c").await.unwrap();
        assert_eq!(backend.calls(), 3);
        ask(&store, &backend, key("a"), MINUTE, "a").await.unwrap();
        assert_eq!(backend.calls(), 4);
    }
}
