//! Cancellation passed down to whatever runs long (playbooks, probes, drills): Ctrl-C becomes a
//! [`Cancel`] that the caller checks or awaits, instead of signal handlers scattered through the
//! code. The CLI sets it (`cli::cancel_on_ctrl_c`); nothing here knows about signals or exits.

use std::sync::Arc;

use tokio::sync::watch;

/// A flag that is set once; clones share it.
#[derive(Clone, Debug)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    pub fn new() -> Self {
        Cancel {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the flag is set (at once if it is).
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`: wait_for cannot fail while we hold it.
        let _ = rx.wait_for(|set| *set).await;
    }

    /// Runs `work` unless the flag is set first; `None` when cancelled.
    pub async fn guard<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.cancelled() => None,
            out = work => Some(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancels_waiters_and_guards() {
        let c = Cancel::new();
        assert!(!c.is_cancelled());
        assert_eq!(c.guard(async { 5 }).await, Some(5));
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.cancelled().await })
        };
        c.cancel();
        waiter.await.unwrap();
        assert!(c.is_cancelled());
        assert_eq!(
            c.guard(tokio::time::sleep(std::time::Duration::from_secs(60)))
                .await,
            None
        );
    }
}
