"""GPU paths without a GPU: pretend CUDA devices (support.fake_cuda) and several processes against one lock
directory. What is simulated is the choice of device, the lease, AMP's dtype and the RNG state on resume; no
kernel runs on a GPU here."""

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from segbench import SegbenchError, devices, paths
from segbench.training.checkpoint import restore_rng_state, rng_state
from segbench.training.device import Accelerator
from support import REPO, results_copy, tool_env
from support.fake_cuda import install

RECIPE = {"amp": True, "channels_last": True, "threads": 4, "workers": None}


def start_job(tmp_path, name: str, uuids: str, hold: float | Path, **env) -> subprocess.Popen:
    """A job process taking a device as train does; it writes "<device> <time>" to ``tmp_path/name`` and its log
    to ``tmp_path/name.log``, and holds the device ``hold`` seconds or until the file ``hold`` exists."""
    env.setdefault("SEGBENCH_LOCK_DIR", str(tmp_path / "locks"))  # "": the machine-wide default folder
    environment = tool_env(PYTHONPATH=f"{REPO / 'src'}:{REPO / 'tests'}", **env)
    for key in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES",
                "KUBERNETES_SERVICE_HOST", "SEGBENCH_LOCK_DIR"):
        if not env.get(key):
            environment.pop(key, None)
    hold = str(hold) if isinstance(hold, Path) else hold
    return subprocess.Popen([sys.executable, "-c", "import sys; from support.fake_cuda import fake_job; "
                             f"fake_job({uuids!r}, {hold!r}, {str(tmp_path / name)!r})"], env=environment,
                            stderr=(tmp_path / f"{name}.log").open("w"))


def started(tmp_path, name: str, timeout: float = 30.0) -> tuple[str, float]:
    deadline = time.monotonic() + timeout
    while not (tmp_path / name).exists() or not (tmp_path / name).read_text():
        assert time.monotonic() < deadline, f"job {name} never got a device"
        time.sleep(0.05)
    device, at = (tmp_path / name).read_text().split()
    return device, float(at)


def unique(*names: str) -> list[str]:
    """Pretend GPU UUIDs no other test run shares (the default lock folder is the machine's)."""
    import uuid

    run = uuid.uuid4().hex[:8]
    return [f"GPU-{name}-{run}" for name in names]


def test_two_slurm_jobs_each_given_its_own_gpu_start_together(tmp_path):
    """Slurm gave each job its own GPU: both see CUDA_VISIBLE_DEVICES=0 and index 0, each another physical GPU
    (UUID). Neither waits: each starts while the other holds its device."""
    slurm = {"SLURM_JOB_ID": "41", "SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0"}
    release = tmp_path / "release"
    first, second = unique("a", "b")
    jobs = [start_job(tmp_path, name, uuid, release, **slurm) for name, uuid in (("a", first), ("b", second))]
    try:
        (device_a, _), (device_b, _) = started(tmp_path, "a"), started(tmp_path, "b")
        assert device_a == device_b == "cuda:0"
    finally:
        release.touch()
        for job in jobs:
            job.wait(timeout=30)


def test_two_jobs_inside_one_two_gpu_allocation_run_on_different_gpus(tmp_path):
    """`salloc --gpus=2` (or one sbatch running `snakemake --resources gpu=2`): both jobs see the allocation's two
    GPUs; they lease one each, never both cuda:0."""
    allocation = {"SLURM_JOB_ID": "42", "SLURM_JOB_GPUS": "0,1", "SLURM_GPUS_ON_NODE": "2",
                  "CUDA_VISIBLE_DEVICES": "0,1"}
    release = tmp_path / "release"
    uuids = ",".join(unique("x", "y"))
    jobs = [start_job(tmp_path, name, uuids, release, **allocation) for name in ("a", "b")]
    try:
        assert {started(tmp_path, "a")[0], started(tmp_path, "b")[0]} == {"cuda:0", "cuda:1"}
    finally:
        release.touch()
        for job in jobs:
            job.wait(timeout=30)


def test_jobs_with_different_tmpdir_and_home_share_the_machine_wide_lease(tmp_path):
    """Two users' jobs (pam_tmpdir, containers, Slurm's private /tmp): different TMPDIR and HOME, no
    SEGBENCH_LOCK_DIR. They lease different devices of a 2-GPU machine, through the one machine-wide folder."""
    release = tmp_path / "release"
    uuids = ",".join(unique("p", "q"))
    jobs = []
    for name in ("a", "b"):
        (tmp_path / f"tmp-{name}").mkdir()
        home = str(tmp_path / f"tmp-{name}")
        jobs.append(start_job(tmp_path, name, uuids, release, SEGBENCH_LOCK_DIR="", TMPDIR=home, HOME=home))
    try:
        assert {started(tmp_path, "a")[0], started(tmp_path, "b")[0]} == {"cuda:0", "cuda:1"}
        assert (devices.LOCK_DIR / f"gpu-{uuids.split(',')[0]}.lock").exists()
    finally:
        release.touch()
        for job in jobs:
            job.wait(timeout=30)
        for uuid in uuids.split(","):
            (devices.LOCK_DIR / f"gpu-{uuid}.lock").unlink(missing_ok=True)


def test_a_killed_lease_holder_frees_its_gpu(tmp_path):
    (uuid,) = unique("k")
    holder = start_job(tmp_path, "a", uuid, 600)
    started(tmp_path, "a")
    waiting = start_job(tmp_path, "b", uuid, 0)
    deadline = time.monotonic() + 60
    while "waiting for a free GPU" not in (tmp_path / "b.log").read_text():
        assert time.monotonic() < deadline, (tmp_path / "b.log").read_text()
        time.sleep(0.05)
    assert f"cuda:0 by {os.environ.get('USER', 'root')}" in (tmp_path / "b.log").read_text() or \
        f"pid {holder.pid}" in (tmp_path / "b.log").read_text()  # who holds it, said while waiting
    holder.kill()  # no release, no clean-up: the kernel drops the lock with the process
    holder.wait(timeout=30)
    assert started(tmp_path, "b")[0] == "cuda:0"
    waiting.wait(timeout=30)


def test_locks_are_per_physical_gpu_not_per_index(tmp_path):
    """Without a scheduler: two jobs seeing one device each at index 0, different GPUs (UUIDs), both start; a
    third on the first one's GPU waits for it, saying so, and starts once it is released."""
    release = tmp_path / "release"
    jobs = [start_job(tmp_path, "a", "GPU-1111", release), start_job(tmp_path, "b", "GPU-2222", 0)]
    try:
        started(tmp_path, "a")
        started(tmp_path, "b")  # while "a" holds its GPU: "b" did not wait for it
        jobs.append(start_job(tmp_path, "c", "GPU-1111", 0))
        deadline = time.monotonic() + 60
        while "waiting for a free GPU" not in (tmp_path / "c.log").read_text():
            assert time.monotonic() < deadline and jobs[-1].poll() is None, (tmp_path / "c.log").read_text()
            time.sleep(0.05)
        assert not (tmp_path / "c").exists()
        released_at = time.monotonic()
        release.touch()
        _, at_c = started(tmp_path, "c")
        assert at_c > released_at
    finally:
        release.touch()
        for job in jobs:
            job.wait(timeout=30)


def as_user(uid: int, work) -> int:
    """Run ``work()`` in a forked child as ``uid`` (a fork: root's venv is not another user's to run); its exit
    code (0: ``work`` returned True)."""
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.setgid(uid)
            os.setuid(uid)
            code = 0 if work() else 2
        except BaseException as exc:
            print(f"uid {uid}: {exc!r}", file=sys.stderr)
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


def test_the_lock_folder_and_a_lock_file_another_user_made_work_for_every_user(monkeypatch):
    """The folder is sticky and world-writable; a lock file "nobody" created (its umask: 0644) is used by root and
    by a third user without error (through a read-only handle: flock needs no write access)."""
    shared = Path(tempfile.mkdtemp(prefix="segbench-test-"))  # not under pytest's tmp: that is root's alone
    shared.chmod(0o755)
    locks = shared / "locks"
    monkeypatch.setenv("SEGBENCH_LOCK_DIR", str(locks))
    old = os.umask(0o022)
    try:
        with devices.Lease(["GPU-a", "GPU-b"], poll=0.05, timeout=1) as lease:
            assert lease.index == 0
            assert locks.stat().st_mode & 0o7777 == 0o1777
            assert (locks / "gpu-GPU-a.lock").stat().st_mode & 0o777 == 0o666
        if os.geteuid() != 0:
            pytest.skip("other users need root to switch to them (CI runs as root)")

        def nobody_leaves_a_0644_file() -> bool:
            path = locks / "gpu-GPU-c.lock"
            path.write_text("")
            return path.stat().st_mode & 0o777 == 0o644

        assert as_user(65534, nobody_leaves_a_0644_file) == 0
        assert (locks / "gpu-GPU-c.lock").stat().st_uid == 65534
        for uid in (0, 4242):  # root, and a third user that cannot write nobody's file
            code = as_user(uid, lambda: devices.Lease(["GPU-c"], poll=0.05, timeout=1).acquire() == 0)
            assert code == 0, uid
        with devices.Lease(["GPU-c"], poll=0.05, timeout=1):  # held by root: the third user waits, then says so
            assert as_user(4242, lambda: devices.Lease(["GPU-c"], poll=0.05, timeout=0.2).acquire() == 0) != 0
    finally:
        os.umask(old)
        shutil.rmtree(shared)


def test_a_lease_logs_while_it_waits_and_times_out_naming_the_gpus(tmp_path, caplog):
    with devices.Lease(["GPU-a"], directory=tmp_path, poll=0.05, timeout=5):
        with caplog.at_level(logging.INFO), pytest.raises(TimeoutError, match=r"no free GPU among \['GPU-a'\]"):
            devices.Lease(["GPU-a"], directory=tmp_path, poll=0.05, timeout=0.3).acquire()
    assert "waiting for a free GPU" in caplog.text


def test_device_choice_and_set_device(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_LOCK_DIR", str(tmp_path))
    for key in ("SLURM_JOB_ID", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(key, raising=False)
    calls = install(monkeypatch, ["GPU-a", "GPU-b"])
    with devices.device() as first, devices.device() as second:
        assert (str(first), str(second)) == ("cuda:0", "cuda:1")  # a second job in this process: the next GPU
    with devices.device("cuda:1") as chosen, devices.device("cpu") as cpu:
        assert str(chosen) == "cuda:1" and cpu.type == "cpu"
    assert calls["set_device"] == ["cuda:0", "cuda:1", "cuda:1"]
    with pytest.raises(SegbenchError, match="sees 2 CUDA device"):
        with devices.device("cuda:2"):
            pass
    with pytest.raises(SegbenchError, match="use auto, cpu, cuda or cuda:<k>"):
        with devices.device("gpu0"):
            pass


@pytest.mark.parametrize("capability, dtype", [((7, 0), torch.float16), ((7, 5), torch.float16),
                                               ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_bf16_only_from_compute_capability_8(monkeypatch, capability, dtype):
    install(monkeypatch, ["GPU-a", "GPU-b"], capability)
    seen = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: seen.append(device) or capability)
    acc = Accelerator.for_device(torch.device("cuda", 1), RECIPE)
    assert acc.amp_dtype == dtype and seen == [torch.device("cuda", 1)]  # the leased device, not device 0
    assert acc.workers == 3 and acc.precision == {"device": "cuda", "amp": str(dtype).removeprefix("torch.")}


def test_resume_on_a_machine_with_fewer_gpus(monkeypatch):
    """Saved on cuda:1 of two GPUs, resumed where the job sees one: only the job's own device's RNG state."""
    generator = torch.Generator()
    calls = install(monkeypatch, ["GPU-a", "GPU-b"])
    state = rng_state(generator, torch.device("cuda", 1))
    assert calls["get_rng_state"] == [1] and state["cuda"].shape == (16,)
    calls = install(monkeypatch, ["GPU-b"])
    restore_rng_state(state, generator, torch.device("cuda", 0))
    assert calls["set_rng_state"] == [0]


def test_evaluate_latency_and_predict_take_a_device_and_evaluate_holds_it_for_the_forward_passes_only(
        swept, tmp_path, monkeypatch, caplog):
    """Each GPU job goes through devices.device (a lease) and runs its models on what it holds; evaluate holds it
    for its forward passes alone, less than half its run, and its log says how long."""
    import contextlib
    import re

    from segbench.apps.cli import main

    taken, held = [], []

    @contextlib.contextmanager
    def recorded(requested=None):
        taken.append(requested or "auto")
        start = time.monotonic()
        yield torch.device("cpu")
        held.append(time.monotonic() - start)

    monkeypatch.setattr(devices, "device", recorded)
    project = results_copy(swept, tmp_path / "project")
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    image = next((project / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    start = time.monotonic()
    with caplog.at_level(logging.INFO):
        assert main(["evaluate", "--arch", "attention_unet", "--loss", "dice"]) == 0
    job = time.monotonic() - start
    assert held[0] < 0.5 * job, (held, job)
    said = re.search(r"held ([\d.]+) s of the job's ([\d.]+) s \((\d+) %: the forward passes only\)", caplog.text)
    assert said and float(said[1]) <= held[0] + 0.1 and int(said[3]) < 50, caplog.text
    shutil.rmtree(project / paths.MEASURED_LATENCY, ignore_errors=True)  # measured here, not reused
    assert main(["latency", "--arch", "attention_unet"]) == 0
    assert main(["predict", str(image), "--run", "attention_unet__dice", "--device", "cpu", "--out",
                 str(tmp_path / "out")]) == 0
    assert taken == ["auto", "auto", "cpu"]


def test_doctor_on_this_cpu_machine_on_an_invisible_assigned_gpu_and_on_pretend_gpus(tmp_path, monkeypatch, capsys):
    from segbench.apps import doctor
    from segbench.apps.cli import main

    for key in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES",
                "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert time.monotonic() - start < 10
    assert "No CUDA device visible: segbench trains, evaluates and predicts on the CPU" in out
    assert "GPU lock folder: " in out and "/dev/shm: " in out and "nnunetv2: " in out and "can run the sweep" in out
    assert doctor.training_step(torch.device("cpu"))["loss_finite"]  # the step itself, where it can run

    monkeypatch.setenv("SLURM_JOB_ID", "7")
    for key in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.setenv(key, "0")
    assert main(["doctor"]) == 1  # Slurm gave a GPU that torch cannot see
    assert "PROBLEM: GPUs were assigned to this job (SLURM_JOB_GPUS=0" in capsys.readouterr().out

    monkeypatch.setenv("SEGBENCH_LOCK_DIR", str(tmp_path / "locks"))
    for key in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(key)
    install(monkeypatch, ["GPU-a", "GPU-b"], (7, 5))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (10 * 2**30, 16 * 2**30), raising=False)
    steps = []

    def step(device):
        steps.append(str(device))
        return {"step_ms": 12.0, "loss_finite": True, "amp": "float16", "peak_memory_mb": 80.0}

    monkeypatch.setattr(doctor, "training_step", step)
    with devices.Lease(["GPU-b"], directory=tmp_path / "locks", poll=0.05, timeout=1):  # another job holds cuda:1
        start = time.monotonic()
        assert main(["doctor", "--smoke"]) == 0
        assert time.monotonic() - start < 10  # never waits on the held GPU
    out = capsys.readouterr().out
    assert steps == ["cuda:0"]  # the free one only
    assert "cuda:0: Fake GPU 0, compute capability 7.5, AMP float16, 10.0 of 16.0 GB free; lease: free" in out
    assert f"cuda:1: Fake GPU 1, compute capability 7.5, AMP float16, 10.0 of 16.0 GB free; lease: " \
           f"{os.environ.get('USER') or 'root'} (pid {os.getpid()}" in out
    assert "smoke: skipped, the GPU is leased by another job" in out


def test_a_train_job_given_a_gpu_torch_cannot_see_stops_before_training(prepared, tmp_path, monkeypatch, capsys):
    """SLURM_JOB_GPUS=0 SLURM_STEP_GPUS=0 CUDA_VISIBLE_DEVICES=0 on this CPU machine: no silent CPU training."""
    from segbench.apps.cli import main

    project = tmp_path / "project"
    shutil.copytree(prepared, project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    for key in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.setenv(key, "0")
    for stage in (["train", "--arch", "attention_unet", "--loss", "dice"],
                  ["evaluate", "--arch", "attention_unet", "--loss", "dice"], ["latency", "--arch", "attention_unet"]):
        assert main(stage) == 1, stage
        error = capsys.readouterr().err
        assert "GPUs were assigned to this job (SLURM_JOB_GPUS=0, SLURM_STEP_GPUS=0, CUDA_VISIBLE_DEVICES=0), but " \
               "torch sees no CUDA device" in error and "train.device: cpu" in error, error
    assert not list(project.glob("results/**/history.csv"))  # not one epoch
    assert main(["train", "--arch", "attention_unet", "--loss", "dice", "--device", "cpu"]) == 0  # on purpose
