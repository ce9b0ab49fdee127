//! The little of WebSocket framing (RFC 6455 §5.2) the agent needs while it copies an upgraded
//! connection byte for byte ([`crate::domain::proxy::ws_bridge`]): where the backend's frames end, and a close
//! frame of its own to end a phone's socket with a code the app can act on.
//!
//! The copy stays a copy: frames are not decoded or buffered, only their heads are read to know
//! how many payload bytes follow. A close frame can only be put between two frames, never inside
//! one (the phone would read it as payload); [`FrameBoundaries`] says when that is.

/// Why the relay itself ended a phone's WebSocket: the close code and reason the phone receives.
/// Codes 4000-4999 are for applications (RFC 6455 §7.4.2); these mirror HTTP's 401 and 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayClose {
    /// The access token the socket was opened with reached its `exp`: refresh, then reconnect.
    TokenExpired,
    /// The device was revoked (by the owner, by itself, or on refresh-token reuse): pair again.
    DeviceRevoked,
    /// The agent could not confirm that the device is still active (its database failed), so it
    /// does not keep the socket open on trust.
    DeviceUnverifiable,
}

impl RelayClose {
    pub fn code(self) -> u16 {
        match self {
            RelayClose::TokenExpired => 4401,
            RelayClose::DeviceRevoked => 4403,
            // "Internal error" (RFC 6455 §7.4.1): the app may reconnect.
            RelayClose::DeviceUnverifiable => 1011,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            RelayClose::TokenExpired => "token expired: reconnect",
            RelayClose::DeviceRevoked => "device revoked",
            RelayClose::DeviceUnverifiable => "relay could not check the device",
        }
    }

    /// The close frame the agent writes to the phone.
    pub fn frame(self) -> Vec<u8> {
        close_frame(self.code(), self.reason())
    }
}

/// A control frame's payload is at most 125 bytes: the 2-byte code and up to 123 of reason.
const MAX_CLOSE_REASON: usize = 123;

/// A server-to-client close frame (RFC 6455 §5.5.1): FIN and opcode 0x8, unmasked (a server never
/// masks), payload = the code (big-endian) and the UTF-8 reason, cut at a character boundary to
/// fit a control frame.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut frame = Vec::with_capacity(4 + reason.len());
    frame.push(0x80 | 0x8);
    // `reason.len() <= 123`, so the length fits the 7-bit form and the cast is exact.
    frame.push((2 + reason.len()) as u8);
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason);
    frame
}

/// Follows a stream of WebSocket frames, fed in order with the bytes that went by, to know where
/// each frame ends. Masked (client) and unmasked (server) frames alike; payloads are skipped
/// without being looked at.
#[derive(Debug, Clone)]
pub struct FrameBoundaries {
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    /// Inside a frame head; `have` bytes of it seen so far (0: between two frames).
    Head { head: [u8; MAX_HEAD], have: usize },
    /// Inside a payload, with this many bytes still to come.
    Payload(u64),
    /// The stream broke the framing rules (a 64-bit length with its top bit set): where frames
    /// end is unknown from here on.
    Lost,
}

/// 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEAD: usize = 14;

const BETWEEN_FRAMES: State = State::Head {
    head: [0; MAX_HEAD],
    have: 0,
};

impl Default for FrameBoundaries {
    fn default() -> Self {
        FrameBoundaries {
            state: BETWEEN_FRAMES,
        }
    }
}

/// The length of a frame head whose second byte is `b1`.
fn head_len(b1: u8) -> usize {
    let extended = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The payload length a complete frame head announces; `None` if it breaks §5.2 (64-bit length
/// with the most significant bit set).
fn payload_len(head: &[u8]) -> Option<u64> {
    match head[1] & 0x7f {
        126 => Some(u64::from(u16::from_be_bytes([head[2], head[3]]))),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[2..10]);
            let n = u64::from_be_bytes(b);
            (n >> 63 == 0).then_some(n)
        }
        n => Some(u64::from(n)),
    }
}

impl FrameBoundaries {
    /// Takes in bytes that went by, in order.
    pub fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Lost => return,
                State::Payload(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    // `n <= bytes.len()`, so it fits a usize.
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = BETWEEN_FRAMES;
                    }
                }
                State::Head { head, have } => {
                    let want = if *have < 2 { 2 } else { head_len(head[1]) };
                    let n = (want - *have).min(bytes.len());
                    head[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have >= 2 && *have == head_len(head[1]) {
                        self.state = match payload_len(&head[..*have]) {
                            None => State::Lost,
                            Some(0) => BETWEEN_FRAMES,
                            Some(len) => State::Payload(len),
                        };
                    }
                }
            }
        }
    }

    #[cfg(test)]
    /// Whether the bytes so far end exactly at the end of a frame (or none went by yet).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Head { have: 0, .. })
    }

    /// How many more bytes may go by without passing the end of the current frame: the rest of
    /// its head (after which the payload length is known) or the rest of its payload. `Some(0)`
    /// at a boundary; `None` once the framing is lost.
    pub fn until_boundary(&self) -> Option<u64> {
        match &self.state {
            State::Lost => None,
            State::Payload(left) => Some(*left),
            State::Head { have: 0, .. } => Some(0),
            State::Head { have: 1, .. } => Some(1),
            State::Head { head, have } => Some((head_len(head[1]) - *have) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a server sends it (unmasked), or as a client does (masked) with `mask`.
    fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    #[test]
    fn a_close_frame_is_unmasked_fin_opcode_8_with_the_code_then_the_reason() {
        let f = close_frame(4401, "token expired: reconnect");
        assert_eq!(f[0], 0x88, "FIN + close");
        assert_eq!(f[1], 2 + 24, "unmasked, 7-bit length");
        assert_eq!(u16::from_be_bytes([f[2], f[3]]), 4401);
        assert_eq!(&f[4..], b"token expired: reconnect");
        assert_eq!(RelayClose::TokenExpired.frame(), f);
        let revoked = RelayClose::DeviceRevoked.frame();
        assert_eq!(u16::from_be_bytes([revoked[2], revoked[3]]), 4403);
        assert_eq!(&revoked[4..], b"device revoked");
    }

    #[test]
    fn a_long_reason_is_cut_to_fit_a_control_frame_at_a_character_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let f = close_frame(4000, &reason);
        assert!(f.len() - 2 <= 125);
        assert_eq!(f[1] as usize, f.len() - 2);
        let text = std::str::from_utf8(&f[4..]).expect("still UTF-8");
        assert_eq!(text, "é".repeat(61));
    }

    #[test]
    fn a_close_frame_is_read_back_by_a_websocket_client() {
        use tungstenite::protocol::frame::coding::CloseCode;
        use tungstenite::protocol::{Role, WebSocket};
        use tungstenite::Message;
        let wire = std::io::Cursor::new(RelayClose::DeviceRevoked.frame());
        let mut client = WebSocket::from_raw_socket(wire, Role::Client, None);
        match client.read() {
            Ok(Message::Close(Some(c))) => {
                assert_eq!(c.code, CloseCode::from(4403));
                assert_eq!(c.reason, "device revoked");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    #[test]
    fn boundaries_are_found_across_any_split_and_every_length_form() {
        let frames = [
            frame(0x2, &[7u8; 125], None),
            frame(0x1, b"", None),
            frame(0x2, &[1u8; 126], None),
            frame(0x2, &[2u8; 70_000], None),
            frame(0x9, b"ping", Some([1, 2, 3, 4])),
            frame(0x2, &[3u8; 300], Some([9, 8, 7, 6])),
        ];
        let ends: Vec<usize> = frames
            .iter()
            .scan(0, |at, f| {
                *at += f.len();
                Some(*at)
            })
            .collect();
        let stream: Vec<u8> = frames.concat();
        for chunk in [1, 2, 3, 7, 13, 1000, 65_536] {
            let mut b = FrameBoundaries::default();
            assert!(b.at_boundary());
            let mut at = 0;
            for piece in stream.chunks(chunk) {
                b.advance(piece);
                at += piece.len();
                assert_eq!(b.at_boundary(), ends.contains(&at), "chunk {chunk} at {at}");
            }
        }
    }

    #[test]
    fn until_boundary_never_runs_past_the_end_of_the_current_frame() {
        let stream = [frame(0x2, &[5u8; 1000], None), frame(0x2, b"next", None)].concat();
        let mut b = FrameBoundaries::default();
        b.advance(&stream[..3]); // 2 head bytes + 2 of the 16-bit length: 1 left
        assert_eq!(b.until_boundary(), Some(1));
        b.advance(&stream[3..4]);
        assert_eq!(b.until_boundary(), Some(1000));
        b.advance(&stream[4..500]);
        assert_eq!(b.until_boundary(), Some(504));
        b.advance(&stream[500..1004]);
        assert!(b.at_boundary());
        assert_eq!(b.until_boundary(), Some(0));
        b.advance(&stream[1004..1005]);
        assert_eq!(b.until_boundary(), Some(1), "the second head byte");
    }

    #[test]
    fn a_length_with_its_top_bit_set_loses_the_framing_for_good() {
        let mut b = FrameBoundaries::default();
        b.advance(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b.until_boundary(), None);
        assert!(!b.at_boundary());
        b.advance(&frame(0x2, b"x", None));
        assert!(!b.at_boundary());
    }
}
