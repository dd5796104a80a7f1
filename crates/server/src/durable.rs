//! Files written so that a crash leaves either the old content or the new, never a mix.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Who may read a file written by [`write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readable {
    /// The process umask decides (job definitions: nothing secret).
    Default,
    /// The service's user only (mode 0600): passwords, token hashes.
    OwnerOnly,
}

/// Writes `bytes` to `path` atomically and durably: a new file beside it, synced, renamed
/// over the old, and the directory synced (the rename is then durable too).
pub fn write(path: &Path, bytes: &[u8], readable: Readable) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if readable == Readable::OwnerOnly {
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
