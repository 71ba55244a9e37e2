//! Noop's schema comparison on what the real Sling 1.4.11 discovers: a SQLite mission copied to PostgreSQL, then the
//! mission's table changed under it.

mod common;

use common::sling_exec::Env;
use common::{sqlite, PgDb};
use sling_sync_wrapper::sync::schema_check::{compare, Catalog, SchemaFinding, Severity};
use sling_sync_wrapper::sync::verify::dialect::TableRef;

#[test]
fn sqlite_to_postgres_added_dropped_retyped_and_missing_key() {
    let Some(command) = PgDb::create("ssw_schema") else {
        return;
    };
    let d = tempfile::tempdir().expect("tempdir");
    let m = d.path().join("mission.db");
    sqlite(
        &m,
        "create table orders (id integer primary key, amount real, note text, updated_at timestamp);
         insert into orders values (1, 1.5, 'a', '2026-01-01 00:00:01');",
    );
    let env = Env::new(&[
        ("MISSION", format!("sqlite://{}", m.display())),
        ("COMMAND_PG", command.url()),
    ]);
    env.run("source: MISSION\ntarget: COMMAND_PG\ndefaults:\n  mode: incremental\n  object: public.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.orders:\n");
    let src = TableRef::parse("main.orders").expect("t");
    let tgt = TableRef::parse("public.orders").expect("t");
    let check = |update_key: &str| {
        let s = Catalog::from_discover(&env.discover("MISSION", "main.orders")).expect("source");
        let t = Catalog::from_discover(&env.discover("COMMAND_PG", "public.*")).expect("target");
        compare(
            &src,
            s.columns(&src),
            &tgt,
            t.columns(&tgt),
            Some(update_key),
            &["id".into()],
            true,
        )
    };
    assert_eq!(check("updated_at"), [SchemaFinding::Matches { columns: 4 }]);

    // Added `extra`, dropped `note`, `amount` from a number to text, and an update key that does not exist.
    sqlite(
        &m,
        "create table o2 (id integer primary key, amount text, updated_at timestamp, extra int);
         insert into o2 select id, amount, updated_at, 0 from orders; drop table orders; alter table o2 rename to orders;",
    );
    let findings = check("modified_at");
    let text: Vec<String> = findings
        .iter()
        .map(|f| format!("{:?}: {f}", f.severity()))
        .collect();
    assert_eq!(
        text,
        [
            "Failure: update_key column `modified_at` is not in the source table",
            "Failure: column `amount` changed type: source text, target numeric / decimal",
            "Warning: source column `extra` (int / integer) is not in the target",
            "Warning: target column `note` (text) is no longer in the source",
        ]
    );
    assert!(findings.iter().any(|f| f.severity() == Severity::Failure));

    // Before a first run the target table is simply not there.
    let none =
        Catalog::from_discover(&env.discover("COMMAND_PG", "public.nothing_here")).expect("empty");
    let other = TableRef::parse("public.nothing_here").expect("t");
    let s = Catalog::from_discover(&env.discover("MISSION", "main.orders")).expect("source");
    let f = compare(
        &src,
        s.columns(&src),
        &other,
        none.columns(&other),
        None,
        &[],
        true,
    );
    assert_eq!(
        f,
        [SchemaFinding::TargetTableMissing {
            table: "public.nothing_here".into()
        }]
    );
}
