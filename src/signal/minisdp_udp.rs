//! miniSDP on the media port: one offer datagram in, one answer datagram out.
//!
//! The handler runs inside the shard that received the offer (the same shard then receives the
//! client's STUN and DTLS from the same 5-tuple), so an offer costs no cross-thread hop:
//!
//! 1. decode (v0 or extended) and de-duplicate: a retransmitted offer (same source, same
//!    `seq`) gets the same answer again and creates nothing;
//! 2. validate the URL and authenticate the token (status 101/103 on failure);
//! 3. resolve the stream: a stream not in the hub starts its origin pull **here, before the
//!    answer is sent** — the answer never waits for the origin (status 104 if no origin
//!    serves it);
//! 4. negotiate, register the pending session, and answer in the client's own version through
//!    the session's anti-amplification budget (never more than 3× what the client sent before
//!    STUN verifies its address).
//!
//! Stop packets end the session their `svrsig` names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtm_sdp::minisdp::{
    self, CompressOptions, MiniSdp, Packet, SdpKind, Status, StopPacket, WireVersion,
};

use super::auth::{TokenAuthority, TokenKind};
use super::negotiate::{LocalDescription, negotiate, random_ice_string, stream_key};
use super::{ResolveError, StreamResolver};
use crate::ops::{Metrics, Protocol, RejectReason};
use crate::server::media_source::HubSource;
use crate::transport::shard::{Registrar, ShardError, SignalingHandler, ufrag_for_shard};
use crate::transport::{SessionId, ViewerSession};

/// How long an answer is kept for retransmitted offers.
const ANSWER_TTL: Duration = Duration::from_secs(30);
/// Most answers remembered per shard.
const ANSWER_CACHE: usize = 4096;

/// What every shard's handler shares.
pub struct MiniSdpContext {
    pub local: LocalDescription,
    pub resolver: Arc<dyn StreamResolver>,
    /// `None`: open mode (local demo), every offer is accepted.
    pub tokens: Option<TokenAuthority>,
    /// Cleared when the server drains: new offers are refused with status 102.
    pub accepting: Arc<AtomicBool>,
    /// Requests by reply status (`rtmlive_minisdp_requests_total`), refusals, answer timing.
    pub metrics: Arc<Metrics>,
}

/// Why a refused offer was refused, as the `reason` label of `rtmlive_sessions_rejected_total`.
fn reject_reason(status: Status, accepting: bool) -> RejectReason {
    match status.0 {
        103 => RejectReason::Auth,
        104 => RejectReason::NotFound,
        102 if !accepting => RejectReason::Draining,
        102 => RejectReason::Limit,
        _ => RejectReason::BadRequest,
    }
}

struct Cached {
    id: SessionId,
    answer: Vec<u8>,
    at: Instant,
}

/// The per-shard handler.
pub struct MiniSdpHandler {
    ctx: Arc<MiniSdpContext>,
    answers: HashMap<(SocketAddr, u16), Cached>,
}

impl MiniSdpHandler {
    pub fn new(ctx: Arc<MiniSdpContext>) -> Self {
        Self {
            ctx,
            answers: HashMap::new(),
        }
    }

    fn reply_error(&self, reg: &mut Registrar<'_>, offer: &MiniSdp, status: Status) {
        self.ctx.metrics.minisdp_request(status.0);
        self.ctx.metrics.session_rejected(
            Protocol::MiniSdp,
            reject_reason(status, self.ctx.accepting.load(Ordering::Relaxed)),
        );
        tracing::debug!(status = status.0, url = %offer.url, "miniSDP offer refused");
        let reply = MiniSdp::error_reply(offer.version, status, offer.seq, &offer.url);
        if let Ok(bytes) = reply.encode() {
            let _ = reg.reply(BytesMut::from(&bytes[..]));
        }
    }

    fn remember(&mut self, now: Instant, key: (SocketAddr, u16), id: SessionId, answer: Vec<u8>) {
        if self.answers.len() >= ANSWER_CACHE {
            self.answers
                .retain(|_, c| now.duration_since(c.at) < ANSWER_TTL);
            if self.answers.len() >= ANSWER_CACHE
                && let Some(k) = self.answers.keys().next().copied()
            {
                self.answers.remove(&k);
            }
        }
        self.answers.insert(
            key,
            Cached {
                id,
                answer,
                at: now,
            },
        );
    }

    fn handle_offer(
        &mut self,
        now: Instant,
        from: SocketAddr,
        offer: MiniSdp,
        reg: &mut Registrar<'_>,
    ) {
        if offer.kind != SdpKind::Offer {
            return;
        }
        if let Some(c) = self.answers.get(&(from, offer.seq))
            && now.duration_since(c.at) < ANSWER_TTL
        {
            // A retransmitted offer: same answer, no new session.
            let (id, answer) = (c.id, c.answer.clone());
            reg.note_received(id);
            if reg.send_via(id, BytesMut::from(&answer[..])).is_ok() {
                self.ctx.metrics.minisdp_request(Status::OK.0);
            }
            return;
        }
        if !self.ctx.accepting.load(Ordering::Relaxed) {
            return self.reply_error(reg, &offer, Status::STREAM_INFO_ERROR);
        }
        let Some(key) = stream_key(&offer.url) else {
            return self.reply_error(reg, &offer, Status::PARAMETER_ERROR);
        };
        if let Some(tokens) = &self.ctx.tokens {
            // From the server's clock anchor, not the wall clock: the handler is sans-IO.
            let now_unix = self.ctx.local.ntp.unix_secs(now);
            let ip = from.ip().to_string();
            let client = [ip.as_bytes(), offer.ice_ufrag.as_bytes()];
            let verify = |t: &[u8]| {
                tokens
                    .verify(t, TokenKind::Pull, &key, now_unix, &client)
                    .is_ok()
            };
            // AUTH carries the token's bytes, or its base64url text as the player got it in
            // `?token=` (what player-test sends).
            let ok = !offer.auth.is_empty()
                && (verify(&offer.auth)
                    || std::str::from_utf8(&offer.auth)
                        .ok()
                        .and_then(|text| {
                            use base64::Engine as _;
                            base64::engine::general_purpose::URL_SAFE_NO_PAD
                                .decode(text.trim().trim_end_matches('='))
                                .ok()
                        })
                        .is_some_and(|raw| verify(&raw)));
            if !ok {
                return self.reply_error(reg, &offer, Status::AUTH_ERROR);
            }
        }
        // Starts the origin pull for a cold stream before anything else is done.
        let resolved = match self.ctx.resolver.resolve(&key) {
            Ok(s) => s,
            Err(ResolveError::NotFound) => {
                return self.reply_error(reg, &offer, Status::STREAM_NOT_FOUND);
            }
            Err(ResolveError::Unavailable) => {
                return self.reply_error(reg, &offer, Status::STREAM_INFO_ERROR);
            }
        };
        let local_ufrag = ufrag_for_shard(reg.shard_id(), &random_ice_string(8));
        let neg = match negotiate(
            &self.ctx.local,
            &offer.to_sdp(),
            &resolved.stream,
            local_ufrag,
        ) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "miniSDP offer not negotiable");
                return self.reply_error(reg, &offer, Status::FORMAT_ERROR);
            }
        };
        let opts = CompressOptions {
            version: offer.version,
            kind: SdpKind::Answer,
            url: offer.url.clone(),
            seq: offer.seq,
            status: Status::OK,
            // The reference convention: the client decodes `<ip>:<server ufrag>:<this>`.
            svrsig: offer.ice_ufrag.clone(),
            imm_send: false,
            aac_fmtp: offer.aac_fmtp,
            push_pull: offer.push_pull,
            auth: Vec::new(),
            ticket: None,
            ..CompressOptions::new(offer.version, SdpKind::Answer, &offer.url)
        };
        let (answer, svrsig) = match MiniSdp::from_sdp(&neg.answer, &opts)
            .map(|m| (m.encode(), m.reference_svrsig()))
        {
            Ok((Ok(bytes), svrsig)) => (bytes, svrsig),
            Ok((Err(e), _)) => {
                tracing::warn!(error = %e, "miniSDP answer does not encode");
                return self.reply_error(reg, &offer, Status::FORMAT_ERROR);
            }
            Err(e) => {
                tracing::warn!(error = %e, "miniSDP answer does not compress");
                return self.reply_error(reg, &offer, Status::FORMAT_ERROR);
            }
        };
        let session = ViewerSession::new(now, neg.session);
        let id = match reg.register(
            session,
            Box::new(
                HubSource::for_resolved(&resolved.stream, resolved.room.as_ref())
                    .with_hold(resolved.hold)
                    .with_metrics(self.ctx.metrics.clone()),
            ),
        ) {
            Ok(id) => id,
            Err(ShardError::PendingFull | ShardError::Full) => {
                return self.reply_error(reg, &offer, Status::STREAM_INFO_ERROR);
            }
            Err(e) => {
                tracing::debug!(error = %e, "session not registered");
                return self.reply_error(reg, &offer, Status::PARAMETER_ERROR);
            }
        };
        if reg.send_via(id, BytesMut::from(&answer[..])).is_err() {
            // Larger than the anti-amplification budget allows: refuse rather than reflect.
            reg.close(id, now);
            return self.reply_error(reg, &offer, Status::PARAMETER_ERROR);
        }
        // What the player hears if this edge starts draining while it plays: a stop packet
        // naming its session, status 102 ("stream info error": this edge can no longer serve
        // the stream, the same code an edge that is full answers), to re-pull elsewhere.
        let notice = StopPacket {
            version: offer.version,
            status: Status::STREAM_INFO_ERROR,
            seq: 0,
            svrsig,
            auth: Vec::new(),
        };
        if let Ok(bytes) = notice.encode() {
            reg.set_drain_notice(id, &bytes);
        }
        // (The shard times the `answer_sent` stage when the driver has sent the answer.)
        self.ctx.metrics.minisdp_request(Status::OK.0);
        self.remember(now, (from, offer.seq), id, answer);
    }

    fn handle_stop(&mut self, now: Instant, stop: StopPacket, reg: &mut Registrar<'_>) {
        // svrsig = "<server ip>:<server ufrag>:<client ufrag>"; the ip may itself hold ':'.
        let mut parts = stop.svrsig.rsplitn(3, ':');
        let (client_ufrag, server_ufrag) = (parts.next(), parts.next());
        let found = server_ufrag
            .filter(|_| client_ufrag.is_some_and(|c| !c.is_empty()))
            .and_then(|u| reg.find(u.as_bytes()));
        let status = match found {
            Some(id) => {
                reg.close(id, now);
                self.answers.retain(|_, c| c.id != id);
                Status::OK
            }
            None => Status::AUTH_ERROR,
        };
        self.ctx.metrics.minisdp_request(status.0);
        let reply = StopPacket {
            version: stop.version,
            status,
            seq: stop.seq,
            svrsig: stop.svrsig,
            auth: Vec::new(),
        };
        if let Ok(bytes) = reply.encode() {
            let _ = reg.reply(BytesMut::from(&bytes[..]));
        }
    }
}

impl SignalingHandler for MiniSdpHandler {
    fn handle(&mut self, now: Instant, from: SocketAddr, data: &[u8], reg: &mut Registrar<'_>) {
        match minisdp::decode(data) {
            Ok(Packet::Sdp(offer)) => self.handle_offer(now, from, offer, reg),
            Ok(Packet::Stop(stop)) => self.handle_stop(now, stop, reg),
            Err(e) => {
                self.ctx.metrics.minisdp_request(Status::FORMAT_ERROR.0);
                self.ctx
                    .metrics
                    .session_rejected(Protocol::MiniSdp, RejectReason::BadRequest);
                tracing::debug!(error = %e, %from, "undecodable miniSDP datagram");
                let version = if data.get(4) == Some(&minisdp::EXT_VERSION) {
                    WireVersion::Ext
                } else {
                    WireVersion::V0
                };
                let seq = 0;
                let reply = MiniSdp::error_reply(version, Status::FORMAT_ERROR, seq, "webrtc://-");
                if let Ok(bytes) = reply.encode() {
                    let _ = reg.reply(BytesMut::from(&bytes[..]));
                }
            }
        }
    }
}
