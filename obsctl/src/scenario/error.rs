//! Errors for scenario files: every one names the file and, where the parser knows it, the line,
//! column and field, and quotes the offending line so the fix is obvious.

use std::fmt;
use std::path::PathBuf;

/// Why a scenario file was rejected. Nothing is sent when a scenario fails to load.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read at all.
    #[error("cannot read scenario {}: {error}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// The file is not valid TOML, or does not have the scenario's shape (unknown field, wrong
    /// type, missing field), or a value failed validation.
    #[error("{0}")]
    Invalid(Box<Located>),
}

/// A problem at a place in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The scenario file (or `<inline>` for sources that came from memory).
    pub path: PathBuf,
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// 1-based column of the problem, when known.
    pub column: Option<usize>,
    /// The field at fault, as a dotted path such as `requests[2].weight`, when known.
    pub field: Option<String>,
    /// What is wrong and, where useful, what would be accepted.
    pub message: String,
    /// The text of the offending line, quoted in the message.
    pub snippet: Option<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some(line), Some(snippet)) = (self.line, &self.snippet) {
            write!(f, "\n  {line} | {snippet}")?;
        }
        Ok(())
    }
}

/// Converts byte offsets in a source text into 1-based line and column numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceMap<'a> {
    source: &'a str,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        Self { source }
    }

    /// Line, column (both 1-based, column counted in characters) and the text of the line.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize, &'a str) {
        let offset = offset.min(self.source.len());
        let before = self.source.get(..offset).unwrap_or(self.source);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        let rest = self.source.get(line_start..).unwrap_or("");
        let text = rest.split('\n').next().unwrap_or("").trim_end_matches('\r');
        (line, column, text)
    }

    /// A [`Located`] error at `offset`.
    pub(crate) fn error_at(
        &self,
        path: &std::path::Path,
        offset: Option<usize>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, column, snippet) = match offset.map(|o| self.locate(o)) {
            Some((l, c, s)) => (Some(l), Some(c), Some(s.to_owned())),
            None => (None, None, None),
        };
        ScenarioError::Invalid(Box::new(Located {
            path: path.to_path_buf(),
            line,
            column,
            field,
            message: message.into(),
            snippet,
        }))
    }
}

/// The key assigned on a line such as `weight = "x"`, used to name the field when the TOML parser
/// reports a type error without one.
pub(crate) fn key_on_line(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ok.then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_offsets_as_line_and_column() {
        let map = SourceMap::new("a = 1\nbb = 2\n");
        assert_eq!(map.locate(0), (1, 1, "a = 1"));
        assert_eq!(map.locate(11), (2, 6, "bb = 2"));
    }

    #[test]
    fn finds_the_key_of_an_assignment() {
        assert_eq!(key_on_line("weight = \"x\"").as_deref(), Some("weight"));
        assert_eq!(key_on_line("[[requests]]"), None);
    }
}
