//! The state is the operator's alone: its folder is created 0700, its files (the database,
//! its `-wal` and `-shm`, the serve lock) 0600. A file found with wider permissions is
//! tightened; a folder that already exists is left as it is (it may be a project folder),
//! the files in it are what must not be readable.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `folder` and its missing parents, 0700 on Unix.
pub fn create_folder(folder: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder)
}

/// Opens `path` to read and write, creating it 0600 on Unix, never truncating it.
pub fn open_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    tighten(path)?;
    Ok(file)
}

/// Takes the group's and others' permissions off `path`, if it exists and has any. Only
/// the owner (or root, and then the owner keeps access) may do so; for anyone else the
/// failure is returned.
pub fn tighten(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(path = %path.display(), "a state file was open to others; now to its owner only");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
