//! The data directory holds the embedded database and the signing and CA keys: it is created private
//! (0700) and the database files are private (0600), whatever the process umask.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` and any missing parents with mode 0700; an existing directory is left as it is (it may be
/// one the operator chose and shares on purpose).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes `file` exist with mode 0600 (creating it empty if missing, tightening it if not). SQLite gives its
/// `-wal` and `-shm` files the mode of the database file, so this covers them too.
pub fn private_file(file: &Path) -> io::Result<()> {
    if let Some(parent) = file.parent() {
        create_private_dir(parent)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn created_directories_and_files_are_private() {
        let root = tempfile::TempDir::new().expect("temp dir");
        let dir = root.path().join("a/b");
        create_private_dir(&dir).expect("created");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        let file = dir.join("handoffrail.db");
        private_file(&file).expect("file");
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        private_file(&file).expect("tightened");
        assert_eq!(mode(&file), 0o600);
    }
}
