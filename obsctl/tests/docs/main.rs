//! What obsctl says about itself: shell completions and the manual page come from the command
//! line's own definitions, and neither the help nor the README points at a document the
//! repository does not hold.

use std::process::Output;

fn obsctl(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_obsctl"))
        .args(args)
        .output()
        .expect("obsctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn completions_cover_every_subcommand_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = obsctl(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = stdout(&output);
        for sub in ["load", "check", "verify"] {
            assert!(script.contains(sub), "{shell} completions lack `{sub}`");
        }
        assert!(
            script.contains("--run-report"),
            "{shell} completions lack check's flags"
        );
    }
    let output = obsctl(&["completions", "tcsh"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_manual_page_is_roff_with_a_section_per_subcommand() {
    let output = obsctl(&["man"]);
    assert!(output.status.success(), "{output:?}");
    let page = stdout(&output);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..80.min(page.len())]
    );
    for name in ["obsctl", "obsctl-load", "obsctl-check", "obsctl-verify"] {
        assert!(page.contains(&format!(".TH {name}")), "no page for {name}");
    }
    assert!(
        page.contains("\\-\\-strict"),
        "check's flags are documented"
    );
}

#[test]
fn help_and_readme_point_only_at_what_the_repository_holds() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let mut texts = vec![("README.md".to_owned(), readme)];
    for sub in ["load", "check", "verify"] {
        texts.push((
            format!("obsctl {sub} --help"),
            stdout(&obsctl(&[sub, "--help"])),
        ));
    }
    texts.push(("obsctl --help".to_owned(), stdout(&obsctl(&["--help"]))));
    for (name, text) in &texts {
        for outside in [
            "Part 6",
            "Part 7",
            "the spec",
            "DESIGN.md",
            "spec/instrumentation",
        ] {
            assert!(
                !text.contains(outside),
                "{name} cites `{outside}`, which is not in the repository"
            );
        }
    }
    assert!(
        std::path::Path::new(&format!("{root}/docs/contract.md")).is_file(),
        "docs/contract.md states the contract the README links to"
    );
}
