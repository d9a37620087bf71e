"""The peer benchmark at small size (needs cca-zoo, mofapy2 or mvlearn; skipped when none is installed)."""
import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.peers

ROOT = Path(__file__).resolve().parents[1]


def _installed(mod):
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


PEERS = {"GFA (cca-zoo)": "cca_zoo", "MOFA+ (mofapy2)": "mofapy2", "AJIVE (mvlearn)": "mvlearn"}


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "bench_peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peer_benchmark_quick(tmp_path):
    present = [name for name, mod in PEERS.items() if _installed(mod)]
    if not present:
        pytest.skip("no peer package installed (pip install cca-zoo mofapy2; pip install --no-deps mvlearn==0.5.0)")
    bench = _load_bench()
    out = tmp_path / "peers.json"
    bench.main(["--quick", "--out", str(out), "--report-dir", str(tmp_path / "report")])
    res = json.loads(out.read_text())
    by = {r["method"]: r for r in res["records"]}
    assert by["hcl_stats"]["exact"] is True
    assert max(by["hcl_stats"]["block_errors"].values()) < 0.3
    for name in PEERS:
        if name in present:
            assert "skipped" not in by[name] and by[name]["time"] > 0, by[name]
        else:
            assert by[name]["skipped"] == "not installed"
    assert all(b["num_threads"] == 1 for b in res["environment"]["blas_inside_limit"])
    assert (tmp_path / "report" / "peers.png").exists()
    assert "| hcl_stats | 1/1 |" in (tmp_path / "peers.md").read_text()
