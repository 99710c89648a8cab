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
