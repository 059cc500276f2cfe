#!/usr/bin/env python3
"""lvslab against pyinfra and Ansible on the same namespace lab, side by side, in one run.

    sudo bench/run.py            # everything: build, venv, labs, 4 scenarios, table, plot
    sudo bench/run.py --quick    # fewer rounds

From a fresh checkout, as root: builds lvslab (release) when needed, installs ansible-core and
pyinfra (both pinned) from PyPI into bench/.venv, builds the namespace lab `bench` (2 real
servers), then `bench50` (50 real servers), and for each scenario runs lvslab, pyinfra and
ansible-playbook in turn, several rounds each:

  1. first converge on a fresh lab (the lab is torn down and rebuilt before every run, so every
     tool starts from the same untouched hosts);
  2. the same converge again when nothing changed (and `lvslab ping`: connect, log in, facts);
  3. both with 50 real servers instead of 2;
  4. --check (pyinfra: --dry) on a converged lab.

After every converge the lab's state is read back (lvslab verify's probes, plus a dump of
sysctls, addresses, files' mode and checksum, daemons) and compared with lvslab's: the run stops
with exit 1 when two tools' end states differ, or when a no-change run or --check reports a
change (a rerun of any tool on another tool's result must find nothing to do).

Prints a table of medians and peer/lvslab ratios with the issues' targets, lvslab's peak memory
and SSH round trips per host; writes everything (table, JSON, a plot of time against hosts, every
run's log) to bench/results/<date-time>/ and bench/results/latest.md and latest.svg.

Python 3 standard library only; the Ansible side is bench/ansible/ (site.yml, templates,
ansible.cfg), the pyinfra side bench/pyinfra/deploy.py (it renders the Ansible side's templates).
Labs use only 198.18.0.0/24 and are removed at the end.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ANSIBLE_CORE = "2.19.14"
PYINFRA = "3.10.0"
BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
ANSIBLE_DIR = os.path.join(BENCH, "ansible")
PYINFRA_DEPLOY = os.path.join(BENCH, "pyinfra", "deploy.py")
TOOLS = ["lvslab", "ansible", "pyinfra"]
VENV = os.path.join(BENCH, ".venv")
SMALL, BIG = "bench", "bench50"

# The targets.
TARGET_RERUN_RATIO = 15.0
TARGET_RERUN_SECS = 0.35
TARGET_FIRST_RATIO = 8.0
TARGET_BIG_RATIO = 25.0
TARGET_BIG_GROWTH = 3.0
TARGET_BIG_MEM_MIB = 64.0
# Issue 25's: against pyinfra, the fastest peer measured; round trips; the cost over `ping`.
TARGET_PYINFRA_RERUN = 10.0
TARGET_PYINFRA_FIRST = 5.0
TARGET_ROUND_TRIPS = 3
TARGET_PING_RATIO = 1.3


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def die(msg):
    raise BenchError(msg)


# ---- running things ------------------------------------------------------------------------


def run(cmd, check=True, env=None, capture=True):
    p = subprocess.run(cmd, env=env, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and p.returncode != 0:
        die(f"`{' '.join(cmd)}` exited {p.returncode}\n{p.stdout or ''}{p.stderr or ''}")
    return p


def timed(cmd, log_path, env=None):
    """Run cmd with stdout+stderr to log_path; return (seconds, exit code, peak RSS in KiB)."""
    with open(log_path, "wb") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        secs = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return secs, p.returncode, usage.ru_maxrss


def cpu_busy(seconds=2.0):
    """Fraction of the machine's CPU time spent busy over the next `seconds`."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t1, i1 = snap()
    time.sleep(seconds)
    t2, i2 = snap()
    return 1 - (i2 - i1) / max(1, t2 - t1)


# ---- setup: lvslab binary, Ansible venv ----------------------------------------------------


def build_lvslab(args):
    if args.lvslab:
        return os.path.abspath(args.lvslab)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, "release", "lvslab")
    if shutil.which("cargo"):
        log("building lvslab (cargo build --release; a no-op when up to date)")
        p = subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT)
        if p.returncode != 0:
            die("cargo build --release failed")
    elif not os.path.exists(binary):
        die("no cargo and no target/release/lvslab: install Rust (rustup.rs) or pass --lvslab")
    return binary


def ansible_venv():
    playbook = os.path.join(VENV, "bin", "ansible-playbook")
    want = f"core {ANSIBLE_CORE}"
    if os.path.exists(playbook):
        p = run([playbook, "--version"], check=False)
        if p.returncode == 0 and want in p.stdout:
            return playbook
    if sys.version_info < (3, 11):
        die(f"ansible-core {ANSIBLE_CORE} needs Python >= 3.11 on the controller; run this "
            "script with a newer python3")
    log(f"installing ansible-core {ANSIBLE_CORE} into bench/.venv (from PyPI)")
    if not os.path.exists(os.path.join(VENV, "bin", "python")):
        run([sys.executable, "-m", "venv", VENV])
    run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
         f"ansible-core=={ANSIBLE_CORE}"], capture=False)
    return playbook


def pyinfra_venv():
    """pyinfra (pinned) in the same venv as ansible-core."""
    exe = os.path.join(VENV, "bin", "pyinfra")
    if os.path.exists(exe):
        p = run([exe, "--version"], check=False)
        if p.returncode == 0 and PYINFRA in p.stdout:
            return exe
    log(f"installing pyinfra {PYINFRA} into bench/.venv (from PyPI)")
    if not os.path.exists(os.path.join(VENV, "bin", "python")):
        run([sys.executable, "-m", "venv", VENV])
    run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
         f"pyinfra=={PYINFRA}"], capture=False)
    return exe


def pyinfra_changes(text, dry):
    """How many (operation, host) pairs pyinfra changed, from its `--json` output (with
    `--dry`: would change; an operation that runs only if an earlier one changed is not
    counted); `None` when it printed none or an operation failed."""
    for line in text.splitlines():
        if line.startswith('{"plan"'):
            payload = json.loads(line)
            if dry:
                return sum(len(op["hosts_with_change"]) for op in payload["plan"])
            results = payload.get("results") or {}
            ops = results.get("operations", [])
            if not ops or any(op["error"] for op in ops):
                return None
            return sum(len(op["success"]) for op in ops)
    return None


# ---- labs ----------------------------------------------------------------------------------


class Lab:
    """One of the benchmark's labs (`bench` or `bench50`), rebuilt on demand."""

    def __init__(self, bench, name, real_servers):
        self.b, self.name, self.real_servers = bench, name, real_servers
        self.info = None
        self.cp_dir = None

    def up(self):
        waited = 0.0
        while True:
            p = run([self.b.lvslab, "lab", "up", "--name", self.name,
                     "--real-servers", str(self.real_servers), "--json"], check=False)
            if p.returncode == 0:
                break
            m = re.search(r"by lab `([a-z0-9]+)`", p.stderr)
            if "already in use" in p.stderr and m and m.group(1).startswith("bench"):
                log(f"  removing the benchmark's own leftover lab `{m.group(1)}`")
                run([self.b.lvslab, "lab", "down", "--name", m.group(1)])
                continue
            if "already in use" in p.stderr and waited < self.b.args.wait_for_network:
                if waited == 0:
                    log("  the lab network is in use by another lab; waiting for it to go "
                        f"(up to {self.b.args.wait_for_network} s): {p.stderr.strip()}")
                time.sleep(5)
                waited += 5
                continue
            die(f"lvslab lab up --name {self.name} failed:\n{p.stderr}")
        self.info = json.loads(p.stdout)
        self.cp_dir = tempfile.mkdtemp(prefix="lvsb-cp-")
        self.write_ansible_inventory()

    def down(self):
        self.close_control_masters()
        run([self.b.lvslab, "lab", "down", "--name", self.name], check=False)
        self.info = None

    def reset(self):
        self.down()
        self.up()

    def close_control_masters(self):
        """End the ControlPersist masters Ansible left for this lab incarnation."""
        if not self.cp_dir:
            return
        for sock in os.listdir(self.cp_dir):
            path = os.path.join(self.cp_dir, sock)
            subprocess.run(["ssh", "-o", f"ControlPath={path}", "-O", "exit", "lab-host"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.cp_dir, ignore_errors=True)
        self.cp_dir = None

    @property
    def inventory(self):
        return self.info["inventory"]

    def lab_inventory(self):
        """The lab's inventory.yml, parsed by the venv's PyYAML (ansible-core depends on it)."""
        py = os.path.join(VENV, "bin", "python")
        code = "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
        return json.loads(run([py, "-c", code, self.inventory]).stdout)

    def write_ansible_inventory(self):
        """The same hosts, key and known_hosts as the lab's inventory, for Ansible."""
        inv = self.lab_inventory()
        self.auth_pass = str(inv["lvs"]["vrrp"].get("auth_pass") or "")
        conn = inv.get("connection", {})
        groups = {}
        for group, spec in inv["groups"].items():
            hosts = {}
            for h in spec["hosts"]:
                hv = inv["hosts"][h]
                v = {"ansible_host": hv["address"], "interface": hv["interface"]}
                for key in ("vrrp", "weight"):
                    if key in hv:
                        v[key] = hv[key]
                hosts[h] = v
            groups[group] = {"hosts": hosts}
        web = inv.get("vars", {}).get("web_server", "nginx")
        if web != "nginx":
            die(f"the benchmark's playbook serves with nginx; the lab says {web}")
        ansible_inv = {"all": {
            "vars": {
                "ansible_user": conn.get("user", "root"),
                "ansible_port": conn.get("port", 22),
                "ansible_ssh_private_key_file": self.info["identity_file"],
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.info['known_hosts']}",
                "lvs": inv["lvs"],
                "web_package": "nginx",
                "web_root": "/var/www/html",
            },
            "children": groups,
        }}
        self.write_pyinfra_inventory(inv, conn, web)
        self.ansible_inventory = os.path.join(self.b.work, f"ansible-inventory-{self.name}.yml")
        with open(self.ansible_inventory, "w") as f:
            json.dump(ansible_inv, f, indent=1)  # JSON is YAML
        self.hosts = {g: list(s["hosts"]) for g, s in inv["groups"].items()}


    def write_pyinfra_inventory(self, inv, conn, web):
        """The same hosts, key and known_hosts for pyinfra: a Python inventory, one list per
        group, each host with its data (the inventory's own values, as the Ansible side has)."""
        common = {
            "ssh_user": conn.get("user", "root"),
            "ssh_port": conn.get("port", 22),
            "ssh_key": self.info["identity_file"],
            "ssh_known_hosts_file": self.info["known_hosts"],
            "ssh_strict_host_key_checking": "yes",
            "lvs": inv["lvs"],
            "web_package": web,
            "web_root": "/var/www/html",
        }
        lines = ["# Written by bench/run.py from the lab's inventory."]
        for group, spec in inv["groups"].items():
            hosts = []
            for h in spec["hosts"]:
                hv = inv["hosts"][h]
                data = dict(common, ssh_hostname=hv["address"], address=hv["address"],
                            interface=hv["interface"])
                for key in ("vrrp", "weight"):
                    if key in hv:
                        data[key] = hv[key]
                hosts.append((h, data))
            lines.append(f"{group} = {hosts!r}")
        self.pyinfra_inventory = os.path.join(self.b.work, f"pyinfra_inventory_{self.name}.py")
        with open(self.pyinfra_inventory, "w") as f:
            f.write("\n".join(lines) + "\n")


# ---- the lab's state, read back --------------------------------------------------------------

STATE_SCRIPT = r"""
echo "hostname $(hostname)"
for d in /proc/sys/net/ipv4/conf/*; do echo "sysctl $(basename $d) arp_ignore=$(cat $d/arp_ignore) arp_announce=$(cat $d/arp_announce)"; done
ip -4 -o addr show | sed 's/ *valid_lft.*//; s/  */ /g' | sed 's/^/addr /'
for f in /etc/sysctl.d/90-lvslab.conf /var/www/html/index.html /etc/keepalived/keepalived.conf; do
  if [ -f $f ]; then
    pass=$(sed -n 's/^ *auth_pass //p' $f); [ -n "$pass" ] && pass=" pass=$(echo "$pass" | sha256sum | cut -c1-16)"
    echo "file $f $(stat -c '%a %U:%G' $f) $(sed 's/^\( *auth_pass \).*/\1-/' $f | sha256sum | cut -c1-16)$pass"
  else echo "file $f absent"; fi
done
for p in nginx keepalived; do if pgrep -x $p >/dev/null; then echo "process $p running"; else echo "process $p stopped"; fi; done
"""


def state_dump(bench, lab):
    """{host: [lines]} from STATE_SCRIPT on every host, in one `lvslab exec`."""
    p = run([bench.lvslab, "-i", lab.inventory, "exec", "--json", "--", STATE_SCRIPT])
    want_pass = hashlib.sha256((lab.auth_pass + "\n").encode()).hexdigest()[:16]
    dump = {}
    for line in p.stdout.splitlines():
        e = json.loads(line)
        if e.get("event") == "task":
            text = e["msg"].split("\n", 1)[1] if "\n" in e["msg"] else ""
            text = text.replace(f"pass={want_pass}", "pass=<the inventory's auth_pass>")
            dump[e["host"]] = text.strip().splitlines()
    if set(dump) != {h for hs in lab.hosts.values() for h in hs}:
        die(f"state dump misses hosts: got {sorted(dump)}")
    return dump


def vip_held(lab, dump):
    vip = f" {lab.info['vip']}/"
    return any(vip in line and " lo" not in line
               for h in lab.hosts["directors"] for line in dump[h] if line.startswith("addr "))


def lab_state(bench, lab, tag):
    """Probes of `lvslab verify` (pass/fail) and a dump of every host's relevant state, once
    keepalived's election has settled (a fresh pair needs ~3 adverts; the converge reloads it)."""
    deadline = time.monotonic() + 20
    while not vip_held(lab, state_dump(bench, lab)) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    p = run([bench.lvslab, "-i", lab.inventory, "verify", "--json"], check=False)
    with open(os.path.join(bench.logs, f"{tag}-verify.log"), "w") as f:
        f.write(p.stdout + p.stderr)
    probes = {}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            e = json.loads(line)
            if e.get("event") == "probe":
                probes[e["probe"]] = "PASS" if e["pass"] else "FAIL"
    if not probes:
        die(f"lvslab verify printed no probes (see {tag}-verify.log)")
    dump = state_dump(bench, lab)
    lines = [f"probe {k}: {v}" for k, v in sorted(probes.items())]
    for host in sorted(dump):
        lines += [f"{host}: {x}" for x in dump[host]]
    with open(os.path.join(bench.logs, f"{tag}-state.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def same_state(bench, lab, tag, reference):
    """Read the state; compare it with the reference (the first lvslab converge)."""
    state = lab_state(bench, lab, tag)
    if reference is None:
        return state
    if state != reference["state"]:
        import difflib
        diff = "\n".join(difflib.unified_diff(reference["state"], state, reference["tag"], tag,
                                              lineterm=""))
        die(f"END STATES DIFFER: {tag} vs {reference['tag']}:\n{diff}")
    return state


# ---- the two tools -------------------------------------------------------------------------

ANSIBLE_RECAP = re.compile(
    r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Bench:
    def __init__(self, args):
        self.args = args
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = os.path.join(BENCH, "results", stamp)
        self.logs = os.path.join(self.out, "logs")
        self.work = os.path.join(self.out, "work")
        os.makedirs(self.logs)
        os.makedirs(self.work)
        self.samples = {}  # (scenario, tool) -> list of seconds
        self.peak_kib = {}  # scenario -> max RSS of lvslab
        self.round_trips = {}  # scenario -> {host: n}
        self.labs = []
        self.busy = {}  # scenario -> CPU busy fraction (other work) just before it
        self.idle_budget = args.wait_idle
        self.warned_busy = False

    def quiet(self, what):
        """Both tools are CPU-bound on a small machine: wait (up to --wait-idle seconds in all)
        until other work leaves the CPUs alone, and record how busy they were."""
        busy = cpu_busy()
        while busy > 0.25 and self.idle_budget > 0:
            if not self.warned_busy:
                log(f"  the CPUs are {busy:.0%} busy with other work; waiting for them to calm "
                    f"down (at most {self.idle_budget:.0f} s more, --wait-idle)")
                self.warned_busy = True
            time.sleep(8)
            self.idle_budget -= 10
            busy = cpu_busy()
        self.busy[what] = round(busy, 2)
        if busy > 0.25:
            log(f"  warning: the CPUs are {busy:.0%} busy with other work; figures will be noisy")

    def record(self, scenario, tool, secs):
        self.samples.setdefault((scenario, tool), []).append(secs)

    def lvslab_up(self, lab, scenario, tag, check=False, expect_changes=None):
        cmd = [self.lvslab, "-i", lab.inventory, "up", "--no-verify", "--json"]
        if check:
            cmd.append("--check")
        path = os.path.join(self.logs, f"{tag}-lvslab.log")
        secs, rc, kib = timed(cmd, path)
        recap = None
        with open(path) as f:
            for line in f:
                if line.startswith('{"event":"recap"'):
                    recap = json.loads(line)
        if rc != 0 or recap is None:
            die(f"lvslab exited {rc} in {tag}; see {path}")
        changed = sum(h["changed"] for h in recap["hosts"])
        self.check_changes("lvslab", tag, changed, expect_changes, path)
        self.record(scenario, "lvslab", secs)
        self.peak_kib[scenario] = max(self.peak_kib.get(scenario, 0), kib)
        self.round_trips[scenario] = {h["host"]: h["round_trips"] for h in recap["hosts"]}
        log(f"  {tag:<22} lvslab   {secs:7.2f} s  changed={changed:<4} peak {kib / 1024:.1f} MiB")
        return secs

    def ansible_up(self, lab, scenario, tag, check=False, expect_changes=None, record=True):
        cmd = [self.playbook, "-i", lab.ansible_inventory,
               os.path.join(ANSIBLE_DIR, "site.yml")]
        if check:
            cmd.append("--check")
        env = dict(os.environ,
                   ANSIBLE_CONFIG=os.path.join(ANSIBLE_DIR, "ansible.cfg"),
                   ANSIBLE_HOME=os.path.join(self.work, "ansible-home"),
                   ANSIBLE_SSH_CONTROL_PATH_DIR=lab.cp_dir,
                   ANSIBLE_NOCOLOR="1")
        path = os.path.join(self.logs, f"{tag}-ansible.log")
        secs, rc, _ = timed(cmd, path, env=env)
        with open(path) as f:
            recap = ANSIBLE_RECAP.findall(f.read())
        if rc != 0 or not recap:
            die(f"ansible-playbook exited {rc} in {tag}; see {path}")
        if len(recap) != len(lab.hosts["real_servers"]) + len(lab.hosts["directors"]):
            die(f"ansible-playbook's recap has {len(recap)} hosts in {tag}; see {path}")
        changed = sum(int(r[2]) for r in recap)
        self.check_changes("ansible-playbook", tag, changed, expect_changes, path)
        if record:
            self.record(scenario, "ansible", secs)
        log(f"  {tag:<22} ansible  {secs:7.2f} s  changed={changed}")
        return secs

    def pyinfra_up(self, lab, scenario, tag, check=False, expect_changes=None):
        hosts = len(lab.hosts["real_servers"]) + len(lab.hosts["directors"])
        # -y: no change detection before the run (the fastest way); --dry detects and stops.
        cmd = [self.pyinfra, "--json", "--parallel", str(hosts), lab.pyinfra_inventory,
               PYINFRA_DEPLOY, "--dry" if check else "-y"]
        env = dict(os.environ, PYINFRA_PROGRESS="off", TERM="dumb", NO_COLOR="1")
        path = os.path.join(self.logs, f"{tag}-pyinfra.log")
        secs, rc, _ = timed(cmd, path, env=env)
        with open(path) as f:
            changed = pyinfra_changes(f.read(), check)
        if rc != 0 or changed is None:
            die(f"pyinfra exited {rc} in {tag}; see {path}")
        self.check_changes("pyinfra", tag, changed, expect_changes, path)
        self.record(scenario, "pyinfra", secs)
        log(f"  {tag:<22} pyinfra  {secs:7.2f} s  changed={changed}")
        return secs

    def lvslab_ping(self, lab, scenario, rounds):
        """`lvslab ping` (connect, log in, read the facts): the floor a rerun is judged by."""
        for r in range(1, rounds + 1):
            path = os.path.join(self.logs, f"{scenario}-ping-r{r}-lvslab.log")
            secs, rc, _ = timed([self.lvslab, "-i", lab.inventory, "ping"], path)
            if rc != 0:
                die(f"lvslab ping exited {rc}; see {path}")
            self.record(f"{scenario}-ping", "lvslab", secs)
        log(f"  {scenario + '-ping':<22} lvslab   {self.median(scenario + '-ping', 'lvslab'):7.2f} s "
            f"(median of {rounds})")

    def tool_up(self, tool, lab, scenario, tag, check=False, expect_changes=None):
        run_it = {"lvslab": self.lvslab_up, "ansible": self.ansible_up,
                  "pyinfra": self.pyinfra_up}[tool]
        return run_it(lab, scenario, tag, check=check, expect_changes=expect_changes)

    @staticmethod
    def check_changes(tool, tag, changed, expect_changes, path):
        if expect_changes is False and changed:
            die(f"{tool} reported {changed} change(s) on a converged lab in {tag}: the two "
                f"tools do not agree on the end state; see {path}")
        if expect_changes is True and not changed:
            die(f"{tool} changed nothing on a fresh lab in {tag}; see {path}")

    # ---- scenarios ----

    def first_converge(self, lab, scenario, rounds, order):
        """Each tool on a freshly built lab; end states compared with lvslab's."""
        for r in range(1, rounds + 1):
            for tool in order:
                lab.reset()
                tag = f"{scenario}-r{r}-{tool}"
                self.tool_up(tool, lab, scenario, tag, expect_changes=True)
                state = same_state(self, lab, tag, self.reference.get(lab.name))
                self.reference.setdefault(lab.name, {"state": state, "tag": tag})

    def rerun(self, lab, scenario, rounds, order, check=False):
        """No-change reruns (or --check) on a converged lab: nothing may change."""
        for r in range(1, rounds + 1):
            for tool in order:
                tag = f"{scenario}-r{r}-{tool}"
                self.tool_up(tool, lab, scenario, tag, check=check, expect_changes=False)

    def main(self):
        a = self.args
        self.lvslab = build_lvslab(a)
        self.playbook = ansible_venv()
        self.pyinfra = pyinfra_venv()
        log(f"lvslab: {self.lvslab}\nansible: {run([self.playbook, '--version']).stdout.splitlines()[0]}"
            f"\npyinfra: {run([self.pyinfra, '--version']).stdout.strip()}")
        log(f"results: {self.out}")
        self.reference = {}
        t0 = time.monotonic()
        small = Lab(self, SMALL, 2)
        big = Lab(self, BIG, a.big_real_servers)
        self.labs = [small, big]
        for lab in self.labs:  # leftovers of an interrupted run
            lab.down()

        log(f"\n[1] first converge on a fresh lab ({a.rounds} rounds; lab rebuilt before every run)")
        # Ends with lvslab's converge, so in scenario 2 the peers rerun on lvslab's result and
        # must find nothing to change. (Not the other way round: lvslab also keeps what it set
        # for the next boot, lvslab-boot and its entries, and enables the daemons at boot, which
        # the peers' deploys leave out; on their result it has those to do.)
        self.quiet("first")
        self.first_converge(small, "first", a.rounds, ["pyinfra", "ansible", "lvslab"])

        log(f"\n[2] no-change rerun ({a.rounds} rounds)")
        self.quiet("rerun")
        self.rerun(small, "rerun", a.rounds, TOOLS)
        self.lvslab_ping(small, "rerun", a.rounds)

        log(f"\n[4] --check on the converged lab ({a.rounds} rounds)")
        self.quiet("check")
        self.rerun(small, "check", a.rounds, TOOLS, check=True)
        small.down()

        if a.big_real_servers:
            self.big_scenario(big)
        self.elapsed = time.monotonic() - t0
        self.report()

    def big_scenario(self, big):
        a = self.args
        log(f"\n[3] {a.big_real_servers} real servers")
        self.quiet("big")
        if a.big_first_rounds:
            log(f"  first converge ({a.big_first_rounds} round(s); lab rebuilt before every run)")
            self.first_converge(big, "big-first", a.big_first_rounds,
                                ["ansible", "pyinfra", "lvslab"])
        else:
            big.up()
            self.lvslab_up(big, "big-first", "big-first-r1-lvslab", expect_changes=True)
            self.reference[big.name] = {"state": lab_state(self, big, "big-first-r1-lvslab"),
                                        "tag": "big-first-r1-lvslab"}
        # The lab now holds lvslab's converge: Ansible reruns first and must find nothing to do.
        log(f"  no-change rerun ({a.big_rounds} rounds)")
        self.rerun(big, "big-rerun", a.big_rounds, ["ansible", "pyinfra", "lvslab"])
        self.lvslab_ping(big, "big-rerun", max(a.big_rounds, 2))
        big.down()

    # ---- report ----

    def median(self, scenario, tool):
        s = self.samples.get((scenario, tool))
        return statistics.median(s) if s else None

    def report(self):
        a = self.args
        kernel = platform.release()
        cpus = os.cpu_count()
        ipvs = "with IPVS" if os.path.exists("/proc/net/ip_vs") else "without IPVS"
        when = datetime.datetime.now().strftime("%Y-%m-%d")
        small_n = 4
        big_n = a.big_real_servers + 2

        def rt(scenario):
            trips = self.round_trips.get(scenario)
            if not trips:
                return ""
            rs = [trips[h] for h in trips if h.startswith("node") and h not in ("node1", "node4")]
            d = [trips[h] for h in ("node1", "node4") if h in trips]
            fmt = lambda v: str(min(v)) if min(v) == max(v) else f"{min(v)}-{max(v)}"
            return f"{fmt(rs)} / {fmt(d)}"

        def mib(scenario):
            k = self.peak_kib.get(scenario)
            return f"{k / 1024:.1f}" if k else ""

        rows = []
        verdicts = []

        def fmt_s(v, digits):
            return f"{v:.{digits}f}" if v is not None else "(not run)"

        def row(label, scenario, hosts, ansible_target, pyinfra_target):
            lm = self.median(scenario, "lvslab")
            am, pm = self.median(scenario, "ansible"), self.median(scenario, "pyinfra")
            n = len(self.samples.get((scenario, "lvslab"), []))
            if lm is None:
                return None
            ratios, targets = [], []
            for peer, median, target in (("pyinfra", pm, pyinfra_target),
                                         ("Ansible", am, ansible_target)):
                if median is None:
                    ratios.append("")
                    continue
                ratio = median / lm
                ratios.append(f"**{ratio:.1f}x**")
                if target:
                    ok = ratio >= target
                    targets.append(f"{peer} >= {target:g}x: {'met' if ok else '**MISSED**'}")
                    verdicts.append((f"{label}: {peer}/lvslab >= {target:g}x", ok, f"{ratio:.1f}x"))
            rows.append(f"| {label} | {hosts} | {n} | {lm:.3f} | {fmt_s(pm, 2)} | {fmt_s(am, 2)} "
                        f"| {' | '.join(ratios)} | {'; '.join(targets) or 'see below'} "
                        f"| {mib(scenario)} | {rt(scenario)} |")
            return lm

        first_l = row("1. first converge", "first", small_n, TARGET_FIRST_RATIO,
                      TARGET_PYINFRA_FIRST)
        rerun_l = row("2. no-change rerun", "rerun", small_n, TARGET_RERUN_RATIO,
                      TARGET_PYINFRA_RERUN)
        big_first_l = row(f"3a. first converge, {a.big_real_servers} real servers",
                          "big-first", big_n, TARGET_BIG_RATIO, TARGET_PYINFRA_FIRST)
        big_rerun_l = row(f"3b. no-change rerun, {a.big_real_servers} real servers",
                          "big-rerun", big_n, TARGET_BIG_RATIO, TARGET_PYINFRA_RERUN)
        check_l = row("4. --check, converged", "check", small_n, None, None)

        for scenario, label, n_hosts in (("rerun", "2.", small_n), ("big-rerun", "3b.", big_n)):
            trips = self.round_trips.get(scenario)
            if trips:
                worst = max(v for h, v in trips.items() if h.startswith("node"))
                verdicts.append((f"{label} at most {TARGET_ROUND_TRIPS} SSH round trips per host "
                                 f"(no-change rerun, {n_hosts} hosts)",
                                 worst <= TARGET_ROUND_TRIPS, f"{worst}"))
            ping = self.median(f"{scenario}-ping", "lvslab")
            rerun = self.median(scenario, "lvslab")
            if ping and rerun:
                verdicts.append((f"{label} no-change rerun within {TARGET_PING_RATIO}x of "
                                 f"`lvslab ping` ({n_hosts} hosts)",
                                 rerun <= ping * TARGET_PING_RATIO,
                                 f"{rerun:.3f} s vs {ping:.3f} s ({rerun / ping:.2f}x)"))

        if rerun_l is not None:
            verdicts.append(("2. no-change rerun under ~0.35 s", rerun_l <= TARGET_RERUN_SECS,
                             f"{rerun_l:.3f} s"))
        if big_rerun_l and rerun_l:
            g = big_rerun_l / rerun_l
            verdicts.append((f"3. {a.big_real_servers} real servers: at most 3x the time of 2 "
                             "(no-change rerun)", g <= TARGET_BIG_GROWTH, f"{g:.2f}x"))
        if big_first_l and first_l:
            g = big_first_l / first_l
            verdicts.append((f"3. {a.big_real_servers} real servers: at most 3x the time of 2 "
                             "(first converge)", g <= TARGET_BIG_GROWTH, f"{g:.2f}x"))
        big_mem = max(self.peak_kib.get("big-first", 0), self.peak_kib.get("big-rerun", 0)) / 1024
        if big_mem:
            verdicts.append((f"3. peak memory with {a.big_real_servers} real servers < 64 MiB",
                             big_mem < TARGET_BIG_MEM_MIB, f"{big_mem:.1f} MiB"))
        if check_l and rerun_l:
            # Both do the same queries; 5 % is below the run-to-run spread of either.
            verdicts.append(("4. --check no slower than the no-change rerun (5 % noise margin)",
                             check_l <= rerun_l * 1.05, f"{check_l:.3f} s vs {rerun_l:.3f} s"))

        head = [
            f"Measured {when} on {cpus} cores, Linux {kernel} ({ipvs}), namespace lab; "
            f"lvslab {self.version()} vs pyinfra {PYINFRA} (--parallel = hosts) and ansible-core "
            f"{ANSIBLE_CORE} (pipelining, ControlPersist=60s, forks 64, no fact gathering). Medians of n runs per tool, run alternately; "
            f"benchmark took {self.elapsed / 60:.1f} min; other work used at most "
            f"{max(self.busy.values(), default=0):.0%} of the CPUs before a scenario.",
            "",
            "| scenario | hosts | n | lvslab s | pyinfra s | Ansible s | pyinfra/lvslab | Ansible/lvslab | targets | lvslab peak MiB | SSH round trips per host (real server / director) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        tail = ["", "| target | result | measured |", "|---|---|---|"]
        tail += [f"| {name} | {'met' if ok else '**MISSED**'} | {val} |" for name, ok, val in verdicts]
        table = "\n".join(head + rows + tail) + "\n"
        log("\n" + table)
        with open(os.path.join(self.out, "table.md"), "w") as f:
            f.write(table)
        with open(os.path.join(BENCH, "results", "latest.md"), "w") as f:
            f.write(table)
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump({
                "date": when, "kernel": kernel, "cpus": cpus, "ipvs": ipvs,
                "ansible_core": ANSIBLE_CORE, "pyinfra": PYINFRA, "lvslab": self.version(),
                "samples": {f"{s}/{t}": v for (s, t), v in self.samples.items()},
                "lvslab_peak_kib": self.peak_kib, "cpu_busy_before": self.busy, "round_trips": self.round_trips,
                "verdicts": [{"target": n, "met": ok, "measured": v} for n, ok, v in verdicts],
            }, f, indent=1)
        svg = self.plot([small_n, big_n] if a.big_real_servers else [small_n])
        if svg:
            for path in (os.path.join(self.out, "plot.svg"),
                         os.path.join(BENCH, "results", "latest.svg")):
                with open(path, "w") as f:
                    f.write(svg)
        log(f"results in {self.out}")

    def plot(self, sizes):
        """An SVG of wall time against hosts, both axes logarithmic: one line per tool for the
        first converge (solid) and the no-change rerun (dashed), from the medians."""
        colours = {"lvslab": "#1b7837", "pyinfra": "#2166ac", "ansible": "#b2182b"}
        kinds = [("first converge", ["first", "big-first"], ""),
                 ("no-change rerun", ["rerun", "big-rerun"], "6,4")]
        points = []
        for tool in TOOLS:
            for kind, scenarios, dash in kinds:
                line = [(n, self.median(sc, tool)) for n, sc in zip(sizes, scenarios)]
                line = [(n, v) for n, v in line if v]
                if line:
                    points.append((tool, kind, dash, line))
        values = [v for *_, line in points for _, v in line]
        if not values:
            return None
        w, h, left, right, top, bottom = 800, 440, 70, 230, 40, 50
        ymin = 10 ** math.floor(math.log10(min(values)))
        ymax = 10 ** math.ceil(math.log10(max(values)))
        xmin, xmax = min(sizes) / 1.5, max(sizes) * 1.5

        def x(n):
            return left + (math.log(n) - math.log(xmin)) / (math.log(xmax) - math.log(xmin)) * (w - left - right)

        def y(v):
            return top + (math.log(ymax) - math.log(v)) / (math.log(ymax) - math.log(ymin)) * (h - top - bottom)

        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
               f'font-family="sans-serif" font-size="12">',
               f'<rect width="{w}" height="{h}" fill="white"/>',
               f'<text x="{left}" y="22" font-size="14" font-weight="bold">Wall time against '
               f'hosts (medians; both axes logarithmic)</text>']
        decade = ymin
        while decade <= ymax * 1.0001:
            for m in (1, 2, 5):
                v = decade * m
                if ymin <= v <= ymax:
                    out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                               f'stroke="#ddd"/>')
                    out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                               f'{v:g} s</text>')
            decade *= 10
        for n in sizes:
            out.append(f'<line x1="{x(n):.1f}" x2="{x(n):.1f}" y1="{top}" y2="{h - bottom}" '
                       f'stroke="#ddd"/>')
            out.append(f'<text x="{x(n):.1f}" y="{h - bottom + 18}" text-anchor="middle">{n}</text>')
        out.append(f'<text x="{(left + w - right) / 2:.0f}" y="{h - 12}" text-anchor="middle">'
                   f'hosts (real servers + 2 directors)</text>')
        out.append(f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" '
                   f'fill="none" stroke="#888"/>')
        for i, (tool, kind, dash, line) in enumerate(points):
            c = colours[tool]
            path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in line)
            out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2" '
                       f'stroke-dasharray="{dash}"/>')
            for n, v in line:
                out.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3.5" fill="{c}"/>')
            n, v = line[-1]
            ly = top + 14 + i * 20
            out.append(f'<line x1="{w - right + 12}" x2="{w - right + 40}" y1="{ly - 4}" y2="{ly - 4}" '
                       f'stroke="{c}" stroke-width="2" stroke-dasharray="{dash}"/>')
            out.append(f'<text x="{w - right + 46}" y="{ly}">{tool}, {kind}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def version(self):
        v = run([self.lvslab, "--version"]).stdout.split()[-1]
        if not self.args.lvslab and os.path.isdir(os.path.join(ROOT, ".git")):
            p = run(["git", "-C", ROOT, "describe", "--always", "--dirty"], check=False)
            if p.returncode == 0:
                v += f" ({p.stdout.strip()})"
        return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5,
                    help="rounds per tool for scenarios 1, 2 and 4 (default 5)")
    ap.add_argument("--big-rounds", type=int, default=2,
                    help="rounds per tool of the no-change rerun with many real servers (default "
                         "2: Ansible takes ~2 min a run there)")
    ap.add_argument("--big-first-rounds", type=int, default=1,
                    help="rounds per tool of the first converge with many real servers "
                         "(default 1; 0 skips it)")
    ap.add_argument("--big-real-servers", type=int, default=50,
                    help="real servers in scenario 3 (default 50; 0 skips scenario 3)")
    ap.add_argument("--wait-idle", type=int, default=600,
                    help="seconds to wait, in all, for other work to leave the CPUs idle before "
                         "a scenario (default 600)")
    ap.add_argument("--lvslab", help="use this lvslab binary instead of building one")
    ap.add_argument("--wait-for-network", type=int, default=900,
                    help="seconds to wait while another lab holds 198.18.0.0/24 (default 900)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer rounds (3, 1, 0): about 4 minutes instead of about 9")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.big_rounds, args.big_first_rounds = 3, 1, 0
    if os.geteuid() != 0:
        sys.exit("bench/run.py builds namespace labs: run it as root")
    bench = Bench(args)
    try:
        bench.main()
    except BenchError as e:
        log(f"\nBENCHMARK FAILED: {e}")
        return 1
    except KeyboardInterrupt:
        log("\ninterrupted")
        return 130
    finally:
        for lab in bench.labs:
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
