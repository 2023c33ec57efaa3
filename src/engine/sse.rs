//! A Server-Sent Events parser over a byte stream: feed it reads as they arrive, get whole
//! events back. Written by hand so each event keeps the arrival time of the read that
//! completed it, so a UTF-8 character split across reads is never mangled, and so a line
//! or an event that never ends cannot grow without bound ([`MAX_LINE`], [`MAX_EVENT`]).

/// Longest line the parser holds, in bytes (one streamed chunk is far smaller).
pub const MAX_LINE: usize = 4 * 1024 * 1024;
/// Most `data` bytes one event may gather, in bytes.
pub const MAX_EVENT: usize = 4 * 1024 * 1024;

/// One parsed event: its `data:` lines joined by `\n` (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub data: String,
    /// The `event:` field, when the server sent one.
    pub event: Option<String>,
}

/// Incremental SSE parser. Lines are taken straight from each read; only an unfinished
/// line is kept between reads, and a line's bytes are decoded once its event is complete,
/// so multi-byte characters split across reads arrive whole.
#[derive(Debug, Default)]
pub struct Parser {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    /// The last read ended in CR: a LF opening the next read belongs to that line end.
    after_cr: bool,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    /// Keep-alive comments seen (lines starting with `:`).
    pub comments: u64,
}

/// What went wrong reading the event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("server-sent event is not valid UTF-8: {0}")]
    InvalidUtf8(String),
    #[error("a server-sent event line is longer than {MAX_LINE} bytes without a line end")]
    LineTooLong,
    #[error("a server-sent event gathered more than {MAX_EVENT} bytes of data without ending")]
    EventTooLarge,
}

impl Parser {
    /// Adds bytes from one read and returns the events they complete, in order.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut events = Vec::new();
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) {
            let event = if self.partial.is_empty() {
                self.line(&bytes[..end])?
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&bytes[..end]);
                let event = self.line(&line);
                line.clear();
                self.partial = line;
                event?
            };
            events.extend(event);
            // A CR LF pair is one line end, even when a read splits it.
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = &bytes[next..];
        }
        if self.partial.len() + bytes.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        self.partial.extend_from_slice(bytes);
        Ok(events)
    }

    /// Ends the stream: an event not closed by a blank line is still returned, as browsers
    /// do not but servers that close without a trailing blank line expect.
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest)?;
        }
        self.dispatch()
    }

    /// Handles one line without its line end.
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            self.comments += 1;
            return Ok(None);
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let mut value = &line[colon + 1..];
                if value.first() == Some(&b' ') {
                    value = &value[1..];
                }
                (&line[..colon], value)
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > MAX_EVENT {
                    return Err(SseError::EventTooLarge);
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(decode(value.to_vec())?),
            _ => {} // id, retry and unknown fields do not matter to a measuring client
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Result<Option<Event>, SseError> {
        if !self.has_data {
            self.event = None;
            return Ok(None);
        }
        self.has_data = false;
        let data = decode(std::mem::take(&mut self.data))?;
        Ok(Some(Event {
            data,
            event: self.event.take(),
        }))
    }
}

fn decode(bytes: Vec<u8>) -> Result<String, SseError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.into_bytes();
        SseError::InvalidUtf8(String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut Parser, parts: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for part in parts {
            out.extend(parser.push(part).unwrap().into_iter().map(|e| e.data));
        }
        out.extend(parser.finish().unwrap().map(|e| e.data));
        out
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let stream = "data: {\"a\":\"é中\"}\n\n: keep-alive\n\ndata: [DONE]\n\n".as_bytes();
        for split in 0..stream.len() {
            let mut p = Parser::default();
            let got = all(&mut p, &[&stream[..split], &stream[split..]]);
            assert_eq!(got, vec!["{\"a\":\"é中\"}", "[DONE]"], "split at {split}");
            assert_eq!(p.comments, 1);
        }
    }

    #[test]
    fn crlf_multiline_and_unterminated_events() {
        let mut p = Parser::default();
        let got = all(
            &mut p,
            &[b"event: x\r\ndata: one\r\ndata:two\r", b"\n\r\ndata: tail"],
        );
        assert_eq!(got, vec!["one\ntwo", "tail"]);
    }

    #[test]
    fn every_line_end_at_every_split() {
        for stream in [
            &b"data: a\r\n\r\ndata: b\r\n\r\n"[..],
            b"data: a\r\rdata: b\r\r",
            b"data: a\n\ndata: b\n\n",
        ] {
            for one in 0..=stream.len() {
                for two in one..=stream.len() {
                    let mut p = Parser::default();
                    let parts = [&stream[..one], &stream[one..two], &stream[two..]];
                    assert_eq!(
                        all(&mut p, &parts),
                        vec!["a", "b"],
                        "{stream:?} at {one}, {two}"
                    );
                }
            }
        }
    }

    #[test]
    fn endless_lines_and_events_are_refused_at_their_caps() {
        let mut p = Parser::default();
        let piece = vec![b'x'; 1 << 20];
        let mut err = None;
        for _ in 0..8 {
            if let Err(e) = p.push(&piece) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::LineTooLong));
        assert!(p.partial.len() <= MAX_LINE);
        let mut p = Parser::default();
        let line = format!("data: {}\n", "y".repeat(64 * 1024));
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = p.push(line.as_bytes()) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::EventTooLarge));
        assert!(p.data.len() <= MAX_EVENT);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut p = Parser::default();
        assert!(p.push(b"data: \xff\xfe\n\n").is_err());
    }
}
