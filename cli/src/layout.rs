//! The cluster directory: what `cluster init` writes and every other
//! command reads.
//!
//! ```text
//! <dir>/cluster.json          public facts: ids, LAN addresses, public keys, genesis
//! <dir>/node-<id>.conf        node configs, each with its node's secret key (0600)
//! <dir>/keys/operator.key     operator secret key (0600): opens accounts, owns the reserve
//! <dir>/keys/account-<id>.key owner secret keys of accounts opened here (0600)
//! <dir>/run/state.json        while up: supervisor and QEMU pids, ports, files
//! <dir>/run/control.sock      the supervisor's control socket (kill/restart/pause/resume)
//! <dir>/run/supervisor.log    the supervisor's output when started in the background
//! <dir>/run/fabric/           the fabric's sockets (control.sock for partitions and loss)
//! <dir>/run/node-<id>/        disk.img, console.log, node.cfg, qmp.sock
//! ```
//!
//! Key files hold the 32-byte Ed25519 secret seed as 64 hex digits and a
//! newline. Secrets are created with mode 0600 and never overwritten.

use crate::error::CliError;
use continuum_harness::plan::{hex, parse_hex32, ClusterFacts, ClusterPlan};
use continuum_harness::NodeId;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Where everything of one cluster lives.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

/// Lifecycle of a `cluster up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    Running,
    Stopping,
    Stopped,
}

/// `run/state.json`: written by the supervisor (atomically, by rename),
/// read by every other command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub phase: Phase,
    pub supervisor_pid: u32,
    pub cluster_id: u64,
    /// The supervisor's control socket.
    pub control_socket: PathBuf,
    /// The fabric's control socket.
    pub fabric_control: PathBuf,
    pub nodes: Vec<NodeRun>,
}

/// One node in `state.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRun {
    pub id: NodeId,
    /// `running`, `paused` or `down`.
    pub state: String,
    /// QEMU's pid while it runs.
    pub pid: Option<u32>,
    /// Host TCP port of `GET /status` and `GET /metrics`.
    pub status_port: u16,
    /// Host UDP port of the client protocol.
    pub client_port: u16,
    pub console: PathBuf,
    pub disk: PathBuf,
    /// How the last QEMU of this node ended, if one did.
    pub last_exit: Option<String>,
}

/// Whether process `pid` exists and is not a zombie (Linux `/proc`).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Writes `text` to a new file with mode 0600; refuses to overwrite.
pub fn write_secret(path: &Path, text: &str) -> Result<(), CliError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(CliError::io_path("create", path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(CliError::io_path("write", path))
}

/// Reads a key file; refuses one that group or others can read.
pub fn read_key(path: &Path) -> Result<SigningKey, CliError> {
    continuum_harness::private::check_private(path).map_err(|why| CliError::BadKeyFile {
        path: path.to_owned(),
        why,
    })?;
    let text = std::fs::read_to_string(path).map_err(CliError::io_path("read", path))?;
    let seed = parse_hex32(&text).ok_or_else(|| CliError::BadKeyFile {
        path: path.to_owned(),
        why: "expected 64 hex digits (an Ed25519 secret seed)".into(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes `value` as pretty JSON through a temporary file and a rename,
/// so a reader never sees half a file.
pub fn write_json_atomically(path: &Path, value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Other(format!("cannot encode {}: {e}", path.display())))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(CliError::io_path("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(CliError::io_path("replace", path))
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_owned(),
        }
    }

    pub fn facts_path(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    pub fn node_config_path(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("node-{id}.conf"))
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    pub fn operator_key_path(&self) -> PathBuf {
        self.keys_dir().join("operator.key")
    }

    pub fn account_key_path(&self, account: u128) -> PathBuf {
        self.keys_dir().join(format!("account-{account}.key"))
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn state_path(&self) -> PathBuf {
        self.run_dir().join("state.json")
    }

    pub fn control_path(&self) -> PathBuf {
        self.run_dir().join("control.sock")
    }

    pub fn supervisor_log_path(&self) -> PathBuf {
        self.run_dir().join("supervisor.log")
    }

    /// Creates `keys/` readable by its owner only.
    fn create_keys_dir(&self) -> Result<(), CliError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.keys_dir())
            .map_err(CliError::io_path("create", &self.keys_dir()))
    }

    /// Writes a new cluster: facts, node configs, operator key. Refuses a
    /// directory that already has one.
    pub fn init(&self, plan: &ClusterPlan) -> Result<Vec<PathBuf>, CliError> {
        if self.facts_path().exists() {
            return Err(CliError::AlreadyInitialised(self.dir.clone()));
        }
        self.create_keys_dir()?;
        let mut written = Vec::new();
        // Secrets first: a cluster.json only appears once its keys exist.
        write_secret(
            &self.operator_key_path(),
            &format!("{}\n", hex(&plan.operator.to_bytes())),
        )?;
        written.push(self.operator_key_path());
        for id in plan.member_ids() {
            let text = plan
                .node_config(id)
                .map_err(|e| CliError::Other(e.to_string()))?;
            write_secret(&self.node_config_path(id), &text)?;
            written.push(self.node_config_path(id));
        }
        write_json_atomically(&self.facts_path(), &plan.facts())?;
        written.push(self.facts_path());
        Ok(written)
    }

    /// The cluster's public facts.
    pub fn facts(&self) -> Result<ClusterFacts, CliError> {
        let path = self.facts_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::NotInitialised(self.dir.clone()))
            }
            Err(e) => return Err(CliError::io_path("read", &path)(e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            CliError::Other(format!(
                "{} is not a cluster description: {e}",
                path.display()
            ))
        })
    }

    /// A node's config text (it holds the node's secret key: refused if
    /// group or others can read it).
    pub fn node_config(&self, id: NodeId) -> Result<String, CliError> {
        let path = self.node_config_path(id);
        continuum_harness::private::check_private(&path).map_err(|why| CliError::BadKeyFile {
            path: path.clone(),
            why,
        })?;
        std::fs::read_to_string(&path).map_err(CliError::io_path("read", &path))
    }

    /// The operator key, checked against the facts.
    pub fn operator_key(&self, facts: &ClusterFacts) -> Result<SigningKey, CliError> {
        let path = self.operator_key_path();
        if !path.exists() {
            return Err(CliError::BadKeyFile {
                path,
                why: "the operator key is missing (only the directory that ran `cluster init` has it)".into(),
            });
        }
        let key = read_key(&path)?;
        if facts.operator_verifying_key() != Some(key.verifying_key()) {
            return Err(CliError::BadKeyFile {
                path,
                why: "not the operator key of this cluster (cluster.json names another)".into(),
            });
        }
        Ok(key)
    }

    /// The key that signs debits of `account` (the operator's for the
    /// reserve account) and where it came from.
    pub fn signing_key(
        &self,
        facts: &ClusterFacts,
        account: u128,
    ) -> Result<(SigningKey, PathBuf), CliError> {
        if account == facts.reserve_account {
            return Ok((self.operator_key(facts)?, self.operator_key_path()));
        }
        let path = self.account_key_path(account);
        if !path.exists() {
            return Err(CliError::MissingKey { account, path });
        }
        Ok((read_key(&path)?, path))
    }

    /// The owner key of a new account: loaded if the file exists (a
    /// repeated `account create` reuses it), else generated and saved
    /// before anything is sent. Returns the key, its path, and whether it
    /// was created now.
    pub fn account_key_for_create(
        &self,
        account: u128,
    ) -> Result<(SigningKey, PathBuf, bool), CliError> {
        let path = self.account_key_path(account);
        if path.exists() {
            return Ok((read_key(&path)?, path, false));
        }
        self.create_keys_dir()?;
        let key = continuum_harness::plan::random_key()
            .map_err(CliError::io("cannot read /dev/urandom"))?;
        write_secret(&path, &format!("{}\n", hex(&key.to_bytes())))?;
        Ok((key, path, true))
    }

    /// `state.json`, if present.
    pub fn state(&self) -> Result<Option<RunState>, CliError> {
        let path = self.state_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| CliError::Other(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CliError::io_path("read", &path)(e)),
        }
    }

    pub fn write_state(&self, state: &RunState) -> Result<(), CliError> {
        write_json_atomically(&self.state_path(), state)
    }

    /// The state of a cluster that is up, or why it is not.
    pub fn running_state(&self) -> Result<RunState, CliError> {
        let up = format!("continuum --dir {} cluster up", self.dir.display());
        match self.state()? {
            None => {
                self.facts()?;
                Err(CliError::NotRunning(format!(
                    "the cluster in {} is not running: start it with `{up}`",
                    self.dir.display()
                )))
            }
            Some(state) if state.phase == Phase::Stopped => Err(CliError::NotRunning(format!(
                "the cluster in {} is stopped: start it with `{up}`",
                self.dir.display()
            ))),
            Some(state) if !pid_alive(state.supervisor_pid) => Err(CliError::NotRunning(format!(
                "the cluster in {} is not running: its supervisor (pid {}) is gone; run `continuum --dir {} cluster down` to clean up, then `{up}`",
                self.dir.display(),
                state.supervisor_pid,
                self.dir.display()
            ))),
            Some(state) => Ok(state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_layout(name: &str) -> Layout {
        let dir = std::env::temp_dir().join(format!("ctm-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Layout::new(&dir)
    }

    #[test]
    fn init_writes_private_secrets_and_public_facts_once() {
        let layout = temp_layout("init");
        let plan = ClusterPlan::from_seed(5, 3).unwrap();
        layout.init(&plan).unwrap();
        for path in [
            layout.operator_key_path(),
            layout.node_config_path(1),
            layout.node_config_path(3),
        ] {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        let facts = layout.facts().unwrap();
        assert_eq!(facts, plan.facts());
        let public = std::fs::read_to_string(layout.facts_path()).unwrap();
        assert!(!public.contains(&hex(&plan.operator.to_bytes())));
        assert_eq!(
            layout.operator_key(&facts).unwrap().to_bytes(),
            plan.operator.to_bytes()
        );
        assert!(matches!(
            layout.init(&plan),
            Err(CliError::AlreadyInitialised(_))
        ));
        // The reserve account signs with the operator key; others need a file.
        let (_, path) = layout.signing_key(&facts, 1).unwrap();
        assert_eq!(path, layout.operator_key_path());
        let missing = layout.signing_key(&facts, 10).unwrap_err().to_string();
        assert!(
            missing.contains("account-10.key") && missing.contains("no key for account 10"),
            "{missing}"
        );
        let (key, path, created) = layout.account_key_for_create(10).unwrap();
        assert!(created);
        let (again, _, created) = layout.account_key_for_create(10).unwrap();
        assert!(!created);
        assert_eq!(key.to_bytes(), again.to_bytes());
        assert_eq!(layout.signing_key(&facts, 10).unwrap().1, path);
        std::fs::write(&path, "not a key").unwrap();
        let bad = layout.signing_key(&facts, 10).unwrap_err().to_string();
        assert!(bad.contains("64 hex digits"), "{bad}");
        // Secrets that others can read are refused, with the fix.
        for secret in [layout.operator_key_path(), layout.node_config_path(2)] {
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let open = layout.operator_key(&facts).unwrap_err().to_string();
        assert!(
            open.contains(&format!(
                "chmod 600 {}",
                layout.operator_key_path().display()
            )),
            "{open}"
        );
        let open = layout.node_config(2).unwrap_err().to_string();
        assert!(open.contains("chmod 600"), "{open}");
        let keys_mode = std::fs::metadata(layout.keys_dir())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(keys_mode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&layout.dir);
    }

    #[test]
    fn a_foreign_operator_key_is_refused() {
        let layout = temp_layout("foreign");
        layout.init(&ClusterPlan::from_seed(1, 3).unwrap()).unwrap();
        let other = ClusterPlan::from_seed(2, 3).unwrap().facts();
        let error = layout.operator_key(&other).unwrap_err().to_string();
        assert!(
            error.contains("not the operator key of this cluster"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(&layout.dir);
    }

    #[test]
    fn missing_cluster_and_stopped_cluster_say_what_to_do() {
        let layout = temp_layout("missing");
        let error = layout.running_state().unwrap_err().to_string();
        assert!(error.contains("cluster init"), "{error}");
        layout.init(&ClusterPlan::from_seed(1, 3).unwrap()).unwrap();
        let error = layout.running_state().unwrap_err().to_string();
        assert!(
            error.contains("is not running") && error.contains("cluster up"),
            "{error}"
        );
        std::fs::create_dir_all(layout.run_dir()).unwrap();
        let mut state = RunState {
            phase: Phase::Running,
            supervisor_pid: u32::MAX,
            cluster_id: 1,
            control_socket: layout.control_path(),
            fabric_control: layout.run_dir().join("fabric/control.sock"),
            nodes: vec![],
        };
        layout.write_state(&state).unwrap();
        let error = layout.running_state().unwrap_err().to_string();
        assert!(
            error.contains("supervisor (pid 4294967295) is gone"),
            "{error}"
        );
        state.supervisor_pid = std::process::id();
        layout.write_state(&state).unwrap();
        assert_eq!(layout.running_state().unwrap(), state);
        state.phase = Phase::Stopped;
        layout.write_state(&state).unwrap();
        assert!(layout
            .running_state()
            .unwrap_err()
            .to_string()
            .contains("stopped"));
        let _ = std::fs::remove_dir_all(&layout.dir);
    }

    #[test]
    fn pid_liveness() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(u32::MAX));
    }
}
