//! Many pipelines in one job: the concurrency limit, stalest-first order, the job deadline, locks and signals with
//! several pipelines running. Real Sling copies the data; `tests/fixtures/sling-shim.sh` (mode `track`) wraps it to
//! count how many run at once and to hold each one long enough that they overlap.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{alive, count, Shim, World};

/// What this file reads from the shim's record.
impl Shim {
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
    fn max_running(&self) -> u32 {
        self.read("max").trim().parse().unwrap_or(0)
    }
    fn invocations(&self) -> Vec<(i32, String)> {
        self.read("invocations")
            .lines()
            .filter_map(|l| {
                let (pid, args) = l.split_once(' ')?;
                Some((pid.parse().ok()?, args.to_owned()))
            })
            .collect()
    }
    /// Pipelines in the order their Sling started (the file stem of `run -r FILE`).
    fn started(&self) -> Vec<String> {
        self.invocations()
            .into_iter()
            .filter_map(|(_, args)| {
                let file = args.split_whitespace().nth(2)?;
                Some(Path::new(file).file_stem()?.to_string_lossy().into_owned())
            })
            .collect()
    }
}

/// A world with `n` more pipelines `p1`…`pn`, each copying `products` into a SQLite file of its own (SQLite takes
/// one writer at a time; the point here is the wrapper, not SQLite's locking).
fn world_with(names: &[&str]) -> World {
    let mut w = World::new();
    for name in names {
        let db = w.dir.path().join(format!("{name}.db"));
        let conn = format!("TARGET_{}", name.to_uppercase());
        w.env
            .insert(conn.clone(), format!("sqlite://{}", db.display()));
        w.write_pipeline(
            name,
            &format!(
                "source: MISSION\ntarget: {conn}\nstreams:\n  main.products:\n    mode: full-refresh\n    object: main.products\n"
            ),
        );
    }
    w
}

fn run(c: &mut std::process::Command) -> common::Run {
    common::Run::from(c.output().expect("run wrapper"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn never_more_than_the_limit_run_at_once_and_everything_lands() {
    let names = ["p1", "p2", "p3", "p4", "p5"];
    let w = world_with(&names);
    let s = Shim::new();
    let out = run(s
        .cmd(&w, "track", &["--concurrency", "2"])
        .env("SHIM_HOLD", "1"));
    assert_eq!(out.code, Some(0), "{}", out.explain());
    assert_eq!(s.invocations().len(), 7, "every pipeline ran once");
    // The limit holds, and it is used: with each Sling held for a second, two always overlap.
    assert_eq!(s.max_running(), 2, "Sling processes at once");
    for name in names {
        assert_eq!(
            count(&w.dir.path().join(format!("{name}.db")), "products"),
            3
        );
    }
    assert_eq!(count(&w.command, "orders"), 3);
    assert_eq!(count(&w.command, "products"), 3);
    // One job: every line and every journal record names the same job id.
    let job_ids: std::collections::BTreeSet<String> = w
        .journal()
        .iter()
        .map(|r| r["sync_job_id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(job_ids.len(), 1, "{job_ids:?}");
}

#[test]
fn the_default_is_one_at_a_time() {
    let w = world_with(&["p1", "p2"]);
    let s = Shim::new();
    let out = run(s.cmd(&w, "track", &[]).env("SHIM_HOLD", "0.3"));
    assert_eq!(out.code, Some(0), "{}", out.explain());
    assert_eq!(s.invocations().len(), 4);
    assert_eq!(s.max_running(), 1);
}

#[test]
fn pipelines_start_stalest_first() {
    let w = world_with(&["a", "b", "c", "d"]);
    // b succeeds, then a: a is fresher than b; c and d never succeeded; orders failed once.
    for name in ["b", "a"] {
        let out = w.run(&["--pipeline", name]);
        assert_eq!(out.code, Some(0), "{}", out.explain());
        std::thread::sleep(Duration::from_millis(20));
    }
    common::sqlite(&w.mission, "alter table products rename to products_gone");
    let out = w.run(&["--pipeline", "products", "--max-retries", "0"]);
    assert_eq!(out.code, Some(1), "{}", out.explain());
    common::sqlite(&w.mission, "alter table products_gone rename to products");

    let s = Shim::new();
    let out = run(&mut s.cmd(&w, "track", &["--concurrency", "1"]));
    assert_eq!(out.code, Some(0), "{}", out.explain());
    // Never succeeded first (by name; a failure is not a success), then oldest success first.
    assert_eq!(
        s.started(),
        ["c", "d", "orders", "products", "b", "a"],
        "{}",
        out.stdout
    );
}

#[test]
fn a_job_deadline_skips_what_has_not_started_and_exits_1() {
    let w = world_with(&["p1", "p2"]);
    let s = Shim::new();
    // The first pipeline (orders, by name) holds past the deadline; nothing else may start after it.
    let out = run(s
        .cmd(&w, "track", &["--job-deadline", "1s"])
        .env("SHIM_HOLD", "2"));
    assert_eq!(out.code, Some(1), "{}", out.explain());
    assert_eq!(s.started(), ["orders"], "only the first started");
    assert_eq!(
        w.last_record("orders")["status"],
        "success",
        "a running pipeline finishes"
    );
    for name in ["p1", "p2", "products"] {
        let rec = w.last_record(name);
        assert_eq!(rec["status"], "skipped", "{rec}");
        assert_eq!(rec["attempts"], 0);
        assert!(
            rec["error"].as_str().unwrap_or("").contains("deadline"),
            "{rec}"
        );
        let line = out.finished(name);
        assert_eq!(line["status"], "skipped");
        assert!(line["error"].as_str().unwrap_or("").contains("deadline"));
    }
    assert!(
        !w.dir.path().join("p1.db").exists(),
        "a skipped pipeline touches nothing"
    );
}

#[test]
fn sigterm_with_several_running_stops_them_all_and_cancels_the_queue() {
    let w = world_with(&["p1", "p2"]);
    let s = Shim::new();
    let child = s
        .cmd(&w, "hang", &["--concurrency", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_until("three Sling processes", || s.invocations().len() >= 3);
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal wrapper");
    let out = common::Run::from(child.wait_with_output().expect("wait"));
    assert_eq!(out.code, Some(143), "{}", out.explain());
    let pids: Vec<i32> = s.invocations().into_iter().map(|(p, _)| p).collect();
    assert_eq!(pids.len(), 3, "the fourth never started");
    assert!(pids.iter().all(|p| !alive(*p)), "no Sling process is left");
    let journal = w.journal();
    assert_eq!(journal.len(), 4, "every pipeline of the job is recorded");
    assert!(
        journal.iter().all(|r| r["status"] == "cancelled"),
        "{journal:?}"
    );
    assert_eq!(
        journal.iter().filter(|r| r["attempts"] == 0).count(),
        1,
        "the queued one was cancelled before it started"
    );
}

#[test]
fn the_lock_still_refuses_a_pipeline_running_elsewhere() {
    let w = World::new();
    let s = Shim::new();
    let first = s.hold_lock(&w, "orders", "first-job");
    let second = w.run(&["--concurrency", "2"]);
    assert_eq!(second.code, Some(1), "{}", second.explain());
    let msg = second.finished("orders")["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        msg.contains("already running") && msg.contains("first-job"),
        "{msg}"
    );
    assert_eq!(second.finished("products")["status"], "success");
    assert_eq!(count(&w.command, "products"), 3);

    first.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_report_keeps_the_job_order_whatever_order_pipelines_ran_in() {
    use sling_sync_wrapper::sync::event::{self, Mode, Status, SyncEvent};
    use sling_sync_wrapper::sync::pipeline::{self, PipelineSource};
    use sling_sync_wrapper::sync::JobSpec;

    let w = World::new();
    let engine = common::engine(&w, common::sling_bin(), &[]);
    let all = pipeline::discover(&PipelineSource::Dir(w.pipelines.clone())).expect("discover");
    let job = |pipelines| JobSpec {
        sync_job_id: uuid::Uuid::new_v4().to_string(),
        mode: Mode::Incremental,
        pipelines,
    };
    // products succeeds first, then orders: products is now the staler of the two.
    for name in ["products", "orders"] {
        let only: Vec<_> = all.iter().filter(|p| p.name == name).cloned().collect();
        let (sink, _events) = event::channel(100);
        let r = engine.run_job(job(only), &sink, Default::default()).await;
        assert_eq!(r.status, Status::Success);
    }
    let (sink, mut events) = event::channel(1000);
    let report = engine.run_job(job(all), &sink, Default::default()).await;
    drop(sink);
    let mut started = Vec::new();
    while let Some(ev) = events.recv().await {
        if let SyncEvent::PipelineStarted { pipeline, .. } = ev {
            started.push(pipeline);
        }
    }
    assert_eq!(started, ["products", "orders"], "stalest first");
    let listed: Vec<&str> = report
        .pipelines
        .iter()
        .map(|r| r.pipeline.as_str())
        .collect();
    assert_eq!(
        listed,
        ["orders", "products"],
        "the report keeps the job's order"
    );
}
