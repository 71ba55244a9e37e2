use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn doc(text: &str) -> Value {
    serde_yaml::from_str(text).expect("yaml")
}

#[test]
fn env_block_placeholders_resolve_in_source_target_mode_and_object() {
    let r = resolve(
        &doc("source: '{source}'\ntarget: '{tgt}'\nenv:\n  source: LOCAL\n  tgt: COMMAND\n  m: incremental\n  sch: main\ndefaults:\n  mode: '{m}'\n  primary_key: [id]\n  object: '{sch}.{stream_table}'\nstreams:\n  main.orders:\n"),
        &BTreeMap::new(),
    );
    assert_eq!(r.source.as_deref(), Some("LOCAL"));
    assert_eq!(r.target.as_deref(), Some("COMMAND"));
    let s = &r.streams[0];
    assert_eq!(s.mode, "incremental");
    assert!(!s.mode_defaulted);
    assert_eq!(s.object.as_deref(), Some("main.{stream_table}"));
    assert_eq!(
        r.substitutions
            .iter()
            .map(|s| (s.place.as_str(), s.value.as_str()))
            .collect::<Vec<_>>(),
        [
            ("source", "LOCAL"),
            ("target", "COMMAND"),
            ("stream main.orders: mode", "incremental"),
            ("stream main.orders: object", "main"),
        ]
    );
    assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
}

#[test]
fn process_environment_reaches_placeholders_only_through_env_values() {
    let process = env(&[("MY_SRC", "MISSION"), ("prefix", "pp")]);
    let r = resolve(
        &doc("source: '{s}'\ntarget: '{MY_SRC}'\nenv:\n  s: '${MY_SRC}'\n  o: $prefix\ndefaults:\n  object: 'main.{o}_{stream_table}_{nope}'\nstreams:\n  a.b:\n"),
        &process,
    );
    assert_eq!(r.source.as_deref(), Some("MISSION"));
    assert_eq!(
        r.target.as_deref(),
        Some("{MY_SRC}"),
        "kept as Sling keeps it"
    );
    assert_eq!(
        r.streams[0].object.as_deref(),
        Some("main.pp_{stream_table}_")
    );
    let names: Vec<_> = r.unresolved.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["MY_SRC", "nope"]);
}

#[test]
fn placeholder_names_are_case_sensitive() {
    let r = resolve(
        &doc("source: '{S}'\ntarget: T\nenv:\n  s: SRC\nstreams:\n  a.b:\n    object: x.y\n"),
        &BTreeMap::new(),
    );
    assert_eq!(r.source.as_deref(), Some("{S}"));
}

#[test]
fn blank_mode_is_incremental_with_keys_else_full_refresh() {
    let r = resolve(
        &doc("source: A\ntarget: B\nenv:\n  m: ''\ndefaults:\n  mode: '{m}'\n  object: x.{stream_table}\nstreams:\n  a.keyed:\n    update_key: ts\n  a.pk:\n    primary_key: id\n  a.plain:\n  a.explicit:\n    mode: truncate\n"),
        &BTreeMap::new(),
    );
    let modes: Vec<_> = r
        .streams
        .iter()
        .map(|s| (s.mode.as_str(), s.mode_defaulted))
        .collect();
    assert_eq!(
        modes,
        [
            ("incremental", true),
            ("incremental", true),
            ("full-refresh", true),
            ("truncate", false)
        ]
    );
    assert_eq!(r.streams[1].primary_key, ["id"]);
    assert_eq!(r.streams[0].update_key.as_deref(), Some("ts"));
}

#[test]
fn stream_kinds_and_disabled_streams() {
    let r = resolve(
        &doc("source: MISSION\ntarget: COMMAND\ndefaults:\n  object: main.{stream_table}\nstreams:\n  main.*:\n  main.custom:\n    sql: select 1 as id\n  main.off:\n    disabled: true\n  file:///tmp/x.csv:\n  main.f:\n    where: id > 3\n"),
        &BTreeMap::new(),
    );
    let s = &r.streams;
    assert!(s[0].wildcard && !s[0].sql);
    assert!(s[1].sql);
    assert!(s[2].disabled);
    assert!(s[3].file);
    assert_eq!(s[4].where_clause.as_deref(), Some("id > 3"));
    assert_eq!(r.enabled_streams().count(), 4);
    let local = resolve(
        &doc("source: local\ntarget: B\nstreams:\n  data/x.csv:\n    object: a.b\n"),
        &BTreeMap::new(),
    );
    assert!(local.streams[0].file);
    assert!(is_local_connection("Local"));
}

#[test]
fn expand_env_follows_go() {
    let e = env(&[("A", "1"), ("B_C", "2")]);
    assert_eq!(expand_env("x$A-${B_C}-$NOPE-${NOPE}-$", &e), "x1-2---$");
    assert_eq!(expand_env("${unterminated", &e), "${unterminated");
    assert_eq!(expand_env("price: 5$ ", &e), "price: 5$ ");
}

#[test]
fn runtime_variables_are_left_for_sling() {
    let mut subs = Vec::new();
    let mut un = Vec::new();
    let vars = env(&[("stream_table", "nope")]);
    let out = substitute(
        "s.{stream_table}_{YYYY}_{ json }",
        "object",
        &vars,
        Unknown::Empty,
        &mut subs,
        &mut un,
    );
    assert_eq!(out, "s.{stream_table}_{YYYY}_{ json }");
    assert!(subs.is_empty() && un.is_empty());
}
