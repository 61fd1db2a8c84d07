//! The log: `tracing` events, printed on stderr as text or as one JSON
//! object per line. stdout is left to the ready line that scripts and
//! tests wait for.

use std::io::IsTerminal;

use quern_server::LogFormat;
use tracing_subscriber::EnvFilter;

/// The level names a filter may use on their own.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a filter (`info`, `warn,quern_store=debug`) and returns it
/// without the spaces around its commas, which `tracing` would refuse.
///
/// `tracing`'s filter syntax reads a lone word as a target to log at every
/// level, so a misspelt level (`inf`, `verbose`) would quietly log almost
/// nothing. A directive without `=` must therefore be a level name;
/// `target=level` directives are checked by the filter's own parser.
pub fn check_filter(directive: &str) -> Result<String, String> {
    let parts: Vec<&str> = directive
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    for part in &parts {
        let is_level = LEVELS.iter().any(|l| l.eq_ignore_ascii_case(part));
        if !part.contains('=') && !is_level {
            return Err(format!(
                "unknown level '{part}' (expected off, error, warn, info, debug or trace, \
                 or target=level)"
            ));
        }
    }
    let directive = parts.join(",");
    filter(&directive)?;
    Ok(directive)
}

fn filter(directive: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(directive)
        .map_err(|e| format!("not a log filter: {e}"))
}

/// Installs the process's logger. Fails only if the filter is invalid,
/// which the settings have already ruled out, or if a logger is already
/// installed.
pub fn install(format: LogFormat, level: &str) -> Result<(), String> {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(level)?)
        .with_writer(std::io::stderr);
    let installed = match format {
        // Colours only for a person at a terminal, not for a log file.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        // Fields at the top level of each object, where log collectors
        // look for them; quern opens no spans, so none are listed.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_target_directives_are_accepted() {
        for ok in [
            "info",
            "DEBUG",
            "off",
            "warn,quern_store=debug",
            "quern_server=warn",
        ] {
            assert_eq!(check_filter(ok).as_deref(), Ok(ok), "{ok}");
        }
        assert_eq!(
            check_filter(" info , quern=trace").as_deref(),
            Ok("info,quern=trace")
        );
    }

    #[test]
    fn a_misspelt_level_is_refused() {
        for bad in ["inf", "verbose", "info,loud", "quern=loud"] {
            assert!(check_filter(bad).is_err(), "{bad}");
        }
        assert!(check_filter("verbose").unwrap_err().contains("'verbose'"));
    }
}
