//! What client and server sessions share: handshake, chunk streams, and the protocol control
//! messages (chunk size, abort, acknowledgements, ping) that never reach the application.

use bytes::BytesMut;

use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, RawMessage};
use super::error::RtmpError;
use super::handshake::Handshake;
use super::message::{Message, UserControl, Writer};

#[derive(Debug)]
pub(crate) struct Conn {
    handshake: Handshake,
    /// Bytes received before the handshake completed.
    pending: BytesMut,
    decoder: ChunkDecoder,
    pub(crate) encoder: ChunkEncoder,
    pub(crate) out: Vec<u8>,
    received: u64,
    last_ack: u64,
    /// The peer's Window Acknowledgement Size: acknowledge every this many bytes.
    ack_window: Option<u32>,
}

impl Conn {
    pub(crate) fn new(handshake: Handshake, out: Vec<u8>, limits: ChunkLimits) -> Conn {
        Conn {
            handshake,
            pending: BytesMut::new(),
            decoder: ChunkDecoder::new(limits),
            encoder: ChunkEncoder::default(),
            out,
            received: 0,
            last_ack: 0,
            ack_window: None,
        }
    }

    pub(crate) fn writer(&mut self) -> Writer<'_> {
        Writer {
            enc: &self.encoder,
            out: &mut self.out,
        }
    }

    /// Changes our outgoing chunk size, telling the peer first.
    pub(crate) fn set_chunk_size(&mut self, size: u32) {
        self.writer().set_chunk_size(size);
        self.encoder.set_chunk_size(size);
    }

    /// Takes in received bytes. Returns true once the handshake is done (the first time and
    /// every time after).
    pub(crate) fn receive(&mut self, data: &[u8]) -> Result<bool, RtmpError> {
        self.received += data.len() as u64;
        if let Some(w) = self.ack_window
            && self.received - self.last_ack >= u64::from(w)
        {
            self.last_ack = self.received;
            // The sequence number is the byte count modulo 2^32 (RTMP 1.0 §5.4.3).
            let seq = self.received as u32;
            self.writer().ack(seq);
        }
        if self.handshake.is_done() {
            self.decoder.push(data);
            return Ok(true);
        }
        self.pending.extend_from_slice(data);
        if self.handshake.process(&mut self.pending, &mut self.out)? {
            self.decoder.push(&self.pending);
            self.pending = BytesMut::new();
            return Ok(true);
        }
        Ok(false)
    }

    pub(crate) fn handshake_done(&self) -> bool {
        self.handshake.is_done()
    }

    /// The next message for the session, after handling protocol control messages here.
    pub(crate) fn next_message(&mut self) -> Result<Option<(RawMessage, Message)>, RtmpError> {
        if !self.handshake.is_done() {
            return Ok(None);
        }
        while let Some(raw) = self.decoder.poll()? {
            let msg = Message::parse(&raw)?;
            match msg {
                Message::SetChunkSize(n) => self.decoder.set_chunk_size(n)?,
                Message::Abort(csid) => self.decoder.abort(csid),
                Message::WindowAckSize(n) => self.ack_window = (n > 0).then_some(n),
                Message::UserControl(UserControl::PingRequest(t)) => {
                    self.writer().user_control(UserControl::PingResponse(t));
                }
                Message::Ack(_) | Message::Ignored(_) => {}
                _ => return Ok(Some((raw, msg))),
            }
        }
        Ok(None)
    }
}
