"""The benchmark's pyinfra side: the same converge as bench/ansible/site.yml (and lvslab's built-in
playbooks/keepalived.yml), operation for operation, so the three tools leave the same end state
(bench/run.py checks it, byte for byte where files are concerned).

Every check is a fact (read-only, asked before the change) and every change an operation that
yields commands only when the fact says the host differs, so a rerun on a converged lab changes
nothing, and `--dry` reports without changing. The templates are the Ansible side's own
(bench/ansible/templates), rendered with the options their `#jinja2:` line gives Ansible, so the
two peers cannot drift apart.

Variables come from the inventory bench/run.py writes: lvs, web_root, web_package on every host,
and per host interface, vrrp, weight, address.
"""

import base64
import hashlib
import io
import os

import jinja2
from pyinfra import host, inventory
from pyinfra.api import FactBase, StringCommand, operation
from pyinfra.operations import apt, server

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ansible", "templates")


class Script(FactBase):
    """What a read-only shell script prints, as a list of lines."""

    def command(self, script):
        return script

    def process(self, output):
        return list(output)


def ask(script):
    return host.get_fact(Script, script=script)


@operation()
def guarded(check, change, what):
    """`change` when the read-only `check` does not print `ok`."""
    if ask(check) == ["ok"]:
        host.noop(what)
        return
    yield StringCommand(change)


def render(name, **values):
    """A template of the Ansible side, rendered as Ansible renders it (its `#jinja2:` options)."""
    with open(os.path.join(TEMPLATES, name)) as f:
        text = f.read()
    # Ansible's template module: trim_blocks on, lstrip_blocks off, the source's trailing
    # newline kept; a first line `#jinja2: key: value, ...` overrides them for that file.
    options = {"trim_blocks": True, "lstrip_blocks": False, "keep_trailing_newline": True}
    if text.startswith("#jinja2:"):
        header, text = text.split("\n", 1)
        for item in header[len("#jinja2:"):].split(","):
            key, value = (part.strip() for part in item.split(":", 1))
            options[key] = value == "True"
    env = jinja2.Environment(**options)
    return env.from_string(text).render(**values)


@operation()
def file_content(path, content, mode, validate=None):
    """`path` holds `content` (mode, root-owned), written through a temporary file that
    `validate` (with `%s` for it) must accept first."""
    digest = hashlib.sha256(content.encode()).hexdigest()
    now = ask(f"if [ -f {path} ]; then echo \"$(stat -c '%a %U:%G' {path}) "
              f"$(sha256sum < {path} | cut -d' ' -f1)\"; else echo absent; fi")
    if now == [f"{int(mode, 8):o} root:root {digest}"]:
        host.noop(f"{path} up to date")
        return
    tmp = f"{path}.pyinfra-new"
    check = f" && {validate % tmp}" if validate else ""
    yield StringCommand(
        f"printf '%s' {base64.b64encode(content.encode()).decode()} | base64 -d > {tmp}{check} "
        f"&& chmod {mode} {tmp} && chown root:root {tmp} && mv -f {tmp} {path}"
        f" || {{ rm -f {tmp}; exit 1; }}"
    )


def sysctl_sh(key, value):
    """The runtime value and lvslab's persisted line, as lvslab's sysctl module reads and
    writes them (the Ansible side's sysctl_sh)."""
    f = "/etc/sysctl.d/90-lvslab.conf"
    p = "/proc/sys/" + key.replace(".", "/")
    check = (f'if [ "$(cat {p})" = "{value}" ] && [ "$(sed -n "s/^{key} *= *//p" {f} 2>/dev/null '
             f'| tail -n 1)" = "{value}" ]; then echo ok; else echo changed; fi')
    change = (f'set -e; echo "{value}" > {p}; touch {f}; sed -i "/^{key} *=/d" {f}; '
              f'echo "{key} = {value}" >> {f}')
    return check, change


def vip_absent(interface, label, vip):
    find = (f"ip -o -4 addr show dev {interface} label {label} | "
            f"awk '{{split($4, a, \"/\"); if (a[1] == \"{vip}\") print $4}}'")
    check = f'if [ -z "$({find})" ]; then echo ok; else echo changed; fi'
    change = f"for x in $({find}); do ip addr del \"$x\" dev {interface}; done"
    return check, change


def running(process):
    return ask(f"pgrep -x {process} >/dev/null && echo running || echo stopped") == ["running"]


data = host.data
lvs = data.lvs
interface = data.interface

if "real_servers" in host.groups:
    for key, value in [("net.ipv4.conf.all.arp_ignore", 1),
                       (f"net.ipv4.conf.{interface}.arp_ignore", 1),
                       ("net.ipv4.conf.all.arp_announce", 2),
                       (f"net.ipv4.conf.{interface}.arp_announce", 2)]:
        check, change = sysctl_sh(key, value)
        guarded(name=f"{key}={value}", check=check, change=change, what=f"{key} = {value}")

    vip = lvs["vip"]
    guarded(
        name="VIP as /32 on lo (hidden), label lo:3",
        check=(f"if ip -o -4 addr show dev lo label lo:3 | grep -qF ' {vip}/32 '; "
               "then echo ok; else echo changed; fi"),
        change=(f"set -e; for a in $(ip -o -4 addr show dev lo | awk '{{split($4, a, \"/\"); "
                f"if (a[1] == \"{vip}\") print $4}}'); do ip addr del \"$a\" dev lo; done; "
                f"ip addr add {vip}/32 dev lo label lo:3"),
        what=f"{vip}/32 on lo",
    )
    apt.packages(name="web server installed", packages=[data.web_package])
    file_content(
        name="index.html names the node",
        path=f"{data.web_root}/index.html",
        content=render("index.html.j2", inventory_hostname=host.name, ansible_host=data.address),
        mode="644",
    )
    if not running(data.web_package):
        server.shell(name="web server running", commands=[f"service {data.web_package} start"])

if "directors" in host.groups:
    ipvs = ask("if [ -e /proc/net/ip_vs ]; then echo loaded; elif modprobe -n -q ip_vs "
               "2>/dev/null; then echo available; else echo missing; fi") != ["missing"]
    apt.packages(name="keepalived and ipvsadm installed", packages=["keepalived", "ipvsadm"])
    keepalived_runs = running("keepalived")
    vip = lvs["vip"]
    check, change = vip_absent(interface, f"{interface}:2", vip)
    guarded(name="manual VIP alias removed", check=check, change=change, what="no alias")
    if not keepalived_runs:
        check, change = vip_absent(interface, f"{interface}:3", vip)
        guarded(name="stale VIP removed", check=check, change=change, what="no stale VIP")
        if ipvs:
            guarded(name="manual IPVS rules cleared",
                    check='if [ -z "$(ipvsadm -Sn)" ]; then echo ok; else echo changed; fi',
                    change="ipvsadm -C", what="IPVS table empty")
    hostvars = {h.name: {"ansible_host": h.data.address, "weight": h.data.get("weight", 1)}
                for h in inventory.get_group("real_servers")}
    conf = file_content(
        name="keepalived.conf rendered, checked with keepalived -t, then installed",
        path="/etc/keepalived/keepalived.conf",
        content=render("keepalived.conf.j2", inventory_hostname=host.name, interface=interface,
                       vrrp=data.vrrp, lvs=lvs,
                       ipvs_fact={"stdout": "loaded" if ipvs else "missing"},
                       groups={"real_servers": list(hostvars)}, hostvars=hostvars),
        mode="640",
        validate="keepalived -t -f %s",
    )
    if not keepalived_runs:
        # The init script reports success even when keepalived exits at once: like lvslab,
        # wait until it runs and still runs 0.3 s later.
        server.shell(name="keepalived running", commands=[
            "service keepalived start; for i in $(seq 50); do "
            "if pgrep -x keepalived >/dev/null; then sleep 0.3; "
            "pgrep -x keepalived >/dev/null && exit 0; break; fi; sleep 0.1; done; "
            "echo 'keepalived was started but is not running' >&2; exit 1"])
    else:
        server.shell(name="reload keepalived", commands=["service keepalived reload"],
                     _if=conf.did_change)
