//! The policy: which level each check runs at. Layers, the last one winning: the registry's
//! default, the defaults of the run's situation (e.g. the built-in smoke scenario), the policy
//! part of the config file (`strict` and `[checks]` of `obsctl.toml` in the working directory,
//! or `--config FILE`; see [`crate::config_file`]), then `--deny/--warn/--allow ID`. `--strict`
//! denies everything that is not explicitly allowed, skips included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::model::Level;
use super::registry::{self, CheckDef};
use crate::config_file::{self, ConfigFileError, LoadedFile};

/// The policy file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = config_file::DEFAULT_FILE;

/// Why a policy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The config file could not be read or parsed.
    #[error(transparent)]
    File(#[from] ConfigFileError),
    /// A check id that no check has.
    #[error("{origin}: no check is named `{id}` (checks: {known})")]
    UnknownCheck {
        /// Where the id was written (a flag or the file).
        origin: String,
        /// The id.
        id: String,
        /// Every id, for the user to pick from.
        known: String,
    },
    /// A level word that is not allow, warn or deny.
    #[error("{origin}: `{word}` is not a level (use allow, warn or deny)")]
    UnknownLevel {
        /// Where it was written.
        origin: String,
        /// The word.
        word: String,
    },
}

/// The level of every check for one run.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Defaults of the run's situation, over the registry's.
    situation: BTreeMap<&'static str, Level>,
    /// Levels the user chose (file, then flags).
    chosen: BTreeMap<&'static str, Level>,
    /// Where the user's levels came from, for the report.
    pub source: Option<String>,
    /// Every check not explicitly allowed is denied, and skips fail.
    pub strict: bool,
}

/// The user's level choices from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--deny ID`, in order.
    pub deny: Vec<String>,
    /// `--warn ID`.
    pub warn: Vec<String>,
    /// `--allow ID`.
    pub allow: Vec<String>,
    /// `--strict`.
    pub strict: bool,
}

impl Policy {
    /// Every check at its default level, not strict.
    pub fn defaults() -> Self {
        Self::default()
    }

    /// Every check at its default level, strict: everything denied, skips included.
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }

    /// The policy of `overrides`: the policy file (`--config`, else `obsctl.toml` in `dir` when
    /// present), then the flags.
    pub fn load(overrides: &Overrides, dir: &Path) -> Result<Self, PolicyError> {
        let file = config_file::load(overrides.config.as_deref(), dir)?;
        Self::with_file(file.as_ref(), overrides)
    }

    /// The policy of a config file read already (`None`: no file), then the flags of
    /// `overrides` (its `config` is not read again).
    pub fn with_file(
        file: Option<&LoadedFile>,
        overrides: &Overrides,
    ) -> Result<Self, PolicyError> {
        let mut policy = Self::default();
        if let Some(file) = file {
            policy.apply_file(file)?;
        }
        let flags = [
            ("--deny", &overrides.deny, Level::Deny),
            ("--warn", &overrides.warn, Level::Warn),
            ("--allow", &overrides.allow, Level::Allow),
        ];
        for (flag, ids, level) in flags {
            for id in ids.iter().flat_map(|list| list.split(',')) {
                policy.choose(flag, id.trim(), level)?;
            }
        }
        policy.strict |= overrides.strict;
        Ok(policy)
    }

    fn apply_file(&mut self, loaded: &LoadedFile) -> Result<(), PolicyError> {
        let (path, file) = (&loaded.path, &loaded.file);
        let origin = format!("{} [checks]", path.display());
        for (id, word) in &file.checks {
            let level = Level::parse(word).ok_or_else(|| PolicyError::UnknownLevel {
                origin: format!("{origin} {id}"),
                word: word.clone(),
            })?;
            self.choose(&origin, id, level)?;
        }
        self.strict |= file.strict;
        self.source = Some(path.display().to_string());
        Ok(())
    }

    fn choose(&mut self, origin: &str, id: &str, level: Level) -> Result<(), PolicyError> {
        let check = registry::find(id).ok_or_else(|| PolicyError::UnknownCheck {
            origin: origin.to_owned(),
            id: id.to_owned(),
            known: registry::ids(),
        })?;
        self.chosen.insert(check.id, level);
        Ok(())
    }

    /// Sets the default level of check `id` for this run's situation (the user's choices still
    /// win). Unknown ids are a bug in obsctl and ignored.
    pub fn situation_default(&mut self, id: &str, level: Level) {
        if let Some(check) = registry::find(id) {
            self.situation.insert(check.id, level);
        }
    }

    /// The level the user chose for `check`, if any.
    pub fn chosen(&self, check: &CheckDef) -> Option<Level> {
        self.chosen.get(check.id).copied()
    }

    /// The level `check` runs at.
    pub fn level(&self, check: &CheckDef) -> Level {
        let chosen = self.chosen(check);
        let level = chosen
            .or_else(|| self.situation.get(check.id).copied())
            .unwrap_or(check.level);
        if self.strict && chosen != Some(Level::Allow) {
            Level::Deny
        } else {
            level
        }
    }

    /// The default level of `check` in this run's situation, before the user's choices.
    pub fn default_level(&self, check: &CheckDef) -> Level {
        self.situation.get(check.id).copied().unwrap_or(check.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(id: &str) -> &'static CheckDef {
        registry::find(id).expect("a registered check")
    }

    #[test]
    fn flags_win_over_the_file_and_strict_denies_all_but_allowed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(
            dir.path().join(DEFAULT_FILE),
            "[checks]\nmetrics-cardinality = \"deny\"\nlogs-fields = \"warn\"\n",
        )
        .expect("written");
        let overrides = Overrides {
            warn: vec!["metrics-cardinality".into()],
            allow: vec!["grafana,logs-loki".into()],
            ..Overrides::default()
        };
        let policy = Policy::load(&overrides, dir.path()).expect("valid");
        assert_eq!(policy.level(check("metrics-cardinality")), Level::Warn);
        assert_eq!(policy.level(check("logs-fields")), Level::Warn);
        assert_eq!(policy.level(check("logs-loki")), Level::Allow);
        assert_eq!(policy.level(check("metrics-endpoint")), Level::Deny);
        let strict = Policy::load(
            &Overrides {
                strict: true,
                ..overrides
            },
            dir.path(),
        )
        .expect("valid");
        assert_eq!(strict.level(check("metrics-cardinality")), Level::Deny);
        assert_eq!(strict.level(check("grafana")), Level::Allow);
    }

    #[test]
    fn unknown_ids_and_levels_are_named() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let error = Policy::load(
            &Overrides {
                deny: vec!["metrics-cardinalty".into()],
                ..Overrides::default()
            },
            dir.path(),
        )
        .expect_err("unknown id");
        let text = error.to_string();
        assert!(
            text.contains("--deny: no check is named `metrics-cardinalty`"),
            "{text}"
        );
        assert!(text.contains("metrics-cardinality"), "{text}");
        let file = dir.path().join("policy.toml");
        std::fs::write(&file, "[checks]\nlogs-fields = \"error\"\n").expect("written");
        let error = Policy::load(
            &Overrides {
                config: Some(file),
                ..Overrides::default()
            },
            dir.path(),
        )
        .expect_err("bad level");
        assert!(
            error.to_string().contains("`error` is not a level"),
            "{error}"
        );
    }

    #[test]
    fn the_situation_sets_defaults_the_user_still_overrides() {
        let mut policy = Policy::defaults();
        policy.situation_default("load-thresholds", Level::Warn);
        assert_eq!(policy.level(check("load-thresholds")), Level::Warn);
        assert_eq!(policy.default_level(check("load-thresholds")), Level::Warn);
        policy.chosen.insert("load-thresholds", Level::Deny);
        assert_eq!(policy.level(check("load-thresholds")), Level::Deny);
    }
}
