//! A small client for the control socket (tests, CLI tools, the harness).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::Value;

use crate::control::Request;
use crate::runtime::FabricError;

/// One connection to a fabric's control socket.
pub struct ControlClient {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl ControlClient {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> Result<ControlClient, FabricError> {
        let context = || format!("connecting to {}", path.display());
        let writer = UnixStream::connect(path).map_err(|source| FabricError::Io {
            context: context(),
            source,
        })?;
        let reader = writer.try_clone().map_err(|source| FabricError::Io {
            context: context(),
            source,
        })?;
        Ok(ControlClient {
            writer,
            reader: BufReader::new(reader),
        })
    }

    /// Sends one raw line and returns the reply object, whatever it says.
    pub fn raw(&mut self, line: &str) -> Result<Value, FabricError> {
        let io_err = |source: io::Error| FabricError::Io {
            context: "control socket".to_string(),
            source,
        };
        writeln!(self.writer, "{line}").map_err(io_err)?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply).map_err(io_err)? == 0 {
            return Err(FabricError::Stopped);
        }
        serde_json::from_str(&reply)
            .map_err(|e| FabricError::Refused(format!("unparsable reply {reply:?}: {e}")))
    }

    /// Sends a request; an `{"ok":false}` reply becomes `Refused`.
    pub fn request(&mut self, request: &Request) -> Result<Value, FabricError> {
        let line = serde_json::to_string(request)
            .map_err(|e| FabricError::Refused(format!("cannot encode request: {e}")))?;
        let reply = self.raw(&line)?;
        if reply["ok"] == Value::Bool(true) {
            Ok(reply)
        } else {
            let error = reply["error"].as_str().unwrap_or("no error message");
            Err(FabricError::Refused(error.to_string()))
        }
    }
}
