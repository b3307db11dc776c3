//! The stream URLs player-test understands.
//!
//! * `rtm://HOST[:PORT]/APP/STREAM[?v=0][&token=T]`: miniSDP over UDP to the media port
//!   (default 8000). `v=0` sends the deployed v0 format, otherwise rtmlive's extended format.
//! * `whep://HOST[:PORT]/whep/APP/STREAM[?token=T]` or `http://HOST[:PORT]/whep/APP/STREAM`:
//!   WHEP (HTTP POST of an SDP offer; default port 8080), then the same UDP transport.
//! * `http://HOST[:PORT]/APP/STREAM.flv`: HTTP-FLV, the fallback (default port 8080).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("unsupported URL scheme in {0:?} (use rtm://, whep:// or http://)")]
    Scheme(String),
    #[error("URL {0:?} has no host")]
    Host(String),
    #[error("bad port in {0:?}")]
    Port(String),
    #[error("URL {0:?} must name /APP/STREAM")]
    Path(String),
    #[error("http URL {0:?} is neither WHEP (/whep/APP/STREAM) nor HTTP-FLV (*.flv)")]
    HttpKind(String),
}

/// Which miniSDP layout an RTM offer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MiniSdpVersion {
    /// The deployed reference layout.
    V0,
    /// rtmlive's extended layout (RTM extension URIs, auth token, binary fingerprint).
    Extended,
}

/// A parsed playback target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Rtm {
        host: String,
        port: u16,
        app: String,
        stream: String,
        version: MiniSdpVersion,
        token: Option<String>,
    },
    Whep {
        host: String,
        port: u16,
        /// Request path, e.g. `/whep/live/demo`.
        path: String,
        token: Option<String>,
    },
    Flv {
        host: String,
        port: u16,
        path: String,
    },
}

pub const DEFAULT_RTM_PORT: u16 = 8000;
pub const DEFAULT_HTTP_PORT: u16 = 8080;

impl Target {
    /// Short protocol name used in reports: `rtm`, `rtm-v0`, `whep`, `flv`.
    pub fn protocol(&self) -> &'static str {
        match self {
            Target::Rtm {
                version: MiniSdpVersion::V0,
                ..
            } => "rtm-v0",
            Target::Rtm { .. } => "rtm",
            Target::Whep { .. } => "whep",
            Target::Flv { .. } => "flv",
        }
    }

    /// `host:port` to connect to.
    pub fn authority(&self) -> String {
        let (h, p) = match self {
            Target::Rtm { host, port, .. }
            | Target::Whep { host, port, .. }
            | Target::Flv { host, port, .. } => (host, port),
        };
        if h.contains(':') {
            format!("[{h}]:{p}")
        } else {
            format!("{h}:{p}")
        }
    }

    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
        let (hostport, path_query) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        let param = |k: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_owned())
        };
        let scheme = scheme.to_ascii_lowercase();
        let default_port = if scheme == "rtm" {
            DEFAULT_RTM_PORT
        } else {
            DEFAULT_HTTP_PORT
        };
        let (host, port) = split_host_port(hostport, default_port, url)?;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match scheme.as_str() {
            "rtm" => {
                let [app, stream] = segments[..] else {
                    return Err(UrlError::Path(url.to_owned()));
                };
                Ok(Target::Rtm {
                    host,
                    port,
                    app: app.to_owned(),
                    stream: stream.to_owned(),
                    version: if param("v").as_deref() == Some("0") {
                        MiniSdpVersion::V0
                    } else {
                        MiniSdpVersion::Extended
                    },
                    token: param("token"),
                })
            }
            "whep" | "http" if segments.first() == Some(&"whep") => {
                if segments.len() != 3 {
                    return Err(UrlError::Path(url.to_owned()));
                }
                Ok(Target::Whep {
                    host,
                    port,
                    path: path.to_owned(),
                    token: param("token"),
                })
            }
            "whep" => Err(UrlError::Path(url.to_owned())),
            "http" if path.ends_with(".flv") => Ok(Target::Flv {
                host,
                port,
                path: path_query.to_owned(),
            }),
            "http" => Err(UrlError::HttpKind(url.to_owned())),
            _ => Err(UrlError::Scheme(url.to_owned())),
        }
    }
}

fn split_host_port(hp: &str, default: u16, url: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| UrlError::Host(url.to_owned()))?;
        (h, after.strip_prefix(':'))
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::Host(url.to_owned()));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| UrlError::Port(url.to_owned()))?,
        None => default,
    };
    Ok((host.to_owned(), port))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Rtm { app, stream, .. } => {
                write!(f, "rtm://{}/{app}/{stream}", self.authority())
            }
            Target::Whep { path, .. } => write!(f, "http://{}{path}", self.authority()),
            Target::Flv { path, .. } => write!(f, "http://{}{path}", self.authority()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            Target::parse("rtm://127.0.0.1:8000/live/demo").unwrap(),
            Target::Rtm {
                host: "127.0.0.1".into(),
                port: 8000,
                app: "live".into(),
                stream: "demo".into(),
                version: MiniSdpVersion::Extended,
                token: None
            }
        );
        let v0 = Target::parse("rtm://edge/live/demo?v=0&token=abc").unwrap();
        assert_eq!(v0.protocol(), "rtm-v0");
        assert_eq!(v0.authority(), "edge:8000");
        assert!(matches!(v0, Target::Rtm { token: Some(ref t), .. } if t == "abc"));
        let w = Target::parse("whep://h:9/whep/live/demo").unwrap();
        assert_eq!(w.protocol(), "whep");
        assert_eq!(w.to_string(), "http://h:9/whep/live/demo");
        assert_eq!(
            Target::parse("http://h:8080/whep/live/demo")
                .unwrap()
                .protocol(),
            "whep"
        );
        let f = Target::parse("http://[::1]/live/demo.flv").unwrap();
        assert_eq!(
            (f.protocol(), f.authority()),
            ("flv", "[::1]:8080".to_owned())
        );
    }

    #[test]
    fn bad_urls() {
        assert!(matches!(
            Target::parse("rtmp://h/a/b"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(Target::parse("rtm://h/a"), Err(UrlError::Path(_))));
        assert!(matches!(
            Target::parse("rtm://h:x/a/b"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            Target::parse("http://h/a/b"),
            Err(UrlError::HttpKind(_))
        ));
        assert!(matches!(
            Target::parse("rtm:///a/b"),
            Err(UrlError::Host(_))
        ));
        assert!(Target::parse("nonsense").is_err());
    }
}
