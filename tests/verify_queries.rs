//! The verification's queries and interpretation against the real Sling 1.4.11 and real databases: copies made by
//! `sling run`, then `verify::verify` with every query going through `sling conns exec` (SQLite always; PostgreSQL
//! and MariaDB when reachable, mandatory with CI=true).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::sling_exec::Env;
use common::{sqlite, MariaDb, PgDb};
use sling_sync_wrapper::sync::verify::{StreamHistory, StreamStatus, VerifyStatus, Warning};

fn sqlite_env(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Env) {
    let m = dir.join("mission.db");
    let c = dir.join("command.db");
    let env = Env::new(&[
        ("MISSION", format!("sqlite://{}", m.display())),
        ("COMMAND", format!("sqlite://{}", c.display())),
    ]);
    (m, c, env)
}

const SQLITE_REP: &str = "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\nstreams:\n  main.orders:\n    update_key: updated_at\n  main.products:\n    mode: full-refresh\n  main.custom:\n    sql: select * from main.orders\n    object: main.custom_copy\n  main.off:\n    disabled: true\n";

#[tokio::test]
async fn sqlite_deletes_missing_rows_and_late_rows() {
    let d = tempfile::tempdir().expect("tempdir");
    let (m, c, env) = sqlite_env(d.path());
    sqlite(
        &m,
        "create table orders (id integer primary key, amount real, updated_at text);
         insert into orders select value, value * 1.5, printf('2026-01-01 00:%02d:00', value) from generate_series(1, 20);
         create table products (id integer primary key, sku text);
         insert into products values (1, 'a'), (2, 'b');",
    );
    env.run(SQLITE_REP);

    let r = env.verify(SQLITE_REP, &BTreeMap::new()).await;
    assert_eq!(r.status, VerifyStatus::Match, "{r:#?}");
    assert_eq!(r.streams["main.orders"].source_rows, Some(20));
    assert_eq!(r.streams["main.custom"].status, StreamStatus::Skipped);
    assert!(
        !r.streams.contains_key("main.off"),
        "disabled streams are not verified"
    );

    // Deleted on the mission side: incremental never deletes → exact drift.
    sqlite(&m, "delete from orders where id in (3, 4, 5)");
    env.run(SQLITE_REP);
    // Rows arriving after the copy (newer update keys) are not drift: compared as of the checkpoint.
    sqlite(&m, "insert into orders values (100, 1, '2026-01-02 00:00:00'), (101, 1, '2026-01-02T00:00:01Z')");
    let r = env.verify(SQLITE_REP, &BTreeMap::new()).await;
    let o = &r.streams["main.orders"];
    assert_eq!(r.status, VerifyStatus::Drift, "{r:#?}");
    assert_eq!(
        (o.source_rows, o.target_rows, o.drift_rows),
        (Some(17), Some(20), Some(3)),
        "{o:?}"
    );
    assert_eq!(o.warnings, [Warning::DeletesNotPropagated]);
    assert!(
        o.note
            .as_deref()
            .is_some_and(|n| n.contains("19 source rows in all")),
        "{o:?}"
    );

    // Lost on the command side.
    sqlite(&c, "delete from products where id = 2");
    let r = env.verify(SQLITE_REP, &BTreeMap::new()).await;
    let p = &r.streams["main.products"];
    assert_eq!(
        (p.drift_rows, p.warnings.as_slice()),
        (Some(-1), [Warning::RowsMissing].as_slice())
    );
}

#[tokio::test]
async fn sqlite_timestamp_column_checkpoint_mismatch_and_recopy() {
    let d = tempfile::tempdir().expect("tempdir");
    let (m, _c, env) = sqlite_env(d.path());
    sqlite(
        &m,
        "create table events (id integer primary key, updated_at timestamp);
         insert into events values (1, '2024-01-03T07:33:20Z'), (2, '2024-01-03T07:33:21Z');",
    );
    let rep = "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.events:\n";
    let first = env.run(rep);
    assert!(first.contains("inserted 2 rows"), "{first}");
    let r1 = env.verify(rep, &BTreeMap::new()).await;
    let e = &r1.streams["main.events"];
    assert_eq!(
        e.status,
        StreamStatus::Match,
        "whole tables, never a bogus drift: {e:?}"
    );
    assert_eq!(e.warnings, [Warning::CheckpointMismatch]);

    // The second, unchanged run copies both rows again (SLING_FACTS §10).
    let second = env.run(rep);
    assert!(second.contains("inserted 2 rows"), "{second}");
    let history = [(
        "main.events".to_string(),
        StreamHistory {
            copied_now: Some(2),
            previous: Some(e.clone()),
        },
    )]
    .into();
    let r2 = env.verify(rep, &history).await;
    assert_eq!(
        r2.streams["main.events"].warnings,
        [Warning::IncrementalRecopy, Warning::CheckpointMismatch]
    );
}

#[tokio::test]
async fn postgres_as_of_checkpoint_with_timestamptz_and_a_failing_table() {
    let (Some(mission), Some(command)) = (PgDb::create("ssw_vq_m"), PgDb::create("ssw_vq_c"))
    else {
        return;
    };
    mission.sql(
        "create table orders (id int primary key, note text, updated_at timestamptz not null);
         insert into orders select g, 'n' || g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1.5 second'
           from generate_series(1, 300) g;
         create table \"Mixed Case\" (\"Id\" int primary key, \"Upd At\" timestamp);
         insert into \"Mixed Case\" values (1, '2026-01-01 00:00:01.123456'), (2, '2026-01-01 00:00:02.5');",
    );
    let env = Env::new(&[("MISSION_PG", mission.url()), ("COMMAND_PG", command.url())]);
    let rep = "source: MISSION_PG\ntarget: COMMAND_PG\ndefaults:\n  mode: incremental\n  object: public.{stream_table}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  public.orders:\n  public.\"Mixed Case\":\n    primary_key: [Id]\n    update_key: Upd At\n";
    env.run(rep);
    // Late rows on both tables, a delete and a row inserted between two fractional checkpoints.
    mission.sql(
        "insert into orders values (1000, 'late', now()), (1001, 'late', now());
         delete from orders where id = 7;
         insert into \"Mixed Case\" values (3, '2026-01-01 00:00:03');",
    );
    let r = env.verify(rep, &BTreeMap::new()).await;
    let o = &r.streams["public.orders"];
    assert_eq!(
        (o.source_rows, o.target_rows, o.drift_rows),
        (Some(299), Some(300), Some(1)),
        "{r:#?}"
    );
    assert_eq!(o.warnings, [Warning::DeletesNotPropagated]);
    let mc = &r.streams["public.\"Mixed Case\""];
    assert_eq!(
        (mc.status, mc.source_rows),
        (StreamStatus::Match, Some(2)),
        "{mc:?}"
    );

    // A query error is `error` for that stream, never drift, and the other stream still gets its verdict.
    command.sql("drop table \"Mixed_Case\"");
    let r = env.verify(rep, &BTreeMap::new()).await;
    let mc = &r.streams["public.\"Mixed Case\""];
    assert_eq!(
        (mc.status, mc.drift_rows),
        (StreamStatus::Error, None),
        "{mc:?}"
    );
    assert_eq!(r.streams["public.orders"].status, StreamStatus::Drift);
    assert!(
        !format!("{r:?}").contains("postgres@"),
        "no connection URL in the report"
    );
}

#[tokio::test]
async fn mariadb_to_postgres_as_of_checkpoint_with_datetime6() {
    let (Some(mission), Some(command)) = (MariaDb::create("ssw_vq_m"), PgDb::create("ssw_vq_c"))
    else {
        return;
    };
    mission.sql(
        "create table stock (id int primary key, sku varchar(32), updated_at datetime(6) not null);
         insert into stock values (1, 'A', '2026-01-01 00:00:01.5'), (2, 'B', '2026-01-01 00:00:02.25'),
                                  (3, 'C', '2026-01-01 00:00:03.125');",
    );
    let env = Env::new(&[("MISSION_MY", mission.url()), ("COMMAND_PG", command.url())]);
    let rep = format!(
        "source: MISSION_MY\ntarget: COMMAND_PG\ndefaults:\n  mode: incremental\n  object: public.{{stream_table}}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  {}.stock:\n",
        mission.name
    );
    env.run(&rep);
    mission.sql("insert into stock values (4, 'D', '2026-01-01 00:00:03.126'); delete from stock where id = 1;");
    let r = env.verify(&rep, &BTreeMap::new()).await;
    let s = &r.streams[&format!("{}.stock", mission.name)];
    assert_eq!(
        (s.source_rows, s.target_rows, s.drift_rows),
        (Some(2), Some(3), Some(1)),
        "{r:#?}"
    );
    assert_eq!(s.warnings, [Warning::DeletesNotPropagated]);
}

#[tokio::test]
async fn sqlite_to_mariadb_target_quoted_with_backticks() {
    let Some(command) = MariaDb::create("ssw_vq_c") else {
        return;
    };
    let d = tempfile::tempdir().expect("tempdir");
    let m = d.path().join("mission.db");
    sqlite(
        &m,
        "create table \"Order Lines\" (id integer primary key, qty int, updated_at text);
         insert into \"Order Lines\" values (1, 1, '2026-01-01 00:00:01'), (2, 2, '2026-01-01 00:00:02'),
                                       (3, 3, '2026-01-01 00:00:03');",
    );
    let env = Env::new(&[
        ("MISSION", format!("sqlite://{}", m.display())),
        ("COMMAND_MY", command.url()),
    ]);
    let rep = format!(
        "source: MISSION\ntarget: COMMAND_MY\ndefaults:\n  mode: incremental\n  object: {}.{{stream_table}}\n  primary_key: [id]\n  update_key: updated_at\nstreams:\n  main.\"Order Lines\":\n",
        command.name
    );
    env.run(&rep);
    command.sql("delete from `Order_Lines` where id = 2");
    sqlite(
        &m,
        "insert into \"Order Lines\" values (4, 4, '2026-01-01 00:00:04')",
    );
    let r = env.verify(&rep, &BTreeMap::new()).await;
    let s = &r.streams["main.\"Order Lines\""];
    assert_eq!(
        (s.source_rows, s.target_rows, s.drift_rows),
        (Some(3), Some(2), Some(-1)),
        "{r:#?}"
    );
    assert_eq!(s.warnings, [Warning::RowsMissing]);
}
