//! Errors in the user's files, pointing at file, line and column (rendered by miette).

use std::path::Path;

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_saphyr::Location;

/// A problem in an input file (inventory, playbook, template).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{place}: {message}")]
pub struct SourceError {
    /// `file:line:column`, also in the message so it survives plain-text and JSON output.
    pub place: String,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
    #[related]
    pub more: Vec<SourceError>,
}

/// A source file kept for pointing at its lines.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        Source {
            name: path.display().to_string(),
            text,
        }
    }

    /// An error at a serde-saphyr location.
    pub fn error_at(&self, loc: &Location, message: impl Into<String>) -> SourceError {
        let (line, column) = (loc.line() as usize, loc.column() as usize);
        let span = loc.span();
        let offset = span
            .byte_offset()
            .map(|o| o as usize)
            .unwrap_or_else(|| self.offset_of(line, column));
        let len = span.byte_len().map(|l| l as usize).unwrap_or(0);
        self.error_at_offset(line, column, offset, len, message)
    }

    /// An error about the file as a whole.
    pub fn error(&self, message: impl Into<String>) -> SourceError {
        SourceError {
            place: self.name.clone(),
            message: message.into(),
            src: NamedSource::new(&self.name, self.text.clone()),
            span: None,
            label: String::new(),
            help: None,
            more: Vec::new(),
        }
    }

    fn error_at_offset(
        &self,
        line: usize,
        column: usize,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> SourceError {
        let valid = offset <= self.text.len();
        let message = message.into();
        SourceError {
            place: format!("{}:{}:{}", self.name, line, column),
            label: "here".into(),
            span: valid.then(|| SourceSpan::new(offset.into(), len.min(self.text.len() - offset))),
            src: NamedSource::new(&self.name, self.text.clone()),
            message,
            help: None,
            more: Vec::new(),
        }
    }

    fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return offset
                    + l.char_indices()
                        .nth(column.saturating_sub(1))
                        .map_or(0, |(b, _)| b);
            }
            offset += l.len();
        }
        self.text.len()
    }

    /// Turn a YAML parse error into a located error.
    pub fn yaml_error(&self, err: &serde_saphyr::Error) -> SourceError {
        let message = yaml_message(err);
        match err.location() {
            Some(loc) if loc.line() > 0 => self.error_at(&loc, message),
            _ => self.error(message),
        }
    }
}

impl SourceError {
    /// Join several errors into one report (the first leads).
    pub fn join(mut errors: Vec<SourceError>) -> Option<SourceError> {
        if errors.is_empty() {
            return None;
        }
        let mut first = errors.remove(0);
        first.more.extend(errors);
        Some(first)
    }
}

/// serde-saphyr renders its own snippet into Display; keep only the message line.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    let rendered = err.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    // Drop a trailing " at line X column Y" that the snippet header repeats.
    match first.find(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}
