//! Files and directories only the service account may read. The store holds password
//! hashes, everyone's mail and the key behind Lifeboat's marks, so every file and
//! directory it creates gets an explicit mode instead of whatever the umask of the
//! process allows (systemd's `UMask=` covers `serve`, not an admin's shell with 022).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Directories of the store: owner only.
pub const DIR_MODE: u32 = 0o700;
/// Files of the store: owner only.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents inside the store, each with [`DIR_MODE`].
/// For directories below the data directory only: parents outside it must stay
/// traversable, see [`create_data_dir`].
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates the data directory itself with [`DIR_MODE`]; missing parents get the usual
/// mode, so the service account can still reach a data directory it was handed. An
/// existing directory keeps its mode (an admin may have chosen 0750, as tmpfiles.d does).
pub fn create_data_dir(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    }
}

/// Opens `path` for writing, creating it with [`FILE_MODE`] if missing (never
/// truncating): lock files and the like.
pub fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Writes `bytes` to `path` (replacing its contents), creating it with [`FILE_MODE`].
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(bytes)
}

/// Takes group and other permissions off an existing file (a store created before
/// modes were explicit); a missing file is fine.
pub fn restrict(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            let mode = meta.permissions().mode() & 0o700;
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "made a store file private");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
