//! Logging set-up. `lifeboat serve` logs at the configured level and format to stderr
//! (the journal under systemd); admin commands log warnings only. `LIFEBOAT_LOG` (a
//! tracing filter such as `debug` or `lifeboat_milter=trace`) overrides both.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub fn init_for_commands() {
    init(EnvFilter::new("warn"), LogFormat::Text);
}

pub fn init_for_serve(config: &LogConfig) {
    init(EnvFilter::new(config.level.as_str()), config.format);
}

fn init(default: EnvFilter, format: LogFormat) {
    let filter = EnvFilter::try_from_env("LIFEBOAT_LOG").unwrap_or(default);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // A second init (tests calling commands in-process) is harmless: keep the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
