//! Files that hold evidence or personal data: created private (0600 files, 0700 folders,
//! whatever the umask), never written through a symbolic link, replaced atomically.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// Creates `dir` and its missing parents, the ones created readable by the owner only.
pub(crate) fn private_dir_all(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir)
}

/// Creates a new file readable by the owner only; fails if anything (a file, a symbolic
/// link, even a dangling one) is already at `path`.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path)
}

/// Opens `path` for reading and writing, created readable by the owner only when missing,
/// refusing a symbolic link (a lock file).
pub(crate) fn open_private_no_follow(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    o.mode(0o600).custom_flags(O_NOFOLLOW);
    o.open(path)
}

/// Opens an existing regular file for appending, refusing a symbolic link.
pub(crate) fn append_no_follow(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.append(true);
    #[cfg(unix)]
    o.custom_flags(O_NOFOLLOW);
    o.open(path)
}

#[cfg(all(unix, any(target_os = "linux", target_os = "android")))]
const O_NOFOLLOW: i32 = 0o400000;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const O_NOFOLLOW: i32 = 0x0100;

/// Writes `bytes` to `path` in one step: into a new private file beside it, synced, then
/// renamed over `path` (a symbolic link there is replaced, never followed). Readers see
/// the old content or the new, never half.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for attempt in 0u32.. {
        let tmp = dir.join(format!(".{name}.{}.{attempt}.tmp", std::process::id()));
        let mut f = match create_private(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => continue,
            Err(e) => return Err(e),
        };
        let written = f.write_all(bytes).and_then(|_| f.sync_all());
        if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        return Ok(());
    }
    unreachable!("the loop returns")
}

/// True when `path` is a symbolic link (dangling or not).
pub(crate) fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Refuses a key file that others may read: its secret is only as safe as its mode.
#[cfg(unix)]
pub(crate) fn check_private_key_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} can be read by others (mode {:o}): a key file must be private (chmod 600 {})",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private_key_file(_: &Path) -> Result<(), String> {
    Ok(())
}
