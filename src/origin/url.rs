//! The small part of URL syntax origin pulls need: `scheme://host[:port]/path?query`.

/// A parsed `http://` or `rtmp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Rtmp,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("unsupported URL scheme in {0:?} (http:// or rtmp://)")]
    Scheme(String),
    #[error("bad host or port in {0:?}")]
    Authority(String),
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        let (scheme, rest) = if let Some(r) = s.strip_prefix("http://") {
            (Scheme::Http, r)
        } else if let Some(r) = s.strip_prefix("rtmp://") {
            (Scheme::Rtmp, r)
        } else {
            return Err(UrlError::Scheme(s.to_owned()));
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Rtmp => 1935,
        };
        let bad = || UrlError::Authority(s.to_owned());
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad());
        }
        Ok(Url {
            scheme,
            host,
            port,
            path,
        })
    }

    /// `host:port` for connecting (IPv6 literals bracketed).
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header value (port omitted when it is the default).
    pub fn host_header(&self) -> String {
        let default = matches!(
            (self.scheme, self.port),
            (Scheme::Http, 80) | (Scheme::Rtmp, 1935)
        );
        if default {
            if self.host.contains(':') {
                format!("[{}]", self.host)
            } else {
                self.host.clone()
            }
        } else {
            self.socket_addr()
        }
    }

    /// Resolves a redirect `Location` (absolute URL or absolute path) against this URL.
    pub fn join(&self, location: &str) -> Result<Url, UrlError> {
        if location.starts_with('/') && !location.starts_with("//") {
            Ok(Url {
                path: location.to_owned(),
                ..self.clone()
            })
        } else {
            Url::parse(location)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_used() {
        let u = Url::parse("http://127.0.0.1:8080/live/x.flv?t=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/live/x.flv?t=1")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = Url::parse("rtmp://origin/live/x").unwrap();
        assert_eq!((u.port, u.host_header().as_str()), (1935, "origin"));
        let u = Url::parse("http://[::1]:81").unwrap();
        assert_eq!(
            (u.path.as_str(), u.socket_addr().as_str()),
            ("/", "[::1]:81")
        );
        assert!(Url::parse("https://x/").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
        assert!(Url::parse("http:///a").is_err());
        assert_eq!(u.join("/b").unwrap().path, "/b");
        assert_eq!(u.join("http://y/c").unwrap().host, "y");
    }
}
