//! What a task means on one host: its loop, `when`, the module's converge, `changed_when` /
//! `failed_when`, `ignore_errors`, `register`, and the event that reports it.

use std::time::Instant;

use minijinja::Value;
use serde_json::json;

use super::{Registered, Runner};
use crate::fleet::Connected;
use crate::inventory::Host;
use crate::modules::{Outcome, TaskCtx, TaskError};
use crate::playbook::model::{Play, Task};
use crate::report::{Event, Status};
use crate::templates::to_value;

/// One run of a task on a host (one loop item, or the task itself).
pub(super) struct Instance {
    label: Option<String>,
    vars: Value,
    /// Whether its `when` holds (`Err`: it could not be evaluated, the message why).
    when: Result<bool, String>,
}

/// How a task ended on a host.
pub(super) enum TaskEnd {
    Ok { changed: bool },
    Failed,
    Unreachable,
}

impl Runner {
    /// The task's runs on `host`: one per loop item (or one without a loop), each with its
    /// variables and whether its `when` holds. `Err`: the task fails before any run, with the
    /// message to report and whether `ignore_errors` may pass over it (its loop could not be
    /// made: yes; the host's variables: no).
    fn instances(
        &self,
        play: &Play,
        task: &Task,
        host: &Host,
        conn: &Connected,
        registered: &Registered,
    ) -> Result<Vec<Instance>, (TaskError, bool)> {
        let base = self
            .context(play, host, conn, registered)
            .map_err(|e| (e, false))?;
        let base_value = self.value_of(&base);
        let items: Vec<Option<serde_json::Value>> = match &task.loop_items {
            None => vec![None],
            Some(l) => self
                .templates
                .resolve(l, &base_value)
                .and_then(|items| self.render_items(items, &base_value))
                .map_err(|e| (TaskError::new(format!("loop: {e}")), true))?
                .into_iter()
                .map(Some)
                .collect(),
        };
        Ok(items
            .into_iter()
            .map(|item| {
                let mut vars = base.clone();
                let label = item.as_ref().map(item_label);
                if let Some(i) = item {
                    vars.insert("item".into(), i);
                }
                let vars = self.value_of(&vars);
                let when = match &task.when {
                    None => Ok(true),
                    Some(when) => self.templates.eval(when, &vars).map(|v| v.is_true()),
                };
                Instance { label, vars, when }
            })
            .collect())
    }

    /// The task's context on `host` for one run, through `session`.
    fn task_ctx<'a>(
        &'a self,
        host: &'a Host,
        conn: &'a Connected,
        session: &'a crate::transport::Session,
        vars: &'a Value,
    ) -> TaskCtx<'a> {
        TaskCtx {
            host,
            inventory: &self.inventory,
            session,
            facts: &conn.facts,
            vars,
            templates: &self.templates,
            // Check mode changes nothing, whatever the task says of itself.
            check: self.options.check,
            diff: self.options.diff,
        }
    }

    /// Notes on `probe` (a [`crate::transport::Session::probing`] session) the reads the task
    /// would start with on `host`, running nothing: its module's query for each run whose
    /// `when` holds. A task whose variables depend on what an earlier task registered may note
    /// other reads than it will make: those are fetched for nothing, and its own reads go to
    /// the host when it runs.
    pub(super) async fn collect_reads(
        &self,
        play: &Play,
        task: &Task,
        host: &Host,
        conn: &Connected,
        registered: &Registered,
        probe: &crate::transport::Session,
    ) {
        let Some(module) = &task.module else { return };
        let Ok(instances) = self.instances(play, task, host, conn, registered) else {
            return;
        };
        let session = task_session(task, probe);
        for instance in instances {
            if instance.when == Ok(true) {
                let ctx = self.task_ctx(host, conn, &session, &instance.vars);
                module.collect_reads(&ctx).await;
            }
        }
    }

    pub(super) async fn run_task(
        &self,
        play: &Play,
        task: &Task,
        host: &Host,
        conn: &Connected,
        registered: &Registered,
    ) -> TaskEnd {
        let title = task.title();
        let instances = match self.instances(play, task, host, conn, registered) {
            Ok(instances) => instances,
            Err((e, ignorable)) => {
                return self.fail(
                    host,
                    &title,
                    &e,
                    Instant::now(),
                    ignorable && task.ignore_errors,
                );
            }
        };
        let mut any_changed = false;
        let mut results = Vec::new();
        for Instance { label, vars, when } in instances {
            let started = Instant::now();
            let title = match &label {
                Some(l) => format!("{title} ({l})"),
                None => title.clone(),
            };
            match when {
                Ok(true) => {}
                Ok(false) => {
                    self.emit(
                        host,
                        &title,
                        Status::Skipped,
                        format!("when: {}", task.when.as_deref().unwrap_or_default()),
                        None,
                        String::new(),
                        started,
                    );
                    results.push(json!({"skipped": true}));
                    continue;
                }
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
            let Some(module) = &task.module else { continue };
            let session = task_session(task, &conn.session);
            let ctx = self.task_ctx(host, conn, &session, &vars);
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
            reg.insert("skipped".into(), json!(outcome.status == Status::Skipped));
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
                serde_json::Value::String(s) if crate::templates::is_template(&s) => {
                    self.templates.resolve(
                        &crate::templates::Tpl::<serde_json::Value>::Expr(s, Default::default()),
                        ctx,
                    )
                }
                other => Ok(other),
            })
            .collect()
    }

    /// Apply `changed_when` / `failed_when` and a command's own failure.
    /// `changed_when` and `failed_when` see the module's result as `result`, and under the
    /// task's `register` name too.
    fn judge(&self, task: &Task, mut outcome: Outcome, vars: &Value) -> Result<Outcome, TaskError> {
        // A skipped task has no result to judge (a command in check mode).
        if outcome.status == Status::Skipped {
            return Ok(outcome);
        }
        let ctx_with_result = || {
            let value = to_value(&outcome.result);
            let mut own = std::collections::BTreeMap::from([("result".to_string(), value.clone())]);
            if let Some(name) = &task.register {
                own.insert(name.clone(), value);
            }
            minijinja::value::merge_maps([Value::from(own), vars.clone()])
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

/// `session` with privilege escalation as the task asks (`become:`), else as it is.
fn task_session(task: &Task, session: &crate::transport::Session) -> crate::transport::Session {
    match task.become_root {
        Some(b) => session.with_become(b),
        None => session.clone(),
    }
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
