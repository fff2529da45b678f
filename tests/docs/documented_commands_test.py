#!/usr/bin/env python3
"""Runs every ```sh block of README.md and launch/README.md as written (issue 19, C).

Usage: documented_commands_test.py CAUSEWAY_BINARY REPO_ROOT

Each block runs in one bash (`set -e`: the block fails at its first failing command) from the
repository root, with the binary path `build/release/causeway` replaced by CAUSEWAY_BINARY
(also exported as CAUSEWAY for the launch scripts) and TMPDIR set to a fresh folder, where the
blocks' `mktemp -d` folders go. A block preceded by the line `<!-- docs-test: skip: REASON -->`
is not run, and is listed with its reason. The test fails when a block exits non-zero, when no
block ran, or when a block wrote into the checkout's configs, models, results, data or
scripts (build/ is the build tree, which a block may write).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOCUMENTS = ("README.md", "launch/README.md")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip:\s*(.*?)\s*-->")
BINARY_IN_DOCS = ("./build/release/causeway", "build/release/causeway")
BLOCK_TIMEOUT_S = 180
# Where the documented commands must not write (build/ is the build tree, which they may).
WATCHED = ("configs", "models", "results", "launch", "tests/data", "analysis", "examples")


@dataclass
class Block:
    document: str
    line: int  # of the opening fence, from 1
    text: str
    skip_reason: str | None

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def first_line(self) -> str:
        return next((l for l in self.text.splitlines() if l.strip()), "")


def shell_blocks(root: Path, document: str) -> list[Block]:
    lines = (root / document).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() != "```sh":
            i += 1
            continue
        start = i
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = SKIP.fullmatch(previous.strip())
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise SystemExit(f"{document}:{start + 1}: ```sh block without a closing fence")
        blocks.append(Block(document, start + 1, "\n".join(body) + "\n",
                            marker.group(1) if marker else None))
        i += 1
    return blocks


def with_binary(text: str, binary: str) -> str:
    pattern = "|".join(re.escape(b) for b in BINARY_IN_DOCS)  # longest first
    return re.sub(rf"(?<![\w/.-])(?:{pattern})(?![\w/.-])", binary, text)


def source_state(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of the files a documented command could write by mistake: the top level,
    the configs, models, results, launch scripts, test data and the analysis package. (Source
    code is left out: it is not an output of any command.)"""
    state = {}
    paths = [p for p in root.iterdir() if p.is_file()]
    for folder in WATCHED:
        for path in (root / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                paths.append(path)
    for path in paths:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        state[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return state


def run_block(block: Block, binary: str, root: Path, env: dict[str, str]) -> tuple[bool, str]:
    script = ("set -eE\ntrap 'echo \"docs-test: failed (exit $?): $BASH_COMMAND\" >&2' ERR\n"
              + with_binary(block.text, binary))
    try:
        done = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True,
                              text=True, timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {BLOCK_TIMEOUT_S} s"
    return done.returncode == 0, (done.stdout + done.stderr)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    binary, root = str(Path(argv[1]).resolve()), Path(argv[2]).resolve()
    blocks = [b for d in DOCUMENTS for b in shell_blocks(root, d)]
    before = source_state(root)
    failures, ran = [], 0
    with tempfile.TemporaryDirectory(prefix="causeway-docs-") as tmp:
        env = {**os.environ, "TMPDIR": tmp, "CAUSEWAY": binary, "PYTHONDONTWRITEBYTECODE": "1",
               # `python3` in the docs is the interpreter with the analysis dependencies.
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        for block in blocks:
            if block.skip_reason is not None:
                print(f"skipped {block.where} ({block.skip_reason}): {block.first_line}")
                continue
            started = time.monotonic()
            ok, output = run_block(block, binary, root, env)
            ran += 1
            seconds = time.monotonic() - started
            print(f"{'ran' if ok else 'FAILED'} {block.where} in {seconds:.1f} s: {block.first_line}")
            if not ok:
                failures.append(block.where)
                print("    " + "\n    ".join(output.rstrip().splitlines()[-30:]))
    after = source_state(root)
    written = sorted(k for k in after if before.get(k) != after[k])
    if written:
        failures.append("the source tree")
        print("FAILED: the documented commands wrote into the source tree: " + ", ".join(written))
    if ran == 0:
        failures.append("nothing ran")
        print("FAILED: no ```sh block ran")
    skipped = sum(b.skip_reason is not None for b in blocks)
    print(f"{ran} blocks ran, {skipped} skipped, {len(failures)} failed"
          + (f": {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
