//! AMF0 (Action Message Format 0), the encoding of FLV script data (`onMetaData`) and of the
//! Enhanced FLV video `Metadata` packet. Values map onto `serde_json::Value`: numbers stay
//! f64, objects and ECMA arrays become maps (key order kept), dates become their millisecond
//! number, null and undefined become null.
//!
//! Decoding is bounded: nesting depth is limited and no allocation is sized from a count field.

use serde_json::{Map, Number, Value};

/// Why AMF0 data could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0 data truncated")]
    Truncated,
    #[error("AMF0 type marker {0:#04x} unsupported")]
    UnsupportedMarker(u8),
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("AMF0 string is not UTF-8")]
    BadUtf8,
    #[error("value cannot be encoded as AMF0: {0}")]
    Unencodable(&'static str),
}

/// Deepest object nesting accepted; metadata is one or two levels deep in practice.
pub const MAX_DEPTH: usize = 16;

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0a;
    pub const DATE: u8 = 0x0b;
    pub const LONG_STRING: u8 = 0x0c;
}

/// A cursor over AMF0 bytes.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether all input was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self.pos.checked_add(n).ok_or(Amf0Error::Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(Amf0Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string_of(&mut self, len: usize) -> Result<String, Amf0Error> {
        let b = self.take(len)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Amf0Error::BadUtf8)
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = usize::from(self.u16()?);
        self.string_of(len)
    }

    /// Decodes the next value.
    pub fn value(&mut self) -> Result<Value, Amf0Error> {
        self.value_at(0)
    }

    fn properties(&mut self, depth: usize) -> Result<Map<String, Value>, Amf0Error> {
        let mut map = Map::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.data.get(self.pos) == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(map);
            }
            let v = self.value_at(depth + 1)?;
            map.insert(key, v);
        }
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        match self.u8()? {
            marker::NUMBER => Ok(number(self.f64()?)),
            marker::BOOLEAN => Ok(Value::Bool(self.u8()? != 0)),
            marker::STRING => Ok(Value::String(self.short_string()?)),
            marker::OBJECT => Ok(Value::Object(self.properties(depth)?)),
            marker::NULL | marker::UNDEFINED => Ok(Value::Null),
            marker::ECMA_ARRAY => {
                let _approx_count = self.u32()?;
                Ok(Value::Object(self.properties(depth)?))
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()?;
                let mut v = Vec::new();
                for _ in 0..count {
                    v.push(self.value_at(depth + 1)?);
                }
                Ok(Value::Array(v))
            }
            marker::DATE => {
                let ms = self.f64()?;
                self.take(2)?; // time zone, unused
                Ok(number(ms))
            }
            marker::LONG_STRING => {
                let len = self.u32()? as usize;
                Ok(Value::String(self.string_of(len)?))
            }
            other => Err(Amf0Error::UnsupportedMarker(other)),
        }
    }
}

fn number(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Encodes a value as AMF0. Maps become ECMA arrays at the top level of script data
/// (`top_level_ecma`) and objects below it, as FLV muxers write them.
pub fn encode(value: &Value, out: &mut Vec<u8>) -> Result<(), Amf0Error> {
    encode_at(value, out, 0)
}

/// Encodes a map as an ECMA array (the form of `onMetaData`'s argument).
pub fn encode_ecma_array(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), Amf0Error> {
    out.push(marker::ECMA_ARRAY);
    out.extend_from_slice(&u32::try_from(map.len()).unwrap_or(u32::MAX).to_be_bytes());
    encode_properties(map, out, 0)
}

fn encode_str(s: &str, out: &mut Vec<u8>) -> Result<(), Amf0Error> {
    let len = u16::try_from(s.len())
        .map_err(|_| Amf0Error::Unencodable("key longer than 65535 bytes"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn encode_properties(
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Amf0Error> {
    for (k, v) in map {
        encode_str(k, out)?;
        encode_at(v, out, depth + 1)?;
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
    Ok(())
}

fn encode_at(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    match value {
        Value::Null => out.push(marker::NULL),
        Value::Bool(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_be_bytes());
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(_) => {
                out.push(marker::STRING);
                encode_str(s, out)?;
            }
            Err(_) => {
                out.push(marker::LONG_STRING);
                let len = u32::try_from(s.len())
                    .map_err(|_| Amf0Error::Unencodable("string longer than 4 GiB"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        },
        Value::Array(a) => {
            out.push(marker::STRICT_ARRAY);
            let len =
                u32::try_from(a.len()).map_err(|_| Amf0Error::Unencodable("array too long"))?;
            out.extend_from_slice(&len.to_be_bytes());
            for v in a {
                encode_at(v, out, depth + 1)?;
            }
        }
        Value::Object(m) => {
            out.push(marker::OBJECT);
            encode_properties(m, out, depth)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let v = json!({"width": 320.0, "stereo": true, "encoder": "Lavf", "list": [1.0, "a", null], "o": {"x": 1.5}});
        let mut out = Vec::new();
        encode(&v, &mut out).unwrap();
        let mut d = Decoder::new(&out);
        assert_eq!(d.value().unwrap(), v);
        assert!(d.is_empty());
    }

    #[test]
    fn ecma_array() {
        let mut m = Map::new();
        m.insert("duration".into(), json!(2.0));
        let mut out = Vec::new();
        encode_ecma_array(&m, &mut out).unwrap();
        assert_eq!(Decoder::new(&out).value().unwrap(), Value::Object(m));
    }

    #[test]
    fn hostile_input() {
        assert_eq!(
            Decoder::new(&[0x0a, 0xff, 0xff, 0xff, 0xff]).value(),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            Decoder::new(&[0x0c, 0xff, 0xff, 0xff, 0xff]).value(),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            Decoder::new(&[0x11]).value(),
            Err(Amf0Error::UnsupportedMarker(0x11))
        );
        let deep: Vec<u8> = std::iter::repeat_n([0x0a, 0, 0, 0, 1], 40)
            .flatten()
            .collect();
        assert_eq!(Decoder::new(&deep).value(), Err(Amf0Error::TooDeep));
    }
}
