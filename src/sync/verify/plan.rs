//! What to count for each stream, and the SQL for it. One query per stream and side; all queries of one side go in
//! one `sling conns exec` call.

use std::collections::BTreeMap;

use super::checkpoint::Checkpoint;
use super::dialect::{Dialect, TableRef, SUPPORTED};
use crate::sync::resolve::{ResolvedReplication, ResolvedStream};

/// How a stream's counts are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Whole tables (full-refresh, truncate, incremental by primary key only).
    Whole,
    /// As of the target's checkpoint `max(update_key)`.
    AsOfCheckpoint { update_key: String },
}

/// A stream whose rows are counted on both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub source: TableRef,
    pub target: TableRef,
    /// The stream's `where:`; applied to the source count, as Sling applies it to the source read.
    pub filter: Option<String>,
    pub comparison: Comparison,
    /// Incremental or backfill mode (Sling upserts or appends and never deletes).
    pub incremental: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPlan {
    Skipped(String),
    Count(Counted),
}

/// The verification plan of one pipeline run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub source_conn: String,
    pub target_conn: String,
    pub source_dialect: Option<Dialect>,
    pub target_dialect: Option<Dialect>,
    /// Enabled streams, in file order.
    pub streams: Vec<(String, StreamPlan)>,
}

impl Plan {
    /// `source_type`/`target_type`: the connection types (see `dialect::connection_type`). `objects`: the target
    /// object Sling reported per stream (`inserted N rows into "main"."orders"`), preferred over working it out.
    pub fn new(
        rep: &ResolvedReplication,
        source_type: Option<&str>,
        target_type: Option<&str>,
        objects: &BTreeMap<String, String>,
    ) -> Self {
        let source_dialect = source_type.and_then(Dialect::from_type);
        let target_dialect = target_type.and_then(Dialect::from_type);
        let unsupported = |role: &str, conn: &str, kind: Option<&str>, d: Option<Dialect>| {
            d.is_none().then(|| match kind {
                Some(k) => format!(
                    "{role} connection `{conn}` is of type {k}, which verification does not query (supported: {SUPPORTED})"
                ),
                None => format!("{role} connection `{conn}`: its type could not be found"),
            })
        };
        let source_conn = rep.source.clone().unwrap_or_default();
        let target_conn = rep.target.clone().unwrap_or_default();
        let streams = rep
            .enabled_streams()
            .map(|s| {
                let plan = if let Some(why) = skip_reason(s) {
                    StreamPlan::Skipped(why)
                } else if let Some(why) =
                    unsupported("source", &source_conn, source_type, source_dialect)
                {
                    StreamPlan::Skipped(why)
                } else if let Some(why) =
                    unsupported("target", &target_conn, target_type, target_dialect)
                {
                    StreamPlan::Skipped(why)
                } else {
                    counted(s, objects.get(&s.name).map(String::as_str))
                };
                (s.name.clone(), plan)
            })
            .collect();
        Self {
            source_conn,
            target_conn,
            source_dialect,
            target_dialect,
            streams,
        }
    }

    /// Streams that are counted, with their index in `streams`.
    pub fn counted(&self) -> Vec<(usize, &Counted)> {
        self.streams
            .iter()
            .enumerate()
            .filter_map(|(i, (_, p))| match p {
                StreamPlan::Count(c) => Some((i, c)),
                StreamPlan::Skipped(_) => None,
            })
            .collect()
    }

    /// First round, target side: rows and checkpoint per counted stream, in `counted()` order.
    pub fn target_queries(&self) -> Vec<String> {
        let Some(d) = self.target_dialect else {
            return Vec::new();
        };
        self.counted()
            .iter()
            .map(|(_, c)| side_query(d, &c.target, None, &c.comparison))
            .collect()
    }

    /// First round, source side: rows and checkpoint per counted stream, in `counted()` order.
    pub fn source_queries(&self) -> Vec<String> {
        let Some(d) = self.source_dialect else {
            return Vec::new();
        };
        self.counted()
            .iter()
            .map(|(_, c)| side_query(d, &c.source, c.filter.as_deref(), &c.comparison))
            .collect()
    }
}

fn skip_reason(s: &ResolvedStream) -> Option<String> {
    if s.sql {
        return Some(
            "custom `sql:` source: the table's row count says nothing about the query".into(),
        );
    }
    if s.wildcard {
        return Some("wildcard stream: Sling expands it at run time".into());
    }
    if s.file {
        return Some("file stream: there is no source table to count".into());
    }
    if s.mode == "snapshot" {
        return Some(
            "snapshot mode appends a full copy on every run: counts do not compare".into(),
        );
    }
    if s.where_clause.as_deref().is_some_and(|w| w.contains('{')) {
        return Some("`where:` uses Sling variables the count cannot reproduce".into());
    }
    None
}

fn counted(s: &ResolvedStream, reported: Option<&str>) -> StreamPlan {
    let Some(source) = TableRef::parse(&s.name) else {
        return StreamPlan::Skipped(format!("stream name `{}` is not a table name", s.name));
    };
    let target = match reported {
        Some(obj) => TableRef::parse(obj),
        None => s.object.as_deref().and_then(|o| target_object(o, &s.name)),
    };
    let Some(target) = target else {
        return StreamPlan::Skipped(
            "the target table could not be worked out from `object`".into(),
        );
    };
    let incremental = matches!(s.mode.as_str(), "incremental" | "backfill");
    let comparison = match (&s.update_key, incremental) {
        (Some(k), true) => Comparison::AsOfCheckpoint {
            update_key: k.clone(),
        },
        _ => Comparison::Whole,
    };
    StreamPlan::Count(Counted {
        source,
        target,
        filter: s.where_clause.clone(),
        comparison,
        incremental,
    })
}

/// Lowercase, runs of other characters than letters and digits → one `_` (Sling's `{stream_name}`).
fn clean_lower(s: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            gap = false;
        } else if !gap {
            out.push('_');
            gap = true;
        }
    }
    out
}

/// The target table Sling derives from `object` with runtime variables, as observed with Sling 1.4.11:
/// `main.{stream_table}` for stream `public."Mixed Case"` → `main.Mixed_Case`. `None` when the object uses variables
/// this does not know.
pub fn target_object(object: &str, stream: &str) -> Option<TableRef> {
    let parsed = TableRef::parse(stream)?;
    let table = parsed.table().to_owned();
    let schema = parsed.schema().unwrap_or("").to_owned();
    let vars: [(&str, String); 7] = [
        ("stream_schema", schema.clone()),
        ("stream_schema_lower", schema.to_lowercase()),
        ("stream_schema_upper", schema.to_uppercase()),
        ("stream_table", table.clone()),
        ("stream_table_lower", table.to_lowercase()),
        ("stream_table_upper", table.to_uppercase()),
        ("stream_name", clean_lower(stream.trim())),
    ];
    if !object.contains('{') {
        return TableRef::parse(object);
    }
    let mut out = object.to_owned();
    for (name, value) in &vars {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    if out.contains('{') {
        return None;
    }
    let t = TableRef::parse(&out)?;
    let mut parts = t.parts;
    // Sling cleans a generated name: characters other than letters, digits and `_` become `_`.
    let last = parts.len() - 1;
    parts[last] = parts[last]
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(TableRef { parts })
}

fn side_query(d: Dialect, table: &TableRef, filter: Option<&str>, cmp: &Comparison) -> String {
    let max = match cmp {
        Comparison::AsOfCheckpoint { update_key } => format!("max({})", d.quote(update_key)),
        Comparison::Whole => "null".into(),
    };
    let filter = filter.map(|w| format!(" where ({w})")).unwrap_or_default();
    format!(
        "select count(*) as n, {max} as mx from {}{filter}",
        d.table(table)
    )
}

/// Second round, source side: rows at or before the target's checkpoint. Rows with no update key count too: Sling's
/// first run copies them (`where 1=1`), later runs never do.
pub fn as_of_query(d: Dialect, c: &Counted, checkpoint: &Checkpoint) -> Option<String> {
    let Comparison::AsOfCheckpoint { update_key } = &c.comparison else {
        return None;
    };
    let cond = format!(
        "({} is null or {})",
        d.quote(update_key),
        checkpoint.at_or_before(d, update_key)
    );
    let filter = c
        .filter
        .as_deref()
        .map(|w| format!("({w}) and "))
        .unwrap_or_default();
    Some(format!(
        "select count(*) as n from {} where {filter}{cond}",
        d.table(&c.source)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::resolve::resolve;

    fn rep(yaml: &str) -> ResolvedReplication {
        resolve(&serde_yaml::from_str(yaml).expect("yaml"), &BTreeMap::new())
    }

    const REP: &str = "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: public.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.orders:\n  main.\"Mixed Case\":\n    mode: full-refresh\n  main.pk_only:\n    update_key: null\n    primary_key: [id]\n  main.custom:\n    sql: select 1\n  main.off:\n    disabled: true\n  main.snap:\n    mode: snapshot\n  main.filtered:\n    where: amount > 0\n";

    #[test]
    fn plans_each_enabled_stream_and_skips_with_reasons() {
        let p = Plan::new(
            &rep(REP),
            Some("sqlite"),
            Some("postgres"),
            &BTreeMap::new(),
        );
        let names: Vec<_> = p.streams.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "main.orders",
                "main.\"Mixed Case\"",
                "main.pk_only",
                "main.custom",
                "main.snap",
                "main.filtered"
            ],
            "disabled streams are not verified"
        );
        let StreamPlan::Count(orders) = &p.streams[0].1 else {
            panic!("orders counted")
        };
        assert_eq!(orders.target.parts, ["public", "orders"]);
        assert!(orders.incremental);
        assert_eq!(
            orders.comparison,
            Comparison::AsOfCheckpoint {
                update_key: "updated_at".into()
            }
        );
        let StreamPlan::Count(mixed) = &p.streams[1].1 else {
            panic!("counted")
        };
        assert_eq!(mixed.target.parts, ["public", "Mixed_Case"]);
        assert_eq!(mixed.comparison, Comparison::Whole);
        assert!(matches!(&p.streams[3].1, StreamPlan::Skipped(r) if r.contains("sql:")));
        assert!(matches!(&p.streams[4].1, StreamPlan::Skipped(r) if r.contains("snapshot")));
        assert_eq!(
            p.source_queries(),
            [
                r#"select count(*) as n, max("updated_at") as mx from "main"."orders""#,
                r#"select count(*) as n, null as mx from "main"."Mixed Case""#,
                r#"select count(*) as n, max("updated_at") as mx from "main"."pk_only""#,
                r#"select count(*) as n, max("updated_at") as mx from "main"."filtered" where (amount > 0)"#,
            ]
        );
        assert_eq!(
            p.target_queries()[0],
            r#"select count(*) as n, max("updated_at") as mx from "public"."orders""#
        );
    }

    #[test]
    fn unsupported_connection_types_skip_every_stream() {
        let p = Plan::new(
            &rep(REP),
            Some("snowflake"),
            Some("postgres"),
            &BTreeMap::new(),
        );
        assert!(p.counted().is_empty());
        assert!(
            matches!(&p.streams[0].1, StreamPlan::Skipped(r) if r.contains("snowflake") && r.contains("sqlite"))
        );
        assert!(p.source_queries().is_empty());
    }

    #[test]
    fn slings_reported_object_wins_and_mysql_quotes_with_backticks() {
        let objects = [("main.orders".to_string(), "`cmd`.`orders_v2`".to_string())].into();
        let p = Plan::new(&rep(REP), Some("mariadb"), Some("mysql"), &objects);
        assert_eq!(
            p.target_queries()[0],
            "select count(*) as n, max(`updated_at`) as mx from `cmd`.`orders_v2`"
        );
    }

    #[test]
    fn object_templates_resolve_like_sling() {
        let t = |o: &str, s: &str| target_object(o, s).map(|t| t.parts.join("|"));
        assert_eq!(
            t("main.{stream_table}", "public.\"Mixed Case\"").as_deref(),
            Some("main|Mixed_Case")
        );
        assert_eq!(
            t(
                "main.{stream_schema}_{stream_table_lower}_{stream_name}",
                "public.\"Mixed Case\""
            )
            .as_deref(),
            Some("main|public_mixed_case_public_mixed_case_")
        );
        assert_eq!(
            t("main.ABC_{stream_table_upper}", "public.ev").as_deref(),
            Some("main|ABC_EV")
        );
        assert_eq!(
            t("main.Orders_Copy", "public.orders").as_deref(),
            Some("main|Orders_Copy")
        );
        assert_eq!(t("main.{run_timestamp}", "public.orders"), None);
    }

    #[test]
    fn as_of_query_keeps_null_keys_and_the_filter() {
        let p = Plan::new(
            &rep(REP),
            Some("postgres"),
            Some("postgres"),
            &BTreeMap::new(),
        );
        let c = p.counted();
        let q = as_of_query(Dialect::Postgres, c[3].1, &Checkpoint::Number("5".into()));
        assert_eq!(
            q.as_deref(),
            Some(
                r#"select count(*) as n from "main"."filtered" where (amount > 0) and ("updated_at" is null or "updated_at" <= 5)"#
            )
        );
        assert_eq!(
            as_of_query(Dialect::Postgres, c[1].1, &Checkpoint::Number("5".into())),
            None
        );
    }
}
