//! Everything obsctl parses from files and the network, fed generated input: scenario files,
//! run reports, /metrics bodies and log lines. Each must answer Ok or a typed error that names
//! the file where it has one, and never panic.

use std::path::Path;

use proptest::prelude::*;

use obsctl::report::RunReport;
use obsctl::scenario::Scenario;
use obsctl::sources::exposition;
use obsctl::sources::logs::LogLine;

const SMOKE: &str = include_str!("../../../scenarios/smoke.toml");

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The smoke scenario with one byte range replaced: mostly broken TOML or broken fields.
fn mutated_scenario() -> impl Strategy<Value = String> {
    let len = SMOKE.len();
    (0..len, 0..32usize, ".{0,12}").prop_map(move |(at, cut, insert)| {
        let start = floor_char_boundary(SMOKE, at);
        let end = floor_char_boundary(SMOKE, (start + cut).min(SMOKE.len()));
        format!("{}{}{}", &SMOKE[..start], insert, &SMOKE[end..])
    })
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn scenario_parsing_never_panics_on_mutated_files(text in mutated_scenario()) {
        match Scenario::parse(&text, Path::new("fuzz.toml")) {
            Ok(scenario) => prop_assert!(!scenario.requests.is_empty()),
            Err(error) => prop_assert!(error.to_string().contains("fuzz.toml"), "{}", error),
        }
    }

    #[test]
    fn scenario_parsing_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = Scenario::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn run_report_parsing_never_panics(text in "\\PC{0,400}") {
        let _ = serde_json::from_str::<RunReport>(&text);
    }

    #[test]
    fn exposition_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = exposition::parse_bytes(&bytes);
    }

    #[test]
    fn exposition_parsing_never_panics_on_metric_like_text(
        text in "(# (HELP|TYPE) [a-z_]{1,8} [a-z ]{0,8}\\n|[a-z_]{1,8}(\\{([a-z]{1,4}=\"[^\"\\n]{0,8}\",?){0,3}\\})? -?[0-9.e+Inf]{1,8}( [0-9]{1,13})?\\n){0,12}"
    ) {
        let _ = exposition::parse(&text);
    }

    #[test]
    fn openmetrics_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = exposition::parse_bytes_as(&bytes, exposition::Format::OpenMetrics);
    }

    #[test]
    fn openmetrics_parsing_never_panics_on_exemplar_like_text(
        text in "(# (HELP|TYPE|UNIT|EOF) [a-z_]{0,8} [a-z ]{0,8}\\n|[a-z_]{1,8}(\\{([a-z]{1,4}=\"[^\"\\n]{0,8}\",?){0,3}\\})? -?[0-9.e+Inf]{1,8}( [0-9.]{1,13})?( # \\{([a-z_]{1,8}=\"[^\"\\n]{0,8}\",?){0,2}\\} [0-9.e]{1,6}( [0-9.]{1,13})?)?\\n){0,12}(# EOF\\n)?"
    ) {
        if let Ok(parsed) = exposition::parse_as(&text, exposition::Format::OpenMetrics) {
            // Every exemplar read is reachable from its sample, and counted once.
            let reached: usize = parsed
                .families()
                .map(|f| f.samples.iter().filter(|s| s.exemplar.is_some()).count())
                .sum();
            prop_assert_eq!(reached, parsed.exemplar_count());
        }
    }

    #[test]
    fn log_line_parsing_never_panics(text in "\\PC{0,300}") {
        let line = LogLine::parse(1, &text);
        let _ = line.field("status_code");
    }
}
