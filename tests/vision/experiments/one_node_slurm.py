"""A one-node SLURM cluster on this machine for the launcher tests: Debian's slurmctld and slurmd (``make slurm``
installs them with munge) with a minimal slurm.conf for this host, on free ports, state in a temporary folder. munge
is reused when one runs, else started. :func:`start_cluster` returns the cluster, or None and the reason it
could not run here (the error text of the step that failed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "munged", "munge", "sbatch", "squeue", "scontrol", "sinfo")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 // 2
    return 1024


def slurm_conf(folder: Path, host: str) -> str:
    """A minimal slurm.conf: this host as the controller and the one node, no cgroups, no accounting."""
    return "\n".join([
        "ClusterName=jepalab-test", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "SchedulerType=sched/builtin", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "ReturnToService=2", "MpiDefault=none",
        f"NodeName={host} CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


class OneNodeSlurm:
    """The daemons this test started (stopped by :meth:`stop`) and the environment its clients need."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {"SLURM_CONF": str(folder / "slurm.conf")}
        self.processes: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, *command: str) -> None:
        with open(self.folder / f"{name}.out", "wb") as log:
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                   env={**os.environ, **self.env}))

    def _wait(self, what: str, ready: list[str], expect: str, seconds: float = 30.0) -> None:
        """Until ``ready`` prints ``expect``; RuntimeError with the daemons' logs otherwise."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done = subprocess.run(ready, capture_output=True, text=True, env={**os.environ, **self.env}, check=False)
            if expect in done.stdout:
                return
            dead = [p.args for p in self.processes if p.poll() is not None]
            if dead:
                break
            time.sleep(0.5)
        logs = "; ".join(f"{p.name}: {p.read_text()[-400:]}" for p in sorted([*self.folder.glob("*.log"),
                                                                             *self.folder.glob("*.out")]))
        raise RuntimeError(f"{what} not ready (last answer: {done.stdout.strip() or done.stderr.strip()}); {logs}")

    def start(self) -> None:
        """munge (unless one answers), slurmctld and slurmd in the foreground; returns once the node is idle."""
        host = socket.gethostname().split(".")[0]
        for sub in ("state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        (self.folder / "slurm.conf").write_text(slurm_conf(self.folder, host))
        if subprocess.run("munge -n | unmunge", shell=True, capture_output=True, check=False).returncode != 0:
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            self._start("munged", "runuser", "-u", "munge", "--", "munged", "-F")
            self._wait("munged", ["sh", "-c", "munge -n | unmunge"], "Success")
        self._start("slurmctld", "slurmctld", "-D")
        self._start("slurmd", "slurmd", "-D")
        self._wait("the node", ["sinfo", "-h", "-o", "%t"], "idle")

    def stop(self) -> None:
        """Terminate the daemons this test started, last started first."""
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def start_cluster(folder: Path) -> tuple[OneNodeSlurm | None, str]:
    """(the running cluster, "") or (None, why SLURM cannot run here)."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return None, f"{', '.join(missing)} not installed (make slurm, or apt-get install slurmctld slurmd munge)"
    if os.geteuid() != 0:
        return None, "not root: slurmd must start jobs as their user and munged must read /etc/munge/munge.key"
    cluster = OneNodeSlurm(folder)
    try:
        cluster.start()
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        cluster.stop()
        return None, f"the daemons did not come up: {error}"
    return cluster, ""
