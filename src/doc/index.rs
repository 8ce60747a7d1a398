//! `integrations-index.md`: one row per integration, the entry point of a folder of
//! generated docs.

/// The index's file name. It holds a `-`, which no integration name can (names are
/// identifiers), so no `NAME.md` can ever be the index, whatever the name and whatever the
/// case rules of the file system: a name to reserve would refuse specs for the sake of one
/// output file, and `index` would still meet `Index` on a case-insensitive disk.
pub const FILE: &str = "integrations-index.md";

use super::markdown::{cell, code, table};
use super::{Doc, GENERATED};

pub fn index(docs: &[Doc]) -> String {
    let mut out = format!("{GENERATED}: edit the specs, not this file. -->\n\n# Integrations\n\n");
    let rows: Vec<Vec<String>> = docs
        .iter()
        .map(|doc| {
            let o = &doc.overview;
            let triggers: Vec<String> = o.triggers.iter().map(|t| code(t)).collect();
            let connections: Vec<String> = doc.connections.iter().map(|c| code(&c.name)).collect();
            vec![
                format!("[{}]({}.md)", o.integration, o.integration),
                o.description.as_deref().map(cell).unwrap_or_default(),
                triggers.join("<br/>"),
                connections.join(", "),
                o.owner.as_deref().map(cell).unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Integration",
            "What it does",
            "Triggers",
            "Connections",
            "Owner",
        ],
        &rows,
    ));
    out.pop();
    out
}
