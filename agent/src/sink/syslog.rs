//! RFC 5424 messages, framed for RFC 5425 (syslog over TLS): one event is
//! `<PRI>1 TIMESTAMP HOSTNAME ringside PROCID MSGID - MSG`, MSGID the
//! event id and MSG the JSON line the file sink writes. The same message is
//! what the RELP sink sends in its `syslog` command and what the spool
//! keeps, so a spooled message can go out over either.

use std::io::{self, Write};

use crate::time::{now_filetime, write_utc_time};

/// facility local0 (16), severity informational (6): 16 * 8 + 6.
const PRI: &str = "<134>1 ";

/// Appends one RFC 5424 message to `out`.
pub fn message(out: &mut Vec<u8>, hostname: &str, msgid: u16, json: &[u8]) {
    let mut head = String::with_capacity(96);
    head.push_str(PRI);
    // Sysmon's `2026-11-21 10:15:30.123` made RFC 3339.
    let start = head.len();
    write_utc_time(&mut head, now_filetime());
    if let Some(space) = head.get(start..).and_then(|t| t.find(' ')) {
        head.replace_range(start + space..start + space + 1, "T");
    }
    head.push_str("Z ");
    head.push_str(hostname);
    head.push_str(" ringside ");
    head.push_str(&std::process::id().to_string());
    head.push(' ');
    head.push_str(&msgid.to_string());
    head.push_str(" - ");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(json);
}

/// RFC 5424 HOSTNAME: printable ASCII without spaces, at most 255, or `-`.
pub fn hostname() -> String {
    let name = std::env::var("COMPUTERNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// RFC 5425 octet counting: `LEN SP MSG`.
pub fn frame(out: &mut Vec<u8>, message: &[u8]) {
    let _ = write!(out, "{} ", message.len());
    out.extend_from_slice(message);
}

/// A syslog/TLS connection: messages are written and count as delivered
/// once the TLS layer took them; there is no acknowledgment, so what the
/// kernel had buffered when the connection broke is lost (and counted
/// neither as delivered nor as resent: see the README).
pub struct SyslogSession<S: Write> {
    stream: S,
    out: Vec<u8>,
}

impl<S: Write> SyslogSession<S> {
    pub fn new(stream: S) -> Self {
        SyslogSession {
            stream,
            out: Vec::with_capacity(64 * 1024),
        }
    }

    pub fn send(&mut self, message: &[u8]) {
        frame(&mut self.out, message);
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        self.stream.flush()
    }

    /// The connection, e.g. to close it.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

impl<S: Write> std::fmt::Debug for SyslogSession<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyslogSession")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_rfc5424_and_octet_counted() {
        let mut msg = Vec::new();
        message(&mut msg, "host1", 11, br#"{"EventID":11,"Seq":5}"#);
        let text = String::from_utf8(msg.clone()).expect("UTF-8");
        let parts: Vec<&str> = text.splitn(8, ' ').collect();
        assert_eq!(parts[0], "<134>1");
        assert!(
            parts[1].ends_with('Z') && parts[1].contains('T'),
            "{}",
            parts[1]
        );
        assert_eq!(parts[2], "host1");
        assert_eq!(parts[3], "ringside");
        assert_eq!(parts[5], "11");
        assert_eq!(parts[6], "-");
        assert_eq!(parts[7], r#"{"EventID":11,"Seq":5}"#);
        let mut framed = Vec::new();
        frame(&mut framed, &msg);
        assert_eq!(
            framed,
            [format!("{} ", msg.len()).into_bytes(), msg].concat()
        );
    }
}
