"""A compression killed midway continues where it stopped: `lrnb_compress` on a 24-block Llama (random weights,
SmolLM2's architecture at 256 wide, in a local folder) is SIGKILLed once a few blocks are checkpointed, the same
command run again reads them back, and the saved model equals an uninterrupted run's tensor for tensor (the compress
lesson tests the same in-process, on tiny models; the end-to-end tests run the real SmolLM2 through the same command).

The model is random rather than SmolLM2 because the kill-and-resume path does not depend on the weights and two
full compressions of SmolLM2 cost about five minutes of CI; 24 blocks leave time to kill the run midway.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path
from safetensors.torch import load_file
import pytest
import torch

BIN = Path(sys.executable).parent
SETTINGS = ["--method", "whitened", "--sequential", "--ratio", "0.3", "--n_windows", "4", "--seq_len", "128",
            "--eval_windows", "0", "--device", "cpu", "--json"]
BLOCKS = 24


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    from lrnb.disk_bench import random_llama_folder
    return random_llama_folder(tmp_path_factory.mktemp("llama") / "llama", layers=BLOCKS, hidden=256, mlp=768, heads=4,
                               vocab=257)


def command(folder, *args):
    return [str(BIN / "lrnb_compress"), *SETTINGS, "--model", str(folder), *args]


def compress(folder, *args):
    r = subprocess.run(command(folder, *args), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def blocks_in(folder):
    return sorted(folder.glob("block-*.safetensors"))


def test_killed_run_resumes_to_the_same_model(model_folder, tmp_path):
    out, ck = tmp_path / "resumed", tmp_path / "ck"
    proc = subprocess.Popen(command(model_folder, "--out", str(out), "--checkpoint", str(ck)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ck.exists() or len(blocks_in(ck)) < 3:
            assert proc.poll() is None, "lrnb_compress ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = len(blocks_in(ck))
    assert 3 <= finished < BLOCKS and not out.exists(), (finished, out.exists())

    again = compress(model_folder, "--out", str(out), "--checkpoint", str(ck))
    assert json.loads(again.stdout)["resumed_blocks"] == finished
    assert f"lrnb: resumed {finished} finished blocks from {ck}" in again.stderr
    assert len(blocks_in(ck)) == BLOCKS   # a named checkpoint folder is kept

    compress(model_folder, "--out", str(tmp_path / "whole"), "--no_checkpoint")
    got, ref = load_file(out / "model.safetensors"), load_file(tmp_path / "whole" / "model.safetensors")
    assert got.keys() == ref.keys()
    different = [k for k in ref if not torch.equal(got[k], ref[k])]
    assert not different, different[:5]
    assert json.loads((out / "config.json").read_text())["lrnb"] == json.loads((tmp_path / "whole" / "config.json").read_text())["lrnb"]
