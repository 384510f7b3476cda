"""A real single-node Slurm cluster for tests: munge, slurmctld and slurmd on this machine, with two
partitions (debug, the default, and gpu) and 2 pretend GPUs. Needs Debian's slurm-wlm and munge, and root.

The configuration goes where Slurm looks by default, /etc/slurm/ (the Slurm executor's job steps drop
SLURM_CONF before their nested srun), and only when no configuration is there already, or one an
interrupted test left (it is marked, and its daemons are stopped); everything else lives in a
temporary folder. Both are removed afterwards.

The node declares 16 CPUs and 64 GB whatever the machine has (``config_overrides``), so that the
real slurm profile's requests fit unchanged; nothing enforces them (no cgroups).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

NEEDED = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue")
CONF_DIR = Path("/etc/slurm")
MARK = "# written by segbench's tests/slurm_cluster.py\n"


def why_not() -> str | None:
    """Why a cluster cannot start here, or None."""
    missing = [tool for tool in NEEDED if not shutil.which(tool)]
    if missing:
        return f"Slurm is not installed (missing {missing}; Debian's slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    conf = CONF_DIR / "slurm.conf"
    if conf.exists() and not conf.read_text().startswith(MARK):
        return f"{CONF_DIR / 'slurm.conf'} exists: this machine has a Slurm set-up the test will not replace"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config(root: Path, host: str) -> str:
    return f"""{MARK}ClusterName=segbench
SlurmctldHost={host}(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs=16 RealMemory=64000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={host} Default=NO MaxTime=INFINITE State=UP
"""


def _stop(conf: str) -> None:
    """Stop the daemons whose pid files ``conf`` (a slurm.conf of ours) names."""
    pidfiles = [line.split("=", 1)[1] for line in conf.splitlines() if line.split("=")[0].endswith("PidFile")]
    for pidfile in [*pidfiles, str(Path(pidfiles[0]).parent / "munge/munged.pid")]:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(Path(pidfile).read_text().strip()), 15)
    time.sleep(1)


@contextlib.contextmanager
def cluster(root: Path):
    """Start the cluster under ``root``; its clients (sbatch, squeue) find it through /etc/slurm."""
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "log", "munge"):
        (root / sub).mkdir(parents=True)
    subprocess.run(["mungekey", "-c", "-f", "-k", str(root / "munge/munge.key")], check=True, capture_output=True)
    os.chmod(root / "munge/munge.key", 0o400)
    CONF_DIR.mkdir(parents=True, exist_ok=True)
    if (CONF_DIR / "slurm.conf").exists():  # left by an interrupted run (why_not checked the mark)
        _stop((CONF_DIR / "slurm.conf").read_text())
    (CONF_DIR / "slurm.conf").write_text(config(root, host))
    (CONF_DIR / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null\n"
                                        f"NodeName={host} Name=gpu File=/dev/zero\n")
    daemons = [["munged", f"--key-file={root}/munge/munge.key", f"--socket={root}/munge/munge.sock",
                f"--pid-file={root}/munge/munged.pid", f"--log-file={root}/munge/munged.log",
                f"--seed-file={root}/munge/seed", "--force"],
               ["slurmctld"], ["slurmd"]]
    try:
        for command in daemons:
            subprocess.run(command, check=True, capture_output=True)
            time.sleep(1)
        deadline = time.monotonic() + 60
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout:
            if time.monotonic() > deadline:
                log = (root / "log/slurmctld.log").read_text()[-2000:]
                raise RuntimeError(f"the Slurm node did not come up:\n{log}")
            time.sleep(1)
        yield
    finally:
        _stop((CONF_DIR / "slurm.conf").read_text())
        for name in ("slurm.conf", "gres.conf"):
            (CONF_DIR / name).unlink(missing_ok=True)
