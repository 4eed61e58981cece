//! What can go wrong, said so the user knows what to do next, and the exit
//! code each case ends with: 1 for an error or a rejected command, 3 when a
//! write's outcome is unknown (it may still apply: query it). Usage errors
//! are clap's (exit 2).

use continuum_harness::client::ClientError;
use std::path::{Path, PathBuf};

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// `<dir>/cluster.json` is missing.
    NotInitialised(PathBuf),
    /// `cluster init` on a directory that already holds a cluster.
    AlreadyInitialised(PathBuf),
    /// The cluster is not up (or its supervisor is gone).
    NotRunning(String),
    /// The cluster is already up.
    AlreadyRunning(String),
    /// No key file for the account that must sign.
    MissingKey { account: u128, path: PathBuf },
    /// A key file that does not hold a key.
    BadKeyFile { path: PathBuf, why: String },
    /// The ledger has no such account.
    UnknownAccount(u128),
    /// The bank applied the command's rules and said no.
    Rejected(String),
    /// A write was sent but not confirmed: it may still apply.
    OutcomeUnknown(String),
    /// The cluster could not be asked (unreachable, unavailable, protocol).
    Client(ClientError),
    /// A file or process operation failed.
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Anything else, already phrased for the user.
    Other(String),
}

impl CliError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }

    pub fn io_path(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
        CliError::io(format!("cannot {action} {}", path.display()))
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::OutcomeUnknown(_) => 3,
            CliError::Client(ClientError::OutcomeUnknown { .. }) => 3,
            CliError::Client(ClientError::Unreachable {
                maybe_applied: true,
                ..
            }) => 3,
            _ => 1,
        }
    }

    /// A short machine-readable kind for `--json`.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::NotInitialised(_) => "not_initialised",
            CliError::AlreadyInitialised(_) => "already_initialised",
            CliError::NotRunning(_) => "not_running",
            CliError::AlreadyRunning(_) => "already_running",
            CliError::MissingKey { .. } => "missing_key",
            CliError::BadKeyFile { .. } => "bad_key_file",
            CliError::UnknownAccount(_) => "unknown_account",
            CliError::Rejected(_) => "rejected",
            CliError::OutcomeUnknown(_) => "outcome_unknown",
            CliError::Client(ClientError::Unreachable { .. }) => "unreachable",
            CliError::Client(ClientError::Unavailable { .. }) => "unavailable",
            CliError::Client(ClientError::OutcomeUnknown { .. }) => "outcome_unknown",
            CliError::Client(ClientError::BadSignature { .. }) => "bad_signature",
            CliError::Client(_) => "client",
            CliError::Io { .. } => "io",
            CliError::Other(_) => "error",
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::NotInitialised(dir) => write!(
                f,
                "no cluster in {}: create one with `continuum --dir {} cluster init`",
                dir.display(),
                dir.display()
            ),
            CliError::AlreadyInitialised(dir) => write!(
                f,
                "{} already holds a cluster (cluster.json exists); use another --dir or remove it",
                dir.display()
            ),
            CliError::NotRunning(why) | CliError::AlreadyRunning(why) => f.write_str(why),
            CliError::MissingKey { account, path } => write!(
                f,
                "no key for account {account}: {} does not exist (accounts opened with `continuum account create` keep their owner key there)",
                path.display()
            ),
            CliError::BadKeyFile { path, why } => {
                write!(f, "bad key file {}: {why}", path.display())
            }
            CliError::UnknownAccount(account) => write!(f, "unknown account {account}"),
            CliError::Rejected(why) => f.write_str(why),
            CliError::OutcomeUnknown(why) => f.write_str(why),
            CliError::Client(e) => write!(f, "{e}"),
            CliError::Io { context, source } => write!(f, "{context}: {source}"),
            CliError::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CliError {}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> CliError {
        CliError::Client(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unknown_outcomes_exit_3_and_everything_else_1() {
        let unknown = CliError::Client(ClientError::OutcomeUnknown {
            last: "timed out".into(),
            waited: Duration::from_secs(30),
        });
        assert_eq!(unknown.exit_code(), 3);
        assert_eq!(unknown.kind(), "outcome_unknown");
        let silent_write = CliError::Client(ClientError::Unreachable {
            tried: vec!["127.0.0.1:9".parse().unwrap()],
            refused: vec![],
            waited: Duration::from_secs(1),
            maybe_applied: true,
        });
        assert_eq!(silent_write.exit_code(), 3);
        let silent_read = CliError::Client(ClientError::Unreachable {
            tried: vec!["127.0.0.1:9".parse().unwrap()],
            refused: vec!["127.0.0.1:9".parse().unwrap()],
            waited: Duration::from_secs(1),
            maybe_applied: false,
        });
        assert_eq!(silent_read.exit_code(), 1);
        assert_eq!(silent_read.kind(), "unreachable");
        let text = silent_read.to_string();
        assert!(
            text.contains("tried UDP 127.0.0.1:9")
                && text.contains("nothing listens on 127.0.0.1:9"),
            "{text}"
        );
        assert_eq!(CliError::UnknownAccount(12).exit_code(), 1);
    }

    #[test]
    fn messages_say_what_to_do_next() {
        let dir = PathBuf::from("/tmp/c");
        assert_eq!(
            CliError::NotInitialised(dir.clone()).to_string(),
            "no cluster in /tmp/c: create one with `continuum --dir /tmp/c cluster init`"
        );
        assert!(CliError::AlreadyInitialised(dir)
            .to_string()
            .contains("use another --dir"));
        assert_eq!(
            CliError::UnknownAccount(12).to_string(),
            "unknown account 12"
        );
        let missing = CliError::MissingKey {
            account: 7,
            path: "/tmp/c/keys/account-7.key".into(),
        };
        assert_eq!(
            missing.to_string(),
            "no key for account 7: /tmp/c/keys/account-7.key does not exist (accounts opened with `continuum account create` keep their owner key there)"
        );
        assert_eq!(missing.kind(), "missing_key");
    }
}
