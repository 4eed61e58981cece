//! Files, directories and sockets that hold secrets or control a cluster:
//! owner only, the way ssh treats its keys.
//!
//! Node configs hold the node's Ed25519 secret key; key files hold the
//! operator's and account owners' keys; the QMP socket can dump guest
//! memory and the control sockets can kill or partition nodes. Each is
//! created mode 0600 (directories 0700), and a secret file that group or
//! others can read is refused with the `chmod` that fixes it.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every file holding a secret, and of control sockets.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of every directory holding such files or sockets.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) mode 0700; an existing `dir` is
/// narrowed to 0700 too (parents that existed are left alone).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(PRIVATE_DIR_MODE))
}

/// Writes `bytes` to `path` (created or truncated) with mode 0600, also
/// when the file existed with a wider mode.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Narrows an existing file or socket to mode 0600.
pub fn restrict(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(PRIVATE_FILE_MODE))
}

/// Refuses a secret file that group or others may read or write, with the
/// command that fixes it.
pub fn check_private(path: &Path) -> Result<(), String> {
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} holds a secret key but its mode is {:04o} (group or others can access it); refusing to use it. Fix it with `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_are_owner_only_and_wide_modes_are_refused_with_the_fix() {
        let dir = std::env::temp_dir().join(format!("ctm-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir.join("a/b")).unwrap();
        assert_eq!(mode(&dir.join("a")), 0o700);
        assert_eq!(mode(&dir.join("a/b")), 0o700);
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "an existing directory is narrowed");

        let file = dir.join("a/b/node.cfg");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        let refused = check_private(&file).unwrap_err();
        assert!(
            refused.contains("0644") && refused.contains(&format!("chmod 600 {}", file.display())),
            "{refused}"
        );
        write_private(&file, b"secret_key = ...").unwrap();
        assert_eq!(mode(&file), 0o600, "an existing wide file is narrowed");
        assert_eq!(std::fs::read(&file).unwrap(), b"secret_key = ...");
        check_private(&file).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
