//! lvslab: build, check and tear down a Linux Virtual Server lab over SSH.

mod cli;
mod commands;
mod diagnostic;
mod facts;
mod fleet;
mod inventory;
mod lab;
mod modules;
mod playbook;
mod probes;
mod report;
mod transport;

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
    // Messages are long lines of file:line:column and advice: do not wrap them.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
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
    // Do not wait for lingering connection tasks.
    runtime.shutdown_background();
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> i32 {
    let g = &cli.global;
    let result = match cli.command {
        Command::Up(args) => commands::lvs::up(&args, g).await,
        Command::Verify(args) => commands::lvs::verify(&args, g).await,
        Command::Down(args) => commands::lvs::down(&args, g).await,
        Command::Status => commands::lvs::status(g).await,
        Command::Drill(cmd) => commands::lvs::drill(&cmd, g).await,
        Command::Run(args) => commands::run::run(&args, g).await,
        Command::Exec(args) => commands::adhoc::exec(&args, g).await,
        Command::Ping => commands::adhoc::ping(g).await,
        Command::Validate(args) => commands::validate::validate(&args, g),
        Command::Lab(cmd) => lab::run(cmd, g).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lvslab", &mut std::io::stdout());
            Ok(exit::OK)
        }
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            exit::INPUT
        }
    }
}
