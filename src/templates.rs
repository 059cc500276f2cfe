//! Templating, for playbooks and modules alike: the minijinja environment (strict: an
//! undefined variable is an error; a `quote` filter for shell words), the templates shipped in
//! the binary, and [`Tpl`], a playbook value that may be a `{{ expression }}` resolved per host
//! at run time.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// A value as written in a playbook: a literal, or a string with `{{ }}` / `{% %}` to render.
/// `"{{ expr }}"` alone keeps the expression's type (a list stays a list).
#[derive(Debug, Clone)]
pub enum Tpl<T> {
    Lit(T),
    Expr(String, PhantomData<T>),
}

impl<T: Default> Default for Tpl<T> {
    fn default() -> Self {
        Tpl::Lit(T::default())
    }
}

pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Tpl<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if let serde_json::Value::String(s) = &v
            && is_template(s)
        {
            return Ok(Tpl::Expr(s.clone(), PhantomData));
        }
        convert::<T>(v)
            .map(Tpl::Lit)
            .map_err(serde::de::Error::custom)
    }
}

impl<T: Serialize> Serialize for Tpl<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tpl::Lit(v) => v.serialize(s),
            Tpl::Expr(e, _) => e.serialize(s),
        }
    }
}

/// Turn a JSON-like value into `T`, accepting the usual YAML looseness: `"80"` for a number,
/// `80` for a string.
pub fn convert<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    match T::deserialize(&v) {
        Ok(t) => Ok(t),
        Err(first) => {
            let retry = match &v {
                serde_json::Value::String(s) => serde_json::from_str::<T>(s.trim()).ok(),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                    T::deserialize(serde_json::Value::String(v.to_string())).ok()
                }
                _ => None,
            };
            retry.ok_or_else(|| first.to_string())
        }
    }
}

/// Any serializable value as a template value.
pub fn to_value<T: Serialize>(v: &T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// The template environment: playbook templates by name, strict undefined variables.
pub struct Templates {
    env: Environment<'static>,
}

/// Templates shipped in the binary (`templates/`).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "keepalived.conf.j2",
        include_str!("../templates/keepalived.conf.j2"),
    ),
    ("index.html.j2", include_str!("../templates/index.html.j2")),
    ("sorry.html.j2", include_str!("../templates/sorry.html.j2")),
    (
        "lvslab-vrrp-notify.sh.j2",
        include_str!("../templates/lvslab-vrrp-notify.sh.j2"),
    ),
    (
        "web-ports.conf.j2",
        include_str!("../templates/web-ports.conf.j2"),
    ),
    (
        "lvslab-boot.sh.j2",
        include_str!("../templates/lvslab-boot.sh.j2"),
    ),
    (
        "lvslab-boot.service.j2",
        include_str!("../templates/lvslab-boot.service.j2"),
    ),
    (
        "lvslab-boot.init.j2",
        include_str!("../templates/lvslab-boot.init.j2"),
    ),
];

impl Templates {
    /// Builtin templates, overridden by files in `dirs` (searched in order).
    pub fn new(dirs: &[PathBuf]) -> Result<Self, miette::Report> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| miette::miette!("{e}"))?;
        env.set_syntax(syntax);
        // `{{ x | quote }}`: one shell word, however x is written (the only quoting there is).
        env.add_filter("quote", |v: String| {
            crate::transport::sh::quote(&v).into_owned()
        });
        // `{{ service.forwarding | lb_kind }}`: keepalived's word for a forwarding method.
        env.add_filter("lb_kind", |v: String| -> Result<String, minijinja::Error> {
            v.parse::<crate::lvs::Forwarding>()
                .map(|f| f.keepalived_kind().to_string())
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        // `{{ boot.dir }}` and the rest: where lvslab keeps what it sets again at boot.
        {
            use crate::transport::sh;
            env.add_global(
                "boot",
                minijinja::context! {
                    dir => sh::BOOT_DIR,
                    script => sh::BOOT_SCRIPT,
                    service => sh::BOOT_SERVICE,
                    sysctl_file => sh::SYSCTL_FILE,
                    // The daemons that use what it sets: keepalived and the web servers.
                    before => std::iter::once("keepalived")
                        .chain(crate::lvs::web::WebServer::every_service())
                        .collect::<Vec<_>>(),
                },
            );
        }
        for (name, text) in BUILTIN {
            env.add_template_owned(name.to_string(), text.to_string())
                .map_err(|e| template_error(name, &e))?;
        }
        let mut t = Templates { env };
        for dir in dirs.iter().rev() {
            t.load_dir(dir)?;
        }
        Ok(t)
    }

    fn load_dir(&mut self, dir: &Path) -> Result<(), miette::Report> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if !name.ends_with(".j2") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| miette::miette!("cannot read template {}: {e}", path.display()))?;
            self.env
                .add_template_owned(name, text)
                .map_err(|e| template_error(&path.display().to_string(), &e))?;
        }
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Render a named template file.
    pub fn render_file(&self, name: &str, ctx: &Value) -> Result<String, String> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| format!("template {name}: {e}"))?;
        t.render(ctx).map_err(|e| describe(name, &e))
    }

    /// Names a template uses that nothing defines (for `validate`).
    pub fn undeclared(&self, name: &str) -> Vec<String> {
        match self.env.get_template(name) {
            Ok(t) => self.not_global(t.undeclared_variables(false)),
            Err(_) => Vec::new(),
        }
    }

    /// `names` without lvslab's own globals (`boot`, declared by the environment), sorted.
    fn not_global(&self, names: std::collections::HashSet<String>) -> Vec<String> {
        let globals: Vec<&str> = self.env.globals().map(|(n, _)| n).collect();
        let mut v: Vec<String> = names
            .into_iter()
            .filter(|n| !globals.contains(&n.as_str()))
            .collect();
        v.sort();
        v
    }

    /// Render a string value from a playbook.
    pub fn render_str(&self, text: &str, ctx: &Value) -> Result<String, String> {
        self.env
            .render_str(text, ctx)
            .map_err(|e| describe(text, &e))
    }

    /// Evaluate a bare expression (as in `when:`).
    pub fn eval(&self, expr: &str, ctx: &Value) -> Result<Value, String> {
        let e = self
            .env
            .compile_expression(expr)
            .map_err(|e| describe(expr, &e))?;
        e.eval(ctx).map_err(|e| describe(expr, &e))
    }

    /// The names an expression reads that nothing it is given defines (lvslab's globals
    /// aside), sorted; a syntax error as [`Templates::check_expression`] words it.
    pub fn expression_names(&self, expr: &str) -> Result<Vec<String>, String> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|e| describe(expr, &e))?;
        Ok(self.not_global(compiled.undeclared_variables(false)))
    }

    /// Check a bare expression's syntax.
    pub fn check_expression(&self, expr: &str) -> Result<(), String> {
        self.env
            .compile_expression(expr)
            .map(|_| ())
            .map_err(|e| describe(expr, &e))
    }

    /// Resolve a playbook value for a host.
    pub fn resolve<T: DeserializeOwned + Clone>(
        &self,
        v: &Tpl<T>,
        ctx: &Value,
    ) -> Result<T, String> {
        match v {
            Tpl::Lit(t) => Ok(t.clone()),
            Tpl::Expr(text, _) => {
                let json = match single_expression(text) {
                    Some(expr) => {
                        let value = self.eval(expr, ctx)?;
                        if value.is_undefined() {
                            return Err(format!("`{text}`: `{expr}` is undefined"));
                        }
                        serde_json::to_value(&value).map_err(|e| format!("`{text}`: {e}"))?
                    }
                    None => serde_json::Value::String(self.render_str(text, ctx)?),
                };
                convert::<T>(json).map_err(|e| format!("`{text}`: {e}"))
            }
        }
    }
}

/// `{{ expr }}` and nothing else: the expression inside.
fn single_expression(text: &str) -> Option<&str> {
    let t = text.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !t.contains("{%")).then_some(inner.trim())
}

fn describe(what: &str, e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(line) = e.line() {
        s = format!("{s} (line {line} of {})", e.name().unwrap_or(what));
    }
    s
}

fn template_error(name: &str, e: &minijinja::Error) -> miette::Report {
    let line = e.line().map(|l| format!(":{l}")).unwrap_or_default();
    miette::miette!(
        "{name}{line}: template error: {}",
        e.detail().unwrap_or(&e.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lvslab_boot_starts_before_keepalived_and_every_web_server() {
        let t = Templates::new(&[]).unwrap();
        let unit = t.render_file("lvslab-boot.service.j2", &ctx()).unwrap();
        assert!(
            unit.contains(
                "Before=keepalived.service apache2.service httpd.service nginx.service\n"
            ),
            "{unit}"
        );
        assert!(
            unit.contains("ExecStart=/usr/local/sbin/lvslab-boot\n"),
            "{unit}"
        );
        let init = t.render_file("lvslab-boot.init.j2", &ctx()).unwrap();
        assert!(
            init.contains("# X-Start-Before:    keepalived apache2 httpd nginx\n"),
            "{init}"
        );
    }

    /// The context a task on `host` of this inventory sees, on a kernel with IPVS.
    fn host_ctx(yaml: &str, host: &str) -> Value {
        host_ctx_on(yaml, host, "loaded")
    }

    /// The same, on a kernel whose IPVS is `ipvs` (its fact: `loaded`, `missing`, ...).
    fn host_ctx_on(yaml: &str, host: &str, ipvs: &str) -> Value {
        let (inv, _) = crate::inventory::load_str(std::path::Path::new("i.yml"), yaml.into())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let lvs = inv.lvs.unwrap();
        let mut v = serde_json::Map::new();
        v.insert("lvs".into(), lvs.template_value());
        v.insert("inventory_hostname".into(), host.into());
        v.insert("facts".into(), serde_json::json!({ "ipvs": ipvs }));
        v.extend(lvs.host_values(host, "debian"));
        to_value(&serde_json::Value::Object(v))
    }

    const SERVICES: &str = "\
lvs:
  vip: 10.0.0.100
  services:
    - { port: 80 }
    - { port: 8080, scheduler: wlc, persistence_timeout: 300, persistence_granularity: 255.255.255.0, real_servers: [r1] }
    - { fwmark: 1, ports: [8081, 8082], persistence_timeout: 60, sorry_server: local }
  vrrp: { virtual_router_id: 51 }
vars: { web_server: nginx }
hosts:
  d1: { address: 10.0.0.11, interface: eth0, vrrp: { state: MASTER, priority: 100 } }
  r1: { address: 10.0.0.12, interface: eth0 }
  r2: { address: 10.0.0.13, interface: eth0 }
groups:
  directors: { hosts: [d1] }
  real_servers: { hosts: [r1, r2] }
";

    #[test]
    fn keepalived_conf_has_one_virtual_server_per_service_and_the_vip_once() {
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        assert_eq!(conf.matches("10.0.0.100/24 dev eth0").count(), 1, "{conf}");
        assert!(conf.contains("virtual_server 10.0.0.100 80 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n\n    real_server 10.0.0.12 80 {"), "{conf}");
        assert!(conf.contains("virtual_server 10.0.0.100 8080 {\n    delay_loop 6\n    lb_algo wlc\n    lb_kind DR\n    protocol TCP\n    persistence_timeout 300\n    persistence_granularity 255.255.255.0\n\n    real_server 10.0.0.12 8080 {"), "{conf}");
        assert!(!conf.contains("real_server 10.0.0.13 8080"), "{conf}");
        // No `protocol` for a mark: keepalived -t warns that it is ignored, and fails.
        // A mark's real servers have no port (keepalived -t warns and fails on one); their
        // check connects to the first port.
        assert!(conf.contains("virtual_server fwmark 1 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind DR\n    sorry_server 10.0.0.11 8081\n    persistence_timeout 60\n\n    real_server 10.0.0.12 {"), "{conf}");
        assert!(
            conf.contains("status_code 200\n            }\n            connect_port 8081\n"),
            "{conf}"
        );
        assert_eq!(conf.matches("connect_port").count(), 2, "{conf}");
        // The short form renders as it always did: no persistence line, no mark.
        let short = SERVICES
            .replace("  services:\n    - { port: 80 }\n", "  port: 80\n")
            .lines()
            .filter(|l| !l.starts_with("    - {"))
            .collect::<Vec<_>>()
            .join("\n");
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&short, "d1"))
            .unwrap();
        assert_eq!(conf.matches("virtual_server").count(), 1, "{conf}");
        assert!(
            !conf.contains("    persistence") && !conf.contains("fwmark"),
            "{conf}"
        );
    }

    /// `track_script`: a `vrrp_script` block each (before the instance, with script security),
    /// tracked by the instance; nothing without the key.
    #[test]
    fn keepalived_conf_renders_tracked_scripts() {
        let tracked = SERVICES.replace(
            "  vrrp: { virtual_router_id: 51 }",
            "  vrrp:\n    virtual_router_id: 51\n    track_script:\n      - { name: uplink, script: /usr/bin/ping -c 1 -W 1 10.0.0.1, weight: -60, fall: 2 }\n      - { script: /usr/bin/test ! -e /etc/lvslab-maintenance, interval: 5 }",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&tracked, "d1"))
            .unwrap();
        assert!(
            conf.contains("    script_user root\n    enable_script_security\n}\n\nvrrp_script uplink {\n    script \"/usr/bin/ping -c 1 -W 1 10.0.0.1\"\n    interval 2\n    timeout 2\n    weight -60\n    fall 2\n    rise 1\n}\n\nvrrp_script check_2 {\n    script \"/usr/bin/test ! -e /etc/lvslab-maintenance\"\n    interval 5\n    timeout 5\n    weight 0\n    fall 1\n    rise 1\n}\n\nvrrp_instance VI_1 {"),
            "{conf}"
        );
        assert!(
            conf.contains("    track_script {\n        uplink\n        check_2\n    }\n"),
            "{conf}"
        );
        let plain = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        assert!(
            !plain.contains("vrrp_script")
                && !plain.contains("track_script")
                && !plain.contains("script_user"),
            "{plain}"
        );
    }

    /// `type: misc`: MISC_CHECK with the operator's command for each real server (its address
    /// and the port its check asks filled in), misc_timeout from connect_timeout, and script
    /// security on.
    #[test]
    fn keepalived_conf_renders_a_misc_check() {
        let misc = SERVICES.replace(
            "  vrrp: { virtual_router_id: 51 }",
            "  vrrp: { virtual_router_id: 51 }\n  health_check: { type: misc, script: \"/usr/bin/curl -sf -o /dev/null http://{address}:{port}/health\", connect_timeout: 2, retry: 1 }",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&misc, "d1"))
            .unwrap();
        assert!(
            conf.contains("    real_server 10.0.0.13 80 {\n        weight 1\n        MISC_CHECK {\n            misc_path \"/usr/bin/curl -sf -o /dev/null http://10.0.0.13:80/health\"\n            misc_timeout 2\n            retry 1\n            delay_before_retry 3\n        }\n    }"),
            "{conf}"
        );
        // A mark's check asks its first port.
        assert!(
            conf.contains(
                "misc_path \"/usr/bin/curl -sf -o /dev/null http://10.0.0.12:8081/health\""
            ),
            "{conf}"
        );
        assert!(
            conf.contains("    script_user root\n    enable_script_security\n"),
            "{conf}"
        );
        assert!(
            !conf.contains("connect_timeout") && !conf.contains("connect_port"),
            "{conf}"
        );
    }

    /// A service with `tls: true`: keepalived checks its real servers with SSL_GET (the others
    /// keep HTTP_GET), and nginx serves its port with lvslab's certificate.
    #[test]
    fn a_tls_service_is_checked_with_ssl_get_and_served_with_the_certificate() {
        let tls = SERVICES.replace(
            "    - { port: 8080, scheduler: wlc,",
            "    - { port: 8443, tls: true }\n    - { port: 8080, scheduler: wlc,",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&tls, "d1"))
            .unwrap();
        let block = conf
            .split("virtual_server 10.0.0.100 8443 {")
            .nth(1)
            .and_then(|b| b.split("virtual_server").next())
            .unwrap_or_default();
        assert!(
            block.contains("        SSL_GET {\n            url {\n                path /\n"),
            "{conf}"
        );
        assert_eq!(conf.matches("SSL_GET").count(), 2, "{conf}");
        assert!(conf.contains("HTTP_GET"), "{conf}");
        let ports = t
            .render_file("web-ports.conf.j2", &host_ctx(&tls, "r1"))
            .unwrap();
        assert!(
            ports.contains("server {\n    listen 8443 ssl;\n    ssl_certificate /etc/lvslab-tls/cert.pem;\n    ssl_certificate_key /etc/lvslab-tls/key.pem;\n    root /var/www/html;\n}"),
            "{ports}"
        );
        assert!(ports.contains("    listen 8081;\n"), "{ports}");
    }

    /// A scheduler's flags follow `lb_algo`, and `sorry_server_inhibit` its sorry server.
    #[test]
    fn keepalived_conf_renders_scheduler_flags_and_sorry_server_inhibit() {
        let on = SERVICES.replace(
            "    - { port: 80 }\n",
            "    - { port: 80, scheduler: sh, scheduler_flags: [sh-port, sh-fallback], sorry_server: local, sorry_server_inhibit: true }\n",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&on, "d1"))
            .unwrap();
        assert!(
            conf.contains("    lb_algo sh\n    sh-fallback\n    sh-port\n    lb_kind DR\n    protocol TCP\n    sorry_server 10.0.0.11 80\n    sorry_server_inhibit\n"),
            "{conf}"
        );
        assert_eq!(conf.matches("sorry_server_inhibit").count(), 1, "{conf}");
    }

    /// What keepalived does on failure, per service: nothing of it unless the inventory says.
    #[test]
    fn keepalived_conf_renders_what_keepalived_does_on_failure() {
        let on = SERVICES.replace(
            "    - { port: 80 }\n",
            "    - { port: 80, inhibit_on_failure: true, alpha: true, quorum: 2, hysteresis: 1, sorry_server: local }\n",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&on, "d1"))
            .unwrap();
        assert!(
            conf.contains("    protocol TCP\n    sorry_server 10.0.0.11 80\n    inhibit_on_failure\n    alpha\n    quorum 2\n    hysteresis 1\n\n    real_server 10.0.0.12 80 {"),
            "{conf}"
        );
        assert_eq!(conf.matches("inhibit_on_failure").count(), 1, "{conf}");
        let plain = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        for word in ["inhibit_on_failure", "alpha", "quorum", "hysteresis"] {
            assert!(!plain.contains(word), "{word}: {plain}");
        }
    }

    /// `via_vip`: each check goes to the VIP from the director's own address with the real
    /// server's mark, and one fwmark service per real server holds it alone (no check of its
    /// own); nothing of it without the key.
    #[test]
    fn keepalived_conf_renders_checks_through_the_vip() {
        let via = SERVICES.replace(
            "  vrrp: { virtual_router_id: 51 }",
            "  vrrp: { virtual_router_id: 51 }\n  health_check: { via_vip: true }",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&via, "d1"))
            .unwrap();
        assert!(
            conf.contains("    real_server 10.0.0.13 80 {\n        weight 1\n        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n            # the clients' way: to the VIP, marked for the service that holds r2 alone\n            connect_ip 10.0.0.100\n            connect_port 80\n            bindto 10.0.0.11\n            fwmark 10002\n            connect_timeout 3\n"),
            "{conf}"
        );
        // The mark service's check asks its own first port, through the VIP too.
        assert!(
            conf.contains("            connect_ip 10.0.0.100\n            connect_port 8081\n            bindto 10.0.0.11\n            fwmark 10001\n"),
            "{conf}"
        );
        assert!(
            conf.contains("virtual_server fwmark 10001 {\n    lb_algo rr\n    lb_kind DR\n    real_server 10.0.0.12 {\n        weight 1\n    }\n}"),
            "{conf}"
        );
        assert!(conf.contains("virtual_server fwmark 10002 {"), "{conf}");
        assert_eq!(conf.matches("virtual_server").count(), 5, "{conf}");
        let plain = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        assert!(
            !plain.contains("connect_ip") && !plain.contains("fwmark 1000"),
            "{plain}"
        );
    }

    /// `type: tcp` renders keepalived's TCP_CHECK with the same timers (and the port of a
    /// mark's check), no url.
    #[test]
    fn keepalived_conf_renders_a_tcp_check() {
        let tcp = SERVICES.replace(
            "  vrrp: { virtual_router_id: 51 }",
            "  vrrp: { virtual_router_id: 51 }\n  health_check: { type: tcp, connect_timeout: 2 }",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&tcp, "d1"))
            .unwrap();
        assert!(
            conf.contains("    real_server 10.0.0.12 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 2\n            retry 3\n            delay_before_retry 3\n        }\n    }"),
            "{conf}"
        );
        assert!(
            conf.contains("        TCP_CHECK {\n            connect_port 8081\n            connect_timeout 2\n"),
            "{conf}"
        );
        assert!(
            !conf.contains("HTTP_GET") && !conf.contains("url {"),
            "{conf}"
        );
        let http = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        assert!(
            http.contains(
                "        weight 1\n        HTTP_GET {\n            url {\n                path /\n"
            ),
            "{http}"
        );
    }

    /// The pair as operators configure it: unicast to the other director, nopreempt (every
    /// director starts BACKUP), GARP settings, the notify script (run as root, with script
    /// security); none of it without the keys (the seed's instance is unchanged).
    #[test]
    fn keepalived_conf_renders_the_pair_s_vrrp_settings() {
        let pair = SERVICES
            .replace(
                "  vrrp: { virtual_router_id: 51 }",
                "  vrrp: { virtual_router_id: 51, unicast: true, preempt: false, notify: true, garp_master_refresh: 30, garp_master_repeat: 2, track_interface: [eth1] }",
            )
            .replace(
                "  r1: { address",
                "  d2: { address: 10.0.0.14, interface: eth0, vrrp: { state: BACKUP, priority: 50 } }\n  r1: { address",
            )
            .replace("hosts: [d1] }", "hosts: [d1, d2] }");
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&pair, "d1"))
            .unwrap();
        assert!(
            conf.contains("    router_id d1\n    # Scripts run as root, and only from files that root alone can change.\n    script_user root\n    enable_script_security\n}\n\nvrrp_instance VI_1 {"),
            "{conf}"
        );
        assert!(
            conf.contains("    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    advert_int 1\n    unicast_src_ip 10.0.0.11\n    unicast_peer {\n        10.0.0.14\n    }\n    nopreempt\n    garp_master_repeat 2\n    garp_master_refresh 30\n    notify /usr/local/sbin/lvslab-vrrp-notify\n    track_interface {\n        eth1\n    }\n    virtual_ipaddress {"),
            "{conf}"
        );
        let script = t
            .render_file("lvslab-vrrp-notify.sh.j2", &host_ctx(&pair, "d1"))
            .unwrap();
        assert!(script.starts_with("#!/bin/sh\n"), "{script}");
        assert!(script.contains(">> /var/log/lvslab-vrrp.log\n"), "{script}");
        let plain = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        assert!(
            plain.contains("    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    advert_int 1\n    virtual_ipaddress {"),
            "{plain}"
        );
        assert!(
            ["unicast", "preempt", "garp", "notify", "script"]
                .iter()
                .all(|w| !plain.contains(w)),
            "{plain}"
        );
    }

    /// Connection sync: `lvs_sync_daemon` on the director's own interface, following VI_1, only
    /// where the kernel has IPVS (keepalived without it runs VRRP alone).
    #[test]
    fn keepalived_conf_runs_the_sync_daemon_only_with_ipvs() {
        let synced = SERVICES.replace(
            "  vrrp: { virtual_router_id: 51 }",
            "  vrrp: { virtual_router_id: 51, sync_daemon: true }",
        );
        let t = Templates::new(&[]).unwrap();
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx(&synced, "d1"))
            .unwrap();
        assert!(
            conf.contains("    router_id d1\n    # IPVS connection sync on the VRRP interface, following VI_1's state (sync id: its\n    # virtual_router_id): the MASTER sends its connections, the BACKUP keeps them.\n    lvs_sync_daemon eth0 VI_1\n}\n"),
            "{conf}"
        );
        let conf = t
            .render_file("keepalived.conf.j2", &host_ctx_on(&synced, "d1", "missing"))
            .unwrap();
        assert!(!conf.contains("lvs_sync_daemon eth0"), "{conf}");
        assert!(conf.contains("# No lvs_sync_daemon either"), "{conf}");
        let plain = t
            .render_file("keepalived.conf.j2", &host_ctx(SERVICES, "d1"))
            .unwrap();
        assert!(!plain.contains("sync"), "{plain}");
    }

    #[test]
    fn the_web_server_listens_on_every_port_but_its_default_sites() {
        let t = Templates::new(&[]).unwrap();
        let nginx = t
            .render_file("web-ports.conf.j2", &host_ctx(SERVICES, "r2"))
            .unwrap();
        assert!(
            nginx.contains(
                "server {\n    listen 8080;\n    root /var/www/html;\n}\nserver {\n    listen 8081;"
            ),
            "{nginx}"
        );
        assert!(!nginx.contains("listen 80;"), "{nginx}");
        let apache = t
            .render_file(
                "web-ports.conf.j2",
                &host_ctx(
                    &SERVICES.replace("web_server: nginx", "web_server: httpd"),
                    "r2",
                ),
            )
            .unwrap();
        assert!(apache.contains("Listen 8082\n<VirtualHost *:8082>\n    DocumentRoot /var/www/html\n</VirtualHost>\n"), "{apache}");
    }

    fn ctx() -> Value {
        to_value(&serde_json::json!({"port": 80, "names": ["a", "b"], "host": {"name": "n1"}}))
    }

    #[test]
    fn single_expressions_keep_their_type() {
        let t = Templates::new(&[]).unwrap();
        let list: Tpl<Vec<String>> =
            serde_json::from_value(serde_json::json!("{{ names }}")).unwrap();
        assert_eq!(t.resolve(&list, &ctx()).unwrap(), vec!["a", "b"]);
        let port: Tpl<u16> = serde_json::from_value(serde_json::json!("{{ port }}")).unwrap();
        assert_eq!(t.resolve(&port, &ctx()).unwrap(), 80);
        let s: Tpl<String> =
            serde_json::from_value(serde_json::json!("from {{ host.name }}:{{ port }}")).unwrap();
        assert_eq!(t.resolve(&s, &ctx()).unwrap(), "from n1:80");
        let n: Tpl<String> = serde_json::from_value(serde_json::json!(5)).unwrap();
        assert_eq!(t.resolve(&n, &ctx()).unwrap(), "5");
    }

    #[test]
    fn quote_makes_one_shell_word() {
        let t = Templates::new(&[]).unwrap();
        let ctx = to_value(&serde_json::json!({"v": "a b'; reboot"}));
        let s: Tpl<String> =
            serde_json::from_value(serde_json::json!("echo {{ v | quote }}")).unwrap();
        assert_eq!(t.resolve(&s, &ctx).unwrap(), r"echo 'a b'\''; reboot'");
    }

    #[test]
    fn undefined_variables_are_errors() {
        let t = Templates::new(&[]).unwrap();
        let s: Tpl<String> = serde_json::from_value(serde_json::json!("{{ nope }}")).unwrap();
        let e = t.resolve(&s, &ctx()).unwrap_err();
        assert!(e.contains("undefined"), "{e}");
    }
}
