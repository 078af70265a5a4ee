"""End-to-end runs of the console scripts on the real SmolLM2, as a user runs them (the lessons test the parts).

The README's first command runs `lrnb_compress` with its defaults (64 x 512 calibration tokens); here the same
path runs with few windows so that CI stays quick.
"""
import json, subprocess, sys
from pathlib import Path
import pytest
import yaml

BIN = Path(sys.executable).parent


def run(cmd, *args):
    r = subprocess.run([str(BIN / cmd), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    "lrnb_compress on the real SmolLM2 (40%, few windows): its JSON report and the saved folder."
    out = tmp_path_factory.mktemp("e2e") / "smollm2-whitened-40"
    res = json.loads(run("lrnb_compress", "--method", "whitened", "--ratio", "0.4", "--n_windows", "8",
                         "--eval_windows", "4", "--seq_len", "256", "--out", str(out), "--json"))
    return res, out


def test_compress_then_eval_real_smollm2(compressed):
    res, out = compressed
    assert res["params_before"] == 134_515_008
    assert 0.4 <= res["linear_ratio"] < 0.4 + 2 / 576   # floors remove at most one rank step (of the smallest matrix) more
    assert res["calibration_tokens"] == 8 * 256
    assert res["perplexity_before"] < res["perplexity_after"] < 50 * res["perplexity_before"]
    assert (out / "model.safetensors").exists() and json.loads((out / "config.json").read_text())["lrnb"]["recipe"][1]["factors"]["method"] == "whitened"
    ev = json.loads(run("lrnb_eval", "--model", str(out), "--n_windows", "4", "--seq_len", "256", "--json"))
    assert ev["compressed"] and ev["parameters"] == res["params_after"]
    assert abs(ev["perplexity"] - res["perplexity_after"]) <= 1e-3 * res["perplexity_after"]


def test_table_output(tmp_path):
    text = run("lrnb_compress", "--method", "svd", "--ratio", "0.2", "--eval_windows", "2", "--seq_len", "128",
               "--n_windows", "2", "--out", str(tmp_path / "svd"))
    lines = text.splitlines()
    assert lines[0].startswith("lrnb: smollm2 by the recipe ranks → factors")
    head = next(i for i, line in enumerate(lines) if line.startswith("model"))
    recipe = yaml.safe_load("\n".join(lines[1:head]))   # the recipe, printed as YAML between the two
    assert recipe[1]["factors"]["method"] == "svd" and recipe[0]["ranks"]["ratio"] == 0.2
    assert lines[head].split()[:3] == ["model", "parameters", "perplexity"]
    assert lines[head + 2].startswith("original") and "134,515,008" in lines[head + 2]
    assert lines[head + 3].startswith("compressed")
    assert "saved to" in lines[-1]


WITHOUT_LRNB = """
import sys, torch
sys.modules['lrnb'] = None   # lrnb is not importable here
try: import lrnb; raise SystemExit('lrnb was importable')
except ImportError: pass
from transformers import AutoModelForCausalLM
folder, ids = sys.argv[1], torch.arange(100, 164)[None]
try: AutoModelForCausalLM.from_pretrained(folder); raise SystemExit('loaded without trust_remote_code')
except ValueError as e: assert 'trust_remote_code=True' in str(e), e
model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
with torch.no_grad(): torch.save(model(ids).logits, sys.argv[2])
"""


def test_compressed_folder_loads_with_transformers_alone(compressed, tmp_path):
    "The saved folder, loaded as a transformers user would, in a process where lrnb cannot be imported."
    import torch
    from lrnb.models import load_model
    _, out = compressed
    r = subprocess.run([sys.executable, "-c", WITHOUT_LRNB, str(out), str(tmp_path / "logits.pt")], cwd=tmp_path,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    model, _ = load_model(out, device="cpu")
    with torch.no_grad(): mine = model(torch.arange(100, 164)[None]).logits
    assert torch.allclose(torch.load(tmp_path / "logits.pt"), mine, atol=1e-5)
