//! Noop's schema validation, the pure part: read `SLING_OUTPUT=json sling conns discover NAME --pattern … --columns`
//! output and compare each stream's source table with its target table.
//!
//! Types are compared by Sling's *general* type family, not width (`integer` → `bigint` is Sling's own mapping, not a
//! change). SQLite has no date or boolean storage class, so against SQLite text ~ time and number ~ bool.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::resolve::ResolvedReplication;
use super::verify::dialect::TableRef;
use super::verify::output::result_sets;
use super::verify::plan::target_object;

/// One column as Sling describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub native: String,
    pub general: String,
}

/// Tables found by one discover call, keyed by (schema, table) as Sling spells them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    tables: BTreeMap<(String, String), Vec<Column>>,
}

impl Catalog {
    /// Parses discover output; `no result.` (no JSON line) is an empty catalog.
    pub fn from_discover(stdout: &str) -> Result<Self, String> {
        let mut tables: BTreeMap<(String, String), Vec<Column>> = BTreeMap::new();
        for set in result_sets(stdout) {
            let idx = |name: &str| {
                set.fields
                    .iter()
                    .position(|f| f.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        format!("discover output has no `{name}` field: {:?}", set.fields)
                    })
            };
            let (s, t, c, n, g) = (
                idx("Schema")?,
                idx("Table")?,
                idx("Column")?,
                idx("Native Type")?,
                idx("General Type")?,
            );
            for row in &set.rows {
                let cell = |i: usize| {
                    row.get(i)
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .unwrap_or_default()
                };
                tables.entry((cell(s), cell(t))).or_default().push(Column {
                    name: cell(c),
                    native: cell(n),
                    general: cell(g),
                });
            }
        }
        Ok(Self { tables })
    }

    /// Adds the tables of another discover call on the same connection.
    pub fn extend(&mut self, other: Catalog) {
        self.tables.extend(other.tables);
    }

    /// The columns of a table: exact name first, else the one case-insensitive match.
    pub fn columns(&self, table: &TableRef) -> Option<&[Column]> {
        let schema = table.schema().unwrap_or("");
        let name = table.table();
        let exact = self
            .tables
            .iter()
            .find(|((s, t), _)| t == name && (schema.is_empty() || s == schema));
        exact
            .or_else(|| {
                let mut it = self.tables.iter().filter(|((s, t), _)| {
                    t.eq_ignore_ascii_case(name)
                        && (schema.is_empty() || s.eq_ignore_ascii_case(schema))
                });
                let first = it.next();
                it.next().is_none().then_some(first).flatten()
            })
            .map(|(_, cols)| cols.as_slice())
    }
}

/// The tables of one stream, as far as the schema validation needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTables {
    pub stream: String,
    pub source: TableRef,
    pub target: TableRef,
    pub update_key: Option<String>,
    pub primary_key: Vec<String>,
}

/// The enabled streams of a replication with their tables, or why a stream's schema is not checked.
pub fn stream_tables(rep: &ResolvedReplication) -> Vec<Result<StreamTables, (String, String)>> {
    rep.enabled_streams()
        .map(|s| {
            let skip = |why: &str| Err((s.name.clone(), why.to_owned()));
            if s.sql {
                return skip("custom `sql:` source: no source table to compare");
            }
            if s.wildcard {
                return skip("wildcard stream: checked by the dry run");
            }
            if s.file {
                return skip("file stream: no source table to compare");
            }
            let Some(source) = TableRef::parse(&s.name) else {
                return skip("stream name is not a table name");
            };
            let Some(target) = s.object.as_deref().and_then(|o| target_object(o, &s.name)) else {
                return skip("the target table could not be worked out from `object`");
            };
            Ok(StreamTables {
                stream: s.name.clone(),
                source,
                target,
                update_key: s.update_key.clone(),
                primary_key: s.primary_key.clone(),
            })
        })
        .collect()
}

/// Discover patterns per connection for a whole job: every table any pipeline reads or writes on that connection,
/// so each connection is discovered once per schema however many pipelines use it.
pub fn patterns_by_connection<'a>(
    uses: impl IntoIterator<Item = (&'a str, &'a TableRef)>,
) -> BTreeMap<String, Vec<String>> {
    let mut tables: BTreeMap<String, Vec<TableRef>> = BTreeMap::new();
    for (conn, t) in uses {
        tables
            .entry(conn.to_ascii_uppercase())
            .or_default()
            .push(t.clone());
    }
    tables
        .into_iter()
        .map(|(c, ts)| (c, discover_patterns(&ts)))
        .collect()
}

/// The `--pattern` values for one connection: the exact table when there is one, else `schema.*` per schema (one
/// call per schema; usually one in all).
pub fn discover_patterns(tables: &[TableRef]) -> Vec<String> {
    let distinct: BTreeSet<String> = tables.iter().map(TableRef::pattern).collect();
    if distinct.len() == 1 {
        return distinct.into_iter().collect();
    }
    let schemas: BTreeSet<String> = tables
        .iter()
        .map(|t| match t.schema() {
            Some(s) => format!("{s}.*"),
            None => "*".to_owned(),
        })
        .collect();
    schemas.into_iter().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Ok,
    Warning,
    Failure,
}

/// One finding of the schema validation for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaFinding {
    /// Before a first run the target table does not exist yet; Sling creates it.
    TargetTableMissing {
        table: String,
    },
    SourceTableMissing {
        table: String,
    },
    /// A source column the target lacks (Sling adds columns only in some modes).
    ColumnNotInTarget {
        column: String,
        source_type: String,
    },
    /// A target column no longer in the source.
    ColumnNotInSource {
        column: String,
        target_type: String,
    },
    TypeChanged {
        column: String,
        source_type: String,
        target_type: String,
    },
    /// `update_key` or a `primary_key` column the source table does not have.
    KeyMissing {
        key: &'static str,
        column: String,
    },
    /// Source and target agree.
    Matches {
        columns: usize,
    },
}

impl SchemaFinding {
    pub fn severity(&self) -> Severity {
        match self {
            SchemaFinding::TargetTableMissing { .. } | SchemaFinding::Matches { .. } => {
                Severity::Ok
            }
            SchemaFinding::ColumnNotInTarget { .. } | SchemaFinding::ColumnNotInSource { .. } => {
                Severity::Warning
            }
            SchemaFinding::SourceTableMissing { .. }
            | SchemaFinding::TypeChanged { .. }
            | SchemaFinding::KeyMissing { .. } => Severity::Failure,
        }
    }
}

impl fmt::Display for SchemaFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaFinding::TargetTableMissing { table } => write!(
                f,
                "target table {table} does not exist yet: fine before a first run, Sling creates it"
            ),
            SchemaFinding::SourceTableMissing { table } => {
                write!(f, "source table {table} not found")
            }
            SchemaFinding::ColumnNotInTarget {
                column,
                source_type,
            } => write!(
                f,
                "source column `{column}` ({source_type}) is not in the target"
            ),
            SchemaFinding::ColumnNotInSource {
                column,
                target_type,
            } => write!(
                f,
                "target column `{column}` ({target_type}) is no longer in the source"
            ),
            SchemaFinding::TypeChanged {
                column,
                source_type,
                target_type,
            } => write!(
                f,
                "column `{column}` changed type: source {source_type}, target {target_type}"
            ),
            SchemaFinding::KeyMissing { key, column } => {
                write!(f, "{key} column `{column}` is not in the source table")
            }
            SchemaFinding::Matches { columns } => {
                write!(f, "source and target agree on {columns} column(s)")
            }
        }
    }
}

fn family(general: &str, sqlite: bool) -> &str {
    match general.to_ascii_lowercase().as_str() {
        "smallint" | "integer" | "bigint" | "decimal" | "float" => "number",
        "bool" | "boolean" if sqlite => "number",
        "bool" | "boolean" => "bool",
        "string" | "text" | "uuid" | "json" | "jsonb" => "text",
        "date" | "datetime" | "timestamp" | "timestampz" | "time" | "timez" if sqlite => "text",
        "date" | "datetime" | "timestamp" | "timestampz" | "time" | "timez" => "time",
        "binary" => "binary",
        _ => general,
    }
}

fn described(c: &Column) -> String {
    if c.native.eq_ignore_ascii_case(&c.general) {
        c.general.clone()
    } else {
        format!("{} / {}", c.native, c.general)
    }
}

/// Compares one stream. `source`/`target`: the tables' columns (`None` = not found). Keys are checked on the source.
#[allow(clippy::too_many_arguments)]
pub fn compare(
    source_table: &TableRef,
    source: Option<&[Column]>,
    target_table: &TableRef,
    target: Option<&[Column]>,
    update_key: Option<&str>,
    primary_key: &[String],
    sqlite_involved: bool,
) -> Vec<SchemaFinding> {
    let Some(source) = source else {
        return vec![SchemaFinding::SourceTableMissing {
            table: source_table.pattern(),
        }];
    };
    let find = |cols: &[Column], name: &str| {
        cols.iter()
            .find(|c| c.name == name)
            .or_else(|| cols.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
            .cloned()
    };
    let mut out = Vec::new();
    let keys = update_key
        .map(|k| ("update_key", k.to_owned()))
        .into_iter()
        .chain(primary_key.iter().map(|k| ("primary_key", k.clone())));
    for (key, column) in keys {
        if find(source, &column).is_none() {
            out.push(SchemaFinding::KeyMissing { key, column });
        }
    }
    let Some(target) = target else {
        out.push(SchemaFinding::TargetTableMissing {
            table: target_table.pattern(),
        });
        return out;
    };
    for s in source {
        match find(target, &s.name) {
            None => out.push(SchemaFinding::ColumnNotInTarget {
                column: s.name.clone(),
                source_type: described(s),
            }),
            Some(t)
                if family(&s.general, sqlite_involved) != family(&t.general, sqlite_involved) =>
            {
                out.push(SchemaFinding::TypeChanged {
                    column: s.name.clone(),
                    source_type: described(s),
                    target_type: described(&t),
                })
            }
            Some(_) => {}
        }
    }
    for t in target {
        // Sling's own columns (`_sling_loaded_at`, …) are not the source's.
        if t.name.to_ascii_lowercase().starts_with("_sling_") {
            continue;
        }
        if find(source, &t.name).is_none() {
            out.push(SchemaFinding::ColumnNotInSource {
                column: t.name.clone(),
                target_type: described(t),
            });
        }
    }
    if out.is_empty() {
        out.push(SchemaFinding::Matches {
            columns: source.len(),
        });
    }
    out
}

#[cfg(test)]
mod tests;
