//! Where the server's settings come from.
//!
//! Each setting may be given by a flag (`--max-payload`), an environment
//! variable (`QUERN_MAX_PAYLOAD`) or a key of the TOML file named by
//! `--config` or `QUERN_CONFIG` (`max-payload = 1048576`). A flag beats a
//! variable, a variable beats the file, and the default applies when none
//! gives it. One table, [`SETTINGS`], names every setting once for all
//! three, and for `--help`.
//!
//! Every value given is parsed and checked, even one that a higher layer
//! overrides: a mistake in the file should not lie in wait for the day the
//! flag that hides it is dropped. The error names the setting, the value
//! and where it came from. The numeric bounds are the server's own
//! ([`quern_server::Bounds`]), the ones CONFIG SET checks too.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgMatches, Command};
use quern_server::{
    parse_http, show_http, Bounds, Config, Fsync, LogFormat, MAXCLIENTS_BOUNDS, MAX_BATCH_BOUNDS,
    MAX_PAYLOAD_BOUNDS, METRICS_MAX_QUEUES_BOUNDS, SHARDS_BOUNDS,
};

use crate::logging;

/// The flag and variable that name the config file.
const CONFIG_FLAG: &str = "config";
const CONFIG_ENV: &str = "QUERN_CONFIG";

/// What a setting's value must be in the TOML file. Flags and variables
/// are text either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A TOML integer: `shards = 4`.
    Integer,
    /// A TOML string: `fsync = "everysec"`.
    Text,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Integer => "an integer",
            Kind::Text => "a string",
        }
    }
}

/// One setting, as every source names it.
#[derive(Debug)]
struct Setting {
    /// The flag's long name, the TOML key, and the name CONFIG GET shows.
    name: &'static str,
    /// The environment variable.
    env: &'static str,
    /// The flag's one-letter form, if it has one.
    short: Option<char>,
    /// What `--help` calls the value.
    value_name: &'static str,
    /// What `--help` says it does.
    help: &'static str,
    /// What its TOML value must be.
    kind: Kind,
    /// Never repeated in a message (the password).
    secret: bool,
    /// Parses a value and stores it; the error says why it is refused.
    apply: fn(&mut Config, &str) -> Result<(), String>,
    /// The value as `--help` shows the default.
    show: fn(&Config) -> String,
}

/// Every setting, in the order `--help` lists them.
const SETTINGS: &[Setting] = &[
    Setting {
        name: "bind",
        env: "QUERN_BIND",
        short: None,
        value_name: "ADDR",
        help: "Address to listen on",
        kind: Kind::Text,
        secret: false,
        apply: |c, v| {
            c.bind = v
                .parse::<IpAddr>()
                .map_err(|_| "expected an IP address, such as 127.0.0.1 or ::".to_owned())?;
            Ok(())
        },
        show: |c| c.bind.to_string(),
    },
    Setting {
        name: "port",
        env: "QUERN_PORT",
        short: Some('p'),
        value_name: "PORT",
        help: "RESP port (0 picks a free one)",
        kind: Kind::Integer,
        secret: false,
        apply: |c, v| {
            c.port = v
                .parse()
                .map_err(|_| "expected a port number from 0 to 65535".to_owned())?;
            Ok(())
        },
        show: |c| c.port.to_string(),
    },
    Setting {
        name: "dir",
        env: "QUERN_DIR",
        short: None,
        value_name: "PATH",
        help: "Data directory, created if missing",
        kind: Kind::Text,
        secret: false,
        apply: |c, v| {
            if v.is_empty() {
                return Err("the data directory must not be empty".to_owned());
            }
            c.dir = PathBuf::from(v);
            Ok(())
        },
        show: |c| c.dir.display().to_string(),
    },
    Setting {
        name: "fsync",
        env: "QUERN_FSYNC",
        short: None,
        value_name: "POLICY",
        help: "When a commit reaches the disk: always (before the reply), everysec, or no (left to the OS)",
        kind: Kind::Text,
        secret: false,
        apply: |c, v| {
            c.fsync = v.parse::<Fsync>()?;
            Ok(())
        },
        show: |c| c.fsync.name().to_owned(),
    },
    Setting {
        name: "requirepass",
        env: "QUERN_REQUIREPASS",
        short: None,
        value_name: "PASSWORD",
        help: "Password clients must give (AUTH or HELLO … AUTH); empty means none",
        kind: Kind::Text,
        secret: true,
        apply: |c, v| {
            c.requirepass = (!v.is_empty()).then(|| v.to_owned());
            Ok(())
        },
        show: |c| c.requirepass.clone().unwrap_or_default(),
    },
    Setting {
        name: "maxclients",
        env: "QUERN_MAXCLIENTS",
        short: None,
        value_name: "N",
        help: "Most client connections at once",
        kind: Kind::Integer,
        secret: false,
        apply: |c, v| {
            c.maxclients = bounded(v, &MAXCLIENTS_BOUNDS)?;
            Ok(())
        },
        show: |c| c.maxclients.to_string(),
    },
    Setting {
        name: "max-payload",
        env: "QUERN_MAX_PAYLOAD",
        short: None,
        value_name: "BYTES",
        help: "Largest payload, in bytes",
        kind: Kind::Integer,
        secret: false,
        apply: |c, v| {
            c.max_payload = bounded(v, &MAX_PAYLOAD_BOUNDS)?;
            Ok(())
        },
        show: |c| c.max_payload.to_string(),
    },
    Setting {
        name: "max-batch",
        env: "QUERN_MAX_BATCH",
        short: None,
        value_name: "N",
        help: "Most jobs in one QMPUSH, or pulled by one COUNT",
        kind: Kind::Integer,
        secret: false,
        apply: |c, v| {
            c.max_batch = bounded(v, &MAX_BATCH_BOUNDS)?;
            Ok(())
        },
        show: |c| c.max_batch.to_string(),
    },
    Setting {
        name: "shards",
        env: "QUERN_SHARDS",
        short: None,
        value_name: "N",
        help: "Engine shards (queues are spread over them by name)",
        kind: Kind::Integer,
        secret: false,
        apply: |c, v| {
            c.shards = bounded(v, &SHARDS_BOUNDS)?;
            Ok(())
        },
        show: |c| c.shards.to_string(),
    },
    Setting {
        name: "log-format",
        env: "QUERN_LOG_FORMAT",
        short: None,
        value_name: "FORMAT",
        help: "How log lines on stderr look: text, or json (one object per line)",
        kind: Kind::Text,
        secret: false,
        apply: |c, v| {
            c.log_format = v.parse::<LogFormat>()?;
            Ok(())
        },
        show: |c| c.log_format.name().to_owned(),
    },
    Setting {
        name: "log-level",
        env: "QUERN_LOG_LEVEL",
        short: None,
        value_name: "FILTER",
        help: "Which events are logged: a level (error, warn, info, debug, trace, off), \
               optionally with per-crate ones: info,quern_store=debug",
        kind: Kind::Text,
        secret: false,
        apply: |c, v| {
            c.log_level = logging::check_filter(v)?;
            Ok(())
        },
        show: |c| c.log_level.clone(),
    },
    Setting {
        name: "http",
        env: "QUERN_HTTP",
        short: None,
        value_name: "ADDR:PORT",
        help: "HTTP listener for /metrics, /health and /ready (port 0 picks a free one), or off",
        kind: Kind::Text,
        secret: false,
        apply: |c, v| {
            c.http = parse_http(v)?;
            Ok(())
        },
        show: |c| show_http(c.http),
    },
    Setting {
        name: "metrics-max-queues",
        env: "QUERN_METRICS_MAX_QUEUES",
        short: None,
        value_name: "N",
        help: "Queues with a metrics label of their own; the others are summed under queue=\"_other\"",
        kind: Kind::Integer,
        secret: false,
        apply: |c, v| {
            c.metrics_max_queues = bounded(v, &METRICS_MAX_QUEUES_BOUNDS)?;
            Ok(())
        },
        show: |c| c.metrics_max_queues.to_string(),
    },
];

/// A whole number within `bounds`.
fn bounded(text: &str, bounds: &Bounds) -> Result<usize, String> {
    let n = text
        .parse::<usize>()
        .map_err(|_| "expected a whole number".to_owned())?;
    bounds.check(n)
}

fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Where a value came from, as an error message names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A flag, by its long name.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// The config file.
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(name) => write!(f, "--{name}"),
            Source::Env(var) => f.write_str(var),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why the settings cannot be used. Each is shown as one line.
#[derive(Debug, PartialEq, Eq)]
pub enum SettingError {
    /// A value that does not parse, is out of bounds or has the wrong
    /// type; also a config file that cannot be read or is not TOML.
    Invalid {
        /// The setting (`config` for the file itself).
        name: &'static str,
        /// The value as given, quoted; hidden for the password.
        value: String,
        /// Where it came from.
        source: Source,
        /// Why it is refused.
        why: String,
    },
    /// A key in the config file that names no setting.
    Unknown {
        /// The key.
        key: String,
        /// The file.
        file: PathBuf,
    },
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Invalid {
                name,
                value,
                source,
                why,
            } => write!(f, "invalid setting {name} = {value} (from {source}): {why}"),
            SettingError::Unknown { key, file } => {
                let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
                write!(
                    f,
                    "unknown setting {key:?} (from {}); the settings are {}",
                    file.display(),
                    known.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for SettingError {}

/// One value for one setting, before it is parsed.
#[derive(Debug)]
struct Given {
    setting: &'static Setting,
    text: String,
    source: Source,
}

impl Given {
    fn apply(&self, config: &mut Config) -> Result<(), SettingError> {
        (self.setting.apply)(config, &self.text).map_err(|why| self.refused(why))
    }

    fn refused(&self, why: String) -> SettingError {
        SettingError::Invalid {
            name: self.setting.name,
            value: shown(self.setting, &format!("{:?}", self.text)),
            source: self.source.clone(),
            why,
        }
    }
}

/// `value`, or a stand-in for a secret one.
fn shown(setting: &Setting, value: &str) -> String {
    if setting.secret {
        "(hidden)".to_owned()
    } else {
        value.to_owned()
    }
}

/// The settings the server starts with.
#[derive(Debug)]
pub struct Loaded {
    /// The merged settings.
    pub config: Config,
    /// The config file they were read from, if any.
    pub file: Option<PathBuf>,
}

impl Loaded {
    /// Logs the effective settings, the password only as set or not.
    pub fn log(&self) {
        let c = &self.config;
        tracing::info!(
            version = %env!("CARGO_PKG_VERSION"),
            config_file = self.file.as_ref().map(|f| tracing::field::display(f.display())),
            bind = %c.bind,
            port = c.port,
            dir = %c.dir.display(),
            fsync = %c.fsync,
            requirepass = %if c.requirepass.is_some() { "set" } else { "none" },
            maxclients = c.maxclients,
            max_payload = c.max_payload,
            max_batch = c.max_batch,
            shards = c.shards,
            log_format = %c.log_format,
            log_level = %c.log_level,
            http = %show_http(c.http),
            metrics_max_queues = c.metrics_max_queues,
            "starting"
        );
    }
}

/// The command line: one flag per setting, and `--config`.
pub fn command() -> Command {
    let defaults = Config::default();
    let config = Arg::new(CONFIG_FLAG)
        .long(CONFIG_FLAG)
        .value_name("PATH")
        .value_parser(clap::value_parser!(PathBuf))
        .help(format!(
            "TOML file of settings, keyed by the flags' names [env: {CONFIG_ENV}]"
        ));
    Command::new("quern")
        .version(env!("CARGO_PKG_VERSION"))
        .about("A durable job-queue server that speaks the Redis protocol.")
        .after_help(
            "Each setting comes from its flag, else its QUERN_* variable, else the --config file, \
             else its default.",
        )
        .arg(config)
        .args(SETTINGS.iter().map(|s| flag(s, &defaults)))
}

fn flag(setting: &Setting, defaults: &Config) -> Arg {
    let default = (setting.show)(defaults);
    let default = if default.is_empty() {
        String::new()
    } else {
        format!(" [default: {default}]")
    };
    let arg = Arg::new(setting.name)
        .long(setting.name)
        .value_name(setting.value_name)
        .help(format!("{} [env: {}]{default}", setting.help, setting.env));
    match setting.short {
        Some(c) => arg.short(c),
        None => arg,
    }
}

/// Reads the settings from the command line, the process's environment
/// and the config file. `--help`, `--version` and a malformed command
/// line end the process here, as clap does.
pub fn load() -> Result<Loaded, SettingError> {
    let matches = command().get_matches();
    load_from(&matches, |name| std::env::var_os(name))
}

/// Merges the flags in `matches`, the variables `var` returns and the
/// config file they name over the defaults.
fn load_from(matches: &ArgMatches, var: impl Fn(&str) -> Option<OsString>) -> Result<Loaded, SettingError> {
    let flags = flag_values(matches);
    let env = env_values(&var)?;
    let file = config_file(matches, &var);
    let from_file = match &file {
        Some((path, named_by)) => file_values(path, named_by)?,
        None => Vec::new(),
    };
    let mut config = Config::default();
    // Lowest precedence first, so each layer overwrites the one below.
    for given in from_file.iter().chain(&env).chain(&flags) {
        given.apply(&mut config)?;
    }
    Ok(Loaded {
        config,
        file: file.map(|(path, _)| path),
    })
}

fn flag_values(matches: &ArgMatches) -> Vec<Given> {
    SETTINGS
        .iter()
        .filter_map(|setting| {
            let text = matches.get_one::<String>(setting.name)?;
            Some(Given {
                setting,
                text: text.clone(),
                source: Source::Flag(setting.name),
            })
        })
        .collect()
}

/// The variables that are set. An empty variable counts as unset, as an
/// empty `QUERN_X=` line in a compose file usually means.
fn env_values(var: &impl Fn(&str) -> Option<OsString>) -> Result<Vec<Given>, SettingError> {
    let mut values = Vec::new();
    for setting in SETTINGS {
        let Some(raw) = var(setting.env).filter(|v| !v.is_empty()) else {
            continue;
        };
        let source = Source::Env(setting.env);
        let text = raw.into_string().map_err(|raw| SettingError::Invalid {
            name: setting.name,
            value: shown(setting, &format!("{raw:?}")),
            source: source.clone(),
            why: "not valid UTF-8".to_owned(),
        })?;
        values.push(Given {
            setting,
            text,
            source,
        });
    }
    Ok(values)
}

/// The config file's path and what named it: the flag, else the variable.
fn config_file(matches: &ArgMatches, var: &impl Fn(&str) -> Option<OsString>) -> Option<(PathBuf, Source)> {
    if let Some(path) = matches.get_one::<PathBuf>(CONFIG_FLAG) {
        return Some((path.clone(), Source::Flag(CONFIG_FLAG)));
    }
    var(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(|v| (PathBuf::from(v), Source::Env(CONFIG_ENV)))
}

/// The values in the TOML file at `path`, which `named_by` pointed to.
fn file_values(path: &Path, named_by: &Source) -> Result<Vec<Given>, SettingError> {
    let bad_file = |why: String| SettingError::Invalid {
        name: CONFIG_FLAG,
        value: format!("{:?}", path.display().to_string()),
        source: named_by.clone(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad_file(format!("cannot read it: {e}")))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| bad_file(format!("not valid TOML: {}", toml_error(&e, &text))))?;
    let source = Source::File(path.to_owned());
    table
        .into_iter()
        .map(|(key, value)| {
            let Some(setting) = find(&key) else {
                return Err(SettingError::Unknown {
                    key,
                    file: path.to_owned(),
                });
            };
            let text = match (setting.kind, value) {
                (Kind::Integer, toml::Value::Integer(n)) => n.to_string(),
                (Kind::Text, toml::Value::String(s)) => s,
                (kind, other) => {
                    return Err(SettingError::Invalid {
                        name: setting.name,
                        value: shown(setting, &toml_value(&other)),
                        source: source.clone(),
                        why: format!("expected {}, not {}", kind.describe(), other.type_str()),
                    })
                }
            };
            Ok(Given {
                setting,
                text,
                source: source.clone(),
            })
        })
        .collect()
}

/// A TOML value as the file spelled it, near enough for a message.
fn toml_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("({})", other.type_str()),
    }
}

/// A TOML parse error on one line, with where it is: toml's own message
/// spans several lines with a drawing of the spot.
fn toml_error(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("{message} at line {line}, column {column}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;

    /// Loads from `flags` and the variables in `env`.
    fn load_with(flags: &[&str], env: &[(&str, &str)]) -> Result<Loaded, SettingError> {
        let matches = command()
            .try_get_matches_from(std::iter::once("quern").chain(flags.iter().copied()))
            .expect("flags parse");
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        load_from(&matches, |name| env.get(name).cloned())
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        file
    }

    fn path_of(file: &tempfile::NamedTempFile) -> &str {
        file.path().to_str().expect("UTF-8 temp path")
    }

    #[test]
    fn nothing_given_is_the_defaults() {
        let loaded = load_with(&[], &[]).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.file, None);
    }

    #[test]
    fn every_setting_can_come_from_each_source() {
        let values = [
            ("bind", "0.0.0.0", "\"0.0.0.0\""),
            ("port", "7001", "7001"),
            ("dir", "/srv/q", "\"/srv/q\""),
            ("fsync", "everysec", "\"everysec\""),
            ("requirepass", "pw", "\"pw\""),
            ("maxclients", "5", "5"),
            ("max-payload", "1024", "1024"),
            ("max-batch", "7", "7"),
            ("shards", "3", "3"),
            ("log-format", "json", "\"json\""),
            ("log-level", "debug", "\"debug\""),
            ("http", "off", "\"off\""),
            ("metrics-max-queues", "5", "5"),
        ];
        assert_eq!(values.len(), SETTINGS.len(), "every setting is covered");
        for (name, text, toml) in values {
            let setting = find(name).unwrap();
            let flag = format!("--{name}");
            let by_flag = load_with(&[&flag, text], &[]).unwrap().config;
            let by_env = load_with(&[], &[(setting.env, text)]).unwrap().config;
            let file = toml_file(&format!("{name} = {toml}\n"));
            let by_file = load_with(&["--config", path_of(&file)], &[]).unwrap().config;
            assert_ne!(by_flag, Config::default(), "{name} by flag changes something");
            assert_eq!((setting.show)(&by_flag), text, "{name} by flag");
            assert_eq!(by_env, by_flag, "{name} by variable");
            assert_eq!(by_file, by_flag, "{name} by file");
        }
    }

    #[test]
    fn a_flag_beats_a_variable_which_beats_the_file() {
        let file = toml_file("maxclients = 1\nmax-payload = 2\nmax-batch = 3\n");
        let loaded = load_with(
            &["--maxclients", "10"],
            &[
                ("QUERN_CONFIG", path_of(&file)),
                ("QUERN_MAXCLIENTS", "20"),
                ("QUERN_MAX_PAYLOAD", "20"),
            ],
        )
        .unwrap();
        assert_eq!(loaded.config.maxclients, 10);
        assert_eq!(loaded.config.max_payload, 20);
        assert_eq!(loaded.config.max_batch, 3);
        assert_eq!(loaded.config.shards, Config::default().shards);
        assert_eq!(loaded.file.as_deref(), Some(file.path()));
    }

    #[test]
    fn the_config_flag_beats_its_variable() {
        let from_flag = toml_file("shards = 2\n");
        let from_env = toml_file("shards = 3\n");
        let loaded = load_with(
            &["--config", path_of(&from_flag)],
            &[("QUERN_CONFIG", path_of(&from_env))],
        )
        .unwrap();
        assert_eq!(loaded.config.shards, 2);
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let loaded = load_with(&[], &[("QUERN_SHARDS", ""), ("QUERN_CONFIG", "")]).unwrap();
        assert_eq!(loaded.config, Config::default());
    }

    #[test]
    fn an_empty_password_means_none() {
        let file = toml_file("requirepass = \"pw\"\n");
        let loaded = load_with(&["--config", path_of(&file), "--requirepass", ""], &[]).unwrap();
        assert_eq!(loaded.config.requirepass, None);
    }

    #[test]
    fn a_bad_value_names_the_setting_the_value_and_its_source() {
        let err = load_with(&[], &[("QUERN_MAX_PAYLOAD", "abc")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting max-payload = \"abc\" (from QUERN_MAX_PAYLOAD): expected a whole number"
        );
        let err = load_with(&["--shards", "0"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting shards = \"0\" (from --shards): shards must be between 1 and 4096, not 0"
        );
        let err = load_with(&["--fsync", "sometimes"], &[]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid setting fsync = \"sometimes\" (from --fsync): unknown fsync"));
        let err = load_with(&["--port", "65536"], &[]).unwrap_err();
        assert!(
            err.to_string().contains("port = \"65536\" (from --port)"),
            "{err}"
        );
        let err = load_with(&["--bind", "localhost"], &[]).unwrap_err();
        assert!(err.to_string().contains("expected an IP address"), "{err}");
        let err = load_with(&["--log-format", "xml"], &[]).unwrap_err();
        assert!(err.to_string().contains("log-format = \"xml\""), "{err}");
        let err = load_with(&["--http", "8379"], &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("http = \"8379\" (from --http): expected ADDR:PORT"),
            "{err}"
        );
        let err = load_with(&[], &[("QUERN_METRICS_MAX_QUEUES", "10001")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("metrics-max-queues must be between 0 and 10000"),
            "{err}"
        );
        let err = load_with(&[], &[("QUERN_LOG_LEVEL", "loud")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("log-level = \"loud\" (from QUERN_LOG_LEVEL)"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_value_stops_start_up_even_where_a_higher_layer_overrides_it() {
        let file = toml_file("max-batch = 0\n");
        let err = load_with(&["--config", path_of(&file), "--max-batch", "5"], &[]).unwrap_err();
        assert!(
            matches!(&err, SettingError::Invalid { name: "max-batch", source: Source::File(p), .. } if p == file.path()),
            "{err:?}"
        );
        let err = load_with(&["--max-payload", "5"], &[("QUERN_MAX_PAYLOAD", "-5")]).unwrap_err();
        assert!(err.to_string().contains("(from QUERN_MAX_PAYLOAD)"), "{err}");
    }

    #[test]
    fn the_file_must_exist_parse_and_name_only_known_settings_with_the_right_types() {
        let err = load_with(&["--config", "/nonexistent/quern.toml"], &[]).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "invalid setting config = \"/nonexistent/quern.toml\" (from --config): cannot read it:"
            ),
            "{err}"
        );

        let file = toml_file("shards = 2\nport = \n");
        let err = load_with(&[], &[("QUERN_CONFIG", path_of(&file))]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("(from QUERN_CONFIG): not valid TOML:"), "{text}");
        assert!(text.contains("at line 2, column"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");

        let file = toml_file("max_payload = 5\n");
        let err = load_with(&["--config", path_of(&file)], &[]).unwrap_err();
        assert_eq!(
            err,
            SettingError::Unknown {
                key: "max_payload".into(),
                file: file.path().to_owned()
            }
        );
        assert!(
            err.to_string().contains("max-payload"),
            "the message lists the real names"
        );

        let file = toml_file("max-payload = \"1024\"\n");
        let err = load_with(&["--config", path_of(&file)], &[]).unwrap_err();
        assert!(
            err.to_string().ends_with("expected an integer, not string"),
            "{err}"
        );

        let file = toml_file("fsync = true\n");
        let err = load_with(&["--config", path_of(&file)], &[]).unwrap_err();
        assert!(err.to_string().contains("fsync = true"), "{err}");

        let file = toml_file("[log]\nformat = \"json\"\n");
        let err = load_with(&["--config", path_of(&file)], &[]).unwrap_err();
        assert!(
            matches!(err, SettingError::Unknown { ref key, .. } if key == "log"),
            "{err:?}"
        );
    }

    #[test]
    fn the_password_is_never_repeated_in_a_message() {
        let file = toml_file("requirepass = 12345\n");
        let err = load_with(&["--config", path_of(&file)], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("requirepass = (hidden)"), "{err}");
        assert!(!err.contains("12345"), "{err}");
    }

    #[test]
    fn the_example_file_is_valid_and_shows_every_setting() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/quern.example.toml");
        let text = std::fs::read_to_string(&example).expect("docs/quern.example.toml");
        for setting in SETTINGS {
            assert!(
                text.lines().any(|l| l
                    .trim_start_matches(['#', ' '])
                    .starts_with(&format!("{} = ", setting.name))),
                "the example shows {}",
                setting.name
            );
        }
        let loaded = load_with(&["--config", example.to_str().unwrap()], &[]).unwrap();
        let c = loaded.config;
        assert_eq!(c.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.dir, PathBuf::from("/var/lib/quern"));
        assert_eq!(c.fsync, Fsync::EverySec);
        assert_eq!(c.max_payload, 1 << 20);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_level, "info,quern_store=debug");
        assert_eq!(c.http, Some("127.0.0.1:8379".parse().unwrap()));
        assert_eq!(c.metrics_max_queues, 100);
    }

    #[test]
    fn help_lists_every_setting_with_its_variable() {
        let help = command().render_long_help().to_string();
        for setting in SETTINGS {
            assert!(
                help.contains(&format!("--{}", setting.name)),
                "--{}",
                setting.name
            );
            assert!(help.contains(setting.env), "{}", setting.env);
        }
        assert!(help.contains(CONFIG_ENV));
    }
}
