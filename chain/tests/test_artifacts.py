"""The committed contract artifacts are what solc-js (pinned in package-lock.json) makes of
contracts/*.sol today; the toolchain is the pinned one."""

from __future__ import annotations

import json
import subprocess

from chain.contracts import ARTIFACTS_DIR, CONTRACT_NAMES, artifact
from chain.devnet import BASE_DIR, anvil_binary


def test_artifacts_match_a_fresh_compile():
    done = subprocess.run(
        ["node", "contracts/compile.js", "--check"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_artifacts_have_abi_and_both_bytecodes():
    for name in CONTRACT_NAMES:
        spec = artifact(name)
        assert spec["abi"]
        assert spec["bytecode"].startswith("0x") and len(spec["bytecode"]) > 1000
        assert spec["deployedBytecode"].startswith("0x")
        assert spec["compiler"]["version"].startswith("0.8.37")
        assert spec["compiler"]["settings"]["evmVersion"] == "cancun"
    assert sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json")) == sorted(CONTRACT_NAMES)


def test_toolchain_is_pinned_exactly():
    package = json.loads((BASE_DIR / "package.json").read_text())
    pins = {**package["devDependencies"], **package["optionalDependencies"]}
    assert pins == {"solc": "0.8.37", "@foundry-rs/anvil-linux-amd64": "1.7.1"}
    lock = json.loads((BASE_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/solc"]["version"] == "0.8.37"
    assert anvil_binary().is_file()
