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

from segbench import SegbenchError, devices
from segbench.training.checkpoint import restore_rng_state, rng_state
from segbench.training.device import Accelerator
from support import REPO, results_copy, tool_env
from support.fake_cuda import install

RECIPE = {"amp": True, "channels_last": True, "threads": 4, "workers": None}


def start_job(tmp_path, name: str, uuids: str, hold: float | Path, **env) -> subprocess.Popen:
    """A job process taking a device as train does; it writes "<device> <time>" to ``tmp_path/name`` and its log
    to ``tmp_path/name.log``, and holds the device ``hold`` seconds or until the file ``hold`` exists."""
    environment = tool_env(SEGBENCH_LOCK_DIR=str(tmp_path / "locks"), PYTHONPATH=f"{REPO / 'src'}:{REPO / 'tests'}",
                           **env)
    for key in ("SLURM_JOB_ID", "SLURM_JOB_GPUS", "KUBERNETES_SERVICE_HOST"):
        if key not in env:
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


def test_two_slurm_jobs_each_seeing_device_0_start_together(tmp_path):
    """Slurm gave each job its own GPU; both see CUDA_VISIBLE_DEVICES=0 and the same index. Neither waits: each
    starts while the other holds its device."""
    slurm = {"SLURM_JOB_ID": "41", "SLURM_JOB_GPUS": "0", "CUDA_VISIBLE_DEVICES": "0"}
    release = tmp_path / "release"
    jobs = [start_job(tmp_path, name, "GPU-same-looking", release, **slurm) for name in ("a", "b")]
    try:
        (device_a, _), (device_b, _) = started(tmp_path, "a"), started(tmp_path, "b")
        assert device_a == device_b == "cuda:0"
        assert not (tmp_path / "locks").exists()  # under a scheduler, no lock at all
    finally:
        release.touch()
        for job in jobs:
            job.wait(timeout=30)


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


def test_the_lock_directory_is_shared_by_users(monkeypatch):
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
                pytest.skip("a second user needs root to switch to it (CI runs as root)")
            child = os.fork()  # user "nobody" takes the other GPU (a fork: root's venv is not nobody's to run)
            if child == 0:
                code = 1
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    code = 0 if devices.Lease(["GPU-a", "GPU-b"], poll=0.05, timeout=1).acquire() == 1 else 2
                except BaseException as exc:
                    print(f"nobody: {exc!r}", file=sys.stderr)
                finally:
                    os._exit(code)
            assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
            assert (locks / "gpu-GPU-b.lock").stat().st_uid == 65534
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


def test_evaluate_latency_and_predict_take_a_device(swept, tmp_path, monkeypatch):
    """Each GPU job goes through devices.device (lease or scheduler) and runs its models on what it holds."""
    import contextlib

    from segbench.apps.cli import main

    taken = []

    @contextlib.contextmanager
    def recorded(requested=None):
        taken.append(requested or "auto")
        yield torch.device("cpu")

    monkeypatch.setattr(devices, "device", recorded)
    project = results_copy(swept, tmp_path / "project")
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    image = next((project / "data/raw/synthetic/extracted/BTXRD/images").glob("*.jpeg"))
    assert main(["evaluate", "--arch", "attention_unet", "--loss", "dice"]) == 0
    assert main(["latency", "--arch", "attention_unet"]) == 0
    assert main(["predict", str(image), "--run", "attention_unet__dice", "--device", "cpu", "--out",
                 str(tmp_path / "out")]) == 0
    assert taken == ["auto", "auto", "cpu"]


def test_doctor_on_this_cpu_machine_and_on_pretend_gpus(tmp_path, monkeypatch, capsys):
    from segbench.apps import doctor
    from segbench.apps.cli import main

    assert main(["doctor"]) == 0
    assert "No CUDA device visible: segbench trains, evaluates and predicts on the CPU" in capsys.readouterr().out
    assert doctor.training_step(torch.device("cpu"))["loss_finite"]  # the step itself, where it can run

    monkeypatch.setenv("SEGBENCH_LOCK_DIR", str(tmp_path))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    install(monkeypatch, ["GPU-a", "GPU-b"], (7, 5))
    held = []

    def step(device):
        held.append((str(device), sorted(p.name for p in tmp_path.glob("*.lock"))))
        return {"step_ms": 12.0, "loss_finite": True, "amp": "float16", "peak_memory_mb": 80.0}

    monkeypatch.setattr(doctor, "training_step", step)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert [device for device, _ in held] == ["cuda:0", "cuda:1"]  # each leased in turn
    assert "2 GPU(s) visible; leased through lock files" in out
    assert "cuda:1: Fake GPU 1, compute capability 7.5, 16.0 GB; AMP float16" in out
