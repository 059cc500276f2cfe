//! lvslab: build, check and tear down a Linux Virtual Server lab over SSH.

mod cli;
mod diagnostic;
mod inventory;
mod lab;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};

/// Exit codes (also listed in `--help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const INPUT: i32 = 1;
    pub const FAILED: i32 = 2;
    pub const UNREACHABLE: i32 = 4;
    pub const INTERRUPTED: i32 = 130;
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lvslab: cannot start the async runtime: {e}");
            std::process::exit(exit::INPUT);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Lab(cmd) => lab::run(cmd, &cli.global).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lvslab", &mut std::io::stdout());
            Ok(exit::OK)
        }
        _ => Err(miette::miette!("not built yet")),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            exit::INPUT
        }
    }
}
