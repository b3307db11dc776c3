//! Load mode: many sessions from one process, cheap enough for thousands per core.
//!
//! Sessions are tasks on a small multi-threaded runtime (`--threads`); each one receives,
//! authenticates SRTP, reassembles and counts (no decoding, no presentation log). Starts are
//! paced by `--ramp` and capped by `--concurrency`. The process measures its own CPU time
//! (getrusage) so a benchmark can subtract the client's cost from the machine's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::play::{PlayOptions, play_async};
use crate::report::{ClientCost, SessionReport};

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Template for every session (URL, duration, impairment, …); `index` is set per session.
    pub base: PlayOptions,
    pub sessions: usize,
    /// Sessions alive at once (0 = all).
    pub concurrency: usize,
    /// Session starts per second (0 = as fast as concurrency allows).
    pub ramp: f64,
    /// Runtime worker threads.
    pub threads: usize,
}

/// User + system CPU time of this process.
pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer to an owned rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs the sessions; returns their reports (in index order) and the client's cost.
pub fn run(opts: &LoadOptions) -> (Vec<SessionReport>, ClientCost) {
    let threads = opts.threads.max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let r = SessionReport::failed(&opts.base.url, "?", 0, format!("runtime: {e}"));
            return (vec![r], ClientCost::default());
        }
    };
    let cpu0 = process_cpu_time();
    let t0 = Instant::now();
    let mut reports = rt.block_on(run_async(opts));
    let cpu = process_cpu_time().saturating_sub(cpu0);
    let wall = t0.elapsed();
    reports.sort_by_key(|r| r.index);
    let n = reports.len().max(1);
    let cost = ClientCost {
        cpu_ms: cpu.as_secs_f64() * 1000.0,
        cpu_ms_per_session: cpu.as_secs_f64() * 1000.0 / n as f64,
        wall_ms: wall.as_secs_f64() * 1000.0,
        threads,
    };
    (reports, cost)
}

async fn run_async(opts: &LoadOptions) -> Vec<SessionReport> {
    let permits = if opts.concurrency == 0 {
        opts.sessions.max(1)
    } else {
        opts.concurrency
    };
    let sem = Arc::new(Semaphore::new(permits));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(opts.sessions);
    for i in 0..opts.sessions {
        if opts.ramp > 0.0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / opts.ramp)).await;
        }
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let mut po = opts.base.clone();
        po.index = i;
        po.session.keep_presentation_log = false;
        po.session.deliver_frames = po.decode;
        tasks.push(tokio::spawn(async move {
            let r = play_async(&po).await;
            drop(permit);
            r
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.into_iter().enumerate() {
        out.push(t.await.unwrap_or_else(|e| {
            SessionReport::failed(&opts.base.url, "?", i, format!("task: {e}"))
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_advances_with_work() {
        let a = process_cpu_time();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(process_cpu_time() > a);
    }

    #[test]
    fn failing_sessions_are_all_reported() {
        let opts = LoadOptions {
            base: PlayOptions {
                url: "rtmp://not-supported/a/b".into(),
                ..PlayOptions::default()
            },
            sessions: 5,
            concurrency: 2,
            ramp: 0.0,
            threads: 1,
        };
        let (r, cost) = run(&opts);
        assert_eq!(r.len(), 5);
        assert!(r.iter().all(|s| !s.ok && s.error.is_some()));
        assert_eq!(
            r.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(cost.threads, 1);
    }
}
