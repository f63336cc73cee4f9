//! Durations as people write them (`500ms`, `10s`, `1m30s`), in scenario files and on the command
//! line, with the limits that keep a typo (`10000h`) from starting a run that never ends.

use std::time::Duration;

/// The longest run obsctl starts: the stages together, or `--duration`.
pub const MAX_RUN: Duration = Duration::from_secs(24 * 3600);
/// The longest per-request timeout (`--timeout`, `timeout`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// What a duration is for: it sets the limit and the words of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// The length of a stage or of a run: at most [`MAX_RUN`].
    Run,
    /// A per-request timeout: at most [`MAX_TIMEOUT`].
    Timeout,
}

impl Use {
    /// The limit, as a duration.
    pub fn limit(self) -> Duration {
        match self {
            Self::Run => MAX_RUN,
            Self::Timeout => MAX_TIMEOUT,
        }
    }

    /// The limit in words, e.g. `a run lasts at most 24h`.
    pub fn limit_words(self) -> &'static str {
        match self {
            Self::Run => "a run lasts at most 24h",
            Self::Timeout => "a request timeout is at most 1h",
        }
    }
}

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("`{0}` is not a duration: write a number and a unit, e.g. 500ms, 10s, 1m30s or 2h")]
    Invalid(String),
    /// Zero, where something has to last.
    #[error("a duration must be more than zero")]
    Zero,
    /// Longer than the limit of its use.
    #[error("`{text}` is too long: {}", what.limit_words())]
    TooLong {
        /// The text given.
        text: String,
        /// What the duration is for.
        what: Use,
    },
}

/// Parses `text` (humantime: `500ms`, `10s`, `1m30s`, `2h`) for `what`: more than zero and
/// within its limit.
pub fn parse(text: &str, what: Use) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let duration = humantime::parse_duration(trimmed)
        .map_err(|_| DurationError::Invalid(trimmed.to_owned()))?;
    check(duration, trimmed, what)
}

/// Checks an already parsed `duration` (written as `text`) for `what`.
pub fn check(duration: Duration, text: &str, what: Use) -> Result<Duration, DurationError> {
    if duration.is_zero() {
        return Err(DurationError::Zero);
    }
    if duration > what.limit() {
        return Err(DurationError::TooLong {
            text: text.to_owned(),
            what,
        });
    }
    Ok(duration)
}

/// `--duration`: the length of a run (clap value parser).
pub fn run_flag(text: &str) -> Result<Duration, DurationError> {
    parse(text, Use::Run)
}

/// `--timeout`: a per-request timeout (clap value parser).
pub fn timeout_flag(text: &str) -> Result<Duration, DurationError> {
    parse(text, Use::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_spellings() {
        assert_eq!(parse("1m30s", Use::Run), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse(" 500ms ", Use::Timeout),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse("24h", Use::Run), Ok(MAX_RUN));
    }

    #[test]
    fn says_what_a_duration_looks_like() {
        let err = parse("forever", Use::Timeout).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("`forever` is not a duration: write a number and a unit, e.g. 500ms, 10s, 1m30s or 2h".to_owned())
        );
    }

    #[test]
    fn refuses_zero_and_past_the_limit() {
        assert_eq!(parse("0s", Use::Run), Err(DurationError::Zero));
        let long = parse("10000h", Use::Run).map_err(|e| e.to_string());
        assert_eq!(
            long,
            Err("`10000h` is too long: a run lasts at most 24h".to_owned())
        );
        let timeout = parse("2h", Use::Timeout).map_err(|e| e.to_string());
        assert_eq!(
            timeout,
            Err("`2h` is too long: a request timeout is at most 1h".to_owned())
        );
    }
}
