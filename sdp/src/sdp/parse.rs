//! Line parser: `<type>=<value>` lines, CRLF or LF, blank lines ignored.
//!
//! Lenient where browsers differ (unknown line types and attributes are kept verbatim,
//! missing `s=`/`t=` get defaults), strict where a wrong value would be acted upon (a
//! malformed `rtpmap`, `candidate`, `fingerprint` … is an error with its line number).

use super::error::{ParseError, ParseErrorKind};
use super::{Attribute, Connection, Media, MediaKind, Origin, Sdp};

/// Upper bound on accepted input; real offers are 2–10 KB.
pub const MAX_SDP_LEN: usize = 256 * 1024;

pub(super) fn parse(text: &str) -> Result<Sdp, ParseError> {
    if text.len() > MAX_SDP_LEN {
        return Err(ParseError {
            line: 0,
            kind: ParseErrorKind::TooLarge,
        });
    }
    let mut sdp = Sdp::default();
    let mut saw_version = false;
    let mut saw_origin = false;
    let mut current: Option<Media> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let err = |kind| ParseError {
            line: line_no,
            kind,
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        let mut chars = line.chars();
        let (typ, eq) = (chars.next(), chars.next());
        let (Some(typ), Some('=')) = (typ, eq) else {
            return Err(err(ParseErrorKind::NotTypeValue));
        };
        let value = &line[typ.len_utf8() + 1..];
        if !saw_version {
            if typ != 'v' {
                return Err(err(ParseErrorKind::MissingVersion));
            }
            sdp.version = value
                .trim()
                .parse()
                .map_err(|_| err(ParseErrorKind::InvalidVersion))?;
            saw_version = true;
            continue;
        }
        match (typ, current.as_mut()) {
            ('m', _) => {
                if let Some(m) = current.take() {
                    sdp.media.push(m);
                }
                current = Some(parse_media(value).ok_or(err(ParseErrorKind::InvalidMedia))?);
            }
            ('a', Some(m)) => m.attributes.push(parse_attr(value).map_err(err)?),
            ('a', None) => sdp.attributes.push(parse_attr(value).map_err(err)?),
            ('c', Some(m)) => {
                m.connection =
                    Some(parse_connection(value).ok_or(err(ParseErrorKind::InvalidConnection))?)
            }
            ('c', None) => {
                sdp.connection =
                    Some(parse_connection(value).ok_or(err(ParseErrorKind::InvalidConnection))?)
            }
            ('v', _) => return Err(err(ParseErrorKind::Misplaced('v'))),
            ('o', None) if !saw_origin => {
                sdp.origin = parse_origin(value).ok_or(err(ParseErrorKind::InvalidOrigin))?;
                saw_origin = true;
            }
            ('s', None) => sdp.session_name = value.to_string(),
            ('t', None) => sdp.timing = value.to_string(),
            ('o' | 's' | 't', Some(_)) | ('o', None) => {
                return Err(err(ParseErrorKind::Misplaced(typ)));
            }
            (_, Some(m)) => m.extra_lines.push((typ, value.to_string())),
            (_, None) => sdp.extra_lines.push((typ, value.to_string())),
        }
    }
    if !saw_version {
        return Err(ParseError {
            line: 0,
            kind: ParseErrorKind::Empty,
        });
    }
    if !saw_origin {
        return Err(ParseError {
            line: 0,
            kind: ParseErrorKind::MissingOrigin,
        });
    }
    if let Some(m) = current.take() {
        sdp.media.push(m);
    }
    Ok(sdp)
}

fn parse_attr(value: &str) -> Result<Attribute, ParseErrorKind> {
    Attribute::parse(value).map_err(|error| ParseErrorKind::InvalidAttribute {
        name: value.split(':').next().unwrap_or_default().to_string(),
        error,
    })
}

fn parse_origin(v: &str) -> Option<Origin> {
    let t: Vec<&str> = v.split_ascii_whitespace().collect();
    let [
        username,
        session_id,
        session_version,
        net_type,
        addr_type,
        address,
    ] = t.as_slice()
    else {
        return None;
    };
    Some(Origin {
        username: username.to_string(),
        session_id: session_id.to_string(),
        session_version: session_version.to_string(),
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

fn parse_connection(v: &str) -> Option<Connection> {
    let t: Vec<&str> = v.split_ascii_whitespace().collect();
    let [net_type, addr_type, address] = t.as_slice() else {
        return None;
    };
    Some(Connection {
        net_type: net_type.to_string(),
        addr_type: addr_type.to_string(),
        address: address.to_string(),
    })
}

fn parse_media(v: &str) -> Option<Media> {
    let mut t = v.split_ascii_whitespace();
    let kind = MediaKind::from_name(t.next()?);
    let ports = t.next()?;
    let (port, port_count) = match ports.split_once('/') {
        Some((p, c)) => (p.parse().ok()?, Some(c.parse().ok()?)),
        None => (ports.parse().ok()?, None),
    };
    let protocol = t.next()?.to_string();
    let formats = t.map(str::to_string).collect();
    Some(Media {
        kind,
        port,
        port_count,
        protocol,
        formats,
        connection: None,
        extra_lines: Vec::new(),
        attributes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_line_numbers() {
        let e = Sdp::parse("v=0\no=- 1 2 IN IP4 1.1.1.1\ns=-\nm=audio 9 RTP/AVP 0\na=rtpmap:x\n")
            .unwrap_err();
        assert_eq!(e.line, 5);
        assert!(matches!(e.kind, ParseErrorKind::InvalidAttribute { .. }));
        assert_eq!(
            Sdp::parse("o=x").unwrap_err().kind,
            ParseErrorKind::MissingVersion
        );
        assert_eq!(Sdp::parse("").unwrap_err().kind, ParseErrorKind::Empty);
        assert_eq!(Sdp::parse("v=0\nbogus").unwrap_err().line, 2);
        assert_eq!(
            Sdp::parse("v=0\no=a b\n").unwrap_err().kind,
            ParseErrorKind::InvalidOrigin
        );
    }

    #[test]
    fn multibyte_line_type_is_an_error_not_a_panic() {
        assert_eq!(
            Sdp::parse("é=x").unwrap_err().kind,
            ParseErrorKind::MissingVersion
        );
        let s = Sdp::parse("v=0\no=- 1 1 IN IP4 a\né=x\n").unwrap();
        assert_eq!(s.extra_lines, [('é', "x".to_string())]);
    }

    #[test]
    fn lf_and_crlf_parse_alike() {
        let lf =
            "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:0\n";
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(Sdp::parse(lf).unwrap(), Sdp::parse(&crlf).unwrap());
        assert_eq!(Sdp::parse(lf).unwrap().to_string(), crlf);
    }
}
