//! The schema and state part of noop: one `conns discover` per connection and schema for the job, the target
//! checkpoints through `conns exec`, and the comparison of each stream's source and target tables.

use super::*;

impl Noop {
    /// `sling conns discover CONN --pattern P --columns`; `no result.` is an empty catalog.
    pub(super) async fn discover(
        &self,
        conn: &str,
        pattern: &str,
        cancel: &CancellationToken,
    ) -> Result<Catalog, String> {
        let cmd = self
            .cfg
            .sling(
                vec![
                    "conns".into(),
                    "discover".into(),
                    conn.into(),
                    "--pattern".into(),
                    pattern.into(),
                    "--columns".into(),
                ],
                self.cfg.attempt_timeout.min(PROBE_TIMEOUT),
            )
            .for_results();
        let mut lines = Vec::new();
        let run = sling::run_attempt(&cmd, &self.redactor, cancel, |ev| {
            if let AttemptEvent::Result(l) = ev {
                lines.push(l);
            }
        })
        .await;
        if run.termination != Termination::Exited(0) {
            return Err(format!(
                "`{conn}`: sling conns discover failed: {}",
                run.reason().unwrap_or_default()
            ));
        }
        Catalog::from_discover(&lines.join("\n"))
    }

    /// State validation: `max(update_key)` on both sides of each incremental stream whose tables exist, one
    /// `conns exec` per connection for the whole job.
    pub(super) async fn checkpoints(
        &self,
        streams: &[(String, String, StreamTables)],
        catalogs: &HashMap<String, Result<Catalog, String>>,
        cancel: &CancellationToken,
    ) -> HashMap<(String, String, String), Option<Checkpoint>> {
        let env_file = pipeline::sling_env_file(&self.cfg.env);
        let mut wanted: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for (s, t, st) in streams {
            let Some(key) = &st.update_key else { continue };
            let exists = |conn: &str, table: &TableRef| {
                catalogs
                    .get(conn)
                    .and_then(|c| c.as_ref().ok())
                    .is_some_and(|c| {
                        c.columns(table).is_some_and(|cols| {
                            cols.iter().any(|col| col.name.eq_ignore_ascii_case(key))
                        })
                    })
            };
            if exists(s, &st.source) && exists(t, &st.target) {
                wanted
                    .entry(s.clone())
                    .or_default()
                    .insert((st.source.pattern(), key.clone()));
                wanted
                    .entry(t.clone())
                    .or_default()
                    .insert((st.target.pattern(), key.clone()));
            }
        }
        let mut out = HashMap::new();
        for (conn, tables) in wanted {
            let Some(d) = connection_type(&conn, &self.cfg.env, env_file.as_deref())
                .as_deref()
                .and_then(Dialect::from_type)
            else {
                continue;
            };
            let tables: Vec<(String, String)> = tables.into_iter().collect();
            let queries: Vec<String> = tables
                .iter()
                .filter_map(|(t, k)| {
                    let t = TableRef::parse(t)?;
                    Some(format!(
                        "select max({}) as mx from {}",
                        d.quote(k),
                        d.table(&t)
                    ))
                })
                .collect();
            let exec = |c: String, q: Vec<String>| {
                crate::sync::engine::verify_run::conns_exec(
                    &self.cfg,
                    &self.redactor,
                    c,
                    q,
                    self.cfg.attempt_timeout.min(PROBE_TIMEOUT),
                    cancel,
                )
            };
            let results = run_queries(&exec, &conn, &queries).await;
            for ((table, key), r) in tables.into_iter().zip(results) {
                if let Ok(set) = r {
                    let max = set.first("mx").and_then(Checkpoint::from_json);
                    out.insert((conn.clone(), table, key), max);
                }
            }
        }
        out
    }

    /// Schema and state findings of one pipeline, from what `prepare` discovered.
    pub(super) fn schema_checks(&self, p: &Pipeline, noop: &NoopShared) -> Vec<Finding> {
        let Ok(rep) = &p.replication else {
            return Vec::new();
        };
        let r = rep.resolved(&self.cfg.env);
        let (s_conn, t_conn) = (
            r.source.clone().unwrap_or_default(),
            r.target.clone().unwrap_or_default(),
        );
        let (Some(s_cat), Some(t_cat)) = (noop.catalogs.get(&s_conn), noop.catalogs.get(&t_conn))
        else {
            return Vec::new();
        };
        let (s_cat, t_cat) = match (s_cat, t_cat) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) | (_, Err(e)) => {
                return vec![finding(
                    CheckKind::Schema,
                    CheckOutcome::Warning,
                    format!("not compared: {e}"),
                )]
            }
        };
        let sqlite = [&s_conn, &t_conn].iter().any(|c| {
            connection_type(
                c,
                &self.cfg.env,
                pipeline::sling_env_file(&self.cfg.env).as_deref(),
            )
            .is_some_and(|t| t == "sqlite")
        });
        let mut out = Vec::new();
        for st in stream_tables(&r) {
            let st = match st {
                Ok(st) => st,
                Err((stream, why)) => {
                    out.push(finding(
                        CheckKind::Schema,
                        CheckOutcome::Ok,
                        format!("stream `{stream}`: not compared: {why}"),
                    ));
                    continue;
                }
            };
            for f in compare(
                &st.source,
                s_cat.columns(&st.source),
                &st.target,
                t_cat.columns(&st.target),
                st.update_key.as_deref(),
                &st.primary_key,
                sqlite,
            ) {
                let outcome = match f.severity() {
                    Severity::Ok => CheckOutcome::Ok,
                    Severity::Warning => CheckOutcome::Warning,
                    Severity::Failure => CheckOutcome::Failed,
                };
                out.push(finding(
                    CheckKind::Schema,
                    outcome,
                    format!("stream `{}`: {f}", st.stream),
                ));
            }
            let Some(key) = &st.update_key else { continue };
            let get = |conn: &str, t: &TableRef| {
                noop.checkpoints
                    .get(&(conn.to_owned(), t.pattern(), key.clone()))
                    .cloned()
                    .flatten()
            };
            if let (Some(src), Some(tgt)) = (get(&s_conn, &st.source), get(&t_conn, &st.target)) {
                if tgt.compare(&src) == Some(std::cmp::Ordering::Greater) {
                    out.push(finding(
                        CheckKind::Checkpoint,
                        CheckOutcome::Warning,
                        format!(
                            "stream `{}`: checkpoint_ahead: target max({key}) {} is past the source's {}; new source rows below it will not be copied",
                            st.stream,
                            tgt.display(),
                            src.display()
                        ),
                    ));
                }
            }
        }
        out
    }
}
