//! Command-line interface: argument definitions only. `main.rs` dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::drills::{FailoverKind, RealServerKind};
use crate::lvs::Management;

const AFTER_HELP: &str = "\
Examples:
  lvslab lab up                           build a local 4-node lab (network namespaces)
  lvslab -i /var/lib/lvslab/labs/lvslab/inventory.yml up
                                          converge keepalived + LVS-DR on it, then verify
  lvslab up --check --diff                show what would change, change nothing
  lvslab verify                           probe the running lab: VIP, IPVS table, ARP, VRRP
  lvslab down                             remove the VIP, IPVS table, keepalived state, sysctls
  lvslab run site.yml -l node2            run your own playbook on one host

Exit codes: 0 all ok, 1 usage or input error, 2 a task or probe failed,
            4 a host was unreachable, 130 interrupted, 141 the output's reader went away.";

/// lvslab builds, checks and tears down a Linux Virtual Server (LVS) lab over SSH:
/// a director with a VIP and an IPVS virtual service, real servers in DR mode,
/// and a keepalived pair that owns the VIP.
#[derive(Debug, Parser)]
#[command(name = "lvslab", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten, next_help_heading = "Options for every command")]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options given before or after the command; those that only some commands read are refused
/// by the others (see `SCOPED`).
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Inventory file (YAML).
    #[arg(
        short,
        long,
        global = true,
        env = "LVSLAB_INVENTORY",
        default_value = "inventory.yml"
    )]
    pub inventory: PathBuf,
    /// Only these hosts or groups (comma-separated; e.g. `node2,directors`): up, down, run, exec, ping.
    #[arg(short, long, global = true, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// More output: each task's time and command output, and round trips per host in the recap.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How many hosts to work on at once (default 64): up, down, run, exec, ping, bench, lab demo.
    #[arg(short, long, global = true, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: Option<u16>,
    /// Query every host and report what would change; change nothing: up, down, run.
    #[arg(short = 'C', long, global = true)]
    pub check: bool,
    /// Show unified diffs of files and before/after of settings (secrets masked): up, down, run.
    #[arg(short = 'D', long, global = true)]
    pub diff: bool,
    /// Write one JSON event per line on stdout instead of the human report.
    #[arg(long, global = true)]
    pub json: bool,
    /// Plain lines instead of progress bars (the default when stderr is not a terminal or CI is set).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Trust hosts whose key is not in known_hosts yet and record their key (trust on first use).
    /// A changed key is always refused.
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
    /// Seconds to wait for a host's SSH connection and login.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Seconds a single remote command may run before it is ended and its task fails.
    #[arg(long, global = true, default_value_t = 120, value_name = "SECS")]
    pub command_timeout: u64,
    /// Take playbooks and templates from this directory instead of the built-in ones: up, down,
    /// run, validate, drill, bench, lab demo.
    #[arg(long, global = true, value_name = "DIR")]
    pub playbooks: Option<PathBuf>,
}

const DEFAULT_FORKS: u16 = 64;

/// The global options that only some commands read, and those commands: any other command
/// refuses them (exit 1) rather than ignore them, so that `--check exec` runs nothing.
/// The others (`--inventory`, the output and connection options) mean the same to every
/// command that has a use for them.
const SCOPED: &[(&str, &[&str])] = &[
    ("--check", &["up", "down", "run"]),
    ("--diff", &["up", "down", "run"]),
    ("--limit", &["up", "down", "run", "exec", "ping"]),
    (
        "--forks",
        &[
            "up",
            "down",
            "run",
            "exec",
            "ping",
            "bench",
            "drain",
            "undrain",
            "switchover",
            "lab demo",
        ],
    ),
    (
        "--playbooks",
        &[
            "up",
            "down",
            "run",
            "validate",
            "drill",
            "bench",
            "drain",
            "undrain",
            "switchover",
            "lab demo",
        ],
    ),
];

impl Global {
    /// How many hosts to work on at once: `--forks`, else 64.
    pub fn forks(&self) -> usize {
        usize::from(self.forks.unwrap_or(DEFAULT_FORKS))
    }

    /// The scoped options given here, by their names on the command line.
    fn given(&self) -> Vec<&'static str> {
        [
            (self.check, "--check"),
            (self.diff, "--diff"),
            (self.limit.is_some(), "--limit"),
            (self.forks.is_some(), "--forks"),
            (self.playbooks.is_some(), "--playbooks"),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect()
    }

    /// Why `command` refuses these options: one line per option given that it does not read.
    pub fn unread_by(&self, command: &Command) -> Vec<String> {
        let name = command.name();
        self.given()
            .into_iter()
            .filter_map(|flag| {
                let (_, readers) = SCOPED.iter().find(|(f, _)| *f == flag)?;
                (!readers.contains(&name)).then(|| {
                    format!(
                        "{flag} is not an option of `lvslab {name}`: only {} read it",
                        readers.join(", ")
                    )
                })
            })
            .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up the seed's lab on the inventory: keepalived + LVS-DR (default) or the manual
    /// ipvsadm setup, then verify it. Rerun it to converge drift: it changes only what differs.
    #[command(
        after_help = "Examples:\n  lvslab up\n  lvslab up --mode manual\n  lvslab up --check --diff"
    )]
    Up(UpArgs),
    /// Probe the lab: HTTP through the VIP, IPVS table, real servers' ARP settings and lo VIP,
    /// exactly one VIP holder (ARP), VRRP states. Exit 2 when a probe fails.
    #[command(
        after_help = "Examples:\n  lvslab verify\n  lvslab verify --json | grep '\"pass\":false'   # only what failed\n  lvslab -i inventory.yml verify"
    )]
    Verify(VerifyArgs),
    /// Tear the lab down: VIP, IPVS table, keepalived, the kernel settings lvslab changed.
    #[command(
        after_help = "Examples:\n  lvslab down\n  lvslab down --check --diff   # what it would remove\n  lvslab down -l node2         # one real server only"
    )]
    Down(DownArgs),
    /// Who holds the VIP, VRRP states, the IPVS table with counters.
    #[command(
        after_help = "Examples:\n  lvslab status\n  watch -n 1 lvslab status   # follow a failover"
    )]
    Status,
    /// Failure drills with measured outage.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Measurements on the lab that is up.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a playbook (YAML) against the inventory.
    #[command(
        after_help = "Examples:\n  lvslab run my-site.yml\n  lvslab run my-site.yml --check --diff -l real_servers\n  lvslab run my-site.yml -e rate=20 -t web\n  lvslab run my-site.yml -e @vars.yml -e '{\"rate\": 20}' --skip-tags slow\n  lvslab run my-site.yml --list-tasks --list-hosts      (nothing is contacted)\n  lvslab run my-site.yml --start-at-task 'web server running'\n\nFrom Ansible: -u USER is the inventory's `connection.user`; --syntax-check is `lvslab validate`."
    )]
    Run(RunArgs),
    /// Run one shell command on hosts (ad hoc).
    #[command(
        after_help = "Examples:\n  lvslab exec -l directors -- ipvsadm -ln\n  lvslab exec -- hostname"
    )]
    Exec(ExecArgs),
    /// Connect to every host and log in; report who is reachable.
    #[command(after_help = "Examples:\n  lvslab ping\n  lvslab ping -l directors")]
    Ping,
    /// Check the inventory, playbooks and templates without connecting to any host.
    #[command(
        after_help = "Examples:\n  lvslab validate -i inventory.example.yml\n  lvslab validate -i inventory.yml site.yml"
    )]
    Validate(ValidateArgs),
    /// Change values of the inventory in place, keeping its comments and layout. Each KEY is
    /// a dotted path to one value that exists (a typo is an error, never a new key); the file
    /// is written only if the result is a valid inventory.
    #[command(
        after_help = "Examples:\n  lvslab set lvs.forwarding=tun\n  lvslab set lvs.health_check.delay_loop=2 lvs.health_check.retry=1\n  lvslab set hosts.node3.weight=2"
    )]
    Set(SetArgs),
    /// Take a real server out of service without cutting its clients off: the inventory gets
    /// `drained: true` on the host (so a later `up` keeps it out), the directors converge to
    /// weight 0 (keepalived reloaded, or the manual table edited): no new connection goes to
    /// it; then lvslab waits until the connections it carries through the VIP's holder have
    /// ended, and says when it is safe to work on it.
    #[command(
        after_help = "Exit 0 once the director holding the VIP has no established connection to it; 2 when some are still open at --timeout (it stays drained).\n\nExamples:\n  lvslab drain node2\n  lvslab drain node2 --timeout 600   # long downloads\n  lvslab drain node2 --timeout 0     # weight 0, no waiting\n  lvslab undrain node2"
    )]
    Drain(DrainArgs),
    /// Put a drained real server back in service: `drained: false` in the inventory, its weight
    /// back on the directors.
    #[command(after_help = "Examples:\n  lvslab undrain node2")]
    Undrain(UndrainArgs),
    /// Move the VIP to another director, planned (before maintenance of the one holding it):
    /// the inventory gives NODE the highest priority and `state: MASTER` (the director that
    /// had them gets NODE's and `BACKUP`), so a later `up` keeps the VIP there; keepalived
    /// reloads on the directors and the VIP moves with gratuitous ARPs (with `preempt: false`
    /// keepalived is restarted on the holder, as nopreempt needs); lvslab waits until NODE is
    /// MASTER and holds the VIP alone.
    #[command(
        after_help = "Exit 0 once NODE holds the VIP as MASTER; 2 when it does not in time.\n\nExamples:\n  lvslab switchover node4   # node1 can be worked on: node4 holds the VIP\n  lvslab switchover node1   # and back"
    )]
    Switchover(SwitchoverArgs),
    /// A local lab on this machine: hosts as network namespaces with real sshd, or inside a qemu VM
    /// when this kernel has no IPVS (needs root).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  lvslab completions bash > /etc/bash_completion.d/lvslab\n  lvslab completions zsh > ~/.zfunc/_lvslab"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The command's name as typed (`lab demo` for the lab's subcommands that read options).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Verify(_) => "verify",
            Command::Down(_) => "down",
            Command::Status => "status",
            Command::Drill(_) => "drill",
            Command::Bench(_) => "bench",
            Command::Run(_) => "run",
            Command::Exec(_) => "exec",
            Command::Ping => "ping",
            Command::Validate(_) => "validate",
            Command::Set(_) => "set",
            Command::Drain(_) => "drain",
            Command::Undrain(_) => "undrain",
            Command::Switchover(_) => "switchover",
            Command::Lab(LabCommand::Demo(_)) => "lab demo",
            Command::Lab(_) => "lab",
            Command::Completions { .. } => "completions",
        }
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[arg(long, value_enum, default_value_t = Management::Keepalived)]
    pub mode: Management,
    /// Do not run `verify` after converging.
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    /// HTTP requests sent to the VIP (raised to two per real server, more with uneven weights,
    /// so that every real server can show its share).
    #[arg(long, default_value_t = 20)]
    pub requests: u32,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also stop the web servers and remove the packages lvslab installed.
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Make the MASTER director fail while the client sends a steady stream of requests to the
    /// VIP; measure how long the client got no answer, the takeover and the fail-back; judge
    /// the outage against what VRRP promises for that failure, computed from the inventory.
    /// The lab is restored at the end (and on Ctrl-C).
    #[command(after_help = DRILL_FAILOVER_HELP)]
    Failover(FailoverArgs),
    /// Make a real server fail while the client sends requests; measure how long clients got
    /// errors and when the directors removed it and took it back; judge it against keepalived's
    /// health check (delay_loop, retries, timeouts from the inventory). Restored at the end
    /// (and on Ctrl-C). Needs IPVS on the directors.
    #[command(after_help = DRILL_REALSERVER_HELP)]
    Realserver(RealserverArgs),
    /// Reboot a node of the lab (a real server, the BACKUP or the MASTER) while the client sends
    /// requests; measure the outage and how long until it is back in service; then verify the
    /// lab WITHOUT converging it: what lvslab set must come back by itself (enabled services,
    /// lvslab-boot). A lab node's reboot is a power cut (every process killed, the network
    /// back to what `lab up` made); other hosts run `systemctl reboot` or `reboot`.
    #[command(after_help = DRILL_REBOOT_HELP)]
    Reboot(RebootArgs),
}

const DRILL_REBOOT_HELP: &str = "\
Limits:
  real server      the health check's removal: delay_loop + connect_timeout + retry x
                   (delay_before_retry + connect_timeout)
  MASTER           Master_Down_Interval = 3 x advert_int + skew (the VIP goes with it)
  BACKUP           no failed request at all
The drill fails when the outage exceeds its limit by more than 1000 ms, the node does not come
back within 300 s, or verify fails afterwards (exit 2).

Examples:
  lvslab drill reboot node2          a real server
  lvslab drill reboot node4          the BACKUP
  lvslab drill reboot node1 --svg master-reboot.svg";

const DRILL_FAILOVER_HELP: &str = "\
Limits (VRRP, RFC 3768; advert_int and the BACKUP's priority from the inventory):
  stop                       skew = (256 - priority) / 256 s (a priority-0 advert says goodbye)
  kill, link-down, freeze    Master_Down_Interval = 3 x advert_int + skew
  partition                  the larger of that and the client's stale ARP entry:
                             1.5 x base_reachable_time + delay_first_probe + probes x retrans
A run fails when the outage exceeds its limit by more than --margin (1000 ms), or the lab is not
as before.

Examples:
  lvslab drill failover                      SIGTERM, the kindest failure
  lvslab drill failover --kind kill          the seed's flaw: the VIP stays on the dead MASTER
  lvslab drill failover --kind partition --repeat 5 --svg split.svg
  lvslab drill failover --kind kill --hold 10   do established connections survive it?
  lvslab --json drill failover --kind freeze";

const DRILL_REALSERVER_HELP: &str = "\
Limits (keepalived's check, HTTP_GET, TCP_CHECK or MISC_CHECK, timers from health_check):
  kill         delay_loop + retry x delay_before_retry (a refused connection fails at once);
               with MISC_CHECK as hang (the script may take its misc_timeout, connect_timeout)
  stop, hang   delay_loop + connect_timeout + retry x (delay_before_retry + connect_timeout)
               (a server that stops gracefully may accept a check and never answer it)
  drain        no failed request at all
  blackhole    (DR, TUN) the VIP taken off the server: its own address still answers, clients'
               packets to the VIP are dropped. Removed like hang only when the check goes
               through the VIP (`health_check: { via_vip: true }`); the plain check never
               removes it, and the run shows clients failing until the drill puts the VIP back
With `health_check: { type: tcp }` a frozen server is never removed (the kernel still completes
the handshake): --kind hang is refused with that reason.
The run is judged by how long clients got errors (first to last failed request).

Examples:
  lvslab drill realserver node2
  lvslab drill realserver node3 --kind hang --rate 50
  lvslab drill realserver node2 --kind drain
  lvslab drill realserver node2 --kind blackhole   does the health check see what clients see?";

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The real server (inventory host name).
    pub node: String,
    /// How long to wait for its connections to end, in seconds (0: do not wait).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    /// The director to hold the VIP (inventory host name).
    pub node: String,
}

#[derive(Debug, Args)]
pub struct UndrainArgs {
    /// The real server (inventory host name).
    pub node: String,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// How the MASTER fails.
    #[arg(long, value_enum, default_value_t = FailoverKind::Stop)]
    pub kind: FailoverKind,
    /// Connections to hold open through the VIP across the failover (kept-alive HTTP, opened
    /// before the fault, asked again once the BACKUP holds the VIP): do established connections
    /// survive? They need connection sync (`lvs.vrrp.sync_daemon: true`) or the mh scheduler
    /// with `sloppy_tcp: 1`; the run fails when the inventory promises it and one broke. Needs
    /// IPVS.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub hold: u32,
    #[command(flatten)]
    pub drill: DrillArgs,
}

#[derive(Debug, Args)]
pub struct RealserverArgs {
    /// The real server (inventory host name).
    pub node: String,
    /// How it fails.
    #[arg(long, value_enum, default_value_t = RealServerKind::Stop)]
    pub kind: RealServerKind,
    #[command(flatten)]
    pub drill: DrillArgs,
}

#[derive(Debug, Args)]
pub struct RebootArgs {
    /// The node (inventory host name): a director or a real server.
    pub node: String,
    #[command(flatten)]
    pub drill: DrillArgs,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Requests a second from the client, each on its own (a slow one does not delay the
    /// next): at 20 a gap of 50 ms shows.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rate: u32,
    /// Run the drill N times and report the outage's p50, p99 and max.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Where the timeline picture (SVG) goes [default: ./lvslab-drill-KIND-TIME.svg]; later
    /// runs of --repeat get -2, -3, ... before the extension.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Write no picture.
    #[arg(long, conflicts_with = "svg")]
    pub no_svg: bool,
    /// Milliseconds of lateness forgiven beyond each limit: timers run late on a loaded host,
    /// and much later under an emulated CPU (a VM without KVM).
    #[arg(long, value_name = "MS", default_value_t = crate::drills::limits::DEFAULT_MARGIN_MS,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub margin: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The same load through each forwarding method in turn (DR, TUN, and NAT when the
    /// inventory has its `nat:` network): the lab is converged to the method, loaded from the
    /// client, then the next; at the end it is back in the inventory's method. One table:
    /// requests/s, latency, and the bytes that crossed the director per request, as its IPVS
    /// counters and its network cards count them. The seed notes' claim (with NAT every answer
    /// passes the director) shows as measured bytes.
    #[command(
        after_help = "Examples:\n  lvslab lab up --forwarding nat && lvslab -i /var/lib/lvslab/labs/lvslab/inventory.yml bench modes\n  lvslab bench modes --requests 1000 --concurrency 8 --json"
    )]
    Modes(BenchModesArgs),
}

#[derive(Debug, Args)]
pub struct BenchModesArgs {
    /// Requests per method.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub requests: u32,
    /// Requests at once (each a curl on the client).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// Who owns the VIP while measuring.
    #[arg(long, value_enum, default_value_t = Management::Keepalived)]
    pub mode: Management,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Playbook files, run in order.
    #[arg(id = "playbook_files", value_name = "PLAYBOOK", required = true)]
    pub playbooks: Vec<PathBuf>,
    /// Only tasks with one of these tags (comma-separated; `always` runs anyway).
    #[arg(short, long)]
    pub tags: Option<String>,
    /// Not the tasks with one of these tags (comma-separated).
    #[arg(long, value_name = "TAGS")]
    pub skip_tags: Option<String>,
    /// Start at the first task of this name: the tasks before it (in earlier plays too) are
    /// skipped; handlers run when notified.
    #[arg(long, value_name = "NAME")]
    pub start_at_task: Option<String>,
    /// Extra variables (highest precedence): `KEY=VALUE`, a JSON object, or `@FILE` (YAML or
    /// JSON); repeatable, the later wins.
    #[arg(short, long = "extra-var", value_name = "KEY=VALUE|JSON|@FILE")]
    pub extra_vars: Vec<String>,
    /// List each play's tasks with their tags, and stop: no host is contacted.
    #[arg(long)]
    pub list_tasks: bool,
    /// List the hosts each play runs on (after --limit), and stop: no host is contacted.
    #[arg(long)]
    pub list_hosts: bool,
    /// Ansible's `--syntax-check`: lvslab checks playbooks with `lvslab validate PLAYBOOK`.
    #[arg(long, hide = true)]
    pub syntax_check: bool,
    /// Ansible's `-u USER`: lvslab logs in as the inventory's `connection.user`.
    #[arg(short = 'u', long = "user", hide = true, value_name = "USER")]
    pub user: Option<String>,
}

impl RunArgs {
    /// What lvslab does instead of an Ansible flag it does not take.
    pub fn ansible_answer(&self) -> Option<String> {
        if self.syntax_check {
            return Some(
                "--syntax-check is Ansible's: lvslab checks playbooks, templates and the inventory with `lvslab validate PLAYBOOK...` (no host is contacted)".into(),
            );
        }
        self.user.as_ref().map(|u| {
            format!(
                "-u {u} is Ansible's: lvslab logs in as the inventory's `connection: {{ user: {u} }}` (for every host, or under one host)"
            )
        })
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run through `sudo -n` when the login user is not root.
    #[arg(short, long)]
    pub r#become: bool,
    /// The command (a shell command line, run by `sh -c`).
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Playbooks to check as well (the built-in ones are always checked).
    #[arg(id = "playbook_files", value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// KEY=VALUE: a dotted path into the inventory and its new value.
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub assignments: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the lab: node1–node4 (+ more real servers) and a client, each a network namespace
    /// with its own sshd; writes an SSH key, known_hosts and an inventory, and says how to use them.
    #[command(
        after_help = "Examples:\n  lvslab lab up\n  lvslab lab up --real-servers 3 --name big\n  lvslab lab up --forwarding nat   # outside and inside networks, for LVS-NAT\n  lvslab lab up --vm     # in a qemu VM: for kernels without IPVS (the first run builds its image)"
    )]
    Up(LabUpArgs),
    /// Remove everything a lab made (processes, namespaces, links, files), also after a crash.
    #[command(after_help = "Examples:\n  lvslab lab down\n  lvslab lab down --name big")]
    Down(LabNameArgs),
    /// Which nodes are up, their addresses, whether sshd answers.
    #[command(after_help = "Examples:\n  lvslab lab status\n  lvslab lab status --name big")]
    Status(LabNameArgs),
    /// The programs the lab needs on this machine (and the VM, and the tests), the package of
    /// each, and whether it is here; `--install` installs what is missing (apt or dnf).
    #[command(
        after_help = "Examples:\n  lvslab lab deps                   # what `lab up` needs\n  lvslab lab deps --vm --install     # and what `lab up --vm` needs, installed\n  lvslab lab deps --tests --install  # everything the test suite runs (scripts/test.sh does this)"
    )]
    Deps(LabDepsArgs),
    /// Run a command inside a lab node (nsenter; over ssh with the lab's key for a lab in a VM).
    #[command(
        after_help = "Examples:\n  lvslab lab exec node2 -- hostname\n  lvslab lab exec node1 -- ip addr"
    )]
    Exec {
        #[command(flatten)]
        lab: LabNameArgs,
        /// node1, node2, ..., client
        node: String,
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
    /// One command for a newcomer: a lab (here, or `lab up --vm` when this kernel has no IPVS),
    /// the seed's keepalived + LVS-DR setup converged on it, and the probes' verdict. The lab
    /// stays up for exploring; `lvslab lab down` removes it.
    #[command(
        after_help = "Examples:\n  lvslab lab demo\n  lvslab lab demo --forwarding nat   # the same with LVS-NAT\n  lvslab lab demo --vm               # in the VM even where this kernel has IPVS"
    )]
    Demo(LabUpArgs),
    /// Run a scenario script inside the VM tier's guest (tests and debugging); prints the guest's
    /// console, exits 0 when the script exited 0 and printed no `VERDICT <name> FAIL` line.
    #[command(hide = true)]
    VmRun {
        /// A shell script (or any `#!` script) run as root in the guest.
        script: PathBuf,
    },
}

#[derive(Debug, Args, Clone)]
pub struct LabDepsArgs {
    /// Also what a lab in a VM needs here (qemu, mmdebstrap, ...).
    #[arg(long)]
    pub vm: bool,
    /// Everything the test suite needs: the lab's, the VM's and the tests' own programs.
    #[arg(long)]
    pub tests: bool,
    /// Install the missing packages instead of listing them.
    #[arg(long)]
    pub install: bool,
}

#[derive(Debug, Args, Clone)]
pub struct LabNameArgs {
    /// Lab name. One lab is up at a time on a machine (every lab uses 198.18.0.0/24).
    #[arg(long, default_value = "lvslab", value_parser = parse_lab_name)]
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct LabUpArgs {
    #[command(flatten)]
    pub lab: LabNameArgs,
    /// Number of real servers (node2, node3, then node5, node6, ...).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=80))]
    pub real_servers: u16,
    /// Run the lab inside a qemu VM with a stock Debian kernel that has IPVS (for kernels
    /// without it). The VM's network card joins the lab's bridge on this machine, so the nodes
    /// have the same addresses and the same inventory works; `lab down` stops the VM.
    #[arg(long)]
    pub vm: bool,
    /// Install missing packages (apt or dnf) instead of naming them.
    #[arg(long)]
    pub install_deps: bool,
    /// Inside the VM of `lab up --vm`: the host's lab keys (login key, host keys) to use.
    #[arg(long, hide = true, requires = "uplink")]
    pub guest_keys: Option<PathBuf>,
    /// The forwarding method the lab is for: dr and tun (one network, as in the seed) or nat
    /// (the client outside, the real servers on an inside network behind the directors). The
    /// lab's inventory says it; `lvslab up` then sets it up.
    #[arg(long, value_enum, default_value_t = crate::lvs::Forwarding::Dr)]
    pub forwarding: crate::lvs::Forwarding,
    /// What the nodes run as PID 1. sysv: lvslab's own init, sshd and the node's runlevel-2
    /// scripts (fast, any kernel). systemd: each node a systemd-nspawn container of this
    /// machine's root tree, booted by systemd: lvslab then enables units, reloads with
    /// `systemctl`, and `drill reboot` is a real `systemctl reboot`. Needs systemd-nspawn and
    /// the unified cgroup hierarchy (both are in the VM of `--vm`).
    #[arg(long, value_enum, default_value_t = crate::lab::NodeInit::Sysv)]
    pub init: crate::lab::NodeInit,
    /// Inside the VM of `lab up --vm`: the network cards to join to the lab's bridges (one per
    /// network, outside first).
    #[arg(long, hide = true, requires = "guest_keys")]
    pub uplink: Vec<String>,
}

fn parse_lab_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 8
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(s.to_string())
    } else {
        Err("a lab name is 1-8 characters a-z0-9, starting with a letter".into())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn unread(args: &[&str]) -> Vec<String> {
        let cli =
            Cli::try_parse_from(std::iter::once("lvslab").chain(args.iter().copied())).unwrap();
        cli.global.unread_by(&cli.command)
    }

    /// A shell completes the values of every option that takes one of a few words.
    #[test]
    fn completions_offer_the_values_not_file_names() {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let mut out = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, "lvslab", &mut out);
        let text = String::from_utf8_lossy(&out);
        for values in [
            "dr nat tun",
            "sysv systemd",
            "keepalived manual",
            "stop kill link-down freeze partition",
        ] {
            assert!(text.contains(values), "bash completions lack `{values}`");
        }
    }

    /// Every example of every command's `--help` is a command line clap takes, and uses no
    /// option its command refuses: the examples are what a newcomer types first.
    #[test]
    fn every_help_example_parses() {
        fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
            for text in [cmd.get_after_help(), cmd.get_after_long_help()]
                .into_iter()
                .flatten()
            {
                let text = text.to_string();
                let mut examples = false;
                for line in text.lines() {
                    if line.starts_with("Examples:") {
                        examples = true;
                        continue;
                    }
                    if !line.starts_with("  ") || line.trim().is_empty() {
                        examples = examples && line.starts_with("  ");
                        continue;
                    }
                    if examples {
                        out.push(line.trim().to_string());
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut lines = Vec::new();
        walk(&<Cli as clap::CommandFactory>::command(), &mut lines);
        assert!(lines.len() > 30, "{lines:?}");
        let mut checked = 0;
        for line in lines {
            // The lvslab command of the line: before a pipe, a redirection, a comment (`#`, or
            // a column of words after two spaces) or `&&`, after `watch -n 1`.
            let end = ["#", "  ", " | ", " > ", " && "]
                .iter()
                .filter_map(|cut| line.find(cut))
                .min()
                .unwrap_or(line.len());
            let command = line[..end].trim();
            let Some(at) = command.find("lvslab ") else {
                continue;
            };
            let words = shlex::split(&command[at..]).unwrap_or_default();
            let parsed = Cli::try_parse_from(&words);
            assert!(parsed.is_ok(), "`{line}`: {:?}", parsed.err());
            if let Ok(cli) = parsed {
                let refused = cli.global.unread_by(&cli.command);
                assert!(refused.is_empty(), "`{line}`: {refused:?}");
            }
            checked += 1;
        }
        assert!(checked > 30, "{checked}");
    }

    #[test]
    fn the_playbooks_directory_is_not_taken_for_a_playbook_file() {
        // Global and positional arguments share clap's id space: one `playbooks` id made
        // `--playbooks DIR validate` read DIR as a playbook.
        let cli = Cli::try_parse_from(["lvslab", "--playbooks", "/d", "run", "a.yml"]).unwrap();
        let Command::Run(run) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(cli.global.playbooks.as_deref(), Some(Path::new("/d")));
        assert_eq!(run.playbooks, vec![PathBuf::from("a.yml")]);
        let cli = Cli::try_parse_from(["lvslab", "--playbooks", "/d", "validate"]).unwrap();
        let Command::Validate(v) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(cli.global.playbooks.as_deref(), Some(Path::new("/d")));
        assert!(v.playbooks.is_empty());
    }

    #[test]
    fn a_global_option_is_refused_by_a_command_that_does_not_read_it() {
        let refused = unread(&["--check", "exec", "--", "reboot"]);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with("--check is not an option of `lvslab exec`: only up, down, run"),
            "{refused:?}"
        );
        for args in [
            &["--check", "drill", "failover"][..],
            &["--check", "bench", "modes"],
            &["--check", "lab", "up"],
            &["--check", "lab", "demo"],
            &["--diff", "set", "a=b"],
            &["-l", "node2", "verify"],
            &["--forks", "3", "drill", "reboot", "node2"],
            // The default, given: given all the same.
            &["--forks", "64", "verify"],
            &["--playbooks", "/x", "exec", "--", "true"],
        ] {
            assert_eq!(unread(args).len(), 1, "{args:?}");
        }
        assert_eq!(unread(&["--check", "--diff", "-l", "x", "status"]).len(), 3);
        for args in [
            &["--check", "--diff", "-l", "node2", "--forks", "3", "up"][..],
            &["-C", "-D", "run", "site.yml"],
            &["-l", "node2", "exec", "--", "true"],
            &["--playbooks", "/x", "validate"],
            &["--json", "-v", "lab", "up"],
            &["--json", "verify"],
        ] {
            assert!(unread(args).is_empty(), "{args:?}: {:?}", unread(args));
        }
    }
}
