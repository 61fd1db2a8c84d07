//! The conformance runner: plays every `conformance/cases/*.case` file
//! against a freshly started `quern`, once per protocol the file lists,
//! and checks each reply byte for byte (as decoded RESP). The case format
//! is documented in conformance/cases/README.md.
//!
//! `cargo test -p quern --test conformance [-- name ...]` runs every file,
//! or those whose name contains one of the words given. It prints one line
//! per file and protocol, then a summary, and exits 1 when a reply differs
//! from its case. A reply marked `@bug` is reported as a known failure and
//! does not fail the run.
//!
//! Runs share nothing: each has its own server, data directory and port,
//! so they run a few at a time (`QUERN_CONFORMANCE_JOBS`, default 4).

#[path = "runner/pattern.rs"]
mod pattern;
#[path = "runner/play.rs"]
mod play;
#[path = "runner/reply.rs"]
mod reply;
#[path = "runner/script.rs"]
mod script;
#[path = "runner/server.rs"]
mod server;
#[path = "runner/text.rs"]
mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use play::{label, play, Report};
use script::Script;

/// The binary under test, built by cargo for this test target.
const BIN: &str = env!("CARGO_BIN_EXE_quern");
/// Runs at once: most of a run is waiting on the server or a socket.
const DEFAULT_JOBS: usize = 4;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/cases")
}

/// The words given after `--`, minus the options libtest would take.
fn filters() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if matches!(arg.as_str(), "--test-threads" | "--skip" | "--format" | "--color") {
            args.next();
        } else if !arg.starts_with('-') {
            out.push(arg);
        }
    }
    out
}

fn main() -> ExitCode {
    let started = Instant::now();
    if let Err(e) = reply::self_check().and_then(|()| pattern::self_check()) {
        println!("FAIL the runner's own notation check: {e}");
        return ExitCode::FAILURE;
    }
    let dir = cases_dir();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "case"))
            .collect(),
        Err(e) => {
            println!("FAIL cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    paths.sort();
    let filters = filters();
    let mut failed = 0;
    let mut scripts = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                println!("FAIL {name}: cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        match script::parse(&name, &text) {
            Ok(script) => scripts.push(script),
            Err((line, e)) => {
                println!("FAIL {name}:{line}: {e}");
                failed += 1;
            }
        }
    }
    let runs: Vec<(&Script, u8)> = scripts
        .iter()
        .flat_map(|s| s.protos.iter().map(move |&p| (s, p)))
        .collect();
    let jobs = std::env::var("QUERN_CONFORMANCE_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(DEFAULT_JOBS)
        .max(1);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Report, Duration)>();
    let (mut checks, mut known, mut passed) = (0, 0, 0);
    thread::scope(|scope| {
        for _ in 0..jobs.min(runs.len()) {
            let tx = tx.clone();
            let (runs, next) = (&runs, &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(script, proto)) = runs.get(i) else {
                    break;
                };
                let start = Instant::now();
                let report = play(script, proto, Path::new(BIN));
                if tx.send((i, report, start.elapsed())).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (i, report, took) in rx {
            let (script, proto) = runs[i];
            checks += report.checks;
            known += report.known.len();
            print_report(script, proto, &report, took);
            if report.failure.is_some() {
                failed += 1;
            } else {
                passed += 1;
            }
        }
    });
    let cases: usize = scripts.iter().map(|s| s.expectations).sum();
    println!(
        "\nconformance: {} case files ({cases} `=>` lines), {} runs, {checks} replies checked: \
         {passed} runs passed, {failed} failed, {known} known failures ({:.1} s)",
        scripts.len(),
        runs.len(),
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(script: &Script, proto: u8, report: &Report, took: Duration) {
    let run = format!("[resp{proto}]");
    match &report.failure {
        Some((line, message)) => println!("FAIL {} {run} {message}", label(script, *line)),
        None => {
            let mut note = String::new();
            if !report.known.is_empty() {
                note = format!(", {} known failures", report.known.len());
            }
            if report.stopped {
                note += ", rest of the file skipped";
            }
            println!(
                "ok   {} {run} {} replies{note} ({:.2} s)",
                script.name,
                report.checks,
                took.as_secs_f64()
            );
        }
    }
    for (line, message) in &report.known {
        println!("     known failure {} {run} {message}", label(script, *line));
    }
    for line in &report.fixed {
        println!(
            "     {} {run} matches although marked @bug: remove the @bug if it is fixed",
            label(script, *line)
        );
    }
}
