//! Folds the concrete paths a signal saw (`/api/users/912345678`) into the path templates of the
//! run's requests (`/api/users/{{random:900000000..999999999}}`), so that a service that labels
//! raw paths is accounted for against a report that counts per template, in memory that does
//! not grow with the paths the run rendered.

use super::RunReport;
use crate::scenario::Template;

/// The path templates with placeholders of a run's requests, per method.
#[derive(Debug, Clone, Default)]
pub struct PathFolder {
    templates: Vec<(String, Template)>,
}

impl PathFolder {
    /// A folder for `(method, path template)` pairs; constant paths and repeats are left out
    /// (they fold nothing).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut templates: Vec<(String, Template)> = Vec::new();
        for (method, text) in pairs {
            let Ok(template) = Template::parse(&text) else {
                continue;
            };
            let known = templates
                .iter()
                .any(|(m, t)| *m == method && t.as_str() == text);
            if !template.is_constant() && !known {
                templates.push((method, template));
            }
        }
        Self { templates }
    }

    /// The folder of a run report's requests.
    pub fn of_report(run: &RunReport) -> Self {
        Self::new(
            run.requests
                .iter()
                .map(|r| (r.method.clone(), r.path.clone())),
        )
    }

    /// True when there is nothing to fold.
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The template `path` (requested with `method`) is a rendering of, if any: the first in
    /// the report's order when several could have rendered it.
    pub fn fold(&self, method: &str, path: &str) -> Option<&str> {
        self.templates
            .iter()
            .find(|(m, t)| m == method && t.matches_rendering(path))
            .map(|(_, t)| t.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concrete_paths_fold_into_the_template_that_rendered_them() {
        let folder = PathFolder::new([
            ("GET".into(), "/api/users/{{random:1..3}}".into()),
            (
                "GET".into(),
                "/api/users/{{random:900000000..999999999}}".into(),
            ),
            ("GET".into(), "/health".into()),
        ]);
        assert_eq!(
            folder.fold("GET", "/api/users/2"),
            Some("/api/users/{{random:1..3}}")
        );
        assert_eq!(
            folder.fold("GET", "/api/users/912345678"),
            Some("/api/users/{{random:900000000..999999999}}")
        );
        for (method, path) in [
            ("POST", "/api/users/2"),
            ("GET", "/api/users/{user_id}"),
            ("GET", "/api/users/4"),
            ("GET", "/health"),
        ] {
            assert_eq!(folder.fold(method, path), None, "{method} {path}");
        }
    }
}
