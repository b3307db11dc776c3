//! The offer a native RTM player sends: H.264 (+H.265) video, AAC and/or Opus audio, the
//! RTM header extensions at their customary ids, one or more candidates.

use std::net::SocketAddr;

use super::model::*;
use crate::ExtensionUri;
use crate::sdp::{CandidateType, Direction, Fingerprint};

/// Audio codecs a player can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodecs {
    Opus,
    Aac,
    Both,
}

/// Inputs of a typical pull offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOffer {
    pub version: WireVersion,
    pub url: String,
    pub seq: u16,
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub fingerprint: Fingerprint,
    pub candidates: Vec<SocketAddr>,
    pub audio: AudioCodecs,
    /// Offer H.265 (PT 104) besides H.264 (PT 102).
    pub h265: bool,
    /// Signed token from an earlier session (0-RTT); v0 can only carry 16 bytes.
    pub auth: Vec<u8>,
    pub ticket: Option<Vec<u8>>,
    pub imm_send: bool,
}

const FB: Feedback = Feedback {
    nack: true,
    nack_pli: true,
    ccm_fir: false,
    goog_remb: false,
    transport_cc: true,
};

impl PullOffer {
    /// Builds the offer. Extensions the chosen version cannot name are left out.
    pub fn build(&self) -> MiniSdp {
        let mut m = MiniSdp::new(self.version, SdpKind::Offer, &self.url);
        m.seq = self.seq;
        m.direction = Direction::RecvOnly;
        m.imm_send = self.imm_send;
        m.push_pull = Some(PushPull::Pull);
        m.ice_ufrag = self.ice_ufrag.clone();
        m.ice_pwd = self.ice_pwd.clone();
        m.fingerprint = Some(self.fingerprint.clone());
        m.auth = self.auth.clone();
        m.ticket = self.ticket.clone();
        m.candidates = self
            .candidates
            .iter()
            .map(|a| MiniCandidate {
                ip: a.ip(),
                port: a.port(),
                typ: CandidateType::Host,
            })
            .collect();
        if self.version == WireVersion::V0 {
            m.candidates.truncate(1);
            for c in &mut m.candidates {
                c.typ = CandidateType::Srflx;
            }
        }
        let keep = |uri: ExtensionUri| self.version == WireVersion::Ext || uri.v0_index().is_some();
        let ext = |list: &[(u8, ExtensionUri)]| -> Vec<MiniExtension> {
            list.iter()
                .filter(|(_, u)| keep(*u))
                .map(|&(id, uri)| MiniExtension { id, uri })
                .collect()
        };

        let mut audio = MiniMedia::new(MiniMediaKind::Audio);
        if matches!(self.audio, AudioCodecs::Aac | AudioCodecs::Both) {
            let mut c = MiniCodec::new(CodecName::Mp4aLatm, 98, 48_000, 2);
            c.feedback = Feedback {
                nack: true,
                transport_cc: true,
                ..Feedback::default()
            };
            c.aac = Some(AacParams::default());
            audio.codecs.push(c);
        }
        if matches!(self.audio, AudioCodecs::Opus | AudioCodecs::Both) {
            let mut c = MiniCodec::new(CodecName::Opus, 111, 48_000, 2);
            c.feedback = Feedback {
                nack: true,
                transport_cc: true,
                ..Feedback::default()
            };
            if self.version == WireVersion::Ext {
                c.opus = Some(OpusParams {
                    minptime: 10,
                    useinbandfec: true,
                    stereo: true,
                });
            }
            audio.codecs.push(c);
        }
        audio.extensions = ext(&[
            (3, ExtensionUri::TransportWideCc),
            (18, ExtensionUri::DecodingTimestamp),
            (27, ExtensionUri::AacConfig),
        ]);

        let mut video = MiniMedia::new(MiniMediaKind::Video);
        let mut h264 = MiniCodec::new(CodecName::H264, 102, 90_000, 0);
        h264.feedback = FB;
        if self.version == WireVersion::Ext {
            h264.feedback.ccm_fir = true;
            h264.h264 = Some(H264Params {
                profile_level_id: [0x42, 0xe0, 0x1f],
                packetization_mode: 1,
                level_asymmetry_allowed: true,
            });
        }
        video.codecs.push(h264);
        if self.h265 {
            let mut c = MiniCodec::new(CodecName::H265, 104, 90_000, 0);
            c.feedback = FB;
            c.bframe = true;
            video.codecs.push(c);
        }
        if self.version == WireVersion::V0 {
            for c in &mut video.codecs {
                c.feedback.nack_pli = false;
            }
        }
        video.extensions = ext(&[
            (3, ExtensionUri::TransportWideCc),
            (18, ExtensionUri::DecodingTimestamp),
            (19, ExtensionUri::CompositionTime),
            (21, ExtensionUri::FrameSeqRange),
            (22, ExtensionUri::FrameType),
            (23, ExtensionUri::ReferenceFrameTimestamp),
        ]);
        m.media = vec![audio, video];
        m
    }
}
