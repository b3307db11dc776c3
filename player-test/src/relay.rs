//! `player-test relay`: an impairing UDP and TCP relay between any client (a browser, another
//! player) and the server, for machines without `tc netem`.
//!
//! Each direction of each flow is a delay line: the reader hands datagrams (or TCP chunks) to
//! an [`Impairment`] queue and a writer releases them when the emulated link delivers them.
//! Loss applies to UDP only: a TCP byte stream cannot lose bytes, a lossy path shows up there as
//! retransmission delay, which `--delay`/`--jitter`/`--rate` emulate (TCP keeps order).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::impair::{Impairment, LinkSpec};

/// What the relay does.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    /// Client → server.
    pub up: LinkSpec,
    /// Server → client.
    pub down: LinkSpec,
    pub seed: u64,
    pub udp: bool,
    pub tcp: bool,
}

/// Live counters (atomics: readable while the relay runs, never blocking it).
#[derive(Debug, Default)]
pub struct RelayStats {
    pub udp_flows: AtomicU64,
    pub tcp_conns: AtomicU64,
    pub up_packets: AtomicU64,
    pub up_lost: AtomicU64,
    pub down_packets: AtomicU64,
    pub down_lost: AtomicU64,
}

impl RelayStats {
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "udp flows {} · tcp conns {} · up {} pkts ({} lost) · down {} pkts ({} lost)",
            g(&self.udp_flows),
            g(&self.tcp_conns),
            g(&self.up_packets),
            g(&self.up_lost),
            g(&self.down_packets),
            g(&self.down_lost)
        )
    }
}

/// Largest number of concurrent UDP flows (client addresses) the relay tracks.
pub const MAX_UDP_FLOWS: usize = 65_536;
/// Items a delay line may hold before its reader waits (bounds memory at high rate caps).
const LINE_DEPTH: usize = 16_384;

enum Sink {
    /// Send to a fixed peer from a shared socket.
    UdpTo(Arc<UdpSocket>, SocketAddr),
    /// Send on a connected socket.
    Udp(Arc<UdpSocket>),
    Tcp(tokio::net::tcp::OwnedWriteHalf),
}

impl Sink {
    async fn send(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::UdpTo(s, to) => s.send_to(b, *to).await.map(|_| ()),
            Sink::Udp(s) => s.send(b).await.map(|_| ()),
            Sink::Tcp(w) => w.write_all(b).await,
        }
    }
}

/// Runs one direction: items from `rx` through the impairment into `sink`.
async fn delay_line(
    mut rx: mpsc::Receiver<Vec<u8>>,
    spec: LinkSpec,
    seed: u64,
    mut sink: Sink,
    passed: Arc<RelayStats>,
    up: bool,
) {
    let mut q: Impairment<Vec<u8>> = Impairment::new(spec, seed);
    let mut open = true;
    loop {
        let now = Instant::now();
        while let Some(item) = q.pop(now) {
            if sink.send(&item).await.is_err() {
                return;
            }
        }
        if !open && q.is_empty() {
            return;
        }
        let deadline = q.poll_timeout();
        tokio::select! {
            item = rx.recv(), if open => match item {
                Some(item) => {
                    let (n, l) = if up { (&passed.up_packets, &passed.up_lost) } else { (&passed.down_packets, &passed.down_lost) };
                    n.fetch_add(1, Ordering::Relaxed);
                    if !q.push(Instant::now(), item) {
                        l.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => open = false,
            },
            _ = sleep_until(deadline) => {}
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// A stable per-flow seed so each flow's impairment is reproducible.
fn flow_seed(seed: u64, n: u64, up: bool) -> u64 {
    seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(up)
}

/// Runs the relay until the returned future is dropped or an accept/bind fails.
pub async fn run(config: RelayConfig, stats: Arc<RelayStats>) -> std::io::Result<()> {
    let udp = if config.udp {
        Some(UdpSocket::bind(config.listen).await?)
    } else {
        None
    };
    let tcp = if config.tcp {
        Some(TcpListener::bind(config.listen).await?)
    } else {
        None
    };
    let c2 = config.clone();
    let s2 = stats.clone();
    let udp_task = async move {
        match udp {
            Some(sock) => run_udp(sock, c2, s2).await,
            None => std::future::pending().await,
        }
    };
    let tcp_task = async move {
        match tcp {
            Some(l) => run_tcp(l, config, stats).await,
            None => std::future::pending().await,
        }
    };
    tokio::try_join!(udp_task, tcp_task).map(|_| ())
}

async fn run_udp(
    listen: UdpSocket,
    config: RelayConfig,
    stats: Arc<RelayStats>,
) -> std::io::Result<()> {
    let listen = Arc::new(listen);
    let mut flows: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 65_536];
    loop {
        let (len, from) = listen.recv_from(&mut buf).await?;
        let tx = match flows.get(&from) {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                if flows.len() >= MAX_UDP_FLOWS {
                    flows.retain(|_, tx| !tx.is_closed());
                    if flows.len() >= MAX_UDP_FLOWS {
                        continue;
                    }
                }
                n += 1;
                stats.udp_flows.fetch_add(1, Ordering::Relaxed);
                let bind: SocketAddr = if config.upstream.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap_or(config.listen)
                } else {
                    "[::]:0".parse().unwrap_or(config.listen)
                };
                let up_sock = Arc::new(UdpSocket::bind(bind).await?);
                up_sock.connect(config.upstream).await?;
                let (up_tx, up_rx) = mpsc::channel(LINE_DEPTH);
                let (down_tx, down_rx) = mpsc::channel(LINE_DEPTH);
                tokio::spawn(delay_line(
                    up_rx,
                    config.up,
                    flow_seed(config.seed, n, true),
                    Sink::Udp(up_sock.clone()),
                    stats.clone(),
                    true,
                ));
                tokio::spawn(delay_line(
                    down_rx,
                    config.down,
                    flow_seed(config.seed, n, false),
                    Sink::UdpTo(listen.clone(), from),
                    stats.clone(),
                    false,
                ));
                // Server → client reader for this flow.
                tokio::spawn(async move {
                    let mut b = vec![0u8; 65_536];
                    while let Ok(len) = up_sock.recv(&mut b).await {
                        if down_tx.send(b[..len].to_vec()).await.is_err() {
                            break;
                        }
                    }
                });
                flows.insert(from, up_tx.clone());
                up_tx
            }
        };
        let _ = tx.send(buf[..len].to_vec()).await;
    }
}

async fn run_tcp(
    listen: TcpListener,
    config: RelayConfig,
    stats: Arc<RelayStats>,
) -> std::io::Result<()> {
    let mut n = 0u64;
    loop {
        let (client, _) = listen.accept().await?;
        n += 1;
        stats.tcp_conns.fetch_add(1, Ordering::Relaxed);
        let config = config.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(config.upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let tcp_spec = |s: LinkSpec| LinkSpec {
                loss: 0.0,
                keep_order: true,
                ..s
            };
            let (up_tx, up_rx) = mpsc::channel(LINE_DEPTH);
            let (down_tx, down_rx) = mpsc::channel(LINE_DEPTH);
            tokio::spawn(delay_line(
                up_rx,
                tcp_spec(config.up),
                flow_seed(config.seed, n, true),
                Sink::Tcp(sw),
                stats.clone(),
                true,
            ));
            tokio::spawn(delay_line(
                down_rx,
                tcp_spec(config.down),
                flow_seed(config.seed, n, false),
                Sink::Tcp(cw),
                stats,
                false,
            ));
            tokio::spawn(pump(cr, up_tx));
            pump(sr, down_tx).await;
        });
    }
}

async fn pump(mut r: tokio::net::tcp::OwnedReadHalf, tx: mpsc::Sender<Vec<u8>>) {
    let mut b = vec![0u8; 16_384];
    while let Ok(n) = r.read(&mut b).await {
        if n == 0 || tx.send(b[..n].to_vec()).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn udp_and_tcp_are_relayed_with_delay_and_loss() {
        // Upstream echo servers.
        let echo_udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = echo_udp.local_addr().unwrap().port();
        let echo_tcp = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 2048];
            while let Ok((n, from)) = echo_udp.recv_from(&mut b).await {
                let _ = echo_udp.send_to(&b[..n], from).await;
            }
        });
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo_tcp.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 2048];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        // A free port for the relay (both protocols).
        let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let listen = probe.local_addr().unwrap();
        drop(probe);
        let spec = LinkSpec {
            delay: Duration::from_millis(20),
            ..LinkSpec::default()
        };
        let cfg = RelayConfig {
            listen,
            upstream: ([127, 0, 0, 1], port).into(),
            up: LinkSpec { loss: 0.5, ..spec },
            down: spec,
            seed: 1,
            udp: true,
            tcp: true,
        };
        let stats = Arc::new(RelayStats::default());
        tokio::spawn(run(cfg, stats.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;

        // TCP: ordered, intact, delayed by both directions.
        let mut c = TcpStream::connect(listen).await.unwrap();
        let t0 = Instant::now();
        c.write_all(b"hello relay").await.unwrap();
        let mut got = [0u8; 11];
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello relay");
        assert!(
            t0.elapsed() >= Duration::from_millis(40),
            "{:?}",
            t0.elapsed()
        );

        // UDP: about half of the upstream datagrams are lost.
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        u.connect(listen).await.unwrap();
        for i in 0..200u8 {
            u.send(&[i]).await.unwrap();
        }
        let mut back = 0;
        let mut b = [0u8; 16];
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), u.recv(&mut b)).await
        {
            back += 1;
        }
        assert!((60..140).contains(&back), "{back} of 200 came back");
        assert_eq!(stats.udp_flows.load(Ordering::Relaxed), 1);
    }
}
