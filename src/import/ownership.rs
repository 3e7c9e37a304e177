//! Who owns the data dir an import writes into. `sudo push-appserver
//! import-prosody` into the packaged data dir (owned by the service user)
//! used to leave root-owned files there, and the service then failed with a
//! permission error that named no path. As root, the files the import
//! creates are given to the data dir's owner afterwards; as another user
//! than the owner, the import is refused before anything is written.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What the data dir's ownership means for an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The data dir is this user's, or does not exist yet.
    Own,
    /// Running as root into another user's data dir: give the new files
    /// to `uid`/`gid` afterwards.
    GiveTo {
        /// The data dir owner's user id.
        uid: u32,
        /// The data dir owner's group id.
        gid: u32,
    },
    /// Another user's data dir, and not root: refuse.
    Refuse {
        /// The data dir.
        dir: PathBuf,
        /// Its owner's user id.
        uid: u32,
    },
}

/// Decides for `data_dir` and the effective user `euid`.
pub fn check(data_dir: &Path, euid: u32) -> Ownership {
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return Ownership::Own;
    };
    match (meta.uid(), euid) {
        (owner, me) if owner == me => Ownership::Own,
        (uid, 0) => Ownership::GiveTo {
            uid,
            gid: meta.gid(),
        },
        (uid, _) => Ownership::Refuse {
            dir: data_dir.to_owned(),
            uid,
        },
    }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Gives every file and directory under `dir` (and `dir`) that is not
/// `uid`'s to `uid`/`gid`; returns how many changed. Symlinks are left
/// alone (an import makes none).
pub fn give(dir: &Path, uid: u32, gid: u32) -> std::io::Result<usize> {
    let mut changed = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
        if meta.uid() != uid || meta.gid() != gid {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_root_and_other_users_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("pa-own-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let owner = std::fs::metadata(&dir).unwrap().uid();
        assert_eq!(check(&dir, owner), Ownership::Own);
        assert_eq!(check(&dir.join("missing"), 12345), Ownership::Own);
        if owner != 0 {
            assert!(matches!(check(&dir, 0), Ownership::GiveTo { uid, .. } if uid == owner));
        }
        let other = if owner == 4242 { 4243 } else { 4242 };
        assert_eq!(
            check(&dir, other),
            Ownership::Refuse {
                dir: dir.clone(),
                uid: owner
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
