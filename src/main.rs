//! Entry point: parse flags, validate settings, start telemetry, run batch or console, exit with the outcome.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use clap::Parser;
use sling_sync_wrapper::app::batch::{self, exit};
use sling_sync_wrapper::app::cli::{Cli, LogFormat};
use sling_sync_wrapper::app::settings::{self, Settings};
use sling_sync_wrapper::app::{console, signals::Shutdown};
use sling_sync_wrapper::sync::pipeline::{self, Pipeline};
use sling_sync_wrapper::sync::redact::Redactor;
use sling_sync_wrapper::sync::state::StateStore;
use sling_sync_wrapper::sync::{ChildEnv, Engine, EngineConfig, JobSpec};
use sling_sync_wrapper::telemetry::escape_control;
use sling_sync_wrapper::telemetry::{OtelConfig, Output, Telemetry};

fn main() {
    let cli = Cli::parse();
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let code = match runtime {
        Ok(rt) => rt.block_on(start(cli, env)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::FAILED
        }
    };
    std::process::exit(code);
}

/// Signal handling comes first, so that SIGTERM during discovery (which reads every pipeline file) is an orderly
/// exit with 128 + signal, not the default action's instant death.
async fn start(cli: Cli, env: BTreeMap<String, String>) -> i32 {
    let shutdown = match Shutdown::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILED;
        }
    };
    match prepare(&cli, &env) {
        Ok(_) if shutdown.token.is_cancelled() => shutdown.exit_code().unwrap_or(exit::FAILED),
        Ok((settings, otel, pipelines)) => run(settings, otel, pipelines, env, shutdown).await,
        Err(message) => {
            // Messages can carry file names and values from outside; one error is one line on the terminal.
            eprintln!("error: {}", escape_control(&message));
            exit::USAGE
        }
    }
}

/// Everything that can fail before a pipeline runs; an error here is exit code 2.
fn prepare(
    cli: &Cli,
    env: &BTreeMap<String, String>,
) -> Result<(Settings, OtelConfig, Vec<Pipeline>), String> {
    let mut settings = Settings::from_cli(cli, env).map_err(|e| e.to_string())?;
    let otel = OtelConfig::from_env(env)?;
    if !settings.batch {
        console::check_terminal(env)?;
        settings.state_path =
            settings::console_state_path(&settings, settings::user_state_dir(), |p| {
                StateStore::new(p).check_writable().is_ok()
            });
    }
    let has_terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if !settings.batch && !has_terminal {
        return Err(
            "the console needs a terminal on stdin and stdout; run with --batch for headless use"
                .into(),
        );
    }
    let all = pipeline::discover(&settings.pipelines).map_err(|e| e.to_string())?;
    let selected = pipeline::select(all, &settings.only).map_err(|e| e.to_string())?;
    // Checked once here, before any pipeline runs: a wrong path is a configuration error, not N failed runs.
    settings::check_sling_bin(&settings.sling_bin, env.get("PATH").map(String::as_str))
        .map_err(|e| e.to_string())?;
    let state = StateStore::new(settings.state_path.clone());
    state
        .check_writable()
        .and_then(|()| state.migrate_legacy_layout())
        .map_err(|e| format!("SLING_STATE_PATH (--state-path): {e}"))?;
    Ok((settings, otel, selected))
}

async fn run(
    settings: Settings,
    otel: OtelConfig,
    pipelines: Vec<Pipeline>,
    env: BTreeMap<String, String>,
    shutdown: Shutdown,
) -> i32 {
    let output = if settings.batch {
        let json = match settings.log_format {
            LogFormat::Json => true,
            LogFormat::Text => false,
            LogFormat::Auto => !std::io::stdout().is_terminal(),
        };
        Output::Stdout { json }
    } else {
        Output::Console
    };
    let mut telemetry = match Telemetry::init(otel, &settings.mission_cluster_id, output) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::USAGE;
        }
    };
    let engine = Engine::new(
        EngineConfig {
            mission_cluster_id: settings.mission_cluster_id.clone(),
            sling_bin: settings.sling_bin.clone(),
            state: StateStore::new(settings.state_path.clone()),
            retry: settings.retry,
            attempt_timeout: settings.attempt_timeout,
            cancel_grace: settings.cancel_grace,
            concurrency: settings.concurrency,
            job_deadline: settings.job_deadline,
            child_env: ChildEnv::for_sling(&env),
            verify: settings.verify,
            verify_timeout: settings.verify_timeout,
            env,
        },
        Redactor::from_env(),
    );
    let code = if settings.batch {
        let job = JobSpec {
            sync_job_id: settings.sync_job_id.clone(),
            mode: settings.mode,
            pipelines,
        };
        let report = batch::run(&engine, job, shutdown.token.clone()).await;
        batch::exit_code(&report, shutdown.exit_code())
    } else {
        let ctx = console::ConsoleContext {
            engine,
            pipelines,
            settings: settings.clone(),
            health: telemetry.health.clone(),
            shutdown: shutdown.clone(),
        };
        match console::run(ctx).await {
            Ok(code) => code,
            Err(e) => {
                to_stderr(&format!("error: {e:#}"));
                exit::FAILED
            }
        }
    };
    let health = telemetry.health.clone();
    let enabled = telemetry.enabled();
    let flushed = telemetry.shutdown(settings.telemetry_flush_timeout).await;
    let snap = health.snapshot();
    if enabled && (!flushed || snap.exports_failed > 0) {
        let detail = snap
            .last_error
            .unwrap_or_else(|| "flush did not finish in time".into());
        let line = format!(
            "telemetry could not be delivered ({} export(s) failed{}): {}; the sync result is unaffected",
            snap.exports_failed,
            if flushed { "" } else { ", flush timed out" },
            detail
        );
        // The OTel layers are shut down by now; only the local output remains.
        tracing::warn!(target: sling_sync_wrapper::sync::spans::SYNC, exports_failed = snap.exports_failed, "{line}");
        if !settings.batch {
            to_stderr(&format!("warning: {line}"));
        }
    }
    code
}

/// After the console, stderr may be a terminal that hung up: `eprintln!` would panic there, and turn a clean exit
/// (129) into a panic.
fn to_stderr(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
