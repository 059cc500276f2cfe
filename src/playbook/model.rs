//! Playbooks as written: a list of plays; a play has hosts, vars, tasks and handlers; a task has
//! exactly one module plus optional `when`, `loop`, `notify`, `register`, `tags`, `become`,
//! `changed_when`, `failed_when`, `ignore_errors`. Unknown keys and modules are parse errors.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::diagnostic::located;
use crate::inventory::Vars;
use crate::modules::{MODULE_NAMES, ModuleCall};
use crate::templates::Tpl;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Play {
    pub name: String,
    /// A group, host, or comma-separated list of them; `all` for every host.
    pub hosts: Spanned<String>,
    #[serde(default)]
    pub vars: Vars,
    #[serde(default)]
    pub tasks: Vec<Spanned<Task>>,
    #[serde(default)]
    pub handlers: Vec<Spanned<Task>>,
}

/// `notify` and `tags` take one name or a list.
#[derive(Debug, Clone, Default)]
pub struct Names(pub Vec<String>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Names(vec![s]),
            OneOrMany::Many(v) => Names(v),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Task {
    pub name: Option<String>,
    pub module: Option<ModuleCall>,
    /// An expression (no braces), e.g. `facts.ipvs != "missing"`.
    pub when: Option<String>,
    pub loop_items: Option<Tpl<Vec<serde_json::Value>>>,
    pub notify: Names,
    pub register: Option<String>,
    pub tags: Names,
    pub become_root: Option<bool>,
    pub changed_when: Option<String>,
    pub failed_when: Option<String>,
    pub ignore_errors: bool,
    /// Where each of the task's keys is written (errors about a key point at it).
    pub places: Vec<(String, Location)>,
}

impl Task {
    /// The name shown in reports.
    pub fn title(&self) -> String {
        match (&self.name, &self.module) {
            (Some(n), _) => n.clone(),
            (None, Some(m)) => m.name().to_string(),
            (None, None) => "(no module)".into(),
        }
    }

    /// Where the task writes `key`.
    pub fn place(&self, key: &str) -> Option<&Location> {
        self.places.iter().find(|(k, _)| k == key).map(|(_, at)| at)
    }
}

const TASK_KEYS: &[&str] = &[
    "name",
    "when",
    "loop",
    "notify",
    "register",
    "tags",
    "become",
    "changed_when",
    "failed_when",
    "ignore_errors",
];

/// Ansible's task keys and modules that lvslab writes otherwise, and what to write.
const ANSIBLE_NAMES: &[(&str, &str)] = &[
    (
        "with_items",
        "`with_items` is Ansible's older loop: write `loop:`",
    ),
    (
        "with_list",
        "`with_list` is Ansible's older loop: write `loop:`",
    ),
    (
        "loop_control",
        "`loop_control` is not supported: an item is `item`",
    ),
    ("sudo", "`sudo`: lvslab's task key is `become`"),
    (
        "become_user",
        "`become_user`: lvslab becomes root only (`become: true`)",
    ),
    (
        "apt",
        "`apt`: lvslab's module is `package` (apt, dnf or yum, as the host has)",
    ),
    (
        "yum",
        "`yum`: lvslab's module is `package` (apt, dnf or yum, as the host has)",
    ),
    (
        "dnf",
        "`dnf`: lvslab's module is `package` (apt, dnf or yum, as the host has)",
    ),
    (
        "systemd",
        "`systemd`: lvslab's module is `service` (systemd or init scripts, as the host has)",
    ),
    (
        "systemd_service",
        "`systemd_service`: lvslab's module is `service`",
    ),
    (
        "debug",
        "`debug`: lvslab has no such module; `assert` with `msg` reports, `-v` shows each task's result",
    ),
];

/// What to write instead of an Ansible name, if `key` is one: its own entry, or a module named
/// with its collection (`ansible.builtin.shell`, `ansible.posix.sysctl`).
fn ansible_hint(key: &str) -> Option<String> {
    if let Some((_, hint)) = ANSIBLE_NAMES.iter().find(|(k, _)| *k == key) {
        return Some((*hint).to_string());
    }
    let short = key.rsplit('.').next()?;
    (key.contains('.') && MODULE_NAMES.contains(&short))
        .then(|| format!("`{key}`: lvslab's modules have no collection: write `{short}`"))
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TaskVisitor)
    }
}

struct TaskVisitor;

impl<'de> Visitor<'de> for TaskVisitor {
    type Value = Task;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a task: a map with a name and one module")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Task, A::Error> {
        let mut t = Task::default();
        let mut seen: Vec<String> = Vec::new();
        while let Some(spanned) = map.next_key::<Spanned<String>>()? {
            // Errors about a key name its place (serde-saphyr's would name the task's).
            let at = spanned.referenced;
            let here = |message: String| de::Error::custom(located(&at, message));
            let key = spanned.value;
            if seen.contains(&key) {
                return Err(here(format!("duplicate key `{key}` in a task")));
            }
            t.places.push((key.clone(), at));
            seen.push(key.clone());
            match key.as_str() {
                "name" => t.name = Some(map.next_value()?),
                "when" => t.when = Some(map.next_value()?),
                "loop" => t.loop_items = Some(map.next_value()?),
                "notify" => t.notify = map.next_value()?,
                "register" => t.register = Some(map.next_value()?),
                "tags" => t.tags = map.next_value()?,
                "become" => t.become_root = Some(map.next_value()?),
                "changed_when" => t.changed_when = Some(map.next_value()?),
                "failed_when" => t.failed_when = Some(map.next_value()?),
                "ignore_errors" => t.ignore_errors = map.next_value()?,
                module => {
                    if let Some(hint) = ansible_hint(module) {
                        return Err(here(hint));
                    }
                    if let Some(other) = &t.module {
                        return Err(here(format!(
                            "a task has exactly one module, this one has `{}` and `{module}`",
                            other.name()
                        )));
                    }
                    match ModuleCall::from_map(module, &mut map)? {
                        Some(m) => t.module = Some(m),
                        None => {
                            return Err(here(format!(
                                "unknown module or task key `{module}`; modules: {}; task keys: {}",
                                MODULE_NAMES.join(", "),
                                TASK_KEYS.join(", ")
                            )));
                        }
                    }
                }
            }
        }
        Ok(t)
    }
}
