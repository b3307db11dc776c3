//! `minisdp`: decode and encode miniSDP packets (v0 and rtmlive's extended format).
//!
//! ```text
//! minisdp decode ff534450…            # hex on the command line
//! minisdp decode @packet.bin          # binary (or hex text) file; @- reads stdin
//! minisdp encode --sdp offer.sdp --url webrtc://host/app/stream --seq 1 --pull
//! minisdp stop --svrsig 203.0.113.10:srv:cli --seq 2 --status 103
//! ```

#![recursion_limit = "256"]

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rtm_sdp::Sdp;
use rtm_sdp::minisdp::{
    self, CodecSet, CompressOptions, MiniSdp, Packet, PushPull, SdpKind, Status, StopPacket,
    WireVersion,
};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "minisdp",
    version,
    about = "miniSDP packet tool (v0 and rtmlive extended)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Version {
    V0,
    Ext,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Offer,
    Answer,
    Error,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// `{"attributes": …, "sdp": "…"}`
    Json,
    /// Expanded SDP text only.
    Sdp,
    /// Packet attributes only (JSON).
    Attrs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Decode a packet: hex, or @FILE (binary or hex text; @- = stdin).
    Decode {
        input: String,
        #[arg(long, value_enum, default_value = "json")]
        output: Output,
    },
    /// Compress an SDP file into an offer/answer/error packet; prints hex.
    Encode {
        #[arg(long)]
        sdp: Option<String>,
        #[arg(long, value_enum, default_value = "v0")]
        version: Version,
        #[arg(long = "type", value_enum, default_value = "offer")]
        kind: Kind,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 0)]
        seq: u16,
        #[arg(long, default_value_t = 0)]
        status: u16,
        #[arg(long, default_value = "")]
        svrsig: String,
        #[arg(long)]
        imm_send: bool,
        /// Clear the v0 "AAC fmtp supported" switch (no AAC blocks).
        #[arg(long)]
        no_aac_fmtp: bool,
        #[arg(long, conflicts_with = "pull")]
        push: bool,
        #[arg(long)]
        pull: bool,
        /// Auth token as hex (v0: exactly 16 bytes).
        #[arg(long)]
        auth: Option<String>,
        /// Resumption ticket as hex (extended format).
        #[arg(long)]
        ticket: Option<String>,
        /// Extended format: keep only codecs an rtmlive edge can send.
        #[arg(long)]
        playable: bool,
    },
    /// Build a stop packet; prints hex.
    Stop {
        #[arg(long, value_enum, default_value = "v0")]
        version: Version,
        #[arg(long)]
        svrsig: String,
        #[arg(long, default_value_t = 0)]
        seq: u16,
        #[arg(long, default_value_t = 0)]
        status: u16,
        #[arg(long)]
        auth: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("minisdp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn wire(v: Version) -> WireVersion {
    match v {
        Version::V0 => WireVersion::V0,
        Version::Ext => WireVersion::Ext,
    }
}

fn read_input(input: &str) -> Result<Vec<u8>, String> {
    let raw = match input.strip_prefix('@') {
        Some("-") => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| e.to_string())?;
            b
        }
        Some(path) => std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
        None => input.as_bytes().to_vec(),
    };
    if raw.first() == Some(&0xFF) {
        return Ok(raw);
    }
    let text: String = String::from_utf8_lossy(&raw).split_whitespace().collect();
    hex::decode(text.trim_start_matches("0x")).map_err(|e| format!("input is not hex: {e}"))
}

fn hex_arg(v: &Option<String>) -> Result<Vec<u8>, String> {
    v.as_deref().map_or(Ok(Vec::new()), |h| {
        hex::decode(h).map_err(|e| format!("bad hex: {e}"))
    })
}

fn run(cli: Cli) -> Result<String, String> {
    match cli.cmd {
        Cmd::Decode { input, output } => {
            let bytes = read_input(&input)?;
            let packet = minisdp::decode(&bytes).map_err(|e| e.to_string())?;
            let (attrs, sdp) = match &packet {
                Packet::Sdp(m) => (describe(m, bytes.len()), Some(m.to_sdp().to_string())),
                Packet::Stop(s) => (describe_stop(s, bytes.len()), None),
            };
            Ok(match output {
                Output::Json => {
                    serde_json::to_string_pretty(&json!({"attributes": attrs, "sdp": sdp}))
                        .map_err(|e| e.to_string())?
                }
                Output::Sdp => sdp.ok_or("a stop packet has no SDP")?,
                Output::Attrs => serde_json::to_string_pretty(&attrs).map_err(|e| e.to_string())?,
            })
        }
        Cmd::Encode {
            sdp,
            version,
            kind,
            url,
            seq,
            status,
            svrsig,
            imm_send,
            no_aac_fmtp,
            push,
            pull,
            auth,
            ticket,
            playable,
        } => {
            let model = match &sdp {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                    Sdp::parse(&text).map_err(|e| format!("{path}: {e}"))?
                }
                None => Sdp::default(),
            };
            let kind = match kind {
                Kind::Offer => SdpKind::Offer,
                Kind::Answer => SdpKind::Answer,
                Kind::Error => SdpKind::Error,
            };
            let opts = CompressOptions {
                seq,
                status: Status(status),
                svrsig,
                imm_send,
                aac_fmtp: !no_aac_fmtp,
                push_pull: if push {
                    Some(PushPull::Push)
                } else if pull {
                    Some(PushPull::Pull)
                } else {
                    None
                },
                auth: hex_arg(&auth)?,
                ticket: ticket.as_ref().map(|_| hex_arg(&ticket)).transpose()?,
                codecs: if playable {
                    CodecSet::Playable
                } else {
                    CodecSet::All
                },
                ..CompressOptions::new(wire(version), kind, &url)
            };
            let m = MiniSdp::from_sdp(&model, &opts).map_err(|e| e.to_string())?;
            Ok(hex::encode(m.encode().map_err(|e| e.to_string())?))
        }
        Cmd::Stop {
            version,
            svrsig,
            seq,
            status,
            auth,
        } => {
            let s = StopPacket {
                version: wire(version),
                status: Status(status),
                seq,
                svrsig,
                auth: hex_arg(&auth)?,
            };
            Ok(hex::encode(s.encode().map_err(|e| e.to_string())?))
        }
    }
}

fn version_name(v: WireVersion) -> &'static str {
    match v {
        WireVersion::V0 => "v0",
        WireVersion::Ext => "ext",
    }
}

fn describe(m: &MiniSdp, len: usize) -> Value {
    json!({
        "packet": "SDP",
        "version": version_name(m.version),
        "packet_len": len,
        "sdp_type": format!("{:?}", m.kind).to_lowercase(),
        "status_code": m.status.0,
        "seq": m.seq,
        "stream_url": m.url,
        "direction": m.direction.as_str(),
        "role": format!("{:?}", m.role).to_lowercase(),
        "dtls_srtp": m.dtls_srtp,
        "imm_send": m.imm_send,
        "ice_lite": m.ice_lite,
        "support_aac_fmtp": m.aac_fmtp,
        "is_push": match m.push_pull { None => "default", Some(PushPull::Push) => "push", Some(PushPull::Pull) => "pull" },
        "ice_ufrag": m.ice_ufrag,
        "ice_pwd": m.ice_pwd,
        "fingerprint": m.fingerprint.as_ref().map(|f| f.to_string()),
        "candidates": m.candidates.iter().map(|c| json!({"addr": c.addr().to_string(), "type": c.typ.as_str()})).collect::<Vec<_>>(),
        "svrsig_wire": m.svrsig,
        "svrsig": m.reference_svrsig(),
        "auth_hex": hex::encode(&m.auth),
        "ticket_hex": m.ticket.as_ref().map(hex::encode),
        "media": m.media.iter().map(|md| json!({
            "kind": md.kind.mid_name(),
            "ssrcs": md.ssrcs,
            "rtx_groups": md.rtx_groups,
            "codecs": md.codecs.iter().map(|c| json!({
                "name": c.name.as_str(), "pt": c.pt, "clock_rate": c.clock_rate,
                "channels": c.channels, "feedback": c.feedback, "bframe": c.bframe,
                "aac": c.aac.as_ref().map(|a| json!({"object": a.object, "ps": a.ps, "sbr": a.sbr,
                    "stereo": a.stereo, "cpresent": a.cpresent, "config": hex::encode(&a.config)})),
                "h264": c.h264.map(|h| json!({"profile_level_id": hex::encode(h.profile_level_id),
                    "packetization_mode": h.packetization_mode,
                    "level_asymmetry_allowed": h.level_asymmetry_allowed})),
                "opus": c.opus, "apt": c.apt,
            })).collect::<Vec<_>>(),
            "extensions": md.extensions.iter().map(|e| json!({"id": e.id, "uri": e.uri.as_str()})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn describe_stop(s: &StopPacket, len: usize) -> Value {
    json!({
        "packet": "STP",
        "version": version_name(s.version),
        "packet_len": len,
        "status": s.status.0,
        "seq": s.seq,
        "svrsig": s.svrsig,
        "auth_hex": hex::encode(&s.auth),
    })
}
