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
