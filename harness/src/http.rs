//! Loopback helpers: free host ports for forwarded guest ports, and a
//! minimal HTTP/1.1 GET for the nodes' status endpoint.

use std::io::Write;
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (bound and released; a race with another
/// process grabbing it in between is possible but unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback port")
}

/// A free UDP port on 127.0.0.1 (same caveat as [`free_port`]).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a loopback UDP port")
}

/// `GET path` from 127.0.0.1:`port`; the body if the answer is 200.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    http_get_timeout(port, path, Duration::from_secs(5))
}

/// [`http_get`] that gives up after `timeout` (connect and each read).
pub fn http_get_timeout(port: u16, path: &str, timeout: Duration) -> Result<String, String> {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no header end")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "status line: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    Ok(body.to_owned())
}
