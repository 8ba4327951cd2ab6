//! RELP, rsyslog's reliable event logging protocol, client side: `open`,
//! `syslog` commands numbered by transaction (txnr), each answered by the
//! server with `rsp 200` once it has taken the message, and `close`.
//!
//! Frame: `TXNR SP COMMAND SP DATALEN [SP DATA] LF`.

use std::fmt;
use std::io::{self, Read, Write};

/// Largest response frame accepted (responses are a status line and, for
/// `open`, the server's offers).
const MAX_RESPONSE: usize = 64 * 1024;
/// Transaction numbers run 1..=999_999_999 and wrap (RFC-style RELP spec).
const MAX_TXNR: u64 = 999_999_999;

/// The server refused a command or broke the protocol.
#[derive(Debug)]
pub struct RelpError(pub String);

impl fmt::Display for RelpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RELP: {}", self.0)
    }
}

impl std::error::Error for RelpError {}

fn protocol(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, RelpError(message))
}

/// One RELP session over a connected stream.
pub struct RelpSession<S: Read + Write> {
    stream: S,
    next_txnr: u64,
    out: Vec<u8>,
    input: Vec<u8>,
}

/// A response: its transaction number and whether it was `200`.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub txnr: u64,
    pub data: String,
}

impl<S: Read + Write> RelpSession<S> {
    /// Sends `open` and waits for the server's `200`.
    pub fn open(stream: S) -> io::Result<Self> {
        let mut session = RelpSession {
            stream,
            next_txnr: 1,
            out: Vec::with_capacity(64 * 1024),
            input: Vec::with_capacity(4096),
        };
        let offers = b"relp_version=0\nrelp_software=ringside\ncommands=syslog";
        let txnr = session.command("open", offers);
        session.flush()?;
        let response = session.response()?;
        if response.txnr != txnr {
            return Err(protocol(format!(
                "answer to open has txnr {}, expected {txnr}",
                response.txnr
            )));
        }
        Ok(session)
    }

    fn command(&mut self, command: &str, data: &[u8]) -> u64 {
        let txnr = self.next_txnr;
        self.next_txnr = if txnr >= MAX_TXNR { 1 } else { txnr + 1 };
        let _ = write!(self.out, "{txnr} {command} {}", data.len());
        if !data.is_empty() {
            self.out.push(b' ');
            self.out.extend_from_slice(data);
        }
        self.out.push(b'\n');
        txnr
    }

    /// Queues one message; returns its txnr. [`Self::flush`] sends.
    pub fn send(&mut self, message: &[u8]) -> u64 {
        self.command("syslog", message)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        self.stream.flush()
    }

    /// True if a whole response is already buffered (reading it will not
    /// block).
    pub fn response_ready(&self) -> bool {
        self.input.contains(&b'\n')
    }

    /// The next `rsp`: Ok if it is `200`, an error naming the server's
    /// answer otherwise (and for `serverclose`).
    pub fn response(&mut self) -> io::Result<Response> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(frame);
            }
            if self.input.len() > MAX_RESPONSE {
                return Err(protocol(format!(
                    "response frame longer than {MAX_RESPONSE} bytes"
                )));
            }
            let mut buf = [0u8; 8192];
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the collector closed the RELP session",
                ));
            }
            self.input
                .extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }

    /// One frame from the input buffer, if complete.
    fn parse(&mut self) -> io::Result<Option<Response>> {
        let text = &self.input;
        let mut fields = text.splitn(3, |&b| b == b' ');
        let (Some(txnr), Some(command), Some(rest)) = (fields.next(), fields.next(), fields.next())
        else {
            return Ok(None);
        };
        let len_end = rest
            .iter()
            .position(|&b| b == b' ' || b == b'\n')
            .unwrap_or(rest.len());
        if len_end == rest.len() {
            return Ok(None);
        }
        let number = |field: &[u8], what: &str| {
            std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    protocol(format!(
                        "bad {what} `{}` in a response",
                        String::from_utf8_lossy(field)
                    ))
                })
        };
        let txnr = number(txnr, "txnr")?;
        let len = number(rest.get(..len_end).unwrap_or_default(), "data length")? as usize;
        // Header, then `SP DATA` when there is data, then LF.
        let header = text.len() - rest.len() + len_end;
        let data_start = if len > 0 { header + 1 } else { header };
        let end = data_start + len;
        if text.len() <= end {
            return Ok(None);
        }
        let data =
            String::from_utf8_lossy(text.get(data_start..end).unwrap_or_default()).into_owned();
        let command = String::from_utf8_lossy(command).into_owned();
        self.input.drain(..=end);
        match command.as_str() {
            "rsp" if data.starts_with("200") => Ok(Some(Response { txnr, data })),
            "rsp" => Err(protocol(format!(
                "the collector refused txnr {txnr}: {data}"
            ))),
            "serverclose" => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the collector closed the RELP session (serverclose)",
            )),
            other => Err(protocol(format!(
                "unexpected command `{other}` from the collector"
            ))),
        }
    }

    /// The connection, e.g. to close it.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Sends `close` and waits for its answer (best effort).
    pub fn close(&mut self) -> io::Result<()> {
        let txnr = self.command("close", b"");
        self.flush()?;
        while self.response()?.txnr != txnr {}
        Ok(())
    }
}

impl<S: Read + Write> std::fmt::Debug for RelpSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelpSession")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted server: what it answers, and what the client wrote.
    struct Script {
        answers: io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.answers.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn session(answers: &str) -> io::Result<RelpSession<Script>> {
        RelpSession::open(Script {
            answers: io::Cursor::new(answers.as_bytes().to_vec()),
            written: Vec::new(),
        })
    }

    #[test]
    fn open_send_and_acknowledgments() {
        let mut s = session(
            "1 rsp 37 200 OK\nrelp_version=0\ncommands=syslog\n2 rsp 6 200 OK\n3 rsp 6 200 OK\n",
        )
        .expect("open");
        assert_eq!(s.send(b"<134>1 a"), 2);
        assert_eq!(s.send(b"<134>1 b"), 3);
        s.flush().expect("flush");
        assert_eq!(s.response().expect("ack").txnr, 2);
        assert!(s.response_ready());
        assert_eq!(s.response().expect("ack").txnr, 3);
        let written = String::from_utf8(s.stream.written.clone()).expect("UTF-8");
        assert!(
            written.starts_with("1 open 53 relp_version=0\n"),
            "{written}"
        );
        assert!(
            written.ends_with("2 syslog 8 <134>1 a\n3 syslog 8 <134>1 b\n"),
            "{written}"
        );
        // The collector going away is an error, not a hang or a panic.
        assert_eq!(
            s.response().expect_err("eof").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn refusals_and_garbage_are_errors() {
        let mut s = session("1 rsp 6 200 OK\n2 rsp 9 500 error\n").expect("open");
        s.send(b"x");
        let error = s.response().expect_err("refused");
        assert!(error.to_string().contains("500 error"), "{error}");
        let error = session("x rsp 6 200 OK\n")
            .map(|_| ())
            .expect_err("garbage");
        assert!(error.to_string().contains("bad txnr"), "{error}");
        let error = session("0 serverclose 0\n")
            .map(|_| ())
            .expect_err("closed");
        assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    }
}
