//! AMF0 (Action Message Format 0): the value encoding of RTMP commands and `onMetaData`.
//!
//! Only the types RTMP peers actually send are supported. Decoding is bounded: nesting depth is
//! capped and no allocation is sized from a length field before the bytes are known to exist.

use bytes::{BufMut, Bytes};

/// Deepest object/array nesting accepted: real commands nest two or three levels.
pub const MAX_DEPTH: usize = 32;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const DATE: u8 = 0x0b;
const LONG_STRING: u8 = 0x0c;

/// One AMF0 value. Objects and ECMA arrays keep their key order (some peers care).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// A string; encoded as a long string when longer than 65,535 bytes, and both wire forms
    /// decode to this variant.
    String(String),
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the Unix epoch and the (ignored by everyone) time-zone offset.
    Date {
        millis: f64,
        tz: i16,
    },
}

/// Why an AMF0 value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    #[error("AMF0 value truncated")]
    Truncated,
    #[error("unsupported AMF0 type marker {0:#04x}")]
    UnsupportedType(u8),
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("AMF0 object-end marker outside an object")]
    UnexpectedObjectEnd,
}

impl Amf0Value {
    /// The string inside `String`, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside `Number`, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties of an `Object` or `EcmaArray`.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// Looks up a property of an object or ECMA array by name.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Convenience constructor for an object from `(&str, value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Amf0Value)>) -> Amf0Value {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Convenience constructor for a string value.
    pub fn string(s: impl Into<String>) -> Amf0Value {
        Amf0Value::String(s.into())
    }

    /// Appends the encoding of this value to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Amf0Value::Number(n) => {
                out.put_u8(NUMBER);
                out.put_f64(*n);
            }
            Amf0Value::Boolean(b) => {
                out.put_u8(BOOLEAN);
                out.put_u8(u8::from(*b));
            }
            Amf0Value::String(s) => match u16::try_from(s.len()) {
                Ok(len) => {
                    out.put_u8(STRING);
                    out.put_u16(len);
                    out.put_slice(s.as_bytes());
                }
                Err(_) => {
                    out.put_u8(LONG_STRING);
                    // Strings longer than 4 GiB cannot be built from RTMP input; saturate.
                    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                    out.put_slice(s.as_bytes());
                }
            },
            Amf0Value::Object(props) => {
                out.put_u8(OBJECT);
                encode_props(props, out);
            }
            Amf0Value::Null => out.put_u8(NULL),
            Amf0Value::Undefined => out.put_u8(UNDEFINED),
            Amf0Value::EcmaArray(props) => {
                out.put_u8(ECMA_ARRAY);
                out.put_u32(u32::try_from(props.len()).unwrap_or(u32::MAX));
                encode_props(props, out);
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(STRICT_ARRAY);
                out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
                for v in items {
                    v.encode(out);
                }
            }
            Amf0Value::Date { millis, tz } => {
                out.put_u8(DATE);
                out.put_f64(*millis);
                out.put_i16(*tz);
            }
        }
    }

    /// Decodes one value from the front of `input`, advancing it.
    pub fn decode(input: &mut &[u8]) -> Result<Amf0Value, Amf0Error> {
        decode_value(input, 0)
    }
}

/// Encodes a sequence of values (a command: name, transaction id, arguments...).
pub fn encode_all(values: &[Amf0Value]) -> Bytes {
    let mut out = Vec::new();
    for v in values {
        v.encode(&mut out);
    }
    Bytes::from(out)
}

/// Decodes values until `input` is exhausted.
pub fn decode_all(mut input: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut values = Vec::new();
    while !input.is_empty() {
        values.push(decode_value(&mut input, 0)?);
    }
    Ok(values)
}

fn encode_props(props: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (k, v) in props {
        // Keys are short by construction; a key over 64 KiB is cut rather than mis-framed.
        let key = &k.as_bytes()[..k.len().min(usize::from(u16::MAX))];
        out.put_u16(key.len() as u16);
        out.put_slice(key);
        v.encode(out);
    }
    out.put_slice(&[0, 0, OBJECT_END]);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if input.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_array<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], Amf0Error> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(input, N)?);
    Ok(a)
}

fn take_str(input: &mut &[u8], len: usize) -> Result<String, Amf0Error> {
    Ok(String::from_utf8_lossy(take(input, len)?).into_owned())
}

fn decode_value(input: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    let [marker] = take_array::<1>(input)?;
    Ok(match marker {
        NUMBER => Amf0Value::Number(f64::from_be_bytes(take_array(input)?)),
        BOOLEAN => Amf0Value::Boolean(take_array::<1>(input)?[0] != 0),
        STRING => {
            let len = u16::from_be_bytes(take_array(input)?);
            Amf0Value::String(take_str(input, usize::from(len))?)
        }
        LONG_STRING => {
            let len = u32::from_be_bytes(take_array(input)?);
            Amf0Value::String(take_str(input, len as usize)?)
        }
        OBJECT => Amf0Value::Object(decode_props(input, depth)?),
        NULL => Amf0Value::Null,
        UNDEFINED => Amf0Value::Undefined,
        ECMA_ARRAY => {
            // The count is advisory (encoders get it wrong); the end marker terminates.
            let _count = u32::from_be_bytes(take_array(input)?);
            Amf0Value::EcmaArray(decode_props(input, depth)?)
        }
        STRICT_ARRAY => {
            let count = u32::from_be_bytes(take_array(input)?);
            // Every element takes at least one byte: never reserve more than what is left.
            let mut items = Vec::with_capacity((count as usize).min(input.len()));
            for _ in 0..count {
                items.push(decode_value(input, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        DATE => {
            let millis = f64::from_be_bytes(take_array(input)?);
            let tz = i16::from_be_bytes(take_array(input)?);
            Amf0Value::Date { millis, tz }
        }
        OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd),
        other => return Err(Amf0Error::UnsupportedType(other)),
    })
}

fn decode_props(input: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
    let mut props = Vec::new();
    loop {
        let len = u16::from_be_bytes(take_array(input)?);
        if len == 0 && input.first() == Some(&OBJECT_END) {
            *input = &input[1..];
            return Ok(props);
        }
        let key = take_str(input, usize::from(len))?;
        let value = decode_value(input, depth + 1)?;
        props.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect_command_round_trips() {
        let values = vec![
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("fpad", Amf0Value::Boolean(false)),
                ("capabilities", Amf0Value::Number(15.0)),
                (
                    "fourCcList",
                    Amf0Value::StrictArray(vec![Amf0Value::string("hvc1")]),
                ),
            ]),
            Amf0Value::Null,
            Amf0Value::Undefined,
            Amf0Value::EcmaArray(vec![("duration".into(), Amf0Value::Number(0.0))]),
            Amf0Value::Date {
                millis: 1.5e12,
                tz: 0,
            },
        ];
        let bytes = encode_all(&values);
        assert_eq!(decode_all(&bytes).unwrap(), values);
        assert_eq!(
            values[2].get("app").and_then(Amf0Value::as_str),
            Some("live")
        );
    }

    #[test]
    fn long_string_is_used_above_64k() {
        let s = "x".repeat(70_000);
        let mut out = Vec::new();
        Amf0Value::string(s.clone()).encode(&mut out);
        assert_eq!(out[0], LONG_STRING);
        assert_eq!(decode_all(&out).unwrap(), vec![Amf0Value::String(s)]);
    }

    #[test]
    fn known_bytes_decode() {
        // "onStatus" as ffmpeg sends it.
        let b = [
            0x02, 0x00, 0x08, b'o', b'n', b'S', b't', b'a', b't', b'u', b's',
        ];
        assert_eq!(decode_all(&b).unwrap(), vec![Amf0Value::string("onStatus")]);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        assert_eq!(decode_all(&[0x00, 1, 2]), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x11]), Err(Amf0Error::UnsupportedType(0x11)));
        assert_eq!(decode_all(&[0x09]), Err(Amf0Error::UnexpectedObjectEnd));
        // Strict array claiming 4 billion elements with nothing behind it.
        assert_eq!(
            decode_all(&[0x0a, 0xff, 0xff, 0xff, 0xff]),
            Err(Amf0Error::Truncated)
        );
        let deep = [0x0a, 0, 0, 0, 1].repeat(100);
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(|n| Amf0Value::Number(f64::from(n))),
            any::<bool>().prop_map(Amf0Value::Boolean),
            "[a-zA-Z0-9 ._-]{0,20}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::Object),
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in arb_value()) {
            let mut out = Vec::new();
            v.encode(&mut out);
            prop_assert_eq!(decode_all(&out).unwrap(), vec![v]);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_all(&bytes);
        }
    }
}
