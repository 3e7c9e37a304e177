//! What a valid configuration may still get wrong, said at every start and
//! by `check-config`: placeholder secrets, apps that only log, the APNS
//! sandbox, open relays and open HTTP operations, and credential files the
//! service's user cannot read.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Settings;
use crate::providers::apns::ApnsAuth;
use crate::providers::ProviderSettings;

/// Secrets the shipped examples and the documentation use.
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "secret",
    "shared-secret",
    "password",
];

/// Every warning about `settings`, one sentence each.
pub fn warnings(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    for c in &settings.components {
        let secret = c.secret.expose().trim().to_ascii_lowercase();
        if secret.is_empty() {
            out.push(format!(
                "component {}: the secret is empty; the XMPP server will most likely refuse \
                 the handshake",
                c.jid
            ));
        } else if PLACEHOLDERS.contains(&secret.as_str()) || secret.contains("change-me") {
            out.push(format!(
                "component {}: the secret is a placeholder; set the one configured for this \
                 component in the XMPP server (the packaged services refuse to start with it)",
                c.jid
            ));
        }
    }
    for (name, app) in &settings.apps {
        match app {
            ProviderSettings::Log(_) => out.push(format!(
                "push type {name:?} uses the log provider: pushes are ONLY LOGGED, nothing \
                 reaches a device"
            )),
            ProviderSettings::Apns(a) if a.sandbox => out.push(format!(
                "[app.{name}] sandbox = true: only development builds of the app get pushes; \
                 TestFlight and App Store builds need sandbox = false"
            )),
            _ => {}
        }
    }
    if settings.debugging {
        out.push(
            "debugging = true: /settings and the HTTP forms are open; not for production".into(),
        );
    }
    for c in &settings.components {
        let open = [
            (
                "[component.monal]",
                c.monal.as_ref().is_some_and(|m| m.open_relay),
            ),
            (
                "[component.push2]",
                c.push2.as_ref().is_some_and(|p| p.open_relay),
            ),
            (
                "[component.unifiedpush]",
                c.unifiedpush.as_ref().is_some_and(|u| u.open_relay),
            ),
        ];
        for (table, _) in open.iter().filter(|(_, on)| *on) {
            out.push(format!(
                "{table} of {} has open_relay = true: ANY XMPP user anywhere can push \
                 through it with your provider credentials; set allow_from instead",
                c.jid
            ));
        }
    }
    if settings.http.open_register && settings.http.listen.is_some() {
        out.push(
            "http.open_register = true: HTTP register changes the token of an existing node \
             without its secret; anyone who knows a node can take over its pushes"
                .into(),
        );
    }
    if settings.http.open_unregister && settings.http.listen.is_some() {
        out.push(
            "http.open_unregister = true: HTTP unregister needs no secret; anyone who knows \
             a node can remove its registration"
                .into(),
        );
    }
    out
}

/// The credential files of `settings`, with the key that names each.
pub fn credential_files(settings: &Settings) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (i, c) in settings.components.iter().enumerate() {
        if let Some(f) = &c.secret_file {
            out.push((format!("component[{i}].secret_file"), f.clone()));
        }
    }
    for (name, app) in &settings.apps {
        match app {
            ProviderSettings::Apns(a) => match &a.auth {
                ApnsAuth::Token { key_file, .. } => {
                    out.push((format!("app.{name}.auth_key"), key_file.clone()))
                }
                ApnsAuth::Certificate { cert, key } => {
                    out.push((format!("app.{name}.cert"), cert.clone()));
                    if key != cert {
                        out.push((format!("app.{name}.key"), key.clone()));
                    }
                }
            },
            ProviderSettings::Fcm(f) => out.push((
                format!("app.{name}.service_account"),
                f.service_account_path.clone(),
            )),
            ProviderSettings::Log(_) => {}
        }
    }
    if let Some(t) = &settings.http.tls {
        out.push(("http.tls_cert".into(), t.cert.clone()));
        out.push(("http.tls_key".into(), t.key.clone()));
    }
    out
}

/// A system user, as `/etc/passwd` and `/etc/group` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary and supplementary groups.
    pub gids: Vec<u32>,
}

impl User {
    /// Looks `name` up in `/etc/passwd` and `/etc/group`.
    pub fn lookup(name: &str) -> Option<User> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        User::from_files(name, &passwd, &group)
    }

    /// `name` in the texts of `/etc/passwd` and `/etc/group`.
    pub fn from_files(name: &str, passwd: &str, group: &str) -> Option<User> {
        let f: Vec<&str> = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))?;
        let uid = f.get(2)?.parse().ok()?;
        let mut gids = vec![f.get(3)?.parse().ok()?];
        for l in group.lines() {
            let g: Vec<&str> = l.split(':').collect();
            let member = g.get(3).is_some_and(|m| m.split(',').any(|u| u == name));
            if let (true, Some(Ok(gid))) = (member, g.get(2).map(|s| s.parse::<u32>())) {
                gids.push(gid);
            }
        }
        Some(User {
            name: name.to_owned(),
            uid,
            gids,
        })
    }

    /// Whether this user may read `path` (and enter every folder above it).
    pub fn can_read(&self, path: &Path) -> Result<(), String> {
        if self.uid == 0 {
            return Ok(());
        }
        let full = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut dirs: Vec<&Path> = full.ancestors().skip(1).collect();
        dirs.reverse();
        for d in dirs {
            let m = std::fs::metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
            if !self.allowed(&m, 0o1) {
                return Err(format!("cannot enter {}", d.display()));
            }
        }
        let m = std::fs::metadata(&full).map_err(|e| format!("{}: {e}", full.display()))?;
        if !self.allowed(&m, 0o4) {
            return Err(format!(
                "cannot read {} (owner {}, group {}, mode {:o})",
                full.display(),
                m.uid(),
                m.gid(),
                m.mode() & 0o7777
            ));
        }
        Ok(())
    }

    /// The permission bit `bit` (4 read, 1 execute) for this user.
    fn allowed(&self, m: &std::fs::Metadata, bit: u32) -> bool {
        let mode = m.mode();
        if m.uid() == self.uid {
            mode & (bit << 6) != 0
        } else if self.gids.contains(&m.gid()) {
            mode & (bit << 3) != 0
        } else {
            mode & bit != 0
        }
    }
}

/// Warnings about credential files `user` cannot read.
pub fn unreadable(settings: &Settings, user: &User) -> Vec<String> {
    credential_files(settings)
        .into_iter()
        .filter_map(|(key, path)| {
            user.can_read(&path).err().map(|why| {
                format!(
                    "{key}: user {} (the service's) {why}; give it to group {} with mode 0640",
                    user.name, user.name
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_their_groups_come_from_passwd_and_group() {
        let passwd = "root:x:0:0::/root:/bin/sh\npush-appserver:x:998:997::/var/lib/push-appserver:/usr/sbin/nologin\n";
        let group = "root:x:0:\nssl-cert:x:110:push-appserver,www\npush-appserver:x:997:\n";
        let u = User::from_files("push-appserver", passwd, group).unwrap();
        assert_eq!((u.uid, u.gids.clone()), (998, vec![997, 110]));
        assert!(User::from_files("nobody-here", passwd, group).is_none());
    }

    #[test]
    fn a_file_only_its_owner_may_read_is_unreadable_for_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pa-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.join("key.p8");
        std::fs::write(&f, "k").unwrap();
        let owner = std::fs::metadata(&f).unwrap().uid();
        let stranger = User {
            name: "stranger".into(),
            uid: owner.wrapping_add(4242),
            gids: vec![4242],
        };
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let why = stranger.can_read(&f).unwrap_err();
        assert!(why.contains("mode 600"), "{why}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(stranger.can_read(&f), Ok(()));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(stranger.can_read(&f).unwrap_err().contains("cannot enter"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
