//! The `continuum` CLI as the QEMU tests drive it: built once with cargo
//! (it belongs to another package of the workspace) and run as a user
//! would, in a temporary cluster directory, with every invocation and its
//! output echoed to the test's stderr.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Longest [`Cli::wait_status`] waits (TCG, a loaded machine).
pub const STATUS_WAIT: Duration = Duration::from_secs(180);

/// Builds `continuum` (debug) and returns its path.
pub fn cli_binary() -> PathBuf {
    crate::cargo_build_bin("continuum-cli", "continuum", false)
}

/// A fresh (removed if it exists) cluster directory for `test`.
pub fn dir_for(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ctm-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The directory holding the kernel images (`cluster up --images`).
pub fn images_dir() -> &'static Path {
    crate::images()
        .bios
        .parent()
        .expect("images live in a directory")
}

/// `continuum --dir <dir> ...`.
#[derive(Clone, Debug)]
pub struct Cli {
    /// The `continuum` binary.
    pub binary: PathBuf,
    /// The cluster directory.
    pub dir: PathBuf,
}

impl Cli {
    /// A CLI (built now) on a fresh directory for `test`.
    pub fn for_test(test: &str) -> Cli {
        Cli {
            binary: cli_binary(),
            dir: dir_for(test),
        }
    }

    /// Runs without echoing (for polling).
    pub fn run_quiet(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("continuum runs")
    }

    /// Runs and echoes the command, its output and exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.run_quiet(args);
        eprintln!(
            "$ continuum {}\n{}{}(exit {:?})",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            output.status.code()
        );
        output
    }

    /// Runs and expects exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`continuum {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs and expects exit `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "`continuum {}`",
            args.join(" ")
        );
        String::from_utf8(output.stderr).expect("UTF-8 output")
    }

    /// `--json` output of a command that must succeed (not echoed).
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run_quiet(&all);
        assert!(
            output.status.success(),
            "`continuum {}` failed: {}",
            all.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON output")
    }

    /// Polls `cluster status --json` every 500 ms until `check` holds;
    /// panics after [`STATUS_WAIT`].
    pub fn wait_status(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + STATUS_WAIT;
        loop {
            let status = self.json(&["cluster", "status"]);
            if check(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {status}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Stops the cluster (`cluster down`) when dropped, even when a test fails.
pub struct Down<'a>(pub &'a Cli);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.run_quiet(&["cluster", "down"]);
    }
}
