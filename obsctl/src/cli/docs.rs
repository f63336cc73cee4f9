//! `obsctl completions SHELL` and `obsctl man`: shell completions and the manual page, made from
//! the same clap definitions as the command line itself, so they never drift from it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `obsctl completions`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Install, e.g.:
  bash:  obsctl completions bash > ~/.local/share/bash-completion/completions/obsctl
  zsh:   obsctl completions zsh > ~/.zfunc/_obsctl   (with fpath+=~/.zfunc before compinit)
  fish:  obsctl completions fish > ~/.config/fish/completions/obsctl.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "obsctl", &mut out);
    write_stdout(&out)
}

/// Prints the manual page (roff, for `man -l -` or a `man1` directory) on stdout: the main page
/// followed by one section per subcommand.
pub fn man() -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .context("cannot render the manual page")?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("obsctl-{}", sub.get_name());
        clap_mangen::Man::new(sub.clone().name(name).version(env!("CARGO_PKG_VERSION")))
            .render(&mut out)
            .context("cannot render the manual page")?;
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
