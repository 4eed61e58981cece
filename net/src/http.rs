//! The status server's HTTP/1.1 request-head parser and router: pure, so
//! every byte an unauthenticated TCP client can send is tested on the host
//! (property tests and the `http_head` fuzz target call
//! [`crate::fuzz_check::http_head`]).
//!
//! The server answers one request per connection (`Connection: close`) and
//! only ever needs the request line, so the parser checks the head's shape
//! (RFC 9112 §2.2, §3, §5) without keeping headers:
//!
//! * request line `method SP target SP HTTP/1.x CRLF`, method a token,
//!   target an origin-form path (starts with `/`, visible ASCII);
//! * header lines `name ":" value CRLF`, name a token, value visible
//!   ASCII, space or tab (obsolete line folding is refused, §5.2);
//! * an empty line ends the head.
//!
//! Anything else is [`HeadError::Malformed`] (answer `400`) as soon as the
//! bytes received so far cannot start a valid head, so junk is refused
//! without waiting for more. A head that has not ended within
//! [`MAX_HEAD_BYTES`] is [`HeadError::TooLarge`] (answer `431`). The
//! decision depends only on the bytes, never on how they were split into
//! segments: feeding a prefix gives `Incomplete` or the same error.

/// Longest request head accepted, CRLF CRLF included. Status and metrics
/// requests need a request line and a few headers; curl's is ~80 bytes.
pub const MAX_HEAD_BYTES: usize = 2048;

/// Why a head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not an HTTP/1.x request head: `400 Bad Request`.
    Malformed,
    /// No end of head within [`MAX_HEAD_BYTES`]:
    /// `431 Request Header Fields Too Large`.
    TooLarge,
}

impl HeadError {
    /// Status line text for the answer.
    pub fn status(self) -> &'static str {
        match self {
            HeadError::Malformed => "400 Bad Request",
            HeadError::TooLarge => "431 Request Header Fields Too Large",
        }
    }
}

impl core::fmt::Display for HeadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HeadError::Malformed => "malformed request head",
            HeadError::TooLarge => "request head too large",
        })
    }
}

/// A complete, well-formed request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method token (e.g. `GET`).
    pub method: &'a [u8],
    /// Origin-form target: path and optional `?query`.
    pub target: &'a [u8],
    /// Bytes of the head, final CRLF CRLF included.
    pub len: usize,
}

impl RequestHead<'_> {
    /// The target's query: the bytes after the first `?` (empty if none).
    pub fn query(&self) -> &[u8] {
        match self.target.iter().position(|&b| b == b'?') {
            Some(at) => &self.target[at + 1..],
            None => &[],
        }
    }
}

/// What the bytes received so far are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head<'a> {
    /// A valid prefix of a head: wait for more (within the deadline).
    Incomplete,
    /// A whole head.
    Complete(RequestHead<'a>),
    /// Junk or too large: answer with the error's status and close.
    Refused(HeadError),
}

/// What the status server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `GET /status` (JSON).
    Status,
    /// `GET /metrics` (Prometheus text).
    Metrics,
    /// `GET /trace?transfer=<hex>` (JSON: one transfer's trace events,
    /// `continuum_node::trace`; the query is parsed there).
    Trace,
}

/// Why a well-formed request is not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// `404 Not Found`.
    NotFound,
    /// `405 Method Not Allowed` (only GET is served).
    MethodNotAllowed,
}

impl RouteError {
    /// Status line text for the answer.
    pub fn status(self) -> &'static str {
        match self {
            RouteError::NotFound => "404 Not Found",
            RouteError::MethodNotAllowed => "405 Method Not Allowed",
        }
    }
}

/// Parses the bytes received so far on a connection (see module doc).
pub fn parse_head(bytes: &[u8]) -> Head<'_> {
    match scan(bytes) {
        Err(error) => Head::Refused(error),
        Ok(Some(head)) => Head::Complete(head),
        Ok(None) if bytes.len() >= MAX_HEAD_BYTES => Head::Refused(HeadError::TooLarge),
        Ok(None) => Head::Incomplete,
    }
}

/// Which resource a complete head asks for.
pub fn route(head: &RequestHead<'_>) -> Result<Resource, RouteError> {
    let path = head
        .target
        .split(|&b| b == b'?')
        .next()
        .unwrap_or(head.target);
    let resource = match path {
        b"/status" => Resource::Status,
        b"/metrics" => Resource::Metrics,
        b"/trace" => Resource::Trace,
        _ => return Err(RouteError::NotFound),
    };
    if head.method != b"GET" {
        return Err(RouteError::MethodNotAllowed);
    }
    Ok(resource)
}

/// `Ok(Some)` a complete head, `Ok(None)` a valid prefix, `Err` refused.
/// Only the first [`MAX_HEAD_BYTES`] bytes are looked at.
fn scan(bytes: &[u8]) -> Result<Option<RequestHead<'_>>, HeadError> {
    let bytes = &bytes[..bytes.len().min(MAX_HEAD_BYTES)];
    let mut lines = Lines { bytes, at: 0 };
    let Some(line) = lines.next()? else {
        return prefix(bytes, request_line_prefix_ok).map(|()| None);
    };
    let (method, target) = request_line(line)?;
    loop {
        let Some(line) = lines.next()? else {
            let rest = &bytes[lines.at..];
            return prefix(rest, header_line_prefix_ok).map(|()| None);
        };
        if line.is_empty() {
            return Ok(Some(RequestHead {
                method,
                target,
                len: lines.at,
            }));
        }
        header_line(line)?;
    }
}

/// CRLF-terminated lines; a bare CR or LF is malformed.
struct Lines<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line (without CRLF), `None` when it has not ended.
    fn next(&mut self) -> Result<Option<&'a [u8]>, HeadError> {
        let rest = &self.bytes[self.at..];
        for (i, &b) in rest.iter().enumerate() {
            match b {
                b'\n' => return Err(HeadError::Malformed),
                b'\r' => match rest.get(i + 1) {
                    Some(b'\n') => {
                        self.at += i + 2;
                        return Ok(Some(&rest[..i]));
                    }
                    Some(_) => return Err(HeadError::Malformed),
                    None => return Ok(None),
                },
                _ => {}
            }
        }
        Ok(None)
    }
}

/// An unterminated line: refused at once if no completion could be valid.
fn prefix(rest: &[u8], ok: fn(&[u8]) -> bool) -> Result<(), HeadError> {
    let line = rest.strip_suffix(b"\r").unwrap_or(rest);
    if ok(line) {
        Ok(())
    } else {
        Err(HeadError::Malformed)
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_target_char(b: u8) -> bool {
    b.is_ascii_graphic()
}

fn is_field_value_char(b: u8) -> bool {
    b.is_ascii_graphic() || b == b' ' || b == b'\t'
}

/// `method SP target SP HTTP/1.d`.
fn request_line(line: &[u8]) -> Result<(&[u8], &[u8]), HeadError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let version_ok =
        version.len() == 8 && version.starts_with(b"HTTP/1.") && version[7].is_ascii_digit();
    if method.is_empty()
        || !method.iter().all(|&b| is_tchar(b))
        || target.first() != Some(&b'/')
        || !target.iter().all(|&b| is_target_char(b))
        || !version_ok
    {
        return Err(HeadError::Malformed);
    }
    Ok((method, target))
}

/// Whether `line` can still become a valid request line.
fn request_line_prefix_ok(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !method.iter().all(|&b| is_tchar(b)) {
        return false;
    }
    let Some(target) = parts.next() else {
        return true;
    };
    if method.is_empty()
        || !(target.is_empty() || target[0] == b'/')
        || !target.iter().all(|&b| is_target_char(b))
    {
        return false;
    }
    let Some(version) = parts.next() else {
        return true;
    };
    let template = b"HTTP/1.";
    let fixed = version.len().min(template.len());
    target.first() == Some(&b'/')
        && parts.next().is_none()
        && version.len() <= 8
        && version[..fixed] == template[..fixed]
        && version.get(7).is_none_or(|b| b.is_ascii_digit())
}

/// `name ":" value`.
fn header_line(line: &[u8]) -> Result<(), HeadError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::Malformed)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty()
        || !name.iter().all(|&b| is_tchar(b))
        || !value.iter().all(|&b| is_field_value_char(b))
    {
        return Err(HeadError::Malformed);
    }
    Ok(())
}

/// Whether `line` can still become a header line or the empty line.
fn header_line_prefix_ok(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        None => line.iter().all(|&b| is_tchar(b)),
        Some(colon) => {
            colon > 0
                && line[..colon].iter().all(|&b| is_tchar(b))
                && line[colon + 1..].iter().all(|&b| is_field_value_char(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> RequestHead<'_> {
        match parse_head(bytes) {
            Head::Complete(head) => head,
            other => panic!("{other:?} for {:?}", core::str::from_utf8(bytes)),
        }
    }

    #[test]
    fn a_status_request_parses_and_routes() {
        let head = complete(b"GET /status HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n");
        assert_eq!(route(&head), Ok(Resource::Status));
        assert_eq!(head.len, 53);
        let head = complete(b"GET /status?pretty HTTP/1.0\r\n\r\n");
        assert_eq!(route(&head), Ok(Resource::Status));
        let head = complete(b"GET /metrics HTTP/1.1\r\n\r\nextra body bytes");
        assert_eq!(route(&head), Ok(Resource::Metrics));
        let head = complete(b"GET /trace?transfer=2a&index=5 HTTP/1.1\r\n\r\n");
        assert_eq!(route(&head), Ok(Resource::Trace));
        assert_eq!(head.query(), b"transfer=2a&index=5");
        assert_eq!(complete(b"GET /trace HTTP/1.1\r\n\r\n").query(), b"");
        let head = complete(b"POST /status HTTP/1.1\r\n\r\n");
        assert_eq!(route(&head), Err(RouteError::MethodNotAllowed));
        let head = complete(b"GET /statusx HTTP/1.1\r\n\r\n");
        assert_eq!(route(&head), Err(RouteError::NotFound));
    }

    #[test]
    fn prefixes_of_a_valid_head_are_incomplete() {
        let full = b"GET /status HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n\r\n";
        for end in 0..full.len() {
            assert_eq!(parse_head(&full[..end]), Head::Incomplete, "{end}");
        }
        assert!(matches!(parse_head(full), Head::Complete(_)));
    }

    #[test]
    fn junk_is_refused_at_once() {
        for junk in [
            &b"\x16\x03\x01\x02\x00"[..], // a TLS ClientHello
            b"GET  /status",
            b"GET status HTTP/1.1",
            b"GET /status HTTP/2",
            b"GET /status HTTP/1.1\n",
            b"GET /status HTTP/1.1\r\nHost\r\n",
            b"GET /status HTTP/1.1\r\n Host: x\r\n",
            b"GET /status HTTP/1.1\r\nHo st: x",
            b"GET /st\x00atus",
            b"\r\n",
        ] {
            assert_eq!(
                parse_head(junk),
                Head::Refused(HeadError::Malformed),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn a_head_that_does_not_end_within_the_cap_is_too_large() {
        let mut head = b"GET /status HTTP/1.1\r\nX-Pad: ".to_vec();
        head.resize(MAX_HEAD_BYTES - 1, b'a');
        assert_eq!(parse_head(&head), Head::Incomplete);
        head.push(b'a');
        assert_eq!(parse_head(&head), Head::Refused(HeadError::TooLarge));
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&head), Head::Refused(HeadError::TooLarge));
    }
}
