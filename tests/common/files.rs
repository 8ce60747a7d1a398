//! Folders and files for tests that write specs and run the built binary on them
//! (`common::integ`).

use std::path::{Path, PathBuf};

/// A fresh folder under the target dir, named after the test.
pub fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
    dir
}

/// Writes `text` to `dir/name`, creating the folders on the way.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{parent:?}: {e}"));
    }
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    path
}
