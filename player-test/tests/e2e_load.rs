//! Load mode against a real in-process edge: 1,000 RTM sessions of the demo stream, every one
//! reaching its first frame with zero dropped frames, within a CI-sized budget.
//!
//! The server runs in this process, so the CPU figure printed here is client + server; the
//! load generator's own cost per session (for benchmarks that subtract it) is measured against
//! an out-of-process server in `docs/benchmarks.md`.

use std::time::Duration;

use player_test::PlayOptions;
use player_test::load::{LoadOptions, run};
use rtmlive::server::start;

#[test]
fn thousand_rtm_sessions_all_play_without_drops() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = rtmlive::config::Config::default();
    let lo = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    config.listen.media.bind = lo(0);
    config.listen.http.bind = lo(0);
    config.listen.rtmp.enabled = false;
    let server = rt.block_on(start(&config)).expect("server starts");
    let stream = loop {
        if let Some(s) = server.hub.get("live/demo")
            && s.has_keyframe()
        {
            break s;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(stream.has_keyframe());

    let opts = LoadOptions {
        base: PlayOptions {
            url: format!("rtm://{}/live/demo", server.media_addr),
            duration: Duration::from_secs(2),
            first_frame_timeout: Duration::from_secs(20),
            ..PlayOptions::default()
        },
        sessions: 1000,
        concurrency: 200,
        ramp: 0.0,
        threads: 2,
    };
    let (reports, cost) = run(&opts);
    let ok = reports.iter().filter(|r| r.ok).count();
    let dropped: u64 = reports.iter().map(|r| r.frames_dropped).sum();
    let mut ff: Vec<f64> = reports.iter().filter_map(|r| r.first_frame_ms).collect();
    ff.sort_by(f64::total_cmp);
    let p = |q: f64| ff.get(((ff.len() as f64 - 1.0) * q) as usize).copied();
    eprintln!(
        "sessions {} ok {ok} dropped {dropped} first frame p50 {:?} p99 {:?} ms; cpu {:.0} ms ({:.2} ms/session, client+server) over {:.0} ms wall",
        reports.len(),
        p(0.5),
        p(0.99),
        cost.cpu_ms,
        cost.cpu_ms_per_session,
        cost.wall_ms
    );
    for r in reports.iter().filter(|r| !r.ok).take(5) {
        eprintln!("failed session {}: {:?}", r.index, r.error);
    }
    assert_eq!(reports.len(), 1000);
    assert_eq!(
        ok, 1000,
        "every session reached its first frame and ended cleanly"
    );
    assert_eq!(dropped, 0, "the no-drop invariant across every session");
    rt.block_on(server.stop());
}
