//! Closed label sets for metrics, as enums.
//!
//! Every label value is known at compile time, so a labelled counter is an array of atomics
//! indexed by the enum: recording is one relaxed `fetch_add`, no hashing, no lock (see
//! `docs/decisions.md`, "Metrics"). Open-ended labels (stream names, origin URLs) are not
//! recorded on the media path at all; they are read from snapshots at scrape time.

/// An enum usable as a metric label.
pub trait Label: Copy + 'static {
    /// The Prometheus label name.
    const NAME: &'static str;
    /// Every value, in index order.
    const ALL: &'static [Self];
    fn index(self) -> usize;
    /// The Prometheus label value.
    fn as_str(self) -> &'static str;
}

macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident, $label:literal { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        impl Label for $name {
            const NAME: &'static str = $label;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn index(self) -> usize { self as usize }
            fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

label_enum!(
    /// How a session reaches rtmlive.
    Protocol, "protocol" {
        /// miniSDP over UDP (playback).
        MiniSdp => "minisdp",
        /// WHEP over HTTP (browser playback).
        Whep => "whep",
        /// HTTP-FLV playback.
        HttpFlv => "http_flv",
        /// RTMP publish (ingest).
        Rtmp => "rtmp",
        /// WHIP publish (ingest).
        Whip => "whip",
    }
);

label_enum!(
    /// Where a session is in its life.
    SessionState, "state" {
        /// Answered; waiting for STUN/DTLS.
        Pending => "pending",
        /// Media flowing.
        Connected => "connected",
        /// Shutdown started; finishing.
        Draining => "draining",
    }
);

label_enum!(
    /// Server-side first-frame stages. Player stages are measured from the offer received, origin
    /// stages from the pull start, so each is the cumulative time to that point.
    Stage, "stage" {
        /// Offer received → answer sent.
        AnswerSent => "answer_sent",
        /// Offer received → first STUN binding request from the player.
        StunReceived => "stun_received",
        /// Offer received → DTLS handshake complete.
        DtlsDone => "dtls_done",
        /// Offer received → first keyframe packet sent.
        FirstKeyframeSent => "first_keyframe_sent",
        /// Pull start → origin TCP connected.
        OriginConnected => "origin_connected",
        /// Pull start → first byte from the origin.
        OriginFirstByte => "origin_first_byte",
        /// Pull start → first keyframe from the origin.
        OriginFirstKeyframe => "origin_first_keyframe",
    }
);

label_enum!(
    /// Outgoing traffic classes.
    EgressKind, "kind" {
        /// First transmission of RTP media.
        Media => "media",
        /// RTP retransmissions (NACK answers, GOP replay).
        Retransmit => "retransmit",
        /// RTCP (SR, BYE…).
        Rtcp => "rtcp",
        /// STUN, DTLS and miniSDP replies.
        Control => "control",
        /// HTTP-FLV body bytes.
        Flv => "flv",
    }
);

label_enum!(
    /// Incoming traffic sources.
    IngressSource, "source" {
        /// Pulled from an upstream origin.
        Origin => "origin",
        /// RTMP publishers.
        Rtmp => "rtmp",
        /// WHIP publishers.
        Whip => "whip",
        /// UDP datagrams from players (miniSDP, STUN, DTLS, RTCP).
        Player => "player",
    }
);

label_enum!(
    /// Where a stream's media comes from.
    StreamSource, "source" {
        Origin => "origin",
        Rtmp => "rtmp",
        Whip => "whip",
        Demo => "demo",
    }
);

label_enum!(
    /// SRTP failure kinds.
    SrtpFailure, "kind" {
        /// Could not encrypt an outgoing packet.
        Protect => "protect",
        /// Authentication/decryption of an incoming packet failed.
        Unprotect => "unprotect",
        /// Incoming packet refused by the replay window (duplicate or too old).
        Replay => "replay",
    }
);

label_enum!(
    /// DTLS failure kinds.
    DtlsFailure, "kind" {
        /// Handshake error (bad record, fingerprint mismatch, a fatal alert from the peer —
        /// rtc-dtls reports those as handshake errors too, so they are not told apart).
        Handshake => "handshake",
        /// Handshake did not finish within `timeouts.dtls_handshake_ms`.
        Timeout => "timeout",
    }
);

label_enum!(
    /// miniSDP reply status (see WIRE-FORMAT A.12).
    MiniSdpStatus, "status" {
        Ok => "0",
        FormatError => "100",
        ParameterError => "101",
        StreamInfoError => "102",
        AuthError => "103",
        NotFound => "104",
        /// Any code not listed above.
        Other => "other",
    }
);

impl MiniSdpStatus {
    /// Maps a wire status code.
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => MiniSdpStatus::Ok,
            100 => MiniSdpStatus::FormatError,
            101 => MiniSdpStatus::ParameterError,
            102 => MiniSdpStatus::StreamInfoError,
            103 => MiniSdpStatus::AuthError,
            104 => MiniSdpStatus::NotFound,
            _ => MiniSdpStatus::Other,
        }
    }
}

label_enum!(
    /// How an origin pull ended.
    PullOutcome, "outcome" {
        /// Ended normally (stream over or no viewers left).
        Ended => "ended",
        /// TCP connect failed or timed out.
        ConnectFailed => "connect_failed",
        /// Connected, but first byte or first keyframe did not arrive in time.
        Timeout => "timeout",
        /// Data stopped for `timeouts.origin_stall_ms`.
        Stalled => "stalled",
        /// Origin refused (HTTP status, RTMP error, stream not found).
        Rejected => "rejected",
        /// Malformed data from the origin.
        ProtocolError => "protocol_error",
    }
);

label_enum!(
    /// Why a session request was refused.
    RejectReason, "reason" {
        /// `limits.max_sessions` / `max_pending_sessions` reached.
        Limit => "limit",
        /// Bad or missing token / stream key.
        Auth => "auth",
        /// Shutdown in progress.
        Draining => "draining",
        /// Stream unknown and no origin for it.
        NotFound => "not_found",
        /// Malformed request.
        BadRequest => "bad_request",
    }
);

label_enum!(
    /// Outcome of a retransmission request for one sequence number.
    RetransmitOutcome, "outcome" {
        /// Found in the retransmit cache and sent.
        Sent => "sent",
        /// No longer (or never) in the cache.
        NotCached => "not_cached",
    }
);
