//! Requests taken in groups: the requests waiting at one moment are handed
//! to one run (one statement, one round trip), and each gets its own answer.
//! A request alone is run at once; under load, the requests that arrive
//! while a group runs wait for the next one.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

/// Groups run at once, each on a connection of its own.
const BATCHERS: usize = 2;
/// Most requests one group takes.
const MAX_GROUP: usize = 64;
/// Requests waiting for a batcher before callers wait to hand theirs over.
const QUEUE: usize = 1024;

/// A request waiting in a group, with the way to answer it. Dropped
/// unanswered, its caller gets an error.
pub struct Pending<T, R> {
    pub request: T,
    reply: oneshot::Sender<anyhow::Result<R>>,
}

impl<T, R> Pending<T, R> {
    /// Answers the caller (who may have stopped waiting).
    pub fn answer(self, outcome: anyhow::Result<R>) {
        let _ = self.reply.send(outcome);
    }
}

/// The requests waiting, shared by the batchers (one takes a group at a time).
type Waiting<T, R> = Arc<Mutex<mpsc::Receiver<Pending<T, R>>>>;

/// The handle requests are sent through; its batchers stop when it is dropped.
pub struct Batches<T, R> {
    queue: mpsc::Sender<Pending<T, R>>,
    what: &'static str,
}

impl<T: Send + 'static, R: Send + 'static> Batches<T, R> {
    /// Starts the batchers. `run` answers each request of a group, as soon
    /// as its outcome is known.
    pub fn spawn<F, Fut>(what: &'static str, run: F) -> Self
    where
        F: Fn(Vec<Pending<T, R>>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..BATCHERS {
            tokio::spawn(batch(waiting.clone(), run.clone()));
        }
        Self { queue, what }
    }

    /// Runs `request` in the next group and answers its outcome.
    pub async fn run(&self, request: T) -> anyhow::Result<R> {
        let (reply, answer) = oneshot::channel();
        let stopped = || anyhow::anyhow!("the {} batcher has stopped", self.what);
        self.queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes the requests waiting (at most `MAX_GROUP`) and runs them, until
/// the queue closes.
async fn batch<T, R, F, Fut>(waiting: Waiting<T, R>, run: F)
where
    F: Fn(Vec<Pending<T, R>>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let mut group = Vec::with_capacity(MAX_GROUP);
        {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            group.push(first);
            while group.len() < MAX_GROUP {
                let Ok(next) = waiting.try_recv() else {
                    break;
                };
                group.push(next);
            }
        }
        run(group).await;
    }
}
