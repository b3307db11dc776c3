//! Golden vectors of the v0 reference (`shared/reference/minisdp/vectors/`), read at test
//! time. Every file in the directory must be consumed by some check below.
//!
//! The directory is found through `RTM_SHARED_DIR` (the `shared` directory) or by walking
//! up from `CARGO_MANIFEST_DIR` to a `shared/reference/minisdp`. When it is missing the
//! tests fail under `CI=true` and are skipped (with a message) elsewhere.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{
    self, CompressOptions, MiniSdp, Packet, PushPull, SdpKind, Status, StopPacket, WireVersion,
};
use serde_json::Value;

fn vectors_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("RTM_SHARED_DIR") {
        let p = Path::new(&dir).join("reference/minisdp/vectors");
        if p.is_dir() {
            return Some(p);
        }
    }
    let mut dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let p = d.join("shared/reference/minisdp/vectors");
        if p.is_dir() {
            return Some(p);
        }
        dir = d.parent();
    }
    None
}

fn require_vectors() -> Option<PathBuf> {
    match vectors_dir() {
        Some(d) => Some(d),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("miniSDP golden vectors not found (set RTM_SHARED_DIR)")
        }
        None => {
            eprintln!("SKIPPED: miniSDP golden vectors not found (set RTM_SHARED_DIR)");
            None
        }
    }
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|f| f.strip_suffix(".hex").map(str::to_string))
        .collect()
}

fn read(dir: &Path, name: &str, ext: &str) -> String {
    fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap()
}

fn json(dir: &Path, name: &str, ext: &str) -> Value {
    serde_json::from_str(&read(dir, name, ext)).unwrap()
}

/// The vectors whose `kind` contains `kind` (`"SDP"` or `"STP"`), with their metadata.
fn vectors_of(dir: &Path, kind: &str) -> Vec<(String, Value)> {
    names(dir)
        .into_iter()
        .map(|name| {
            let meta = json(dir, &name, "json");
            (name, meta)
        })
        .filter(|(_, meta)| meta["kind"].as_str().unwrap().contains(kind))
        .collect()
}

/// A vector's source SDP: an empty file stands for an empty session.
fn parse_source(text: &str) -> Sdp {
    if text.is_empty() {
        Sdp::default()
    } else {
        Sdp::parse(text).unwrap()
    }
}

fn packet(dir: &Path, name: &str) -> Vec<u8> {
    hex::decode(read(dir, name, "hex").trim()).unwrap()
}

fn options(attrs: &Value) -> CompressOptions {
    let kind = match attrs["sdp_type"].as_str().unwrap() {
        "offer" => SdpKind::Offer,
        "answer" => SdpKind::Answer,
        _ => SdpKind::Error,
    };
    let push = attrs["is_push"].as_str().unwrap();
    CompressOptions {
        seq: attrs["seq"].as_u64().unwrap() as u16,
        status: Status(attrs["status_code"].as_u64().unwrap() as u16),
        svrsig: attrs["svrsig"].as_str().unwrap().into(),
        imm_send: attrs["is_imm_send"].as_bool().unwrap(),
        aac_fmtp: attrs["is_support_aac_fmtp"].as_bool().unwrap(),
        push_pull: if push.starts_with("pull") {
            Some(PushPull::Pull)
        } else if push.starts_with("push") {
            Some(PushPull::Push)
        } else {
            None
        },
        ..CompressOptions::new(WireVersion::V0, kind, attrs["stream_url"].as_str().unwrap())
    }
}

fn check_fields(name: &str, m: &MiniSdp, f: &Value) {
    let u = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{name}: field {k}"));
    assert_eq!(u("version"), 0);
    assert_eq!(m.status.0 as u64, u("status"), "{name} status");
    assert_eq!(u64::from(!m.session_id_one), u("not_seq_align"), "{name}");
    assert_eq!(u64::from(!m.aac_fmtp), u("not_support_aac_fmtp"), "{name}");
    assert_eq!(
        u64::from(m.mid_style == minisdp::MidStyle::Kind),
        u("string_bundle"),
        "{name}"
    );
    let role = match m.role {
        minisdp::DtlsRole::ActPass => 0,
        minisdp::DtlsRole::Active => 1,
        minisdp::DtlsRole::Passive => 2,
    };
    assert_eq!(role, u("role"), "{name} role");
    assert_eq!(
        u64::from(!m.candidates.is_empty()),
        u("has_candidate"),
        "{name}"
    );
    assert_eq!(u64::from(m.dtls_srtp), u("dtls_srtp"), "{name}");
    let cand = m.candidates.first();
    assert_eq!(cand.map_or(0, |c| c.port) as u64, u("port"), "{name} port");
    let ip = cand.map_or("0.0.0.0".to_string(), |c| c.ip.to_string());
    assert_eq!(ip, f["ip"].as_str().unwrap(), "{name} ip");
    assert_eq!(m.seq as u64, u("seq"), "{name}");
    assert_eq!(u64::from(!m.imm_send), u("not_imm_send"), "{name}");
    let dir = match m.direction {
        rtm_sdp::sdp::Direction::SendOnly => 0,
        rtm_sdp::sdp::Direction::RecvOnly => 1,
        rtm_sdp::sdp::Direction::SendRecv => 2,
        rtm_sdp::sdp::Direction::Inactive => 3,
    };
    assert_eq!(dir, u("direction"), "{name}");
    let sdp_type = match m.kind {
        SdpKind::Answer => 1,
        _ => 0,
    };
    assert_eq!(sdp_type, u("sdp_type"), "{name}");
    let medias = f["medias"].as_array().unwrap();
    assert_eq!(m.media.len(), medias.len(), "{name}");
    for (mm, fm) in m.media.iter().zip(medias) {
        let ssrcs: Vec<u64> = [fm["ssrc1"].as_u64().unwrap(), fm["ssrc2"].as_u64().unwrap()]
            .into_iter()
            .filter(|s| *s != 0)
            .collect();
        assert_eq!(
            mm.ssrcs.iter().map(|s| *s as u64).collect::<Vec<_>>(),
            ssrcs,
            "{name}"
        );
        let codecs = fm["codecs"].as_array().unwrap();
        assert_eq!(mm.codecs.len(), codecs.len(), "{name}");
        for (c, fc) in mm.codecs.iter().zip(codecs) {
            let cu = |k: &str| fc[k].as_u64().unwrap();
            assert_eq!(c.name.id() as u64, cu("codec"), "{name}");
            assert_eq!(
                minisdp::frequency_index(c.clock_rate).unwrap() as u64,
                cu("freq_idx")
            );
            assert_eq!(c.pt as u64, cu("pt"));
            assert_eq!(u64::from(c.bframe), cu("bframe"));
            assert_eq!(u64::from(c.feedback.goog_remb), cu("remb"));
            assert_eq!(u64::from(c.feedback.transport_cc), cu("tcc"));
            assert_eq!(u64::from(c.feedback.nack), cu("nack"));
            assert_eq!(c.channels as u64, cu("channels"));
            match (&c.aac, fc.get("aac")) {
                (Some(a), Some(fa)) => {
                    assert_eq!(a.object as u64, fa["object"].as_u64().unwrap());
                    let flag = u64::from(a.ps)
                        | u64::from(a.sbr) << 1
                        | u64::from(a.stereo) << 2
                        | u64::from(a.cpresent) << 3;
                    assert_eq!(flag, fa["flag"].as_u64().unwrap());
                    assert_eq!(hex::encode(&a.config), fa["config"].as_str().unwrap());
                }
                (None, None) => {}
                other => panic!("{name}: AAC block mismatch {other:?}"),
            }
        }
        let exts: Vec<(u64, u64)> = fm["exts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_u64().unwrap(), e[1].as_u64().unwrap()))
            .collect();
        let ours: Vec<(u64, u64)> = mm
            .extensions
            .iter()
            .map(|e| (e.id as u64, e.uri.v0_index().unwrap() as u64))
            .collect();
        assert_eq!(ours, exts, "{name} extensions");
    }
    assert_eq!(m.ice_ufrag, f["ufrag"].as_str().unwrap());
    assert_eq!(m.ice_pwd, f["pwd"].as_str().unwrap());
    assert_eq!(
        m.url,
        format!("webrtc://{}", f["url_tail"].as_str().unwrap())
    );
    let fp = m
        .fingerprint
        .as_ref()
        .map(|f| f.to_string())
        .unwrap_or_default();
    assert_eq!(fp, f["fingerprint"].as_str().unwrap());
    assert_eq!(m.svrsig, f["svrsig"].as_str().unwrap());
    assert!(m.auth.is_empty());
    let push = f["push_byte"].as_u64();
    assert_eq!(
        m.push_pull.map(|p| u64::from(p == PushPull::Push)),
        push,
        "{name} push"
    );
}

fn check_decoded_attrs(name: &str, m: &MiniSdp, d: &Value) {
    assert_eq!(d["stream_url"].as_str().unwrap(), m.url, "{name}");
    assert_eq!(
        d["svrsig"].as_str().unwrap(),
        m.reference_svrsig(),
        "{name}"
    );
    assert_eq!(d["seq"].as_u64().unwrap(), m.seq as u64);
    assert_eq!(d["status_code"].as_u64().unwrap(), m.status.0 as u64);
    assert_eq!(d["imm_send"].as_u64().unwrap(), u64::from(m.imm_send));
    assert_eq!(
        d["support_aac_fmtp"].as_u64().unwrap(),
        u64::from(m.aac_fmtp)
    );
    let push = match m.push_pull {
        None => "default",
        Some(PushPull::Pull) => "pull",
        Some(PushPull::Push) => "push",
    };
    assert_eq!(d["is_push"].as_str().unwrap(), push, "{name}");
    assert_eq!(
        d["packet_len"].as_u64().unwrap(),
        d["consumed"].as_u64().unwrap()
    );
}

#[test]
fn every_vector_file_is_covered() {
    let Some(dir) = require_vectors() else { return };
    let names = names(&dir);
    assert!(
        names.len() >= 8,
        "expected at least 8 vectors, found {names:?}"
    );
    for entry in fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let (stem, ext) = file.split_once('.').unwrap();
        assert!(names.contains(stem), "{file} has no .hex packet");
        assert!(
            ["hex", "json", "fields.json", "sdp", "decoded.sdp"].contains(&ext),
            "{file}: unknown vector file kind"
        );
    }
}

#[test]
fn sdp_vectors_decode_like_the_reference() {
    let Some(dir) = require_vectors() else { return };
    for (name, meta) in vectors_of(&dir, "SDP") {
        let bytes = packet(&dir, &name);
        assert_eq!(
            meta["sizes"]["packet_bytes"].as_u64().unwrap() as usize,
            bytes.len()
        );
        let Packet::Sdp(m) = minisdp::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
        else {
            panic!("{name}: not an SDP packet")
        };
        assert_eq!(m.version, WireVersion::V0);
        check_fields(&name, &m, &json(&dir, &name, "fields.json"));
        check_decoded_attrs(&name, &m, &meta["attrs_decoded"]);
        let expanded = m.to_sdp().to_string();
        assert_eq!(
            expanded,
            read(&dir, &name, "decoded.sdp"),
            "{name}: expansion differs"
        );
        assert_eq!(
            meta["sizes"]["decoded_sdp_bytes"].as_u64().unwrap() as usize,
            expanded.len()
        );
        // The decoded model re-encodes to the same bytes.
        assert_eq!(m.encode().unwrap(), bytes, "{name}: re-encode differs");
        // The reference's own expansion parses with our SDP parser.
        Sdp::parse(&expanded).unwrap();
    }
}

#[test]
fn sdp_vectors_encode_byte_identical() {
    let Some(dir) = require_vectors() else { return };
    for (name, meta) in vectors_of(&dir, "SDP") {
        let text = read(&dir, &name, "sdp");
        assert_eq!(
            meta["sizes"]["sdp_bytes"].as_u64().unwrap() as usize,
            text.len()
        );
        let sdp = parse_source(&text);
        let opts = options(&meta["attrs_in"]);
        let ours = MiniSdp::from_sdp(&sdp, &opts).unwrap().encode().unwrap();
        let reference = packet(&dir, &name);
        if name == "answer_ipv6" {
            // Deliberate difference: the reference loses the IPv6 candidate (IP all zero,
            // ip_type 0); we send it with ip_type = 1. Everything else is identical.
            assert_eq!(ours.len(), reference.len());
            assert_eq!(ours[7], reference[7] | 0x80);
            let ip: IpAddr = "2001:db8:85a3::8a2e:370:7334".parse().unwrap();
            let IpAddr::V6(v6) = ip else { unreachable!() };
            assert_eq!(&ours[10..26], &v6.octets());
            assert_eq!(&reference[10..26], &[0u8; 16]);
            let mask = |b: &[u8]| {
                let mut b = b.to_vec();
                b[7] &= 0x7F;
                b[10..26].fill(0);
                b
            };
            assert_eq!(mask(&ours), mask(&reference));
            let back = MiniSdp::decode(&ours).unwrap();
            assert_eq!(back.candidates[0].ip, ip);
            assert!(back.to_sdp().to_string().contains("c=IN IP6 ::\r\n"));
        } else {
            assert_eq!(
                hex::encode(&ours),
                hex::encode(&reference),
                "{name}: encoding differs"
            );
        }
    }
}

#[test]
fn stop_vectors_round_trip() {
    let Some(dir) = require_vectors() else { return };
    let mut seen = 0;
    for (name, meta) in vectors_of(&dir, "STP") {
        seen += 1;
        let bytes = packet(&dir, &name);
        let Packet::Stop(s) = minisdp::decode(&bytes).unwrap() else {
            panic!("{name}")
        };
        let fields = json(&dir, &name, "fields.json");
        assert_eq!(s.status.0 as u64, fields["status"].as_u64().unwrap());
        assert_eq!(s.seq as u64, fields["seq"].as_u64().unwrap());
        assert_eq!(s.svrsig, fields["svrsig"].as_str().unwrap());
        assert!(s.auth.is_empty());
        let d = &meta["attrs_decoded"];
        assert_eq!(d["svrsig"].as_str().unwrap(), s.svrsig);
        assert_eq!(d["status"].as_str().unwrap(), s.status.0.to_string());
        assert_eq!(d["consumed"].as_str().unwrap(), bytes.len().to_string());
        let a = &meta["attrs_in"];
        let built = StopPacket {
            version: WireVersion::V0,
            status: Status(a["status"].as_u64().unwrap() as u16),
            seq: a["seq"].as_u64().unwrap() as u16,
            svrsig: a["svrsig"].as_str().unwrap().into(),
            auth: Vec::new(),
        };
        assert_eq!(
            minisdp::encode(&Packet::Stop(built)).unwrap(),
            bytes,
            "{name}"
        );
    }
    assert_eq!(seen, 2);
}

#[test]
fn sdp_vectors_in_the_extended_format() {
    let Some(dir) = require_vectors() else { return };
    for (name, meta) in vectors_of(&dir, "SDP") {
        let text = read(&dir, &name, "sdp");
        let sdp = parse_source(&text);
        let mut opts = options(&meta["attrs_in"]);
        opts.version = WireVersion::Ext;
        let m = MiniSdp::from_sdp(&sdp, &opts).unwrap();
        let bytes = m.encode().unwrap();
        assert!(
            bytes.len() <= 300,
            "{name}: extended packet is {} bytes",
            bytes.len()
        );
        let back = MiniSdp::decode(&bytes).unwrap();
        assert_eq!(back, m, "{name}");
        // Expansion of the extended form parses and compresses to the same model again.
        let again = MiniSdp::from_sdp(&back.to_sdp(), &opts).unwrap();
        assert_eq!(again.media, m.media, "{name}");
    }
}
