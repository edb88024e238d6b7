//! Running as the configured unprivileged account. `serve` binds its sockets as root and
//! then switches; admin commands run as root switch before touching the store, so every
//! file in `data_dir` belongs to the account `serve` runs as.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Gid, Uid, User, chown, geteuid, setgid, setgroups, setuid};

use crate::config::Config;
use crate::exit::Failure;

/// The account to switch to, when running as root and `user` is not root itself.
pub fn target(config: &Config) -> Result<Option<User>, Failure> {
    if !geteuid().is_root() || config.user == "root" {
        return Ok(None);
    }
    match User::from_name(&config.user) {
        Ok(Some(user)) => Ok(Some(user)),
        Ok(None) => Err(Failure::new(
            crate::exit::CONFIG,
            format!(
                "{}: user: no system account `{}` (create it, e.g. with systemd-sysusers and contrib/systemd/sysusers.d/lifeboat.conf, or set user)",
                config.path.display(),
                config.user
            ),
        )),
        Err(e) => Err(Failure::failed(format!(
            "looking up account {}: {e}",
            config.user
        ))),
    }
}

/// Makes `data_dir` (created if missing) belong to `user`, then becomes `user`.
pub fn become_user(config: &Config, user: &User) -> Result<(), Failure> {
    lifeboat_mailstore::private::create_data_dir(&config.data_dir)
        .map_err(|e| Failure::failed(format!("creating {}: {e}", config.data_dir.display())))?;
    // Walking the whole store on every start would be slow: only when data_dir itself
    // has the wrong owner (first start, or files made by root before).
    let owner = fs::metadata(&config.data_dir)
        .map_err(|e| Failure::failed(format!("{}: {e}", config.data_dir.display())))?
        .uid();
    if owner != user.uid.as_raw() {
        give_tree(&config.data_dir, user.uid, user.gid)?;
    }
    setgroups(&[user.gid])
        .and_then(|()| setgid(user.gid))
        .and_then(|()| setuid(user.uid))
        .map_err(|e| Failure::failed(format!("switching to account {}: {e}", user.name)))?;
    tracing::info!(user = %user.name, "running as an unprivileged account");
    Ok(())
}

/// `chown -R`, leaving alone what already has the right owner.
fn give_tree(path: &Path, uid: Uid, gid: Gid) -> Result<(), Failure> {
    let meta = fs::symlink_metadata(path)
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
        chown(path, Some(uid), Some(gid))
            .map_err(|e| Failure::failed(format!("chown {}: {e}", path.display())))?;
    }
    if meta.is_dir() {
        let entries =
            fs::read_dir(path).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
        for entry in entries.flatten() {
            give_tree(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}
