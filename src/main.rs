//! lvslab: build, check and tear down a Linux Virtual Server lab over SSH.
//!
//! The tree reads as the architecture: `cli` (arguments and one handler per command) puts the
//! library parts together: the `inventory` and the LVS model it builds (`lvs`), `playbook`s and
//! their runner, `modules` (one file each), `templates`, the `fleet` of connected hosts over a
//! `transport` (SSH; every remote command line is built in `transport::sh`), `probes` and
//! `drills` that prove and measure the lab, `report` (events and their views), `secrets` and
//! `perms` (what output never shows, which files are not trusted), and the local `lab` itself.

mod cancel;
mod cli;
mod diagnostic;
mod drills;
mod facts;
mod fleet;
mod inventory;
mod lab;
mod live;
mod lock;
mod lvs;
mod modules;
mod perms;
mod playbook;
mod probes;
mod process;
mod programs;
mod report;
mod secrets;
mod templates;
mod transport;

use clap::Parser;

fn main() {
    cli::outcome::on_unwritable_output();
    // A usage error exits 1, as `--help` documents (clap's own habit is 2, which here means a
    // failed task or probe); help and version exit 0.
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() {
            cli::outcome::Outcome::Input.code()
        } else {
            0
        })
    });
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
            std::process::exit(cli::outcome::Outcome::Input.code());
        }
    };
    let code = runtime.block_on(cli::dispatch(cli));
    // Do not wait for lingering connection tasks.
    runtime.shutdown_background();
    std::process::exit(code);
}
