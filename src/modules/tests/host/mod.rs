//! A fake host with state, for the modules' tests: files, kernel settings, devices with their
//! addresses, routes, services and processes, packages, the IPVS table. It answers exactly the
//! command lines lvslab builds: each is recognised by taking its arguments out of the line and
//! building it again with its `sh::` builder, which must give the same line; queries are
//! answered in the real tool's output format from the state, and changes are made to the state.
//! A line it does not know fails the test.

mod files;
mod ipvs;
mod net;
mod packages;
mod services;
mod sysctl;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::lvs::ipvs::Table;
use crate::lvs::{Cidr, Endpoint};
use crate::transport::ExecOutput;
use crate::transport::fake::out;

pub use files::File;
pub use net::{Address, Device, Route};
pub use services::Service;

/// What a host is and holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// `systemd` or `sysv`, as its facts say.
    pub init: String,
    /// Its package manager: apt-get, dnf or yum (empty: none).
    pub pkg: String,
    /// Not root: every change is refused, in each tool's words.
    pub unprivileged: bool,
    /// Regular files by path.
    pub files: BTreeMap<String, File>,
    /// Directories by path, with their mode (their parents exist too).
    pub dirs: BTreeMap<String, String>,
    /// The kernel's settings (/proc/sys) by key, as the kernel prints them.
    pub sysctls: BTreeMap<String, String>,
    pub devices: BTreeMap<String, Device>,
    /// Kernel modules that can be loaded, with the devices each brings.
    pub kernel_modules: BTreeMap<String, Vec<String>>,
    /// Routes by destination (`default`, `198.18.1.0/24`).
    pub routes: BTreeMap<String, Route>,
    pub services: BTreeMap<String, Service>,
    /// Running processes: their pids by name.
    pub processes: BTreeMap<String, Vec<u32>>,
    /// Processes by name stopped by a signal (state T) until continued.
    pub frozen: BTreeSet<String>,
    /// Processes by name that run and do not answer (keepalived: no state dump).
    pub hung: BTreeSet<String>,
    /// The pid the last process started got.
    pub last_pid: u32,
    pub installed: BTreeSet<String>,
    /// What the package manager can install.
    pub repository: BTreeSet<String>,
    /// `None`: the kernel has no IPVS.
    pub ipvs: Option<Table>,
    /// Rules another program (keepalived) applies to the IPVS table right after the next read
    /// of it: a change made between a query and its apply.
    pub ipvs_meanwhile: Vec<crate::lvs::ipvs::Rule>,
    /// Where TCP connections are accepted.
    pub listening: BTreeSet<Endpoint>,
    /// The HTTP status a GET of each URL answers (none: no answer).
    pub http: BTreeMap<String, u16>,
}

impl State {
    /// A Debian host with systemd, apt-get and IPVS; lo and eth0 (10.0.0.11/24) up.
    pub fn new() -> State {
        State {
            init: "systemd".into(),
            pkg: "apt-get".into(),
            unprivileged: false,
            files: BTreeMap::new(),
            dirs: BTreeMap::new(),
            sysctls: BTreeMap::new(),
            devices: BTreeMap::new(),
            kernel_modules: BTreeMap::new(),
            routes: BTreeMap::new(),
            services: BTreeMap::new(),
            processes: BTreeMap::new(),
            frozen: BTreeSet::new(),
            hung: BTreeSet::new(),
            last_pid: 999,
            installed: BTreeSet::new(),
            repository: BTreeSet::new(),
            ipvs: Some(Table::default()),
            ipvs_meanwhile: Vec::new(),
            listening: BTreeSet::new(),
            http: BTreeMap::new(),
        }
        .device("lo", true)
        .address("lo", "127.0.0.1/8", None)
        .device("eth0", true)
        .address("eth0", "10.0.0.11/24", None)
    }

    /// What its facts script prints.
    pub fn facts(&self) -> String {
        let os = if self.pkg == "apt-get" {
            "os_id=debian\nos_like=\nos_version=12"
        } else {
            "os_id=rocky\nos_like=rhel centos fedora\nos_version=9.4"
        };
        let ipvs = if self.ipvs.is_some() {
            "loaded"
        } else {
            "missing"
        };
        let pkg = if self.pkg.is_empty() {
            String::new()
        } else {
            format!("pkg={}\n", self.pkg)
        };
        format!(
            "{os}\n{pkg}init={}\nhostname=a\nkernel=6.1.0\nipvs={ipvs}\n",
            self.init
        )
    }

    pub fn file(mut self, path: &str, content: &str) -> State {
        self.files.insert(path.into(), File::new(content));
        self
    }

    pub fn dir(mut self, path: &str, mode: &str) -> State {
        self.dirs.insert(path.into(), mode.into());
        self
    }

    pub fn sysctl(mut self, key: &str, value: &str) -> State {
        self.sysctls.insert(key.into(), value.into());
        self
    }

    pub fn device(mut self, name: &str, up: bool) -> State {
        self.devices.insert(
            name.into(),
            Device {
                up,
                addresses: Vec::new(),
            },
        );
        self
    }

    /// `cidr` on `dev` (which must be there), with its label.
    pub fn address(mut self, dev: &str, cidr: &str, label: Option<&str>) -> State {
        if let (Some(d), Ok(cidr)) = (self.devices.get_mut(dev), cidr.parse::<Cidr>()) {
            d.addresses.push(Address {
                cidr,
                label: label.map(str::to_string),
            });
        }
        self
    }

    pub fn route(mut self, to: &str, via: &str, dev: &str) -> State {
        self.routes.insert(
            to.into(),
            Route {
                via: Some(via.into()),
                dev: dev.into(),
            },
        );
        self
    }

    pub fn kernel_module(mut self, name: &str, devices: &[&str]) -> State {
        self.kernel_modules
            .insert(name.into(), devices.iter().map(|d| d.to_string()).collect());
        self
    }

    /// A service whose daemon is a process of the same name.
    pub fn service(mut self, name: &str, running: bool, enabled: bool) -> State {
        self.services
            .insert(name.into(), Service::new(name, enabled));
        if running {
            self.start(name);
        }
        self
    }

    pub fn installed(mut self, package: &str) -> State {
        self.repository.insert(package.into());
        self.installed.insert(package.into());
        self
    }

    /// A package the manager can install.
    pub fn available(mut self, package: &str) -> State {
        self.repository.insert(package.into());
        self
    }

    pub fn unprivileged(mut self) -> State {
        self.unprivileged = true;
        self
    }

    /// A file's content, as text.
    pub fn content(&self, path: &str) -> Option<String> {
        self.files
            .get(path)
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
    }

    /// The addresses on `dev` as `<cidr> <label>` (the label `-` when there is none).
    pub fn addresses(&self, dev: &str) -> Vec<String> {
        self.devices
            .get(dev)
            .map(|d| {
                d.addresses
                    .iter()
                    .map(|a| format!("{} {}", a.cidr, a.label.as_deref().unwrap_or("-")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every process of that name ended: not frozen or hung any more either.
    pub fn end(&mut self, process: &str) {
        self.processes.remove(process);
        self.frozen.remove(process);
        self.hung.remove(process);
    }

    pub fn runs(&self, process: &str) -> bool {
        self.processes.get(process).is_some_and(|p| !p.is_empty())
    }

    /// A new process of that name.
    pub fn start(&mut self, process: &str) -> u32 {
        self.last_pid += 1;
        self.processes
            .entry(process.into())
            .or_default()
            .push(self.last_pid);
        self.last_pid
    }

    /// The names of the files directly in `dir`.
    fn children<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> {
        self.files
            .keys()
            .filter_map(move |p| p.strip_prefix(dir)?.strip_prefix('/'))
            .filter(|name| !name.contains('/'))
    }
}

/// Whether a command line reads the host or changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Change,
}

/// How the host answered a command line.
pub struct Answer {
    out: ExecOutput,
    kind: Kind,
}

/// A read that printed `stdout`.
fn read(out: ExecOutput) -> Option<Answer> {
    Some(Answer {
        out,
        kind: Kind::Read,
    })
}

/// A change, made or refused.
fn change(out: ExecOutput) -> Option<Answer> {
    Some(Answer {
        out,
        kind: Kind::Change,
    })
}

/// A change that succeeded and printed nothing.
fn done() -> Option<Answer> {
    change(out(0, ""))
}

/// A line a test answers itself, and what it does: a playbook's own command (`command:`,
/// `shell:`, `unless:`), or a read it scripts (a port that opens late).
type Program = Arc<dyn Fn(&mut State) -> ExecOutput + Send + Sync>;

/// A `validate:` command, given the new content: `Err` with what it printed when it fails.
type Validator = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// One command line as it arrived.
struct Call<'a> {
    line: &'a str,
    stdin: Option<&'a [u8]>,
    words: Vec<String>,
    validators: &'a BTreeMap<String, Validator>,
}

impl Call<'_> {
    /// The `i`th word as `sh` splits the line.
    fn word(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }

    /// The word after the first `word`.
    fn after(&self, word: &str) -> Option<&str> {
        let i = self.words.iter().position(|w| w == word)?;
        self.word(i + 1)
    }

    /// Every word after an occurrence of `word`.
    fn all_after(&self, word: &str) -> Vec<&str> {
        self.words
            .windows(2)
            .filter(|w| w[0] == word)
            .map(|w| w[1].as_str())
            .collect()
    }

    /// Whether `built`, built by an `sh::` builder, is this very line.
    fn is(&self, built: impl AsRef<str>) -> bool {
        built.as_ref() == self.line
    }
}

/// The fake host: its state, the playbook's own commands, and what it was sent.
pub struct FakeHost {
    state: Mutex<State>,
    programs: Mutex<BTreeMap<String, (Kind, Program)>>,
    validators: Mutex<BTreeMap<String, Validator>>,
    changes: Mutex<Vec<String>>,
    unknown: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeHost {
    pub fn new(state: State) -> FakeHost {
        FakeHost {
            state: Mutex::new(state),
            programs: Mutex::default(),
            validators: Mutex::default(),
            changes: Mutex::default(),
            unknown: Mutex::default(),
        }
    }

    pub fn state(&self) -> State {
        lock(&self.state).clone()
    }

    /// `line` does what `effect` does to the host; a `kind` of change, or a read.
    pub fn program(
        &self,
        line: &str,
        kind: Kind,
        effect: impl Fn(&mut State) -> ExecOutput + Send + Sync + 'static,
    ) {
        lock(&self.programs).insert(line.into(), (kind, Arc::new(effect)));
    }

    /// The `validate:` command `command` (with its `%s`) judges the new content by `check`.
    pub fn validator(
        &self,
        command: &str,
        check: impl Fn(&[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) {
        lock(&self.validators).insert(command.into(), Arc::new(check));
    }

    /// The lines that changed the host (or tried to) since the last call.
    pub fn take_changes(&self) -> Vec<String> {
        std::mem::take(&mut lock(&self.changes))
    }

    /// The lines the host did not know.
    pub fn unknown(&self) -> Vec<String> {
        lock(&self.unknown).clone()
    }

    /// Answers `line`, changing the state as the command would. Panics on a line it does not
    /// know.
    pub fn answer(&self, line: &str, stdin: Option<&[u8]>) -> ExecOutput {
        let program = lock(&self.programs).get(line).cloned();
        let validators = lock(&self.validators).clone();
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let call = Call {
            line,
            stdin,
            words: shlex::split(line).unwrap_or_default(),
            validators: &validators,
        };
        let answer = match program {
            Some((kind, effect)) => Some(Answer {
                out: effect(state),
                kind,
            }),
            None => files::answer(state, &call)
                .or_else(|| sysctl::answer(state, &call))
                .or_else(|| net::answer(state, &call))
                .or_else(|| services::answer(state, &call))
                .or_else(|| packages::answer(state, &call))
                .or_else(|| ipvs::answer(state, &call)),
        };
        drop(guard);
        let Some(answer) = answer else {
            lock(&self.unknown).push(line.to_string());
            panic!("the fake host does not know this command line:\n{line}");
        };
        if answer.kind == Kind::Change {
            lock(&self.changes).push(line.to_string());
        }
        answer.out
    }
}
