//! A lean HTTP/1.1 client for plain-`http` endpoints, the measuring client's hot path: one
//! write per request, reads straight from the socket into a per-thread scratch buffer, and
//! a pool of kept-alive connections. Nothing is buffered per stream beyond what the caller
//! keeps, so ten thousand open streams cost little memory, and no task is spawned per
//! connection, so a read wakes the request that waits for it and nothing else.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bytes read per system call, into the thread's scratch buffer.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Longest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most response headers accepted.
const MAX_HEADERS: usize = 128;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_BYTES]);
}

/// What went wrong on the wire.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Connect(std::io::Error),
    #[error("timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("no bytes for {0:?}")]
    ReadTimeout(Duration),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("the server closed the connection before answering")]
    ClosedBeforeAnswer,
    #[error("the connection closed after {got} of {expected} body bytes")]
    Incomplete { got: u64, expected: u64 },
    #[error("the answer is longer than the {0} bytes kitt reads")]
    TooLong(usize),
    #[error("the response head is longer than {} KiB", MAX_HEAD_BYTES / 1024)]
    HeadTooLong,
    #[error("malformed HTTP/1.1 answer: {0}")]
    Malformed(String),
}

/// Where requests go and the idle connections kept for them.
#[derive(Debug)]
pub struct Pool {
    host: String,
    port: u16,
    /// The `Host` header value.
    authority: String,
    idle: Mutex<Vec<TcpStream>>,
    max_idle: usize,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// One request: method, path with query, extra headers and body.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl Pool {
    /// A pool for `http://host:port`.
    pub fn new(
        host: &str,
        port: u16,
        max_idle: usize,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Self {
        let bracketed = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Pool {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            authority: format!("{bracketed}:{port}"),
            idle: Mutex::new(Vec::new()),
            max_idle,
            connect_timeout,
            read_timeout,
        }
    }

    /// Sends the request and reads the response head. A kept-alive connection the server
    /// had already closed is replaced by a fresh one, and the request sent once more.
    pub async fn send(&self, req: &Request<'_>) -> Result<Response<'_>, WireError> {
        let message = self.message(req);
        loop {
            let (stream, reused) = match self.checkout() {
                Some(s) => (s, true),
                None => (self.connect().await?, false),
            };
            let sent_at = Instant::now();
            match self.exchange(stream, &message, sent_at).await {
                Err(WireError::ClosedBeforeAnswer) if reused => continue,
                other => return other,
            }
        }
    }

    /// The request's bytes, head and body, for one write.
    fn message(&self, req: &Request<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(req.body.len() + 160);
        let head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            req.method,
            req.path,
            self.authority,
            req.body.len()
        );
        out.extend_from_slice(head.as_bytes());
        for (name, value) in req.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(req.body);
        out
    }

    async fn exchange(
        &self,
        mut stream: TcpStream,
        message: &[u8],
        sent_at: Instant,
    ) -> Result<Response<'_>, WireError> {
        if let Err(e) = stream.write_all(message).await {
            return Err(match e.kind() {
                ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => WireError::ClosedBeforeAnswer,
                _ => WireError::Io(e),
            });
        }
        let mut head = Vec::new();
        let mut read_at;
        loop {
            self.wait_readable(&stream).await?;
            read_at = Instant::now();
            let got = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                match stream.try_read(&mut scratch) {
                    Ok(n) => {
                        head.extend_from_slice(&scratch[..n]);
                        Ok(Some(n))
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                }
            });
            match got {
                Ok(None) => continue,
                Ok(Some(0)) if head.is_empty() => return Err(WireError::ClosedBeforeAnswer),
                Ok(Some(0)) => {
                    return Err(WireError::Malformed(
                        "the connection closed inside the response head".into(),
                    ));
                }
                Ok(Some(_)) => {}
                Err(e) if head.is_empty() => {
                    return Err(match e.kind() {
                        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
                            WireError::ClosedBeforeAnswer
                        }
                        _ => WireError::Io(e),
                    });
                }
                Err(e) => return Err(WireError::Io(e)),
            }
            while let Some(parsed) = parse_head(&head)? {
                if (100..200).contains(&parsed.status) && parsed.status != 101 {
                    head.drain(..parsed.len);
                    continue;
                }
                let rest = head.split_off(parsed.len);
                return Ok(Response {
                    pool: self,
                    stream: Some(stream),
                    status: parsed.status,
                    content_type: parsed.content_type,
                    keep_alive: parsed.keep_alive,
                    body: parsed.framing,
                    pending: rest,
                    pending_at: read_at,
                    sent_at,
                });
            }
            if head.len() > MAX_HEAD_BYTES {
                return Err(WireError::HeadTooLong);
            }
        }
    }

    async fn wait_readable(&self, stream: &TcpStream) -> Result<(), WireError> {
        match tokio::time::timeout(self.read_timeout, stream.readable()).await {
            Ok(ready) => ready.map_err(WireError::Io),
            Err(_) => Err(WireError::ReadTimeout(self.read_timeout)),
        }
    }

    /// An idle connection the server has not closed, if any.
    fn checkout(&self) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(stream) = idle.pop() {
            let mut probe = [0u8; 1];
            // Open and quiet is the only state worth reusing; EOF or stray bytes are not.
            if let Err(e) = stream.try_read(&mut probe)
                && e.kind() == ErrorKind::WouldBlock
            {
                return Some(stream);
            }
        }
        None
    }

    fn checkin(&self, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(stream);
        }
    }

    async fn connect(&self) -> Result<TcpStream, WireError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| WireError::ConnectTimeout(self.connect_timeout))?
            .map_err(WireError::Connect)?;
        stream.set_nodelay(true).map_err(WireError::Connect)?;
        Ok(stream)
    }
}

/// A parsed response head.
struct Head {
    len: usize,
    status: u16,
    keep_alive: bool,
    framing: Framing,
    content_type: Option<String>,
}

/// Parses a complete head at the start of `bytes`, or says more bytes are needed.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, WireError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(WireError::Malformed(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    let mut content_type = None;
    for h in response.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_ascii_lowercase());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = value.trim().parse::<u64>().map_err(|_| {
                WireError::Malformed(format!("Content-Length `{value}` is not a number"))
            })?;
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            let value = value.to_ascii_lowercase();
            if value.contains("close") {
                keep_alive = false;
            } else if value.contains("keep-alive") {
                keep_alive = true;
            }
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Length { left: 0, total: 0 }
    } else if chunked {
        Framing::Chunked(Chunked::default())
    } else if let Some(n) = length {
        Framing::Length { left: n, total: n }
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some(Head {
        len,
        status,
        keep_alive,
        framing,
        content_type,
    }))
}

/// How the body's end is known.
#[derive(Debug)]
enum Framing {
    Length { left: u64, total: u64 },
    Chunked(Chunked),
    UntilClose,
}

impl Framing {
    fn complete(&self) -> bool {
        match self {
            Framing::Length { left, .. } => *left == 0,
            Framing::Chunked(c) => c.state == ChunkState::Done,
            Framing::UntilClose => false,
        }
    }

    /// Passes the body bytes within `input` to `out`.
    fn decode(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<(), ()>,
    ) -> Result<(), Stop> {
        match self {
            Framing::Length { left, .. } => {
                let n = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                if n > 0 {
                    out(&input[..n]).map_err(|_| Stop::Consumer)?;
                }
                if n < input.len() {
                    return Err(Stop::Wire(WireError::Malformed(
                        "bytes after the end of the body".into(),
                    )));
                }
                Ok(())
            }
            Framing::Chunked(c) => c.decode(input, out),
            Framing::UntilClose => {
                if !input.is_empty() {
                    out(input).map_err(|_| Stop::Consumer)?;
                }
                Ok(())
            }
        }
    }
}

/// Why decoding stopped early.
enum Stop {
    Wire(WireError),
    Consumer,
}

/// Where a chunked body's decoder stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the hex size; `digits` says whether any came yet.
    #[default]
    Size,
    /// After the size: an extension, or the line end.
    SizeRest,
    Data,
    /// The line end after a chunk's data.
    DataEnd,
    /// Trailer lines after the last chunk; `line` counts the current line's bytes.
    Trailer,
    Done,
}

/// Chunked transfer-coding decoder, resumable at any byte.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u8,
    left: u64,
    line: usize,
    saw_cr: bool,
}

impl Chunked {
    fn decode(
        &mut self,
        mut input: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<(), ()>,
    ) -> Result<(), Stop> {
        let bad = |what: &str| Stop::Wire(WireError::Malformed(format!("chunked body: {what}")));
        while !input.is_empty() {
            match self.state {
                ChunkState::Size => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                            if self.digits >= 15 {
                                return Err(bad("chunk size too large"));
                            }
                            self.size = self.size * 16 + digit;
                            self.digits += 1;
                        }
                        b';' | b' ' | b'\t' | b'\r' if self.digits > 0 => {
                            self.state = ChunkState::SizeRest
                        }
                        b'\n' if self.digits > 0 => self.end_size_line(),
                        _ => return Err(bad("expected a hex chunk size")),
                    }
                }
                ChunkState::SizeRest => {
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\n' {
                        self.end_size_line();
                    }
                }
                ChunkState::Data => {
                    let n = input
                        .len()
                        .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    out(&input[..n]).map_err(|_| Stop::Consumer)?;
                    input = &input[n..];
                    self.left -= n as u64;
                    if self.left == 0 {
                        self.state = ChunkState::DataEnd;
                        self.saw_cr = false;
                    }
                }
                ChunkState::DataEnd => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'\r' if !self.saw_cr => self.saw_cr = true,
                        b'\n' => {
                            self.state = ChunkState::Size;
                            self.size = 0;
                            self.digits = 0;
                        }
                        _ => return Err(bad("missing line end after chunk data")),
                    }
                }
                ChunkState::Trailer => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'\n' if self.line == 0 => self.state = ChunkState::Done,
                        b'\n' => self.line = 0,
                        b'\r' => {}
                        _ => self.line += 1,
                    }
                }
                ChunkState::Done => return Err(bad("bytes after the last chunk")),
            }
        }
        Ok(())
    }

    fn end_size_line(&mut self) {
        if self.size == 0 {
            self.state = ChunkState::Trailer;
            self.line = 0;
        } else {
            self.state = ChunkState::Data;
            self.left = self.size;
        }
    }
}

/// A response whose head has arrived; the body is read with `read`.
#[derive(Debug)]
pub struct Response<'p> {
    pool: &'p Pool,
    stream: Option<TcpStream>,
    pub status: u16,
    /// The `Content-Type` header, lower-cased, when there is one.
    pub content_type: Option<String>,
    keep_alive: bool,
    body: Framing,
    /// Body bytes that came with the head, not yet handed out, and when they were read.
    pending: Vec<u8>,
    pending_at: Instant,
    /// When the request was written on the connection that answered.
    pub sent_at: Instant,
}

/// Why reading a body stopped.
#[derive(Debug)]
pub enum ReadError<E> {
    Wire(WireError),
    /// The caller's function failed; its error.
    Consumer(E),
}

impl Response<'_> {
    /// Waits for the next bytes and hands each body part in them to `each` with the time
    /// they were read. Returns false once the body has ended (the connection then goes back
    /// to the pool when it can be reused).
    pub async fn read<E>(
        &mut self,
        mut each: impl FnMut(&[u8], Instant) -> Result<(), E>,
    ) -> Result<bool, ReadError<E>> {
        let mut failure = None;
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.decode(&pending, self.pending_at, &mut each, &mut failure)?;
            return Ok(self.settle());
        }
        if self.body.complete() {
            return Ok(self.settle());
        }
        loop {
            let read = {
                let Some(stream) = self.stream.as_ref() else {
                    return Ok(false);
                };
                self.pool
                    .wait_readable(stream)
                    .await
                    .map_err(ReadError::Wire)?;
                let body = &mut self.body;
                SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    match stream.try_read(&mut scratch) {
                        Ok(0) => Ok(Some(0)),
                        Ok(n) => {
                            let at = Instant::now();
                            let mut out = |bytes: &[u8]| {
                                each(bytes, at).map_err(|e| {
                                    failure = Some(e);
                                })
                            };
                            body.decode(&scratch[..n], &mut out).map(|()| Some(n))
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                        Err(e) => Err(Stop::Wire(WireError::Io(e))),
                    }
                })
            };
            return match read {
                Ok(None) => continue,
                Ok(Some(0)) => self.closed(),
                Ok(Some(_)) => Ok(self.settle()),
                Err(stop) => Err(self.stopped(stop, &mut failure)),
            };
        }
    }

    /// Gives the connection up after a failed read and says why.
    fn stopped<E>(&mut self, stop: Stop, failure: &mut Option<E>) -> ReadError<E> {
        self.stream = None;
        match (stop, failure.take()) {
            (Stop::Consumer, Some(e)) => ReadError::Consumer(e),
            (Stop::Consumer, None) => ReadError::Wire(WireError::Malformed(
                "the reader stopped without a reason".into(),
            )),
            (Stop::Wire(e), _) => ReadError::Wire(e),
        }
    }

    fn decode<E>(
        &mut self,
        bytes: &[u8],
        at: Instant,
        each: &mut impl FnMut(&[u8], Instant) -> Result<(), E>,
        failure: &mut Option<E>,
    ) -> Result<(), ReadError<E>> {
        let mut out = |b: &[u8]| each(b, at).map_err(|e| *failure = Some(e));
        match self.body.decode(bytes, &mut out) {
            Ok(()) => Ok(()),
            Err(stop) => Err(self.stopped(stop, failure)),
        }
    }

    /// The connection closed: the end of a close-delimited body, else a cut-off one.
    fn closed<E>(&mut self) -> Result<bool, ReadError<E>> {
        self.stream = None;
        match &self.body {
            Framing::UntilClose => Ok(false),
            Framing::Length { left, total } if *left > 0 => {
                Err(ReadError::Wire(WireError::Incomplete {
                    got: total - left,
                    expected: *total,
                }))
            }
            // A chunked body cut short ends here; the caller sees what it got.
            _ => Ok(false),
        }
    }

    /// After a read: whether more body may come; a finished body frees the connection.
    fn settle(&mut self) -> bool {
        if !self.body.complete() {
            return true;
        }
        if let Some(stream) = self.stream.take()
            && self.keep_alive
        {
            self.pool.checkin(stream);
        }
        false
    }

    /// Reads the rest of the body, up to `limit` bytes.
    pub async fn bytes(mut self, limit: usize) -> Result<Vec<u8>, WireError> {
        let mut all = Vec::new();
        loop {
            let more = self
                .read(|bytes, _| {
                    if all.len() + bytes.len() > limit {
                        return Err(());
                    }
                    all.extend_from_slice(bytes);
                    Ok(())
                })
                .await;
            match more {
                Ok(true) => {}
                Ok(false) => return Ok(all),
                Err(ReadError::Wire(e)) => return Err(e),
                Err(ReadError::Consumer(())) => return Err(WireError::TooLong(limit)),
            }
        }
    }

    /// Reads what is left of the body for at most `grace`, so the connection can be reused;
    /// gives the connection up when the body does not end in time.
    pub async fn drain(mut self, grace: Duration) {
        let rest = async { while let Ok(true) = self.read(|_, _| Ok::<(), ()>(())).await {} };
        let _ = tokio::time::timeout(grace, rest).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk(input: &[u8], split: usize) -> Result<(Vec<u8>, bool), String> {
        let mut c = Chunked::default();
        let mut got = Vec::new();
        for part in [&input[..split], &input[split..]] {
            let mut out = |b: &[u8]| {
                got.extend_from_slice(b);
                Ok(())
            };
            c.decode(part, &mut out).map_err(|s| match s {
                Stop::Wire(e) => e.to_string(),
                Stop::Consumer => "consumer".into(),
            })?;
        }
        Ok((got, c.state == ChunkState::Done))
    }

    #[test]
    fn chunked_bodies_decode_at_every_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in 0..=body.len() {
            let (got, done) = dechunk(body, split).expect("decodes");
            assert_eq!(got, b"hello, world", "split at {split}");
            assert!(done, "split at {split}");
        }
        let bare_lf = b"3\nabc\n0\n\n";
        assert_eq!(
            dechunk(bare_lf, 2).expect("decodes"),
            (b"abc".to_vec(), true)
        );
    }

    #[test]
    fn chunked_errors_are_named() {
        assert!(
            dechunk(b"zz\r\n", 0)
                .unwrap_err()
                .contains("hex chunk size")
        );
        assert!(
            dechunk(b"2\r\nabX\r\n", 0)
                .unwrap_err()
                .contains("line end")
        );
        assert!(
            dechunk(b"0\r\n\r\nmore", 0)
                .unwrap_err()
                .contains("after the last")
        );
        assert!(
            dechunk(b"ffffffffffffffff\r\n", 0)
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn heads_give_framing_and_reuse() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nrest")
            .expect("parses")
            .expect("complete");
        assert_eq!((h.status, h.keep_alive, h.len), (200, true, 47));
        assert!(matches!(h.framing, Framing::Chunked(_)));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert!(!h.keep_alive);
        assert!(matches!(h.framing, Framing::Length { left: 5, .. }));
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert!(!h.keep_alive && matches!(h.framing, Framing::UntilClose));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-")
                .expect("parses")
                .is_none()
        );
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
