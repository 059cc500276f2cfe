//! Running plays: plays in order; in a play, hosts in parallel (at most `forks`), each host's
//! tasks in order. A failed host stops for the rest of the run; the others go on. Handlers run
//! at the end of a play for the hosts that notified them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use minijinja::Value;

use super::template::to_value;
use serde_json::json;
use tokio::sync::Semaphore;

use super::Playbook;
use super::model::{Play, Task};
use super::template::Templates;
use crate::fleet::{Connected, Fleet};
use crate::inventory::{Host, Inventory, Vars};
use crate::modules::{Outcome, TaskCtx, TaskError};
use crate::report::{Event, Reporter, Status};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    /// Only tasks with one of these tags (`None`: all).
    pub tags: Option<Vec<String>>,
    pub extra_vars: Vars,
    /// Hosts the run may touch (`--limit`); `None`: all.
    pub limit: Option<HashSet<String>>,
}

/// How the run ended, for the exit code.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub failed: HashSet<String>,
    pub unreachable: HashSet<String>,
    pub interrupted: bool,
}

pub struct Runner {
    pub inventory: Arc<Inventory>,
    pub templates: Arc<Templates>,
    pub fleet: Arc<Fleet>,
    pub reporter: Reporter,
    pub options: RunOptions,
    /// The template variables that are the same for every host and task (`lvs`, `groups`,
    /// `hostvars`), converted once per run: with 50 hosts, rebuilding `hostvars` for every task
    /// of every host was a quarter of lvslab's CPU time.
    pub shared: std::sync::OnceLock<Value>,
}

/// Per-host state that lives across plays: registered results.
type Registered = Arc<std::sync::Mutex<HashMap<String, Vars>>>;

impl Runner {
    /// Run playbooks one after another. Stops launching work on Ctrl-C.
    pub async fn run(&self, playbooks: &[Playbook], result: &mut RunResult) {
        let registered: Registered = Arc::default();
        self.connect_ahead(playbooks);
        for pb in playbooks {
            for play in &pb.plays {
                if result.interrupted {
                    return;
                }
                self.run_play(play, result, &registered).await;
            }
        }
    }

    /// Open every connection the run will need now, in the background, so a later play's hosts
    /// do not wait for their handshakes after the earlier plays (errors surface when used).
    fn connect_ahead(&self, playbooks: &[Playbook]) {
        let mut names: Vec<&str> = Vec::new();
        for play in playbooks.iter().flat_map(|p| p.plays.iter()) {
            for h in self.inventory.select(&play.hosts.value).unwrap_or_default() {
                if !names.contains(&h.name.as_str())
                    && self
                        .options
                        .limit
                        .as_ref()
                        .is_none_or(|l| l.contains(&h.name))
                {
                    names.push(&h.name);
                }
            }
        }
        for name in names {
            if let Some(host) = self.inventory.host(name).cloned() {
                let fleet = self.fleet.clone();
                tokio::spawn(async move {
                    let _ = fleet.connect(&host).await;
                });
            }
        }
    }

    async fn run_play(&self, play: &Play, result: &mut RunResult, registered: &Registered) {
        let Ok(selected) = self.inventory.select(&play.hosts.value) else {
            return;
        };
        let hosts: Vec<Host> = selected
            .into_iter()
            .filter(|h| {
                self.options
                    .limit
                    .as_ref()
                    .is_none_or(|l| l.contains(&h.name))
            })
            .filter(|h| !result.failed.contains(&h.name) && !result.unreachable.contains(&h.name))
            .cloned()
            .collect();
        if hosts.is_empty() {
            return;
        }
        self.reporter.emit(Event::PlayStart {
            play: play.name.clone(),
            hosts: hosts.iter().map(|h| h.name.clone()).collect(),
        });
        let forks = Arc::new(Semaphore::new(self.options.forks.max(1)));
        let runs = hosts.iter().map(|host| {
            let forks = forks.clone();
            async move {
                let _permit = forks.acquire().await.ok();
                (
                    host.name.clone(),
                    self.run_host(play, host, registered).await,
                )
            }
        });
        let all = futures::future::join_all(runs);
        tokio::select! {
            outcomes = all => {
                for (name, end) in outcomes {
                    match end {
                        HostEnd::Done => {}
                        HostEnd::Failed => { result.failed.insert(name); }
                        HostEnd::Unreachable => { result.unreachable.insert(name); }
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => {
                result.interrupted = true;
                // The dropped commands send their kill requests from spawned tasks: let them go out.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                self.reporter.emit(Event::Warning { text: "interrupted: remote commands in flight were ended; nothing more was started".into() });
            }
        }
    }

    async fn run_host(&self, play: &Play, host: &Host, registered: &Registered) -> HostEnd {
        let conn = match self.fleet.connect(host).await {
            Ok(c) => c,
            Err(e) => {
                self.reporter.emit(Event::Unreachable {
                    host: host.name.clone(),
                    error: e.to_string(),
                });
                return HostEnd::Unreachable;
            }
        };
        let mut notified: Vec<String> = Vec::new();
        for task in &play.tasks {
            let task = &task.value;
            if !self.tag_selected(task) {
                continue;
            }
            match self.run_task(play, task, host, &conn, registered).await {
                TaskEnd::Ok { changed } => {
                    if changed {
                        for n in &task.notify.0 {
                            if !notified.contains(n) {
                                notified.push(n.clone());
                            }
                        }
                    }
                }
                TaskEnd::Failed => return HostEnd::Failed,
                TaskEnd::Unreachable => return HostEnd::Unreachable,
            }
        }
        for handler in &play.handlers {
            let handler = &handler.value;
            if !handler.name.as_ref().is_some_and(|n| notified.contains(n)) {
                continue;
            }
            match self.run_task(play, handler, host, &conn, registered).await {
                TaskEnd::Ok { .. } => {}
                TaskEnd::Failed => return HostEnd::Failed,
                TaskEnd::Unreachable => return HostEnd::Unreachable,
            }
        }
        HostEnd::Done
    }

    fn tag_selected(&self, task: &Task) -> bool {
        match &self.options.tags {
            None => true,
            Some(tags) => task
                .tags
                .0
                .iter()
                .any(|t| tags.contains(t) || t == "always"),
        }
    }

    /// `lvs`, `groups` and `hostvars`, built on first use.
    fn shared(&self) -> Value {
        self.shared
            .get_or_init(|| {
                let inv = &self.inventory;
                let mut groups = serde_json::Map::new();
                groups.insert(
                    "all".into(),
                    json!(inv.hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>()),
                );
                for (name, g) in &inv.groups {
                    groups.insert(name.clone(), json!(g.hosts));
                }
                let hostvars: serde_json::Map<String, serde_json::Value> = inv
                    .hosts
                    .iter()
                    .map(|h| (h.name.clone(), host_value(inv, h)))
                    .collect();
                to_value(&json!({
                    "lvs": lvs_value(inv),
                    "groups": groups,
                    "hostvars": hostvars,
                }))
            })
            .clone()
    }

    /// A host's template context as a template value: its own variables (see [`Self::context`])
    /// with the run-wide ones, which win as the other built-ins do.
    fn value_of(&self, ctx: &serde_json::Map<String, serde_json::Value>) -> Value {
        minijinja::value::merge_maps([self.shared(), to_value(ctx)])
    }

    /// The template context of a host: built-ins, variables (global < group < host < play <
    /// registered < extra), facts.
    fn context(
        &self,
        play: &Play,
        host: &Host,
        conn: &Connected,
        registered: &Registered,
    ) -> serde_json::Map<String, serde_json::Value> {
        let inv = &self.inventory;
        let mut ctx = inv.host_vars(host);
        ctx.extend(play.vars.clone());
        if let Ok(reg) = registered.lock()
            && let Some(r) = reg.get(&host.name)
        {
            ctx.extend(r.clone());
        }
        ctx.extend(self.options.extra_vars.clone());
        ctx.insert("inventory_hostname".into(), json!(host.name));
        ctx.insert("host".into(), host_value(inv, host));
        ctx.insert("group_names".into(), json!(inv.groups_of(&host.name)));
        ctx.insert(
            "facts".into(),
            serde_json::to_value(&conn.facts).unwrap_or_default(),
        );
        // Play variables may be templates over all of the above (rendered once, in order).
        for (k, v) in &play.vars {
            if let serde_json::Value::String(s) = v
                && super::template::is_template(s)
            {
                let tpl =
                    super::template::Tpl::<serde_json::Value>::Expr(s.clone(), Default::default());
                let value = self
                    .templates
                    .resolve(&tpl, &self.value_of(&ctx))
                    .unwrap_or_else(|e| json!(format!("<error: {e}>")));
                ctx.insert(k.clone(), value);
            }
        }
        ctx
    }

    async fn run_task(
        &self,
        play: &Play,
        task: &Task,
        host: &Host,
        conn: &Connected,
        registered: &Registered,
    ) -> TaskEnd {
        let title = task.title();
        let base = self.context(play, host, conn, registered);
        let base_value = self.value_of(&base);
        let items: Vec<Option<serde_json::Value>> = match &task.loop_items {
            None => vec![None],
            Some(l) => match self
                .templates
                .resolve(l, &base_value)
                .and_then(|items| self.render_items(items, &base_value))
            {
                Ok(items) => items.into_iter().map(Some).collect(),
                Err(e) => {
                    return self.fail(
                        host,
                        &title,
                        &TaskError::new(format!("loop: {e}")),
                        Instant::now(),
                        task.ignore_errors,
                    );
                }
            },
        };
        let mut any_changed = false;
        let mut results = Vec::new();
        for item in items {
            let started = Instant::now();
            let mut vars = base.clone();
            let label = item.as_ref().map(item_label);
            if let Some(i) = &item {
                vars.insert("item".into(), i.clone());
            }
            let vars = self.value_of(&vars);
            let title = match &label {
                Some(l) => format!("{title} ({l})"),
                None => title.clone(),
            };
            if let Some(when) = &task.when {
                match self.templates.eval(when, &vars) {
                    Ok(v) if !v.is_true() => {
                        self.emit(
                            host,
                            &title,
                            Status::Skipped,
                            format!("when: {when}"),
                            None,
                            String::new(),
                            started,
                        );
                        results.push(json!({"skipped": true}));
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return self.fail(
                            host,
                            &title,
                            &TaskError::new(format!("when: {e}")),
                            started,
                            task.ignore_errors,
                        );
                    }
                }
            }
            let Some(module) = &task.module else { continue };
            let session = match task.become_root {
                Some(b) => conn.session.with_become(b),
                None => conn.session.clone(),
            };
            let ctx = TaskCtx {
                host,
                inventory: &self.inventory,
                session: &session,
                facts: &conn.facts,
                vars: &vars,
                templates: &self.templates,
                // `changed_when: false` marks a read-only command: it runs in check mode too.
                check: self.options.check
                    && task.changed_when.as_deref().map(str::trim) != Some("false"),
                diff: self.options.diff,
            };
            let outcome = match module.converge(&ctx).await {
                Ok(o) => o,
                Err(e) if e.unreachable => {
                    self.fleet.forget(
                        &host.name,
                        crate::transport::TransportError::Lost {
                            target: host.name.clone(),
                            reason: e.message.clone(),
                        },
                    );
                    self.reporter.emit(Event::Unreachable {
                        host: host.name.clone(),
                        error: format!("during `{title}`: {}", e.message),
                    });
                    return TaskEnd::Unreachable;
                }
                Err(e) => {
                    if task.ignore_errors {
                        self.emit(
                            host,
                            &title,
                            Status::Failed,
                            format!("{} (ignored)", e.message),
                            None,
                            String::new(),
                            started,
                        );
                        results.push(json!({"failed": true, "msg": e.message}));
                        continue;
                    }
                    return self.fail(host, &title, &e, started, false);
                }
            };
            let outcome = match self.judge(task, outcome, &vars) {
                Ok(o) => o,
                Err(e) => return self.fail(host, &title, &e, started, false),
            };
            let failed = outcome.status == Status::Failed;
            any_changed |= outcome.status == Status::Changed;
            let mut reg = match outcome.result.clone() {
                serde_json::Value::Object(m) => m,
                serde_json::Value::Null => serde_json::Map::new(),
                other => serde_json::Map::from_iter([("value".to_string(), other)]),
            };
            reg.insert("changed".into(), json!(outcome.status == Status::Changed));
            reg.insert("failed".into(), json!(failed));
            reg.insert("msg".into(), json!(outcome.msg));
            results.push(serde_json::Value::Object(reg));
            let status = outcome.status;
            let msg = if failed && task.ignore_errors {
                format!("{} (ignored)", outcome.msg)
            } else {
                outcome.msg
            };
            self.emit(
                host,
                &title,
                status,
                msg,
                outcome.diff,
                outcome.output,
                started,
            );
            if failed && !task.ignore_errors {
                self.register(task, host, &results, registered);
                return TaskEnd::Failed;
            }
        }
        self.register(task, host, &results, registered);
        TaskEnd::Ok {
            changed: any_changed,
        }
    }

    /// Literal loop lists may hold templates (`[all, "{{ host.interface }}"]`).
    fn render_items(
        &self,
        items: Vec<serde_json::Value>,
        ctx: &Value,
    ) -> Result<Vec<serde_json::Value>, String> {
        items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) if super::template::is_template(&s) => {
                    self.templates.resolve(
                        &super::template::Tpl::<serde_json::Value>::Expr(s, Default::default()),
                        ctx,
                    )
                }
                other => Ok(other),
            })
            .collect()
    }

    /// Apply `changed_when` / `failed_when` and a command's own failure.
    fn judge(&self, task: &Task, mut outcome: Outcome, vars: &Value) -> Result<Outcome, TaskError> {
        let ctx_with_result = || {
            let result = minijinja::context! { result => to_value(&outcome.result) };
            minijinja::value::merge_maps([result, vars.clone()])
        };
        let command_failed = outcome
            .result
            .get("failed")
            .and_then(|f| f.as_bool())
            .unwrap_or(false);
        let failed = match &task.failed_when {
            Some(expr) => self
                .templates
                .eval(expr, &ctx_with_result())
                .map_err(|e| TaskError::new(format!("failed_when: {e}")))?
                .is_true(),
            None => command_failed,
        };
        if let Some(expr) = &task.changed_when
            && outcome.status != Status::Skipped
        {
            let changed = self
                .templates
                .eval(expr, &ctx_with_result())
                .map_err(|e| TaskError::new(format!("changed_when: {e}")))?
                .is_true();
            outcome.status = if changed { Status::Changed } else { Status::Ok };
        }
        if failed {
            outcome.status = Status::Failed;
        }
        Ok(outcome)
    }

    fn register(
        &self,
        task: &Task,
        host: &Host,
        results: &[serde_json::Value],
        registered: &Registered,
    ) {
        let Some(name) = &task.register else { return };
        let value = if task.loop_items.is_some() {
            json!({ "results": results })
        } else {
            results.first().cloned().unwrap_or(json!({"skipped": true}))
        };
        if let Ok(mut reg) = registered.lock() {
            reg.entry(host.name.clone())
                .or_default()
                .insert(name.clone(), value);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        host: &Host,
        task: &str,
        status: Status,
        msg: String,
        diff: Option<String>,
        output: String,
        started: Instant,
    ) {
        self.reporter.emit(Event::Task {
            host: host.name.clone(),
            task: task.to_string(),
            status,
            msg,
            diff,
            output,
            ms: started.elapsed().as_millis() as u64,
        });
    }

    /// Report a failed task; with `ignore_errors` the host goes on.
    fn fail(
        &self,
        host: &Host,
        task: &str,
        e: &TaskError,
        started: Instant,
        ignore: bool,
    ) -> TaskEnd {
        self.emit(
            host,
            task,
            Status::Failed,
            e.message.clone(),
            None,
            String::new(),
            started,
        );
        if ignore {
            TaskEnd::Ok { changed: false }
        } else {
            TaskEnd::Failed
        }
    }
}

enum HostEnd {
    Done,
    Failed,
    Unreachable,
}

enum TaskEnd {
    Ok { changed: bool },
    Failed,
    Unreachable,
}

/// The `lvs` section as templates see it, plus the roles: `lvs.real_servers` (name, address,
/// port, weight) and `lvs.directors` (names), so playbooks need no list-building.
fn lvs_value(inv: &Inventory) -> serde_json::Value {
    let Some(lvs) = &inv.lvs else {
        return serde_json::Value::Null;
    };
    let mut v = match serde_json::to_value(lvs) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return serde_json::Value::Null,
    };
    let real_servers: Vec<serde_json::Value> = inv
        .group_members("real_servers")
        .unwrap_or_default()
        .iter()
        .map(|h| json!({"name": h.name, "address": h.address.to_string(), "port": lvs.port, "weight": h.weight.unwrap_or(1)}))
        .collect();
    let directors: Vec<String> = inv
        .group_members("directors")
        .unwrap_or_default()
        .iter()
        .map(|h| h.name.clone())
        .collect();
    v.insert("real_servers".into(), json!(real_servers));
    v.insert("directors".into(), json!(directors));
    serde_json::Value::Object(v)
}

/// A host as templates see it: its inventory fields and its variables.
fn host_value(inv: &Inventory, host: &Host) -> serde_json::Value {
    let mut v = match serde_json::to_value(host) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (k, val) in inv.host_vars(host) {
        v.entry(k).or_insert(val);
    }
    serde_json::Value::Object(v)
}

fn item_label(item: &serde_json::Value) -> String {
    match item {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(m) => m
            .get("name")
            .or_else(|| m.get("key"))
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| item.to_string()),
        other => other.to_string(),
    }
}
