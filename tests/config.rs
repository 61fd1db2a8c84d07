//! Where the settings come from, end to end: the real binary given each
//! setting by a flag, a `QUERN_*` variable, a TOML file or not at all,
//! each read back with CONFIG GET over a real client; which source wins;
//! that a bad value anywhere stops start-up with one line naming it; and
//! what the log looks like on stderr.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// How long a server with a bad setting may take to give up.
const FAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// The three ways to give a setting.
#[derive(Clone, Copy, Debug)]
enum Way {
    Flag,
    Env,
    File,
}

/// A fresh directory for a test's data and config file.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("quern-config-test-")
        .tempdir()
        .expect("temp dir")
}

/// The variable that carries setting `name`.
fn env_var(name: &str) -> String {
    format!("QUERN_{}", name.to_uppercase().replace('-', "_"))
}

/// `settings` as a TOML file: numbers bare, everything else quoted.
fn toml_text(settings: &[(&str, &str)]) -> String {
    settings
        .iter()
        .map(|(name, value)| match value.parse::<i64>() {
            Ok(n) => format!("{name} = {n}\n"),
            Err(_) => format!("{name} = {value:?}\n"),
        })
        .collect()
}

/// Writes `text` to `quern.toml` in `dir` and returns its path.
fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("quern.toml");
    std::fs::write(&path, text).expect("write config file");
    path
}

/// The binary with `settings` given the one way; the config file, if any,
/// is written into `scratch`.
fn configured(way: Way, settings: &[(&str, &str)], scratch: &Path) -> Command {
    let mut command = Server::bare_command();
    match way {
        Way::Flag => {
            for (name, value) in settings {
                command.arg(format!("--{name}")).arg(value);
            }
        }
        Way::Env => {
            for (name, value) in settings {
                command.env(env_var(name), value);
            }
        }
        Way::File => {
            command
                .arg("--config")
                .arg(write_config(scratch, &toml_text(settings)));
        }
    }
    command
}

/// `CONFIG GET *` as name → value.
fn config_get(con: &mut redis::Connection) -> BTreeMap<String, String> {
    let reply: redis::Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(con)
        .expect("CONFIG GET *");
    fields(reply).into_iter().map(|(k, v)| (k, text(&v))).collect()
}

/// Runs a command that must fail to start; returns how it exited and
/// what it printed on stderr.
fn fails_to_start(mut command: Command) -> (ExitStatus, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn quern");
    let deadline = Instant::now() + FAIL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for quern") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("quern was still running after {FAIL_TIMEOUT:?}: it accepted a bad setting");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status, stderr)
}

/// Waits until the server's stderr contains `text`: it is copied by a
/// thread, so it may lag behind the process.
fn wait_log(server: &Server, text: &str) -> String {
    wait_for(&format!("{text:?} on stderr"), Duration::from_secs(20), || {
        let log = server.log();
        log.contains(text).then_some(log)
    })
}

/// Every setting away from its default, so that a value read back proves
/// it was read. The data dir and port are added by each test.
const NON_DEFAULT: &[(&str, &str)] = &[
    ("bind", "127.0.0.2"),
    ("fsync", "everysec"),
    ("requirepass", "open sesame"),
    ("maxclients", "77"),
    ("max-payload", "4096"),
    ("max-batch", "50"),
    ("shards", "3"),
    ("log-format", "json"),
    ("log-level", "warn"),
    ("http", "off"),
    ("metrics-max-queues", "5"),
];

fn every_setting_is_read(way: Way) {
    let scratch = scratch();
    let data = scratch.path().join("data");
    let data_text = data.to_str().expect("UTF-8 temp path");
    let mut settings = NON_DEFAULT.to_vec();
    settings.extend([("port", "0"), ("dir", data_text)]);
    let mut server = Server::spawn(configured(way, &settings, scratch.path()), &data);

    let mut con = connect(&format!("redis://:open%20sesame@127.0.0.2:{}/", server.port));
    let got = config_get(&mut con);
    for (name, value) in NON_DEFAULT {
        assert_eq!(got[*name], *value, "{name} given by {way:?}");
    }
    assert_eq!(got["dir"], data_text, "dir given by {way:?}");
    assert_eq!(got["port"], server.port.to_string(), "the port picked for port 0");
    assert!(data.is_dir(), "the store was created in the dir given by {way:?}");

    // log-level warn: the info events at start are filtered out.
    server.stop();
    assert!(!server.log().contains("loaded"), "{way:?}: {}", server.log());
}

#[test]
fn every_setting_can_be_given_by_a_flag() {
    every_setting_is_read(Way::Flag);
}

#[test]
fn every_setting_can_be_given_by_a_variable() {
    every_setting_is_read(Way::Env);
}

#[test]
fn every_setting_can_be_given_by_the_config_file() {
    every_setting_is_read(Way::File);
}

#[test]
fn settings_not_given_have_their_defaults() {
    let server = Server::start();
    let got = config_get(&mut server.client());
    let defaults = [
        ("bind", "127.0.0.1"),
        ("fsync", "always"),
        ("requirepass", ""),
        ("maxclients", "10000"),
        ("max-payload", "16777216"),
        ("max-batch", "10000"),
        ("shards", "16"),
        ("log-format", "text"),
        ("log-level", "info"),
        ("metrics-max-queues", "100"),
    ];
    for (name, value) in defaults {
        assert_eq!(got[name], value, "default of {name}");
    }
    // Text lines, not JSON, at info.
    let log = wait_log(&server, "loaded");
    let loaded = log.lines().find(|l| l.contains("loaded")).expect("loaded line");
    assert!(loaded.contains(" INFO "), "{loaded}");
    assert!(loaded.contains("jobs=0"), "{loaded}");
    assert!(
        serde_json::from_str::<serde_json::Value>(loaded).is_err(),
        "{loaded}"
    );
}

#[test]
fn a_flag_beats_a_variable_which_beats_the_file() {
    let scratch = scratch();
    let file = write_config(
        scratch.path(),
        "maxclients = 100\nmax-payload = 1000\nmax-batch = 10\nfsync = \"no\"\n",
    );
    let mut command = Server::bare_command();
    command
        .args(["--port", "0", "--http", "off", "--dir"])
        .arg(scratch.path().join("data"))
        .args(["--maxclients", "300"])
        .env("QUERN_CONFIG", &file)
        .env("QUERN_MAXCLIENTS", "200")
        .env("QUERN_MAX_PAYLOAD", "2000");
    let server = Server::spawn(command, &scratch.path().join("data"));
    let got = config_get(&mut server.client());
    assert_eq!(
        got["maxclients"], "300",
        "the flag beats the variable and the file"
    );
    assert_eq!(got["max-payload"], "2000", "the variable beats the file");
    assert_eq!(got["max-batch"], "10", "the file beats the default");
    assert_eq!(got["fsync"], "no", "the file beats the default");
    assert_eq!(got["shards"], "16", "the default where nothing is given");
}

/// Starts the binary with `flags` and `vars` (and a data dir in
/// `scratch`), and asserts that it exits non-zero with one line on stderr
/// that contains each of `expected`.
fn assert_refused(scratch: &Path, flags: &[&str], vars: &[(&str, &str)], expected: &[&str]) {
    let data = scratch.join("data");
    let mut command = Server::bare_command();
    command
        .args(["--port", "0", "--dir"])
        .arg(&data)
        .args(flags)
        .envs(vars.iter().copied());
    let (status, stderr) = fails_to_start(command);
    let case = format!("flags {flags:?}, variables {vars:?}");
    assert!(!status.success(), "{case}: exited with {status}");
    assert_eq!(stderr.lines().count(), 1, "{case}: one line, got {stderr:?}");
    assert!(stderr.starts_with("quern: "), "{case}: {stderr:?}");
    for part in expected {
        assert!(stderr.contains(part), "{case}: {part:?} not in {stderr:?}");
    }
    assert!(!data.exists(), "{case}: no store is opened with a bad setting");
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_it() {
    let scratch = scratch();
    let dir = scratch.path();
    assert_refused(
        dir,
        &["--max-payload", "abc"],
        &[],
        &["max-payload = \"abc\"", "(from --max-payload)", "whole number"],
    );
    assert_refused(
        dir,
        &[],
        &[("QUERN_MAX_PAYLOAD", "abc")],
        &["max-payload = \"abc\"", "(from QUERN_MAX_PAYLOAD)"],
    );
    assert_refused(
        dir,
        &[],
        &[("QUERN_SHARDS", "0")],
        &["(from QUERN_SHARDS)", "shards must be between 1 and 4096"],
    );
    assert_refused(
        dir,
        &["--max-payload", "536870913"],
        &[],
        &["max-payload must be between 1 and 536870912"],
    );
    assert_refused(
        dir,
        &["--fsync", "sometimes"],
        &[],
        &[
            "fsync = \"sometimes\"",
            "(from --fsync)",
            "always, everysec or no",
        ],
    );
    assert_refused(
        dir,
        &[],
        &[("QUERN_LOG_LEVEL", "verbose")],
        &["log-level = \"verbose\"", "(from QUERN_LOG_LEVEL)"],
    );
    assert_refused(
        dir,
        &["--log-format", "xml"],
        &[],
        &["log-format = \"xml\"", "text or json"],
    );
}

#[test]
fn a_bad_config_file_stops_start_up_with_one_line_naming_it() {
    let scratch = scratch();
    let dir = scratch.path();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write config file");
        path.to_str().expect("UTF-8 temp path").to_owned()
    };

    let bad_fsync = file("fsync.toml", "fsync = \"sometimes\"\n");
    let from = format!("(from {bad_fsync})");
    assert_refused(
        dir,
        &["--config", &bad_fsync],
        &[],
        &["fsync = \"sometimes\"", &from],
    );

    let unknown_key = file("unknown.toml", "shards = 2\nmax_payload = 1024\n");
    assert_refused(
        dir,
        &[],
        &[("QUERN_CONFIG", &unknown_key)],
        &["unknown setting \"max_payload\"", &unknown_key],
    );

    let wrong_type = file("type.toml", "max-payload = \"1024\"\n");
    assert_refused(
        dir,
        &["--config", &wrong_type],
        &[],
        &["max-payload", "expected an integer, not string"],
    );

    let not_toml = file("broken.toml", "shards = [\n");
    assert_refused(
        dir,
        &["--config", &not_toml],
        &[],
        &["config = ", &not_toml, "not valid TOML"],
    );

    let missing = dir.join("missing.toml");
    let missing = missing.to_str().expect("UTF-8 temp path");
    let named = format!("config = {missing:?}");
    assert_refused(
        dir,
        &["--config", missing],
        &[],
        &[&named, "(from --config)", "cannot read it"],
    );

    // A bad line in the file stops start-up even where a flag overrides it.
    let hidden = file("hidden.toml", "max-batch = 0\n");
    assert_refused(
        dir,
        &["--config", &hidden, "--max-batch", "5"],
        &[],
        &["max-batch = \"0\"", "max-batch must be between"],
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_fields() {
    let scratch = scratch();
    let data = scratch.path().join("data");
    let start = || {
        let mut command = Server::bare_command();
        command
            .args([
                "--port",
                "0",
                "--http",
                "off",
                "--requirepass",
                "hunter2",
                "--dir",
            ])
            .arg(&data)
            .env("QUERN_LOG_FORMAT", "json");
        Server::spawn(command, &data)
    };
    let mut server = start();
    let mut con = connect(&format!("redis://:hunter2@127.0.0.1:{}/", server.port));
    push(&mut con, "q", b"one", &[]);
    push(&mut con, "q", b"two", &[]);
    server.stop();
    // The second start has two jobs to load.
    let mut server = start();
    server.stop();
    let log = wait_log(&server, "every change is committed");

    let events: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let event = |message: &str| {
        events
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} event in {log}"))
    };
    let loaded = event("loaded");
    assert_eq!(loaded["level"], "INFO");
    assert_eq!(loaded["target"], "quern");
    assert_eq!(loaded["jobs"], 2, "{loaded}");
    assert_eq!(loaded["dir"], data.to_str().expect("UTF-8 temp path"));
    assert_eq!(loaded["fsync"], "always");
    assert!(loaded["load_ms"].is_u64(), "{loaded}");
    assert!(
        loaded["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{loaded}"
    );

    let starting = event("starting");
    assert_eq!(starting["requirepass"], "set");
    assert_eq!(starting["log_format"], "json");
    assert_eq!(starting["max_payload"], 16 << 20);
    assert!(!log.contains("hunter2"), "the password is never logged");

    let ready = event("ready");
    assert_eq!(ready["addr"], format!("127.0.0.1:{}", server.port));
    assert_eq!(event("stopping: finishing in-flight work")["signal"], "SIGTERM");
}
