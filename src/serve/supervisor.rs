//! The listener tasks `serve` must keep running until shutdown. If one ends anyway (it
//! should not: accept errors are retried), `serve` shuts down and exits non-zero, so
//! systemd restarts it rather than leaving a process that no longer captures mail.

use std::future::Future;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub struct Supervisor {
    ended: mpsc::UnboundedSender<&'static str>,
    ended_early: mpsc::UnboundedReceiver<&'static str>,
    stopped: watch::Receiver<bool>,
}

impl Supervisor {
    /// `stopped` turns true at shutdown: tasks that end after that are expected to.
    pub fn new(stopped: watch::Receiver<bool>) -> Supervisor {
        let (ended, ended_early) = mpsc::unbounded_channel();
        Supervisor {
            ended,
            ended_early,
            stopped,
        }
    }

    /// Spawns a task that must run until shutdown.
    pub fn spawn<F>(&self, name: &'static str, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (ended, stopped) = (self.ended.clone(), self.stopped.clone());
        tokio::spawn(async move {
            let output = task.await;
            if !*stopped.borrow() {
                let _ = ended.send(name);
            }
            output
        })
    }

    /// The name of the first task that ended before shutdown; pending until one does.
    pub async fn ended_early(&mut self) -> &'static str {
        match self.ended_early.recv().await {
            Some(name) => name,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_task_that_ends_before_shutdown_is_named_and_one_after_is_not() {
        let (stop, stopped) = watch::channel(false);
        let mut supervisor = Supervisor::new(stopped);
        supervisor.spawn("quitter", async {});
        assert_eq!(supervisor.ended_early().await, "quitter");

        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let task = supervisor.spawn("runner", async move {
            let _ = wait.await;
        });
        stop.send(true).unwrap();
        release.send(()).unwrap();
        task.await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(50), supervisor.ended_early()).await;
        assert!(
            quiet.is_err(),
            "a task ending after shutdown is not reported"
        );
    }
}
