//! A folder for a unit test, removed when the test ends, passed or failed: a test's state
//! files (a log of 100 MB among them) must not pile up in the temporary folder.

use std::ops::Deref;
use std::path::Path;

pub(crate) struct Scratch(tempfile::TempDir);

impl Scratch {
    /// A new empty folder whose name starts with `integ-NAME-`.
    pub(crate) fn new(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("integ-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("a folder for test {name}: {e}"));
        Self(dir)
    }
}

impl Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        self.0.path()
    }
}
