//! Which upstream origins a stream is pulled from, in which order.
//!
//! With rendezvous (highest-random-weight) hashing every edge computes the same order for a
//! stream from the same upstream list, so edges pulling one stream converge on one origin (its
//! cache stays hot), and removing an upstream only moves the streams that ranked it first. The
//! hash is spelled out (FNV-1a 64 + a SplitMix64 finaliser) rather than `std`'s `DefaultHasher`,
//! whose output may change between Rust releases and would make mixed-version edges diverge.

use serde::{Deserialize, Serialize};

/// One upstream origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    /// Stable identity used for hashing and health (e.g. `origin-a`). Renaming it reshuffles.
    pub id: String,
    /// `http://host[:port][/prefix]` (HTTP-FLV) or `rtmp://host[:port]` (RTMP play). May contain
    /// `{app}` and `{stream}` placeholders; otherwise `/{app}/{stream}.flv` (HTTP) or
    /// `/{app}/{stream}` (RTMP) is appended.
    pub url: String,
}

impl Upstream {
    pub fn new(id: impl Into<String>, url: impl Into<String>) -> Upstream {
        Upstream {
            id: id.into(),
            url: url.into(),
        }
    }

    /// The URL to pull `app/stream` from.
    pub fn url_for(&self, app: &str, stream: &str) -> String {
        if self.url.contains("{app}") || self.url.contains("{stream}") {
            return self.url.replace("{app}", app).replace("{stream}", stream);
        }
        let base = self.url.trim_end_matches('/');
        if base.starts_with("rtmp://") {
            format!("{base}/{app}/{stream}")
        } else {
            format!("{base}/{app}/{stream}.flv")
        }
    }
}

/// How the upstream list is ordered for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Configured order: the first is primary for every stream.
    Ordered,
    /// Rendezvous hashing of the stream key: primaries spread over upstreams, identical on
    /// every edge.
    #[default]
    Rendezvous,
}

/// The configured upstreams and how to order them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpstreamSet {
    pub upstreams: Vec<Upstream>,
    #[serde(default)]
    pub selection: Selection,
}

impl UpstreamSet {
    pub fn new(upstreams: Vec<Upstream>, selection: Selection) -> UpstreamSet {
        UpstreamSet {
            upstreams,
            selection,
        }
    }

    /// Upstreams for `stream_key` (`app/stream`): primary first, then backups.
    pub fn order(&self, stream_key: &str) -> Vec<&Upstream> {
        match self.selection {
            Selection::Ordered => self.upstreams.iter().collect(),
            Selection::Rendezvous => {
                let mut scored: Vec<(u64, usize, &Upstream)> = self
                    .upstreams
                    .iter()
                    .enumerate()
                    .map(|(i, u)| (rendezvous_score(&u.id, stream_key), i, u))
                    .collect();
                // Highest score first; equal scores (only with duplicate ids) keep list order.
                scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                scored.into_iter().map(|(_, _, u)| u).collect()
            }
        }
    }
}

/// FNV-1a 64 over `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The weight of `upstream_id` for `stream_key`: FNV-1a of `id 0xff key`, finalised with
/// SplitMix64 so that similar ids do not produce correlated scores.
pub fn rendezvous_score(upstream_id: &str, stream_key: &str) -> u64 {
    let mut buf = Vec::with_capacity(upstream_id.len() + stream_key.len() + 1);
    buf.extend_from_slice(upstream_id.as_bytes());
    buf.push(0xff);
    buf.extend_from_slice(stream_key.as_bytes());
    let mut z = fnv1a64(&buf);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> UpstreamSet {
        UpstreamSet::new(
            (0..n)
                .map(|i| Upstream::new(format!("origin-{i}"), format!("http://10.0.0.{i}:8080")))
                .collect(),
            Selection::Rendezvous,
        )
    }

    #[test]
    fn hash_is_pinned() {
        // Known FNV-1a 64 vectors; a change here would make edges of different versions diverge.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn order_is_a_deterministic_permutation() {
        let s = set(5);
        let a: Vec<&str> = s.order("live/x").iter().map(|u| u.id.as_str()).collect();
        let s2 = s.clone();
        let b: Vec<&str> = s2.order("live/x").iter().map(|u| u.id.as_str()).collect();
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            ["origin-0", "origin-1", "origin-2", "origin-3", "origin-4"]
        );
        // Config order does not matter, only ids: another edge listing them reversed agrees.
        let mut rev = s.clone();
        rev.upstreams.reverse();
        let c: Vec<&str> = rev.order("live/x").iter().map(|u| u.id.as_str()).collect();
        assert_eq!(a, c);
    }

    #[test]
    fn primaries_spread_and_removal_moves_only_its_streams() {
        let s = set(4);
        let mut counts = [0usize; 4];
        let keys: Vec<String> = (0..4000).map(|i| format!("live/stream{i}")).collect();
        for k in &keys {
            let p = &s.order(k)[0].id;
            counts[p[7..].parse::<usize>().unwrap()] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "skewed: {counts:?}");
        }
        let mut smaller = s.clone();
        smaller.upstreams.remove(2);
        for k in &keys {
            let before = &s.order(k)[0].id;
            let after = &smaller.order(k)[0].id;
            if before != "origin-2" {
                assert_eq!(before, after);
            } else {
                // Its streams move to what was their second choice.
                assert_eq!(&s.order(k)[1].id, after);
            }
        }
    }

    #[test]
    fn ordered_and_urls() {
        let mut s = set(3);
        s.selection = Selection::Ordered;
        assert_eq!(s.order("a/b")[0].id, "origin-0");
        let u = Upstream::new("a", "http://h:1/");
        assert_eq!(u.url_for("live", "x"), "http://h:1/live/x.flv");
        let u = Upstream::new("a", "rtmp://h");
        assert_eq!(u.url_for("live", "x"), "rtmp://h/live/x");
        let u = Upstream::new("a", "http://h/pull?s={app}-{stream}");
        assert_eq!(u.url_for("live", "x"), "http://h/pull?s=live-x");
    }
}
