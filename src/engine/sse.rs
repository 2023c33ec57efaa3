//! A Server-Sent Events parser over a byte stream: feed it reads as they arrive, get whole
//! events back. Written by hand so each event keeps the arrival time of the read that
//! completed it, and so a UTF-8 character split across reads is never mangled.

/// One parsed event: its `data:` lines joined by `\n` (other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub data: String,
    /// The `event:` field, when the server sent one.
    pub event: Option<String>,
}

/// Incremental SSE parser. Bytes are buffered until a blank line ends an event; only then
/// are they decoded, so multi-byte characters split across reads arrive whole.
#[derive(Debug, Default)]
pub struct Parser {
    buffer: Vec<u8>,
    /// Bytes of `buffer` already scanned for a line end.
    scanned: usize,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    /// Keep-alive comments seen (lines starting with `:`).
    pub comments: u64,
}

/// What went wrong decoding an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event is not valid UTF-8: {0}")]
pub struct InvalidUtf8(String);

impl Parser {
    /// Adds bytes from one read and returns the events they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, InvalidUtf8> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut line_start = 0;
        let mut i = self.scanned;
        while i < self.buffer.len() {
            let b = self.buffer[i];
            if b == b'\n' || b == b'\r' {
                let line_end = i;
                // A CR LF pair is one line end; a CR at the end of the buffer waits for more.
                if b == b'\r' {
                    if i + 1 == self.buffer.len() {
                        break;
                    }
                    if self.buffer[i + 1] == b'\n' {
                        i += 1;
                    }
                }
                let line = self.buffer[line_start..line_end].to_vec();
                if let Some(event) = self.line(&line)? {
                    events.push(event);
                }
                line_start = i + 1;
            }
            i += 1;
        }
        self.buffer.drain(..line_start);
        self.scanned = i - line_start;
        Ok(events)
    }

    /// Ends the stream: an event not closed by a blank line is still returned, as browsers
    /// do not but servers that close without a trailing blank line expect.
    pub fn finish(&mut self) -> Result<Option<Event>, InvalidUtf8> {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            self.scanned = 0;
            self.line(&rest)?;
        }
        self.dispatch()
    }

    /// Handles one line without its line end.
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, InvalidUtf8> {
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

    fn dispatch(&mut self) -> Result<Option<Event>, InvalidUtf8> {
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

fn decode(bytes: Vec<u8>) -> Result<String, InvalidUtf8> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.into_bytes();
        InvalidUtf8(String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned())
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
    fn invalid_utf8_is_an_error() {
        let mut p = Parser::default();
        assert!(p.push(b"data: \xff\xfe\n\n").is_err());
    }
}
