"""A compression killed midway continues where it stopped: `lrnb_compress` on the real SmolLM2 is SIGKILLed once
a few blocks are checkpointed, the same command run again reads them back, and the saved model equals an
uninterrupted run's tensor for tensor (the compress lesson tests the same in-process, on tiny models).

It costs about two full compressions of SmolLM2 (the reference, and the killed run plus its continuation); the
float64 SVDs of the 210 matrices are most of that time.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path
from safetensors.torch import load_file
import torch

BIN = Path(sys.executable).parent
SETTINGS = ["--method", "whitened", "--sequential", "--ratio", "0.3", "--n_windows", "4", "--seq_len", "128",
            "--eval_windows", "0", "--device", "cpu", "--json"]
BLOCKS = 30   # decoder blocks of SmolLM2-135M


def compress(*args):
    r = subprocess.run([str(BIN / "lrnb_compress"), *SETTINGS, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def blocks_in(folder):
    return sorted(folder.glob("block-*.safetensors"))


def test_killed_run_resumes_to_the_same_model(tmp_path):
    out, ck = tmp_path / "resumed", tmp_path / "ck"
    cmd = [str(BIN / "lrnb_compress"), *SETTINGS, "--out", str(out), "--checkpoint", str(ck)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ck.exists() or len(blocks_in(ck)) < 5:
            assert proc.poll() is None, "lrnb_compress ended before it could be killed"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = len(blocks_in(ck))
    assert 5 <= finished < BLOCKS and not out.exists(), (finished, out.exists())

    again = compress("--out", str(out), "--checkpoint", str(ck))
    assert json.loads(again.stdout)["resumed_blocks"] == finished
    assert f"lrnb: resumed {finished} finished blocks from {ck}" in again.stderr
    assert len(blocks_in(ck)) == BLOCKS   # a named checkpoint folder is kept

    compress("--out", str(tmp_path / "whole"), "--no_checkpoint")
    got, ref = load_file(out / "model.safetensors"), load_file(tmp_path / "whole" / "model.safetensors")
    assert got.keys() == ref.keys()
    different = [k for k in ref if not torch.equal(got[k], ref[k])]
    assert not different, different[:5]
    assert json.loads((out / "config.json").read_text())["lrnb"] == json.loads((tmp_path / "whole" / "config.json").read_text())["lrnb"]
