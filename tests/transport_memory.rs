//! Per-viewer memory of the transport: `size_of` plus the heap a session holds, measured with a
//! counting allocator that only counts while server-side code runs on this thread.
//!
//! Alone in its own test binary so no other test's allocations are counted.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_shared::marshal::Marshal;
use rtmlive::transport::ViewerSession;

fn receiver_report() -> Vec<u8> {
    ReceiverReport {
        ssrc: 0x4242,
        reports: Vec::new(),
        profile_extensions: bytes::Bytes::new(),
    }
    .marshal()
    .unwrap()
    .to_vec()
}

struct Counting;

static SERVER_BYTES: AtomicIsize = AtomicIsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            SERVER_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counting() {
            SERVER_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            SERVER_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn server<R>(f: impl FnOnce() -> R) -> R {
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    r
}

#[test]
fn per_viewer_memory_is_measured_and_bounded() {
    let _ = identity(); // shared, created once: not per viewer
    const N: usize = 50;
    let t0 = Instant::now();
    let mut sessions = Vec::new();
    let mut clients = Vec::new();

    let before = SERVER_BYTES.load(Ordering::Relaxed);
    for _ in 0..N {
        let client = Client::gcm();
        let p = params(client.fingerprint);
        sessions.push(server(|| Box::new(ViewerSession::new(t0, p))));
        clients.push(client);
    }
    let pending = (SERVER_BYTES.load(Ordering::Relaxed) - before) as usize / N;

    let before = SERVER_BYTES.load(Ordering::Relaxed);
    for (s, c) in sessions.iter_mut().zip(clients.iter_mut()) {
        let req = c.binding_request(SERVER_PWD, true);
        server(|| {
            s.handle_datagram(t0, client_addr(), &req).unwrap();
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        });
        c.start_dtls(t0);
        for _ in 0..10 {
            let mut replies = Vec::new();
            let out = c.outgoing();
            server(|| {
                for d in &out {
                    let _ = s.handle_datagram(t0, client_addr(), d);
                }
                while let Some(t) = s.poll_transmit() {
                    replies.push(t.data.to_vec());
                }
                while s.poll_event().is_some() {}
            });
            for r in replies {
                c.receive_dtls(t0, &r);
            }
            if c.connected && s.is_established() {
                break;
            }
        }
        assert!(s.is_established());
        // One media packet so the SRTP per-SSRC state exists too.
        let pkt = media_packet(1, 1000);
        server(|| drop(s.send_media(t0 + Duration::from_millis(1), &pkt)));
        // The player's first receiver report proves it finished the handshake: the session
        // retires its DTLS endpoint.
        let rr = c.encrypt_rtcp(&receiver_report());
        server(|| {
            s.handle_datagram(t0 + Duration::from_millis(2), client_addr(), &rr)
                .unwrap();
            while s.poll_transmit().is_some() {}
            while s.poll_event().is_some() {}
        });
    }
    let established_extra = (SERVER_BYTES.load(Ordering::Relaxed) - before) as usize / N;
    let inline = std::mem::size_of::<ViewerSession>();
    let established = inline + pending + established_extra;
    println!(
        "ViewerSession: size_of {inline} B; heap pending {pending} B; \
         heap established {} B; total established ≈ {established} B",
        pending + established_extra
    );
    // Target: ≤ 16 KiB per viewer, pending (before the handshake) and established (after the
    // player's first RTCP retired the DTLS endpoint).
    assert!(
        pending + inline <= 16 * 1024,
        "pending session {} B",
        pending + inline
    );
    assert!(
        established <= 16 * 1024,
        "established session {established} B"
    );
}
