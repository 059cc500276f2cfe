//! Errors in the user's files, pointing at file, line and column (rendered by miette).

use std::fmt;
use std::path::Path;

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_saphyr::Location;

use crate::secrets::Secrets;

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

/// A source file kept for pointing at its lines. Its secrets are masked in every error
/// about it (in the quoted lines and in the message).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    secrets: Secrets,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        Source::named(path.display().to_string(), text)
    }

    pub fn named(name: impl Into<String>, text: String) -> Self {
        Source {
            name: name.into(),
            text,
            secrets: Secrets::default(),
        }
    }

    /// Mask these secrets too in errors about this file.
    pub fn mask(&mut self, more: &Secrets) {
        let mut all = self.secrets.values().to_vec();
        all.extend(more.values().iter().cloned());
        self.secrets = Secrets::new(all);
    }

    /// The text errors quote.
    fn shown(&self) -> NamedSource<String> {
        NamedSource::new(&self.name, self.secrets.mask_in_place(&self.text))
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
            message: self.secrets.mask(&message.into()),
            src: self.shown(),
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
        let message = self.secrets.mask(&message.into());
        SourceError {
            place: format!("{}:{}:{}", self.name, line, column),
            label: "here".into(),
            span: valid.then(|| SourceSpan::new(offset.into(), len.min(self.text.len() - offset))),
            src: self.shown(),
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
        // A tab in an indentation is the classic: YAML's own words point near it, not at it.
        if let Some((line, column)) = tab_indent(&self.text) {
            let offset = self.offset_of(line, column);
            let mut e = self.error_at_offset(
                line,
                column,
                offset,
                1,
                "a tab in the indentation: YAML indents with spaces only",
            );
            e.help = Some("replace the tab with spaces, as many as the lines around it use".into());
            return e;
        }
        let message = yaml_message(err);
        if let Some(((line, column), message)) = place_in(&message) {
            let offset = self.offset_of(line, column);
            // The key's word: up to its colon or the end of the line.
            let len = self.text[offset.min(self.text.len())..]
                .find([':', '\n'])
                .unwrap_or(0);
            return self.error_at_offset(line, column, offset, len, message);
        }
        let mut e = match err.location() {
            Some(loc) if loc.line() > 0 => self.error_at(&loc, message),
            _ => self.error(message),
        };
        if e.message.contains("indent") || e.message.contains("mapping values are not allowed") {
            e.help = Some(
                "keys of one map line up in the same column; a value that is a map or a list is indented further than its key".into(),
            );
        }
        e
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

/// The first tab in a line's leading white space: (line, column), both from 1.
fn tab_indent(text: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        line[..indent].find('\t').map(|c| (i + 1, c + 1))
    })
}

/// Mark the place a visitor's error is about, inside its message ([`located`]); printable,
/// as serde-saphyr escapes control characters in messages.
const PLACE_OPEN: &str = "[[lvslab-at ";
const PLACE_CLOSE: &str = "]]";

/// A message for an error a visitor raises about one part of the map it reads (a key):
/// serde-saphyr would name the map's place; [`Source::yaml_error`] puts it at `at` instead.
pub fn located(at: &Location, message: impl fmt::Display) -> String {
    format!(
        "{PLACE_OPEN}{}:{}{PLACE_CLOSE}{message}",
        at.line(),
        at.column()
    )
}

/// The place [`located`] put into `message`, and the message without it.
fn place_in(message: &str) -> Option<((usize, usize), String)> {
    let start = message.find(PLACE_OPEN)?;
    let rest = &message[start + PLACE_OPEN.len()..];
    let end = rest.find(PLACE_CLOSE)?;
    let (line, column) = rest[..end].split_once(':')?;
    let place = (line.parse().ok()?, column.parse().ok()?);
    let text = format!("{}{}", &message[..start], &rest[end + PLACE_CLOSE.len()..]);
    Some((place, text))
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
