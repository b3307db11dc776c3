//! Graceful shutdown: stop accepting, tell components, wait for sessions up to a deadline.
//!
//! ```text
//! Running ──SIGTERM/SIGINT──▶ Draining ──all sessions gone, or deadline──▶ Stopped
//!            (is_accepting() = false: signaling refuses new sessions;
//!             watchers send RTCP BYE / stop packets and stop pulling new streams)
//! ```
//! A second signal during the drain stops at once. Sessions are counted by [`SessionGuard`]s
//! that the session structs own (no task per session); dropping the last guard while draining
//! wakes the coordinator.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::metrics::Metrics;

/// The process life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// No new sessions; existing ones finish.
    Draining,
    /// Everything should close now.
    Stopped,
}

/// How the drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every session ended before the deadline.
    Drained { elapsed: Duration },
    /// The deadline passed with sessions still open.
    DeadlineReached { remaining: usize },
    /// A second signal (or another abort) arrived first.
    Aborted { remaining: usize },
}

struct Inner {
    accepting: AtomicBool,
    sessions: AtomicUsize,
    idle: Notify,
    phase: watch::Sender<Phase>,
    metrics: Option<Arc<Metrics>>,
}

/// The drain coordinator. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::build(None)
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also publishes the `rtmlive_draining` gauge.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Self {
        Self::build(Some(metrics))
    }

    fn build(metrics: Option<Arc<Metrics>>) -> Self {
        let (phase, _) = watch::channel(Phase::Running);
        Shutdown {
            inner: Arc::new(Inner {
                accepting: AtomicBool::new(true),
                sessions: AtomicUsize::new(0),
                idle: Notify::new(),
                phase,
                metrics,
            }),
        }
    }

    /// Whether new sessions may start. One relaxed load: fine on the signaling path.
    #[inline]
    pub fn is_accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::Relaxed)
    }

    pub fn phase(&self) -> Phase {
        *self.inner.phase.borrow()
    }

    /// Components watch this to react to `Draining` (send BYE, stop accepting) and `Stopped`.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.inner.phase.subscribe()
    }

    /// Registers a new session, or `None` when draining (refuse the session).
    pub fn try_session(&self) -> Option<SessionGuard> {
        if !self.is_accepting() {
            return None;
        }
        self.inner.sessions.fetch_add(1, Ordering::AcqRel);
        Some(SessionGuard {
            inner: self.inner.clone(),
        })
    }

    pub fn active_sessions(&self) -> usize {
        self.inner.sessions.load(Ordering::Acquire)
    }

    /// Stops accepting and announces `Draining`. Idempotent.
    pub fn begin_drain(&self) {
        if self.inner.accepting.swap(false, Ordering::AcqRel) {
            if let Some(m) = &self.inner.metrics {
                m.set_draining(true);
            }
            self.inner.phase.send_if_modified(|p| {
                let change = *p == Phase::Running;
                if change {
                    *p = Phase::Draining;
                }
                change
            });
        }
    }

    /// Announces `Stopped`.
    pub fn stop(&self) {
        self.inner.accepting.store(false, Ordering::Release);
        if let Some(m) = &self.inner.metrics {
            m.set_draining(false);
        }
        self.inner.phase.send_replace(Phase::Stopped);
    }

    /// Begins the drain and waits until no session is left, `deadline` has passed, or `abort`
    /// completes; then announces `Stopped`.
    pub async fn drain(&self, deadline: Duration, abort: impl Future<Output = ()>) -> DrainOutcome {
        let start = Instant::now();
        self.begin_drain();
        let until = start + deadline;
        tokio::pin!(abort);
        let outcome = loop {
            // Register interest before checking, so a guard dropped in between still wakes us.
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let remaining = self.active_sessions();
            if remaining == 0 {
                break DrainOutcome::Drained {
                    elapsed: start.elapsed(),
                };
            }
            tokio::select! {
                _ = &mut idle => {}
                _ = tokio::time::sleep_until(until) => {
                    break DrainOutcome::DeadlineReached { remaining: self.active_sessions() };
                }
                _ = &mut abort => {
                    break DrainOutcome::Aborted { remaining: self.active_sessions() };
                }
            }
        };
        self.stop();
        outcome
    }
}

/// Counts one session while alive. Owned by the session; dropping it ends the session's count.
pub struct SessionGuard {
    inner: Arc<Inner>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let before = self.inner.sessions.fetch_sub(1, Ordering::AcqRel);
        // Only the last session during a drain pays for the wake-up.
        if before == 1 && !self.inner.accepting.load(Ordering::Acquire) {
            self.inner.idle.notify_waiters();
        }
    }
}

/// A termination request from the OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
}

/// Waits for SIGTERM or SIGINT (Ctrl-C elsewhere than Unix).
pub async fn signal() -> std::io::Result<Signal> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok(Signal::Terminate),
            _ = int.recv() => Ok(Signal::Interrupt),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok(Signal::Interrupt)
    }
}

/// The process policy: wait for a first signal, drain up to `deadline`, stop early on a second
/// signal. `trigger` yields signals (use `|| signal()` in the server, a channel in tests).
pub async fn run_on_signals<F, Fut>(
    shutdown: &Shutdown,
    deadline: Duration,
    mut trigger: F,
) -> DrainOutcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::io::Result<Signal>>,
{
    match trigger().await {
        Ok(sig) => tracing::info!(
            ?sig,
            ?deadline,
            sessions = shutdown.active_sessions(),
            "draining"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot listen for signals; draining now"),
    }
    let second = async {
        if trigger().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = shutdown.drain(deadline, second).await;
    tracing::info!(?outcome, "drain finished");
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drains_when_last_session_ends() {
        let s = Shutdown::new();
        let g1 = s.try_session().unwrap();
        let g2 = s.try_session().unwrap();
        let mut phase = s.subscribe();
        let s2 = s.clone();
        let task = tokio::spawn(async move {
            s2.drain(Duration::from_secs(10), std::future::pending())
                .await
        });
        phase.changed().await.unwrap();
        assert_eq!(*phase.borrow(), Phase::Draining);
        assert!(!s.is_accepting());
        assert!(s.try_session().is_none(), "no new sessions while draining");
        drop(g1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished());
        drop(g2);
        let outcome = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(outcome, DrainOutcome::Drained { .. }),
            "{outcome:?}"
        );
        assert_eq!(s.phase(), Phase::Stopped);
    }

    #[tokio::test]
    async fn deadline_bounds_the_drain() {
        let s = Shutdown::new();
        let _g = s.try_session().unwrap();
        let t = std::time::Instant::now();
        let outcome = s
            .drain(Duration::from_millis(100), std::future::pending())
            .await;
        assert_eq!(outcome, DrainOutcome::DeadlineReached { remaining: 1 });
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn second_signal_aborts() {
        let s = Shutdown::with_metrics(Metrics::new());
        let _g = s.try_session().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Signal>();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        tx.send(Signal::Terminate).unwrap();
        tx.send(Signal::Interrupt).unwrap();
        let outcome = run_on_signals(&s, Duration::from_secs(30), || {
            let rx = rx.clone();
            async move {
                rx.lock()
                    .await
                    .recv()
                    .await
                    .ok_or_else(|| std::io::Error::other("closed"))
            }
        })
        .await;
        assert_eq!(outcome, DrainOutcome::Aborted { remaining: 1 });
    }

    #[tokio::test]
    async fn idle_process_drains_immediately_and_sets_gauge() {
        let m = Metrics::new();
        let s = Shutdown::with_metrics(m.clone());
        s.begin_drain();
        assert!(m.render().contains("rtmlive_draining 1\n"));
        let outcome = s
            .drain(Duration::from_secs(5), std::future::pending())
            .await;
        assert!(matches!(outcome, DrainOutcome::Drained { .. }));
        assert!(m.render().contains("rtmlive_draining 0\n"));
    }
}
