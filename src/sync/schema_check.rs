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
mod tests {
    use super::*;

    // Captured from Sling 1.4.11 (`SLING_OUTPUT=json sling conns discover … --columns`).
    const SQLITE: &str = r#"{"fields":["Database","Schema","Table","ID","Column","Native Type","General Type"],"rows":[["main","main","orders",1,"id","integer","bigint"],["main","main","orders",2,"amount","real","decimal"],["main","main","orders",3,"updated_at","text","text"],["main","main","ts",1,"id","integer","bigint"],["main","main","ts",2,"updated_at","timestamp","text"]]}
{"lvl":"info","time":"2026-11-28T07:19:09Z","msg":"successful!"}"#;
    const PG: &str = r#"{"fields":["Database","Schema","Table","ID","Column","Native Type","General Type"],"rows":[["vx_pg","public","orders",1,"id","integer","integer"],["vx_pg","public","orders",2,"amount","numeric","decimal"],["vx_pg","public","orders",3,"updated_at","timestamp without time zone","timestamp"],["vx_pg","public","Mixed Case",1,"Id","integer","integer"]]}"#;
    const NO_RESULT: &str = r#"{"lvl":"info","time":"2026-11-28T07:19:09Z","msg":"no result."}"#;

    fn t(s: &str) -> TableRef {
        TableRef::parse(s).expect("table")
    }

    fn col(name: &str, native: &str, general: &str) -> Column {
        Column {
            name: name.into(),
            native: native.into(),
            general: general.into(),
        }
    }

    #[test]
    fn catalogs_parse_and_find_tables() {
        let c = Catalog::from_discover(SQLITE).expect("parses");
        assert_eq!(c.columns(&t("main.orders")).map(<[Column]>::len), Some(3));
        assert_eq!(
            c.columns(&t("main.ts")).expect("ts")[1],
            col("updated_at", "timestamp", "text")
        );
        assert_eq!(c.columns(&t("main.nope")), None);
        let pg = Catalog::from_discover(PG).expect("parses");
        assert!(pg.columns(&t("public.\"Mixed Case\"")).is_some());
        assert!(
            pg.columns(&t("public.ORDERS")).is_some(),
            "one case-insensitive match"
        );
        assert_eq!(
            Catalog::from_discover(NO_RESULT).expect("empty"),
            Catalog::default()
        );
        assert!(Catalog::from_discover(r#"{"fields":["a"],"rows":[["x"]]}"#).is_err());
    }

    #[test]
    fn sqlite_to_postgres_copy_agrees() {
        let s = Catalog::from_discover(SQLITE).expect("s");
        let p = Catalog::from_discover(PG).expect("p");
        let f = compare(
            &t("main.orders"),
            s.columns(&t("main.orders")),
            &t("public.orders"),
            p.columns(&t("public.orders")),
            Some("updated_at"),
            &["id".into()],
            true,
        );
        assert_eq!(f, [SchemaFinding::Matches { columns: 3 }]);
    }

    #[test]
    fn added_dropped_and_retyped_columns_and_missing_keys_are_named() {
        let source = [
            col("id", "integer", "integer"),
            col("amount", "text", "text"),
            col("added", "int", "integer"),
        ];
        let target = [
            col("id", "bigint", "bigint"),
            col("amount", "numeric", "decimal"),
            col("dropped", "text", "text"),
            col("_sling_loaded_at", "bigint", "bigint"),
        ];
        let f = compare(
            &t("public.o"),
            Some(&source),
            &t("public.o"),
            Some(&target),
            Some("updated_at"),
            &["id".into()],
            false,
        );
        let text: Vec<String> = f
            .iter()
            .map(|x| format!("{:?}: {x}", x.severity()))
            .collect();
        assert_eq!(
            text,
            [
                "Failure: update_key column `updated_at` is not in the source table",
                "Failure: column `amount` changed type: source text, target numeric / decimal",
                "Warning: source column `added` (int / integer) is not in the target",
                "Warning: target column `dropped` (text) is no longer in the source",
            ]
        );
    }

    #[test]
    fn missing_tables() {
        let cols = [col("id", "int", "integer")];
        let before_first_run = compare(&t("a.b"), Some(&cols), &t("c.d"), None, None, &[], false);
        assert_eq!(before_first_run[0].severity(), Severity::Ok);
        assert!(before_first_run[0].to_string().contains("first run"));
        let no_source = compare(&t("a.b"), None, &t("c.d"), None, Some("ts"), &[], false);
        assert_eq!(
            no_source,
            [SchemaFinding::SourceTableMissing {
                table: "a.b".into()
            }]
        );
    }

    #[test]
    fn sqlite_has_no_time_or_bool_storage() {
        let s = [col("ts", "timestamp", "text"), col("ok", "bool", "bool")];
        let pg = [
            col("ts", "timestamp", "timestamp"),
            col("ok", "integer", "integer"),
        ];
        assert_eq!(
            compare(&t("a.b"), Some(&s), &t("a.b"), Some(&pg), None, &[], true),
            [SchemaFinding::Matches { columns: 2 }]
        );
        assert_eq!(
            compare(&t("a.b"), Some(&s), &t("a.b"), Some(&pg), None, &[], false).len(),
            2
        );
    }

    #[test]
    fn streams_give_their_tables_or_a_reason() {
        let rep = crate::sync::resolve::resolve(
            &serde_yaml::from_str(
                "source: M\ntarget: C\ndefaults:\n  object: public.{stream_table}\n  primary_key: [id]\nstreams:\n  main.orders:\n    update_key: ts\n  main.q:\n    sql: select 1\n  main.*:\n  main.off:\n    disabled: true\n",
            )
            .expect("yaml"),
            &BTreeMap::new(),
        );
        let st = stream_tables(&rep);
        assert_eq!(st.len(), 3);
        let orders = st[0].as_ref().expect("tables");
        assert_eq!(
            (
                orders.target.pattern(),
                orders.update_key.as_deref(),
                orders.primary_key.as_slice()
            ),
            (
                "public.orders".to_string(),
                Some("ts"),
                ["id".to_string()].as_slice()
            )
        );
        assert!(matches!(&st[1], Err((_, why)) if why.contains("sql:")));
        assert!(matches!(&st[2], Err((_, why)) if why.contains("wildcard")));
        let a = t("main.a");
        let b = t("main.b");
        let c = t("other.c");
        let p = patterns_by_connection([("m", &a), ("M", &b), ("cmd", &c), ("m", &a)]);
        assert_eq!(p["M"], ["main.*"]);
        assert_eq!(p["CMD"], ["other.c"]);
    }

    #[test]
    fn patterns_are_one_per_connection_where_possible() {
        assert_eq!(discover_patterns(&[t("main.orders")]), ["main.orders"]);
        assert_eq!(
            discover_patterns(&[t("main.orders"), t("main.items"), t("main.orders")]),
            ["main.*"]
        );
        assert_eq!(discover_patterns(&[t("a.x"), t("b.y")]), ["a.*", "b.*"]);
    }
}
