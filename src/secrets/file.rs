//! The `--secrets` file, in `.env` format, read with dotenvy. A line that does not parse is
//! reported by its number and the name it sets, never its text: the text is the secret.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the secrets file `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the secrets file `{path}`, line {line}{}: not `NAME=value`; quote a value with spaces, `#`, `$` or quotes in it: NAME='a value'",
        name.as_ref().map(|n| format!(" (`{n}`)")).unwrap_or_default()
    )]
    Line {
        path: String,
        line: usize,
        /// The name the line sets, when it starts with one.
        name: Option<String>,
    },
}

/// Every `NAME=value` of the file at `path`.
pub(super) fn read(path: &Path) -> Result<BTreeMap<String, String>, FileError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: display.clone(),
        source,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    // dotenvy's errors hold the text (the secret) but no line number: it reads this
    // reader one line at a time, so the lines read so far say where it is.
    let read = Rc::new(Cell::new(0));
    let reader = OneLineAtATime {
        rest: text.as_bytes(),
        read: read.clone(),
    };
    let mut values = BTreeMap::new();
    let mut last_line = 0;
    for item in dotenvy::from_read_iter(reader) {
        match item {
            Ok((name, value)) => {
                values.insert(name, value);
                last_line = read.get();
            }
            Err(_) => {
                // Never the error itself: its text is the line, or the value alone.
                let (line, name) = failed_line(text, last_line);
                return Err(FileError::Line {
                    path: display,
                    line,
                    name,
                });
            }
        }
    }
    Ok(values)
}

/// A reader that hands out at most one line per `read`, counting the lines handed out.
struct OneLineAtATime<'a> {
    rest: &'a [u8],
    read: Rc<Cell<usize>>,
}

impl std::io::Read for OneLineAtATime<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let line_end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.rest.len(), |i| i + 1);
        let n = line_end.min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        if n == line_end && n > 0 {
            self.read.set(self.read.get() + 1);
        }
        Ok(n)
    }
}

/// The number (from 1) and name of the first line after line `after` that is neither blank
/// nor a comment: where the entry that failed starts (a quoted value may span lines).
fn failed_line(text: &str, after: usize) -> (usize, Option<String>) {
    text.lines()
        .enumerate()
        .skip(after)
        .find(|(_, line)| {
            let line = line.trim_start();
            !line.is_empty() && !line.starts_with('#')
        })
        .map_or((after + 1, None), |(index, line)| {
            (index + 1, name_of(line))
        })
}

/// The name a line sets: what comes before `=`, after an optional `export`, when it is a
/// name dotenvy accepts.
fn name_of(line: &str) -> Option<String> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (name, _) = line.split_once('=')?;
    let name = name.trim_end();
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("integ-{name}-{}.env", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn quoted_values_keep_their_spaces_and_single_quotes_keep_dollars() {
        let path = file(
            "quoted",
            "# a comment\nA=\"two words\"\nexport B='pa$$ word'\nC=plain # note\nD=\"line one\nline two\"\n",
        );
        let values = read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(values["A"], "two words");
        assert_eq!(values["B"], "pa$$ word");
        assert_eq!(values["C"], "plain");
        assert_eq!(values["D"], "line one\nline two");
    }

    #[test]
    fn a_bad_line_is_named_by_number_and_name_never_by_value() {
        let path = file("bad", "A=1\n\n# c\nAPI_KEY=sk live 99\nB=2\n");
        let error = read(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(error.contains("line 4 (`API_KEY`)"), "{error}");
        assert!(!error.contains("sk live"), "{error}");
        let path = file("noname", "A='x\ny'\n=sk-live-99\n");
        let error = read(&path).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(error.contains("line 3:"), "{error}");
        assert!(!error.contains("sk-live"), "{error}");
    }
}
