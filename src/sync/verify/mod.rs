//! Reconciliation after a successful run: count rows on both sides of each stream through `sling conns exec` (no
//! database driver in the wrapper) and interpret the difference.
//!
//! Everything here is pure except `verify`, which drives the queries through an `exec` function the engine supplies
//! (its one Sling spawn path). Order of work for one pipeline:
//! 1. source and target at the same time, one call each: `count(*)` and `max(update_key)` per counted stream;
//! 2. for incremental streams whose source has rows past the target's checkpoint, one more source call counting rows
//!    as of that checkpoint (so rows arriving during and after the copy are not drift);
//! 3. a verdict per stream (`interpret`), a status per pipeline (`VerifyReport`).

pub mod checkpoint;
pub mod dialect;
pub mod interpret;
pub mod output;
pub mod plan;
pub mod report;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;

pub use interpret::StreamHistory;
pub use output::{CallOutcome, ResultSet};
pub use plan::{Plan, StreamPlan};
pub use report::{StreamStatus, StreamVerify, VerifyReport, VerifyStatus, Warning};

use interpret::{basis, interpret, Basis, SideCounts};

/// `SYNC_VERIFY` / `--verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifyMode {
    /// No queries at all; the journal says `off`.
    Off,
    /// Verify and report; the sync result is unchanged.
    #[default]
    Report,
    /// Drift fails the pipeline (the job exits 1). Errors still do not.
    Strict,
}

impl VerifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::Off => "off",
            VerifyMode::Report => "report",
            VerifyMode::Strict => "strict",
        }
    }
}

impl fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VerifyMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "report" => Ok(VerifyMode::Report),
            "strict" => Ok(VerifyMode::Strict),
            "off" => Ok(VerifyMode::Off),
            other => Err(format!(
                "unknown verify mode `{other}`: expected report, strict or off"
            )),
        }
    }
}

/// Runs `queries` on connection `conn` with as few calls as possible. Sling stops a call at its first failing query,
/// so the rest go in a further call; each query gets its own result or error.
pub async fn run_queries<F, Fut>(
    exec: &F,
    conn: &str,
    queries: &[String],
) -> Vec<Result<ResultSet, String>>
where
    F: Fn(String, Vec<String>) -> Fut,
    Fut: Future<Output = Result<CallOutcome, String>>,
{
    let mut out: Vec<Result<ResultSet, String>> = Vec::with_capacity(queries.len());
    while out.len() < queries.len() {
        let rest = queries[out.len()..].to_vec();
        let n = rest.len();
        match exec(conn.to_owned(), rest).await {
            Err(e) => {
                out.extend((0..n).map(|_| Err(e.clone())));
            }
            Ok(call) => {
                let ran = call.failed.as_ref().map(|(i, _)| *i).unwrap_or(n).min(n);
                out.extend(call.results.into_iter().take(ran).map(Ok));
                match call.failed {
                    Some((_, msg)) => out.push(Err(msg)),
                    None if ran == 0 => break,
                    None => {}
                }
            }
        }
    }
    out.truncate(queries.len());
    out
}

/// Verifies one pipeline run. `history`: per stream name, what this run copied and the previous verification.
pub async fn verify<F, Fut>(
    plan: &Plan,
    exec: F,
    history: &BTreeMap<String, StreamHistory>,
) -> VerifyReport
where
    F: Fn(String, Vec<String>) -> Fut,
    Fut: Future<Output = Result<CallOutcome, String>>,
{
    let mut streams: BTreeMap<String, StreamVerify> = plan
        .streams
        .iter()
        .filter_map(|(name, p)| match p {
            StreamPlan::Skipped(why) => Some((name.clone(), StreamVerify::skipped(why.clone()))),
            StreamPlan::Count(_) => None,
        })
        .collect();
    let counted = plan.counted();
    if counted.is_empty() {
        return VerifyReport::from_streams(streams);
    }
    let (source_q, target_q) = (plan.source_queries(), plan.target_queries());
    let (source_r, target_r) = tokio::join!(
        run_queries(&exec, &plan.source_conn, &source_q),
        run_queries(&exec, &plan.target_conn, &target_q)
    );
    let side = |r: Option<&Result<ResultSet, String>>, role: &str| -> Result<SideCounts, String> {
        match r {
            Some(Ok(set)) => SideCounts::from_result(set).map_err(|e| format!("{role}: {e}")),
            Some(Err(e)) => Err(format!("{role} query failed: {e}")),
            None => Err(format!("{role} query did not run")),
        }
    };
    let mut firsts = Vec::new();
    for (k, (i, c)) in counted.iter().enumerate() {
        let name = &plan.streams[*i].0;
        match (
            side(source_r.get(k), "source"),
            side(target_r.get(k), "target"),
        ) {
            (Ok(s), Ok(t)) => {
                let b = basis(c, &s, &t);
                firsts.push((name.clone(), *c, s, t, b));
            }
            (Err(e), _) | (_, Err(e)) => {
                streams.insert(name.clone(), StreamVerify::error(e));
            }
        }
    }
    // Second round: as-of-checkpoint source counts, one call.
    let mut as_of_q = Vec::new();
    let mut as_of_for = Vec::new();
    if let Some(d) = plan.source_dialect {
        for (k, (_, c, _, _, b)) in firsts.iter().enumerate() {
            if let Basis::AsOf(cp) = b {
                if let Some(q) = plan::as_of_query(d, c, cp) {
                    as_of_q.push(q);
                    as_of_for.push(k);
                }
            }
        }
    }
    let as_of_r = if as_of_q.is_empty() {
        Vec::new()
    } else {
        run_queries(&exec, &plan.source_conn, &as_of_q).await
    };
    let none = StreamHistory::default();
    for (k, (name, c, s, t, b)) in firsts.iter().enumerate() {
        let as_of = as_of_for
            .iter()
            .position(|x| *x == k)
            .map(|j| match as_of_r.get(j) {
                Some(Ok(set)) => set.count("n").ok_or_else(|| {
                    format!("unexpected result from Sling: fields {:?}", set.fields)
                }),
                Some(Err(e)) => Err(e.clone()),
                None => Err("did not run".into()),
            });
        let h = history.get(name).unwrap_or(&none);
        streams.insert(name.clone(), interpret(c, s, t, b, as_of, h));
    }
    VerifyReport::from_streams(streams)
}

/// `verify` within `limit` (`SYNC_VERIFY_TIMEOUT`). Past it, every counted stream is `error` (never drift); the
/// engine drops the calls in flight, which stops their Sling processes.
pub async fn verify_within<F, Fut>(
    plan: &Plan,
    exec: F,
    history: &BTreeMap<String, StreamHistory>,
    limit: std::time::Duration,
) -> VerifyReport
where
    F: Fn(String, Vec<String>) -> Fut,
    Fut: Future<Output = Result<CallOutcome, String>>,
{
    match tokio::time::timeout(limit, verify(plan, exec, history)).await {
        Ok(report) => report,
        Err(_) => {
            let note = format!(
                "verification did not finish within {} (SYNC_VERIFY_TIMEOUT)",
                humantime::format_duration(limit)
            );
            let mut report = VerifyReport::failed(
                plan.counted()
                    .iter()
                    .map(|(i, _)| plan.streams[*i].0.clone()),
                &note,
            );
            for (name, p) in &plan.streams {
                if let StreamPlan::Skipped(why) = p {
                    report
                        .streams
                        .insert(name.clone(), StreamVerify::skipped(why.clone()));
                }
            }
            report
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::resolve::resolve;
    use std::sync::Mutex;

    #[test]
    fn modes_parse_and_default_to_report() {
        assert_eq!("".parse::<VerifyMode>(), Ok(VerifyMode::Report));
        assert_eq!(" Strict ".parse::<VerifyMode>(), Ok(VerifyMode::Strict));
        assert_eq!("off".parse::<VerifyMode>(), Ok(VerifyMode::Off));
        assert!("sometimes".parse::<VerifyMode>().is_err());
        assert_eq!(VerifyMode::default(), VerifyMode::Report);
    }

    fn set(line: &str) -> ResultSet {
        output::result_sets(line).remove(0)
    }

    type Answer = (
        &'static str,
        &'static str,
        Result<&'static str, &'static str>,
    );

    /// Stands in for Sling's call semantics only: answers each query of a connection from a table (first match of
    /// connection and text), stopping at a failing one as Sling does.
    fn scripted(
        answers: Vec<Answer>,
        calls: &Mutex<Vec<(String, usize)>>,
    ) -> impl Fn(String, Vec<String>) -> std::future::Ready<Result<CallOutcome, String>> + '_ {
        move |conn, queries| {
            calls
                .lock()
                .expect("lock")
                .push((conn.clone(), queries.len()));
            let mut results = Vec::new();
            for (i, q) in queries.iter().enumerate() {
                let a = answers
                    .iter()
                    .find(|(c, needle, _)| *c == conn && q.contains(needle))
                    .map(|(_, _, a)| *a)
                    .unwrap_or(Err("no such table"));
                match a {
                    Ok(line) => results.push(set(line)),
                    Err(e) => {
                        return std::future::ready(Ok(CallOutcome {
                            results,
                            failed: Some((i, e.to_owned())),
                        }))
                    }
                }
            }
            std::future::ready(Ok(CallOutcome {
                results,
                failed: None,
            }))
        }
    }

    #[tokio::test]
    async fn a_verification_that_hangs_is_an_error_never_drift() {
        let rep = resolve(
            &serde_yaml::from_str(
                "source: M\ntarget: C\ndefaults:\n  object: main.{stream_table}\nstreams:\n  main.a:\n  main.q:\n    sql: select 1\n",
            )
            .expect("yaml"),
            &BTreeMap::new(),
        );
        let plan = Plan::new(&rep, Some("sqlite"), Some("sqlite"), &BTreeMap::new());
        let hang =
            |_: String, _: Vec<String>| std::future::pending::<Result<CallOutcome, String>>();
        let r = verify_within(
            &plan,
            hang,
            &BTreeMap::new(),
            std::time::Duration::from_millis(20),
        )
        .await;
        assert_eq!(r.status, VerifyStatus::Error);
        assert_eq!(r.streams["main.a"].status, StreamStatus::Error);
        assert_eq!(r.streams["main.a"].drift_rows, None);
        assert_eq!(r.streams["main.q"].status, StreamStatus::Skipped);
        assert!(
            r.note.as_deref().is_some_and(|n| n.contains("20ms")),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_query_errors_its_stream_only_and_the_rest_still_run() {
        let calls = Mutex::new(Vec::new());
        let exec = scripted(
            vec![
                (
                    "X",
                    "\"a\"",
                    Ok(r#"{"fields":["n","mx"],"rows":[["1",null]]}"#),
                ),
                (
                    "X",
                    "\"c\"",
                    Ok(r#"{"fields":["n","mx"],"rows":[["3",null]]}"#),
                ),
            ],
            &calls,
        );
        let q: Vec<String> = ["from \"a\"", "from \"b\"", "from \"c\""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = run_queries(&exec, "X", &q).await;
        assert_eq!(r.len(), 3);
        assert!(r[0].is_ok() && r[2].is_ok());
        assert_eq!(r[1], Err("no such table".to_string()));
        assert_eq!(
            *calls.lock().expect("lock"),
            [("X".to_string(), 3), ("X".to_string(), 1)]
        );
    }

    #[tokio::test]
    async fn verify_runs_one_call_per_side_and_a_second_only_when_the_source_moved() {
        let rep = resolve(
            &serde_yaml::from_str(
                "source: MISSION\ntarget: COMMAND\ndefaults:\n  mode: incremental\n  object: main.{stream_table}\n  primary_key: [id]\n  update_key: ts\nstreams:\n  main.live:\n  main.still:\n  main.gone:\n  main.custom:\n    sql: select 1\n",
            )
            .expect("yaml"),
            &BTreeMap::new(),
        );
        let plan = Plan::new(&rep, Some("sqlite"), Some("postgres"), &BTreeMap::new());
        let calls = Mutex::new(Vec::new());
        let exec = scripted(
            vec![
                // The as-of query also names the table, so it comes first.
                (
                    "MISSION",
                    "julianday",
                    Ok(r#"{"fields":["n"],"rows":[["10"]]}"#),
                ),
                (
                    "MISSION",
                    r#""main"."live""#,
                    Ok(r#"{"fields":["n","mx"],"rows":[["12","2026-01-01 00:00:12"]]}"#),
                ),
                (
                    "MISSION",
                    r#""main"."still""#,
                    Ok(r#"{"fields":["n","mx"],"rows":[["5","7"]]}"#),
                ),
                (
                    "MISSION",
                    r#""main"."gone""#,
                    Ok(r#"{"fields":["n","mx"],"rows":[["5","7"]]}"#),
                ),
                (
                    "COMMAND",
                    r#""main"."live""#,
                    Ok(r#"{"fields":["n","mx"],"rows":[[10,"2026-01-01T00:00:10Z"]]}"#),
                ),
                (
                    "COMMAND",
                    r#""main"."still""#,
                    Ok(r#"{"fields":["n","mx"],"rows":[[6,7]]}"#),
                ),
                (
                    "COMMAND",
                    r#""main"."gone""#,
                    Err("relation does not exist"),
                ),
            ],
            &calls,
        );
        let report = verify(&plan, exec, &BTreeMap::new()).await;
        let calls = calls.into_inner().expect("lock");
        assert_eq!(
            calls,
            [
                ("MISSION".to_string(), 3),
                ("COMMAND".to_string(), 3),
                ("MISSION".to_string(), 1)
            ]
        );
        assert_eq!(report.status, VerifyStatus::Drift, "{report:?}");
        let live = &report.streams["main.live"];
        assert_eq!(
            (live.status, live.source_rows, live.target_rows),
            (StreamStatus::Match, Some(10), Some(10))
        );
        let still = &report.streams["main.still"];
        assert_eq!(
            (still.status, still.drift_rows),
            (StreamStatus::Drift, Some(1))
        );
        assert_eq!(still.warnings, [Warning::DeletesNotPropagated]);
        let gone = &report.streams["main.gone"];
        assert_eq!(gone.status, StreamStatus::Error);
        assert!(gone
            .note
            .as_deref()
            .is_some_and(|n| n.contains("relation does not exist")));
        assert_eq!(report.streams["main.custom"].status, StreamStatus::Skipped);
        assert_eq!(
            report.summary_line(),
            "verify: drift main.still +1 (deletes_not_propagated)"
        );
    }
}
