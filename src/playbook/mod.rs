//! Playbooks: loading and checking them (against the inventory and templates, before any host
//! is contacted), and running them ([`runner`]).

pub mod model;
pub mod runner;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Source, SourceError};
use crate::inventory::Inventory;
use crate::modules::ModuleCall;
use crate::secrets::Secrets;
use crate::templates::Templates;
use model::Play;

/// The playbooks shipped in the binary (`playbooks/`).
pub const BUILTIN: &[(&str, &str)] = &[
    ("boot.yml", include_str!("../../playbooks/boot.yml")),
    (
        "real-servers.yml",
        include_str!("../../playbooks/real-servers.yml"),
    ),
    (
        "keepalived.yml",
        include_str!("../../playbooks/keepalived.yml"),
    ),
    ("manual.yml", include_str!("../../playbooks/manual.yml")),
    ("teardown.yml", include_str!("../../playbooks/teardown.yml")),
];

pub struct Playbook {
    pub source: Source,
    pub plays: Vec<Play>,
    /// Directory of the file (for its `templates/`); `None` for a built-in playbook.
    pub dir: Option<PathBuf>,
}

impl Playbook {
    /// Reads a playbook; `secrets` are masked in any error that quotes its lines.
    pub fn from_file(path: &Path, secrets: &Secrets) -> Result<Playbook, miette::Report> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| miette::miette!("cannot read playbook {}: {e}", path.display()))?;
        let dir = path.parent().map(Path::to_path_buf);
        let mut source = Source::new(path, text);
        source.mask(secrets);
        Self::parse(source, dir).map_err(|e| miette::Report::new(*e))
    }

    /// A built-in playbook, or the file of that name in `override_dir`.
    pub fn builtin(
        name: &str,
        override_dir: Option<&Path>,
        secrets: &Secrets,
    ) -> Result<Playbook, miette::Report> {
        if let Some(dir) = override_dir {
            let path = dir.join(name);
            if path.exists() {
                return Self::from_file(&path, secrets);
            }
        }
        let text = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| miette::miette!("no built-in playbook {name}"))?;
        Self::parse(
            Source::named(format!("(built-in) playbooks/{name}"), text),
            None,
        )
        .map_err(|e| miette::Report::new(*e))
    }

    pub fn parse(source: Source, dir: Option<PathBuf>) -> Result<Playbook, Box<SourceError>> {
        let plays: Vec<Play> =
            serde_saphyr::from_str(&source.text).map_err(|e| Box::new(source.yaml_error(&e)))?;
        Ok(Playbook { source, plays, dir })
    }

    /// Check the playbook against an inventory and the templates; errors carry file:line:col.
    pub fn check(
        &self,
        inventory: &Inventory,
        templates: &Templates,
        extra_vars: &[String],
    ) -> Result<(), Box<SourceError>> {
        let mut errors = Vec::new();
        let mut known_globals = known_names(inventory);
        known_globals.extend(extra_vars.iter().cloned());
        for play in &self.plays {
            if let Err(name) = inventory.select(&play.hosts.value) {
                errors.push(self.source.error_at(
                    &play.hosts.referenced,
                    format!(
                        "play `{}` runs on `{name}`, which is no host or group of {}",
                        play.name,
                        inventory.path.display()
                    ),
                ));
            }
            let handler_names: HashSet<String> = play
                .handlers
                .iter()
                .filter_map(|h| h.value.name.clone())
                .collect();
            let mut registered: HashSet<String> = HashSet::new();
            for task in play.tasks.iter().chain(play.handlers.iter()) {
                let t = &task.value;
                let at = |msg: String| self.source.error_at(&task.referenced, msg);
                // At the key the error is about, where the task writes it.
                let at_key = |key: &str, msg: String| {
                    self.source
                        .error_at(t.place(key).unwrap_or(&task.referenced), msg)
                };
                let Some(module) = &t.module else {
                    errors.push(at(format!("task `{}` has no module", t.title())));
                    continue;
                };
                for msg in module.check(templates) {
                    errors.push(at_key(
                        module.name(),
                        format!("task `{}`: {msg}", t.title()),
                    ));
                }
                let mut known = known_globals.clone();
                known.extend(play.vars.keys().cloned());
                known.extend(registered.iter().cloned());
                for (key, expr) in [
                    ("when", &t.when),
                    ("changed_when", &t.changed_when),
                    ("failed_when", &t.failed_when),
                ] {
                    let Some(expr) = expr else { continue };
                    // changed_when and failed_when see the module's result, also under the
                    // task's own register name.
                    let mine: Vec<&str> = match key {
                        "when" => Vec::new(),
                        _ => [Some("result"), t.register.as_deref()]
                            .into_iter()
                            .flatten()
                            .collect(),
                    };
                    // A name the expression itself guards (`x is defined`, `x | default(..)`)
                    // may be missing by design.
                    let guarded = ["defined", "default("].iter().any(|g| expr.contains(g));
                    match templates.expression_names(expr) {
                        Err(e) => errors.push(at_key(key, format!("task `{}`: {e}", t.title()))),
                        Ok(_) if guarded => {}
                        Ok(names) => {
                            for name in names {
                                if known.contains(&name) || mine.contains(&name.as_str()) {
                                    continue;
                                }
                                let near = closest(&name, known.iter().map(String::as_str))
                                    .map(|n| format!("; did you mean `{n}`?"))
                                    .unwrap_or_default();
                                errors.push(at_key(key, format!(
                                    "task `{}`: `{key}: {expr}` uses `{name}`, which no inventory, play or registered variable defines{near}",
                                    t.title()
                                )));
                            }
                        }
                    }
                }
                for n in &t.notify.0 {
                    if !handler_names.contains(n) {
                        errors.push(at_key(
                            "notify",
                            format!(
                                "task `{}` notifies `{n}`, which is no handler of this play",
                                t.title()
                            ),
                        ));
                    }
                }
                if let Some(r) = &t.register {
                    registered.insert(r.clone());
                }
                if let ModuleCall::Template(tpl) = module {
                    let mut known = known_globals.clone();
                    known.extend(play.vars.keys().cloned());
                    known.extend(registered.iter().cloned());
                    for name in templates.undeclared(&tpl.src) {
                        if !known.contains(&name) {
                            errors.push(at_key("template", format!(
                                "template {} uses `{name}`, which no inventory, play or registered variable defines",
                                tpl.src
                            )));
                        }
                    }
                }
            }
        }
        match SourceError::join(errors) {
            Some(e) => Err(Box::new(e)),
            None => Ok(()),
        }
    }

    /// The templates for these playbooks (`--playbooks DIR` first, then each playbook's own
    /// directory, then the built-in ones), with every playbook checked against the inventory.
    pub fn checked_templates(
        playbooks: &[Playbook],
        override_dir: Option<&Path>,
        inventory: &Inventory,
        extra_vars: &[String],
    ) -> miette::Result<Templates> {
        let mut dirs: Vec<PathBuf> = override_dir.iter().map(|d| d.join("templates")).collect();
        dirs.extend(playbooks.iter().flat_map(|p| p.template_dirs()));
        let templates = Templates::new(&dirs)?;
        for pb in playbooks {
            pb.check(inventory, &templates, extra_vars)
                .map_err(|e| miette::Report::new(*e))?;
        }
        Ok(templates)
    }

    /// Directories to load templates from, most specific first.
    pub fn template_dirs(&self) -> Vec<PathBuf> {
        self.dir
            .iter()
            .flat_map(|d| [d.join("templates"), d.clone()])
            .collect()
    }
}

/// The name of `names` nearest to a mistyped `name`, when one is near enough to be meant.
pub fn closest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|n| (strsim::damerau_levenshtein(name, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4) && *d < n.len())
        .min()
        .map(|(_, n)| n)
}

/// Variables every task can use: built-ins, and every variable any host of the inventory has.
fn known_names(inv: &Inventory) -> HashSet<String> {
    let mut names: HashSet<String> = runner::BUILTINS.iter().map(|s| s.to_string()).collect();
    for h in &inv.hosts {
        names.extend(inv.host_vars(h).keys().cloned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        crate::inventory::load_str(
            Path::new("inv.yml"),
            include_str!("../../inventory.example.yml").to_string(),
        )
        .unwrap()
        .0
    }

    fn parse(yaml: &str) -> Result<Playbook, Box<SourceError>> {
        Playbook::parse(Source::named("pb.yml", yaml.into()), None)
    }

    fn error(yaml: &str) -> String {
        let t = Templates::new(&[]).unwrap();
        let e = match parse(yaml) {
            Err(e) => e,
            Ok(p) => p.check(&inv(), &t, &[]).expect_err("accepted"),
        };
        let mut all = vec![e.to_string()];
        all.extend(e.more.iter().map(|m| m.to_string()));
        all.join("\n")
    }

    #[test]
    fn builtin_playbooks_check_against_the_example_inventory() {
        let t = Templates::new(&[]).unwrap();
        for (name, _) in BUILTIN {
            let p = Playbook::builtin(name, None, &Secrets::default()).unwrap();
            if let Err(e) = p.check(&inv(), &t, &[]) {
                panic!(
                    "{name}: {e} {:?}",
                    e.more.iter().map(|m| m.to_string()).collect::<Vec<_>>()
                );
            }
        }
    }

    /// Wherever a variable reaches a shell line in a built-in playbook, it goes through
    /// `| quote`: one shell word, whatever the inventory holds.
    #[test]
    fn builtin_shell_lines_quote_their_variables() {
        for (name, text) in BUILTIN {
            for line in text.lines() {
                let line = line.trim();
                let is_shell = ["shell:", "command:", "cmd:", "unless:", "validate:"]
                    .iter()
                    .any(|k| line.contains(k));
                if !is_shell {
                    continue;
                }
                for expr in line.split("{{").skip(1) {
                    let expr = expr.split("}}").next().unwrap_or_default();
                    assert!(
                        expr.contains("| quote"),
                        "{name}: `{{{{{expr}}}}}` reaches a shell line unquoted: {line}"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_module_and_argument_have_lines() {
        let e =
            error("- name: p\n  hosts: all\n  tasks:\n    - name: t\n      sysctll: { key: a }\n");
        assert!(
            e.contains("pb.yml:5:7:") && e.contains("unknown module or task key `sysctll`"),
            "{e}"
        );
        let e = error(
            "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      sysctl: { key: a, vaule: 1 }\n",
        );
        assert!(e.contains("pb.yml:5:") && e.contains("vaule"), "{e}");
    }

    #[test]
    fn literal_module_arguments_are_typed_with_lines() {
        for (task, want) in [
            (
                "sysctl: { key: net.ipv4.ip_forward, value: \"1\\nkernel.x = 1\" }",
                "one line",
            ),
            (
                "sysctl: { key: \"net.ipv4;reboot\", value: 1 }",
                "not a sysctl key",
            ),
            (
                "address: { address: 198.18.0.300/32, dev: lo }",
                "not an IP address",
            ),
            (
                "address: { address: 198.18.0.3/32, dev: \"lo; reboot\" }",
                "not an interface name",
            ),
            (
                "ipvs: { service: { vip: 10.0.0.1, port: 80, scheduler: fastest } }",
                "`fastest`",
            ),
            ("wait_for: { port: 80, host: localhost }", "invalid"),
        ] {
            let e = error(&format!(
                "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      {task}\n"
            ));
            assert!(
                e.contains("pb.yml:5:") && e.to_lowercase().contains(&want.to_lowercase()),
                "{task}: {e}"
            );
        }
    }

    #[test]
    fn missing_groups_handlers_and_templates_are_refused() {
        let e = error("- name: p\n  hosts: webheads\n  tasks: []\n");
        assert!(e.contains("pb.yml:2:") && e.contains("`webheads`"), "{e}");
        let e = error(
            "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      shell: \"true\"\n      notify: nobody\n",
        );
        assert!(
            e.contains("pb.yml:6:7:") && e.contains("notifies `nobody`"),
            "at the key: {e}"
        );
        let e = error(
            "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      template: { src: nope.j2, dest: /tmp/x }\n",
        );
        assert!(e.contains("pb.yml:5:7:") && e.contains("nope.j2"), "{e}");
        let e = error(
            "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      shell: \"true\"\n      when: \"a ==\"\n",
        );
        assert!(e.contains("pb.yml:6:7:") && e.contains("task `t`"), "{e}");
        let e = error(
            "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      shell: \"true\"\n      command: \"true\"\n",
        );
        assert!(
            e.contains("pb.yml:6:7:") && e.contains("exactly one module"),
            "at the second module: {e}"
        );
        // A name nothing defines, in `when:`, with the name it was probably meant to be.
        let e = error(
            "- name: p\n  hosts: all\n  vars: { item_kind: all }\n  tasks:\n    - name: t\n      shell: \"true\"\n      when: itme_kind == 'all'\n",
        );
        assert!(
            e.contains("pb.yml:7:7:")
                && e.contains("`when: itme_kind == 'all'` uses `itme_kind`")
                && e.contains("did you mean `item_kind`?"),
            "{e}"
        );
        // changed_when sees `result` and the register name; registered names count later.
        let ok = "- name: p\n  hosts: all\n  tasks:\n    - name: t\n      shell: \"true\"\n      register: out\n      changed_when: result.rc == 0 and out.rc == 0\n    - name: u\n      shell: \"true\"\n      when: out.rc == 0 and lvs.vip\n";
        assert!(
            parse(ok)
                .unwrap()
                .check(&inv(), &Templates::new(&[]).unwrap(), &[])
                .is_ok()
        );
        // Ansible's names get lvslab's.
        for (task, hint) in [
            (
                "      sysctl: { key: a, value: \"1\" }\n      with_items: [a]\n",
                "`with_items` is Ansible's older loop: write `loop:`",
            ),
            (
                "      apt: { name: curl }\n",
                "`apt`: lvslab's module is `package`",
            ),
            ("      ansible.builtin.shell: \"true\"\n", "write `shell`"),
            (
                "      shell: \"true\"\n      sudo: true\n",
                "`sudo`: lvslab's task key is `become`",
            ),
        ] {
            let e = error(&format!(
                "- name: p\n  hosts: all\n  tasks:\n    - name: t\n{task}"
            ));
            assert!(e.contains(hint), "want {hint}:\n{e}");
        }
    }

    #[test]
    fn template_with_undefined_variable_is_refused() {
        let dir = std::env::temp_dir().join(format!("lvslab-tpl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("bad.j2"),
            "ok {{ inventory_hostname }}\n{{ no_such_var }}\n",
        )
        .unwrap();
        let t = Templates::new(std::slice::from_ref(&dir)).unwrap();
        let p = parse("- name: p\n  hosts: all\n  tasks:\n    - name: t\n      template: { src: bad.j2, dest: /tmp/x }\n").unwrap();
        let e = p.check(&inv(), &t, &[]).unwrap_err().to_string();
        assert!(e.contains("bad.j2 uses `no_such_var`"), "{e}");
        std::fs::write(dir.join("broken.j2"), "line one\n{% if %}\n").unwrap();
        let err = Templates::new(std::slice::from_ref(&dir))
            .err()
            .expect("syntax error refused")
            .to_string();
        assert!(err.contains("broken.j2:2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod fuzz {
    //! The playbook parser never panics on a built-in playbook cut or spliced at random places.
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../../inventory.example.yml");

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn playbook_parser_never_panics(cut in 0usize..4000, insert in "[ :\\-\\[\\]{}\"'#&*!|>0-9a-z\n]{0,12}") {
            let text = BUILTIN[1].1;
            let mut s = text.to_string();
            let mut at = cut.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert_str(at, &insert);
            let source = crate::diagnostic::Source::new(Path::new("p.yml"), s);
            if let Ok(p) = Playbook::parse(source, None) {
                let (inv, _) = crate::inventory::load_str(Path::new("f.yml"), EXAMPLE.to_string()).unwrap();
                let t = crate::templates::Templates::new(&[]).unwrap();
                let _ = p.check(&inv, &t, &[]);
            }
        }
    }
}
