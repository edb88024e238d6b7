//! The milter's listening socket as indymilter sees it, made to survive failed accepts:
//! indymilter ends its whole accept loop on the first accept error, and with it capture
//! (Postfix goes on without the milter). Here a failed accept is counted, logged at most
//! once a second, and retried after a short pause.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lifeboat_servers::health::{ACCEPT_BACKOFF, ListenerHealth};
use tokio::time::Sleep;

pub struct Resilient<L> {
    inner: L,
    health: Arc<ListenerHealth>,
    /// Set while backing off after a failed accept.
    pause: Option<Pin<Box<Sleep>>>,
}

impl<L> Resilient<L> {
    pub fn new(inner: L, health: Arc<ListenerHealth>) -> Resilient<L> {
        Resilient {
            inner,
            health,
            pause: None,
        }
    }
}

impl<L: indymilter::Listener> indymilter::Listener for Resilient<L> {
    type Io = L::Io;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<Self::Io>> {
        loop {
            if let Some(pause) = self.pause.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.pause = None;
            }
            match self.inner.poll_accept(cx) {
                Poll::Ready(Ok(io)) => {
                    self.health.accepted();
                    return Poll::Ready(Ok(io));
                }
                Poll::Ready(Err(e)) => {
                    self.health.accept_failed(&e);
                    self.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_BACKOFF)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
