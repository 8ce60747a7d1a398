//! A WHERE clause built from the filters a query sets, each value bound as a parameter.
//! One cached statement for every combination (`?1 IS NULL OR col = ?1`) hides the
//! filters from SQLite's planner, which then scans the whole table; a clause of the
//! filters actually set lets it seek an index.

use rusqlite::types::Value;

/// The conditions of a query, joined by AND, and the values they bind, in order.
#[derive(Debug, Default)]
pub(super) struct Filter {
    clauses: Vec<&'static str>,
    values: Vec<Value>,
}

impl Filter {
    /// Adds `clause`, fixed SQL whose one `?` takes `value`.
    pub(super) fn and(&mut self, clause: &'static str, value: impl Into<Value>) {
        self.clauses.push(clause);
        self.values.push(value.into());
    }

    /// Adds `clause` with `value` when there is one.
    pub(super) fn and_some(&mut self, clause: &'static str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.and(clause, value);
        }
    }

    /// Adds `clause`, fixed SQL that binds nothing.
    pub(super) fn and_always(&mut self, clause: &'static str) {
        self.clauses.push(clause);
    }

    /// ` WHERE …` of the clauses added, or nothing.
    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            return String::new();
        }
        format!(" WHERE {}", self.clauses.join(" AND "))
    }

    /// The values bound, then `last` (the statement's final `?`, such as its limit).
    pub(super) fn params(self, last: impl Into<Value>) -> rusqlite::ParamsFromIter<Vec<Value>> {
        let mut values = self.values;
        values.push(last.into());
        rusqlite::params_from_iter(values)
    }
}
