//! Sling as the verification's tests drive it: `sling run -r` to make copies, `sling conns exec` for the queries,
//! with a clean environment holding only the given connections.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use super::sling_bin;
use sling_sync_wrapper::sync::resolve::resolve;
use sling_sync_wrapper::sync::verify::dialect::connection_type;
use sling_sync_wrapper::sync::verify::output::call_outcome;
use sling_sync_wrapper::sync::verify::{verify, CallOutcome, Plan, StreamHistory, VerifyReport};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub vars: BTreeMap<String, String>,
}

impl Env {
    pub fn new(vars: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            dir,
        }
    }

    pub fn sling(&self) -> Command {
        let mut c = Command::new(sling_bin());
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SLING_OUTPUT", "json")
            .env("SLING_LOGGING", "JSON")
            .envs(&self.vars)
            .stdin(Stdio::null());
        c
    }

    /// `sling conns discover CONN --pattern PATTERN --columns`, stdout (panics when Sling fails).
    pub fn discover(&self, conn: &str, pattern: &str) -> String {
        let out = self
            .sling()
            .args(["conns", "discover", conn, "--pattern", pattern, "--columns"])
            .output()
            .expect("sling conns discover");
        assert!(
            out.status.success(),
            "discover {conn} {pattern}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sling run -r FILE` from directory `cwd` (file streams use relative paths).
    pub fn run_file(&self, file: &std::path::Path, cwd: &std::path::Path) -> std::process::Output {
        self.sling()
            .arg("run")
            .arg("-r")
            .arg(file)
            .current_dir(cwd)
            .output()
            .expect("sling run")
    }

    /// `sling run -r` on a replication; panics with Sling's output when it fails.
    pub fn run(&self, yaml: &str) -> String {
        let f = self.dir.path().join("rep.yaml");
        std::fs::write(&f, yaml).expect("write");
        let out = self
            .sling()
            .arg("run")
            .arg("-r")
            .arg(&f)
            .output()
            .expect("sling run");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "sling run failed:\n{text}");
        text
    }

    pub fn exec(
        &self,
        conn: String,
        queries: Vec<String>,
    ) -> std::future::Ready<Result<CallOutcome, String>> {
        let n = queries.len();
        let r = self
            .sling()
            .args(["conns", "exec", &conn])
            .args(&queries)
            .output()
            .map_err(|e| e.to_string())
            .map(|o| {
                call_outcome(
                    &String::from_utf8_lossy(&o.stdout),
                    &String::from_utf8_lossy(&o.stderr),
                    o.status.success(),
                    n,
                )
            });
        std::future::ready(r)
    }

    pub async fn verify(
        &self,
        yaml: &str,
        history: &BTreeMap<String, StreamHistory>,
    ) -> VerifyReport {
        let rep = resolve(&serde_yaml::from_str(yaml).expect("yaml"), &self.vars);
        let ty = |c: &Option<String>| connection_type(c.as_deref().unwrap_or(""), &self.vars, None);
        let plan = Plan::new(
            &rep,
            ty(&rep.source).as_deref(),
            ty(&rep.target).as_deref(),
            &BTreeMap::new(),
        );
        verify(&plan, |c, q| self.exec(c, q), history).await
    }
}
