//! `--json`: one JSON object per line on stdout.

use std::io::Write;

use super::{Event, Observer};

pub struct JsonView;

impl Observer for JsonView {
    fn event(&self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
    }
}
