//! A minimal client of the QEMU Machine Protocol (QMP) over a unix socket:
//! enough to pause (`stop`), resume (`cont`) and inspect (`query-status`) a
//! VM started with `-qmp unix:PATH,server=on,wait=off`.
//!
//! QMP is line-delimited JSON. On connect the server sends a greeting
//! (`{"QMP": {...}}`); the client must send `qmp_capabilities` before any
//! other command. Every command gets one `{"return": ...}` or
//! `{"error": {...}}`; asynchronous `{"event": ...}` lines may arrive in
//! between and are skipped. One connection per command keeps it stateless:
//! QEMU accepts one QMP client at a time per socket, and a command is rare.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long to wait for QEMU's answer. QMP answers from QEMU's main loop,
/// which keeps running while the guest is stopped.
pub const QMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest QMP line accepted (the greeting and our answers are far shorter).
const MAX_QMP_LINE_BYTES: u64 = 64 * 1024;

/// Why a QMP command did not complete.
#[derive(Debug)]
pub enum QmpError {
    /// The socket could not be reached or the connection failed.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// QEMU answered with an error object.
    Refused(String),
    /// Something other than QMP answered.
    Protocol(String),
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Io { path, source } => write!(f, "QMP socket {path}: {source}"),
            QmpError::Refused(why) => write!(f, "QEMU refused the QMP command: {why}"),
            QmpError::Protocol(why) => write!(f, "unexpected QMP answer: {why}"),
        }
    }
}

impl std::error::Error for QmpError {}

/// Runs one QMP command (no arguments) on the socket at `path` and returns
/// its `return` value.
pub fn execute(path: &Path, command: &str) -> Result<Value, QmpError> {
    let io = |source| QmpError::Io {
        path: path.display().to_string(),
        source,
    };
    // QMP can dump guest memory: QEMU creates the socket with the umask's
    // mode inside the 0700 node directory; narrow it to 0600 as well.
    crate::private::restrict(path).map_err(io)?;
    let stream = UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(QMP_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(QMP_TIMEOUT)).map_err(io)?;
    let mut writer = stream.try_clone().map_err(io)?;
    let mut reader = BufReader::new(stream);
    let greeting = read_message(&mut reader, path)?;
    if greeting.get("QMP").is_none() {
        return Err(QmpError::Protocol(format!("greeting {greeting}")));
    }
    for name in ["qmp_capabilities", command] {
        let request = json!({ "execute": name });
        writeln!(writer, "{request}").map_err(io)?;
        loop {
            let message = read_message(&mut reader, path)?;
            if message.get("event").is_some() {
                continue;
            }
            if let Some(error) = message.get("error") {
                return Err(QmpError::Refused(format!("{name}: {error}")));
            }
            match message.get("return") {
                Some(value) if name == command => return Ok(value.clone()),
                Some(_) => break,
                None => return Err(QmpError::Protocol(format!("{name}: {message}"))),
            }
        }
    }
    Err(QmpError::Protocol(format!("no answer to {command}")))
}

fn read_message<R: BufRead>(reader: &mut R, path: &Path) -> Result<Value, QmpError> {
    let mut line = String::new();
    let read = Read::take(reader, MAX_QMP_LINE_BYTES)
        .read_line(&mut line)
        .map_err(|source| QmpError::Io {
            path: path.display().to_string(),
            source,
        })?;
    if read == 0 {
        return Err(QmpError::Protocol("connection closed".into()));
    }
    serde_json::from_str(&line).map_err(|e| QmpError::Protocol(format!("{e}: {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QEMU: greets, accepts capabilities, emits an event, then
    /// answers `stop` with success and anything else with an error.
    fn fake_qemu(path: &Path) -> std::thread::JoinHandle<()> {
        let listener = UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                writeln!(
                    writer,
                    r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#
                )
                .unwrap();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                assert!(line.contains("qmp_capabilities"), "{line}");
                writeln!(writer, r#"{{"return": {{}}}}"#).unwrap();
                line.clear();
                reader.read_line(&mut line).unwrap();
                writeln!(writer, r#"{{"event": "STOP", "timestamp": {{}}}}"#).unwrap();
                if line.contains("\"stop\"") {
                    writeln!(writer, r#"{{"return": {{}}}}"#).unwrap();
                } else {
                    writeln!(
                        writer,
                        r#"{{"error": {{"class": "CommandNotFound", "desc": "no"}}}}"#
                    )
                    .unwrap();
                }
            }
        })
    }

    #[test]
    fn commands_skip_events_and_report_errors() {
        let dir = std::env::temp_dir().join(format!("ctm-qmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qmp.sock");
        let server = fake_qemu(&path);
        assert_eq!(execute(&path, "stop").unwrap(), json!({}));
        let error = execute(&path, "bogus").unwrap_err();
        assert!(error.to_string().contains("CommandNotFound"), "{error}");
        server.join().unwrap();
        let missing = execute(&dir.join("absent.sock"), "stop").unwrap_err();
        assert!(missing.to_string().contains("absent.sock"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
