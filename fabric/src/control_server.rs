//! Serving the control socket: accept connections, read request lines,
//! hand each request to the core thread and write its reply line.
//!
//! Every connection has its own thread (at most [`MAX_CONTROL_CONNECTIONS`]);
//! lines are capped at [`MAX_CONTROL_LINE_BYTES`]; malformed input gets an
//! error reply and never reaches the switch. Requests are serialized through
//! the core thread's event queue, so the socket and the in-process
//! [`crate::FabricHandle`] see the same state in the same order.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::{json, Value};

use crate::control::{Request, MAX_CONTROL_LINE_BYTES};
use crate::runtime::{Event, STOP_POLL};

/// Most simultaneous control connections; more are refused with an error.
pub const MAX_CONTROL_CONNECTIONS: usize = 16;

pub(crate) fn control_loop(
    listener: UnixListener,
    events: SyncSender<Event>,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONTROL_CONNECTIONS {
                    let _ = write_line(&mut stream, &error_reply("too many control connections"));
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (events, stop, active) =
                    (events.clone(), Arc::clone(&stop), Arc::clone(&active));
                let spawned = thread::Builder::new()
                    .name("fabric-control-conn".to_string())
                    .spawn(move || {
                        serve_connection(stream, &events, &stop);
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Ok(handle) = spawned {
                    connections.push(handle);
                }
                connections.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(_) => thread::sleep(STOP_POLL),
        }
    }
    for handle in connections {
        let _ = handle.join();
    }
}

/// Writes one reply line with a single write, so a reader never sees a
/// partial line between two syscalls.
fn write_line(stream: &mut UnixStream, reply: &Value) -> io::Result<()> {
    let mut line = reply.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes())
}

fn error_reply(message: &str) -> Value {
    json!({ "ok": false, "error": message })
}

/// Reads request lines and writes one reply line for each.
fn serve_connection(mut stream: UnixStream, events: &SyncSender<Event>, stop: &AtomicBool) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(STOP_POLL)).is_err() {
        return;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let read = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        pending.extend_from_slice(&chunk[..read]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let reply = answer_line(&line[..end], events);
            if write_line(&mut stream, &reply).is_err() {
                return;
            }
        }
        if pending.len() > MAX_CONTROL_LINE_BYTES {
            let message = format!("request line longer than {MAX_CONTROL_LINE_BYTES} bytes");
            let _ = write_line(&mut stream, &error_reply(&message));
            return;
        }
    }
}

fn answer_line(line: &[u8], events: &SyncSender<Event>) -> Value {
    let Ok(text) = std::str::from_utf8(line) else {
        return error_reply("request is not UTF-8");
    };
    let text = text.trim();
    if text.is_empty() {
        return error_reply("empty request");
    }
    match Request::parse(text) {
        Ok(request) => match submit(events, request) {
            Ok(value) => value,
            Err(message) => error_reply(&message),
        },
        Err(message) => error_reply(&message),
    }
}

pub(crate) fn submit(events: &SyncSender<Event>, request: Request) -> Result<Value, String> {
    let (reply, answer) = mpsc::channel();
    events
        .send(Event::Control { request, reply })
        .map_err(|_| "the fabric has stopped".to_string())?;
    answer
        .recv()
        .map_err(|_| "the fabric has stopped".to_string())?
}
