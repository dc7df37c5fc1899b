//! Private Unix sockets: the daemon's control socket and the relay's status socket.
//!
//! Invariants: a socket is bound under a fresh temporary name in its directory, given mode 0600
//! and only then renamed to its path, so it is never reachable at its path with a looser mode
//! (whatever the process umask); a socket file left by a dead process is replaced, one a live
//! process answers on is not (`AddrInUse`); every accepted connection's peer uid (`SO_PEERCRED`)
//! is checked against the owner of the socket's directory (the home, mode 0700), and a
//! connection from another user is closed unanswered and logged.

use std::io;
use std::path::Path;

use tokio::net::{UnixListener, UnixStream};

/// Binds a private socket at `path` (see the module invariants). A live socket there gives
/// `AddrInUse`.
pub fn bind_private(path: &Path) -> io::Result<UnixListener> {
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another process answers on this socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut r = [0u8; 6];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut r);
    let tmp = dir.join(format!(".sock-{}", hex::encode(r)));
    let listener = UnixListener::bind(&tmp)?;
    let placed = (|| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

/// The uid that owns `dir`: the only user whose connections a socket in it answers.
pub fn owner_uid(dir: &Path) -> io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(dir)?.uid())
}

/// Whether the process at the other end of `stream` runs as `owner` (logged when not).
pub fn peer_is(stream: &UnixStream, owner: u32) -> bool {
    match stream.peer_cred() {
        Ok(c) if c.uid() == owner => true,
        Ok(c) => {
            tracing::warn!(
                uid = c.uid(),
                owner,
                "local connection from another user refused"
            );
            false
        }
        Err(e) => {
            tracing::warn!("local connection without peer credentials refused: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_is_private_from_its_first_moment_and_checks_who_connects() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let l = bind_private(&path).unwrap();
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["control.sock"], "a temporary name was left behind");
        // A live socket is not replaced.
        let again = bind_private(&path).map(|_| ()).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AddrInUse);
        // Our own connection passes as the directory's owner, and not as anyone else.
        let owner = owner_uid(dir.path()).unwrap();
        let _client = UnixStream::connect(&path).await.unwrap();
        let (server_end, _) = l.accept().await.unwrap();
        assert!(peer_is(&server_end, owner));
        assert!(!peer_is(&server_end, owner.wrapping_add(1)));
        // A stale socket (its process gone) is replaced.
        drop(server_end);
        drop(l);
        let l2 = bind_private(&path);
        assert!(l2.is_ok(), "{:?}", l2.err());
    }
}
