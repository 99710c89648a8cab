//! How replies, events and errors are printed: pretty and coloured JSON on a terminal, one
//! line otherwise (or with `--json`); colour never with `NO_COLOR`.

use std::io::IsTerminal;

use colored_json::ColorMode;
use serde_json::Value;

/// The output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Indented, multi-line JSON.
    pub pretty: bool,
    /// ANSI colours.
    pub colour: bool,
}

impl Style {
    /// One JSON line, no colour.
    pub const LINE: Style = Style {
        pretty: false,
        colour: false,
    };

    /// The style for stdout: pretty on a terminal (coloured unless `NO_COLOR` is set), one
    /// line when piped or with `--json`.
    pub fn for_stdout(json: bool) -> Style {
        let tty = std::io::stdout().is_terminal();
        Style {
            pretty: tty && !json,
            colour: tty && !json && no_color_unset(),
        }
    }

    /// Formats a JSON value in this style.
    pub fn format(self, value: &Value) -> String {
        if !self.pretty {
            return value.to_string();
        }
        let mode = if self.colour {
            ColorMode::On
        } else {
            ColorMode::Off
        };
        colored_json::to_colored_json(value, mode).unwrap_or_else(|_| value.to_string())
    }
}

/// Whether `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// An event as a JSON object, as QEMU sent it: `{"event": .., "data": .., "timestamp": ..}`.
pub fn event_json(event: &qmp_core::Event) -> Value {
    let ts = event.timestamp();
    let mut m = serde_json::Map::new();
    m.insert("event".into(), Value::String(event.name().to_string()));
    if event.data_json().is_some() {
        m.insert("data".into(), event.data_value());
    }
    m.insert(
        "timestamp".into(),
        serde_json::json!({"seconds": ts.seconds, "microseconds": ts.microseconds}),
    );
    Value::Object(m)
}

/// The `--log` file: every message sent and received, one JSON line each, appended.
#[derive(Debug, Default)]
pub struct Log {
    file: Option<std::sync::Mutex<std::fs::File>>,
}

impl Log {
    /// Opens `path` for appending (`None`: no log).
    ///
    /// # Errors
    ///
    /// The file cannot be opened, with its path.
    pub fn open(path: Option<&std::path::Path>) -> Result<Log, String> {
        let Some(path) = path else {
            return Ok(Log::default());
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("--log {}: {e}", path.display()))?;
        Ok(Log {
            file: Some(std::sync::Mutex::new(file)),
        })
    }

    fn write(&self, value: &Value) {
        use std::io::Write as _;
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(f, "{value}");
        }
    }

    /// Logs a command as sent.
    pub fn request(&self, command: &str, arguments: Option<&Value>) {
        let mut m = serde_json::Map::new();
        m.insert("execute".into(), Value::String(command.into()));
        if let Some(a) = arguments {
            m.insert("arguments".into(), a.clone());
        }
        self.write(&Value::Object(m));
    }

    /// Logs a reply: `{"return": ..}` or `{"error": {"class": .., "desc": ..}}`.
    pub fn reply(&self, reply: Result<&Value, &qmp_api::ExecuteError>) {
        match reply {
            Ok(v) => self.write(&serde_json::json!({ "return": v })),
            Err(e) => match e.qmp_error() {
                Some(q) => {
                    self.write(&serde_json::json!({"error": {"class": q.class, "desc": q.desc}}))
                }
                None => self.write(&serde_json::json!({"qmp-cli-error": e.to_string()})),
            },
        }
    }

    /// Logs an event.
    pub fn event(&self, event: &Value) {
        self.write(event);
    }
}
