"""Markdown rendering time on the worst inputs found, at the description cap.

    .venv/bin/python bench/markdown.py [--cap 20000] [--anchor-timeout 60] [--no-anchor]

Each input (nested brackets, image openers, unclosed links, emphasis runs, nested lists and
blockquotes, long link and image chains, wide and long tables, raw HTML, entities...) is built
at a quarter, half and all of ``--cap`` characters (PBTS_DESCRIPTION_MAX_CHARS, 20,000) and
rendered by the site's renderer (``tracker.markup.render_markdown``: markdown-it-py, then nh3
and the remote-image filter). Time per render is the best of several runs (CPU seconds of this
process, ``time.process_time``). Doubling the size should double the time: the last column
shows the growth from half to full size (2 = linear, 4 = quadratic).

The anchor is Python-Markdown (``markdown.markdown(text, extensions=["extra", "sane_lists"])``
then nh3, the site's renderer before issue 11), if it is installed: one run per input, in a
child process killed after ``--anchor-timeout`` seconds (shown as ``>60 s``), with the ratio
Python-Markdown / site. Python-Markdown is no longer a requirement; ``pip install Markdown``
to see the anchor. Takes a few minutes with the anchor, about 20 s without.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file would shadow the
# Python-Markdown package (``import markdown``): put the repository root there instead.
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from bench.lib.machine import cpu_model  # noqa: E402
from tracker.markup import render_markdown  # noqa: E402

SITE_URL = "https://tracker.example.org"


def worst_inputs(size: int) -> dict[str, str]:
    """Inputs of at most ``size`` characters that are slow for Markdown parsers."""
    half, third, quarter = size // 2, size // 3, size // 4
    row = "|a" * 50 + "|\n"
    return {
        "nested brackets [[[...]]]": "[" * half + "]" * half,
        "image openers ![![...": "![" * half,
        "images nested ![a![a...](b)": "![a" * (size // 6) + "](b)" * (size // 8),
        "unclosed links [a](...": "[a](" * quarter,
        'unclosed titles [a](b "': '[a](b "' * (size // 7),
        "emphasis runs *a_*a_": "*a_" * third,
        "emphasis openers *a *a": "*a " * third,
        "strikethrough ~~a ~~a": "~~a " * quarter,
        "backtick runs": "".join("`" * i + "a" for i in range(1, 400))[:size],
        "nested lists (indent)": "".join("  " * i + "- a\n" for i in range(size // 200)),
        "nested lists (- - - ...)": "- " * half,
        "nested blockquotes >>>": ">" * size,
        "blockquote ladder": "".join(">" * i + " a\n" for i in range(1, 400))[:size],
        "link chain [a](b)[a](b)": "[a](b)" * (size // 6),
        "image chain ![a](b)": "![a](b)" * (size // 7),
        "reference links [x][a]": "[a]: /u\n\n" + "[x][a]" * ((size - 9) // 6),
        "link definitions": "".join(f"[a{i}]: /u\n" for i in range(size // 11)),
        "table 50 columns": (row + "|-" * 50 + "|\n" + row * size)[:size],
        "table one wide row": "|" * half + "\n" + "|-" * quarter + "\n",
        "autolink openers <a<a": "<a" * half,
        "raw html openers <a <a": "<a " * third,
        "entities &#&#": "&#" * half,
        "html declarations <!<!": "<!" * half,
        "backslashes": "\\" * size,
        "hard breaks": "a  \n" * quarter,
        "remote images (refused)": "![x](http://spy.example/p.png)" * (size // 31),
    }


def best_cpu(func: Callable[[], object], budget: float = 0.2) -> tuple[float, int]:
    """Best CPU time of ``func`` over runs filling about ``budget`` seconds (at least 3)."""
    best = float("inf")
    runs = 0
    spent = 0.0
    while runs < 3 or spent < budget:
        start = time.process_time()
        func()
        elapsed = time.process_time() - start
        best = min(best, elapsed)
        spent += elapsed
        runs += 1
        if runs >= 50:
            break
    return best, runs


def _python_markdown(text: str, queue: multiprocessing.Queue) -> None:
    import markdown
    import nh3

    from tracker import markup

    start = time.process_time()
    html = markdown.markdown(text, extensions=["extra", "sane_lists"], output_format="html")
    nh3.clean(html, tags=markup.ALLOWED_TAGS, attributes=markup.ALLOWED_ATTRIBUTES)
    queue.put(time.process_time() - start)


def anchor_cpu(text: str, timeout: float) -> float | None:
    """Python-Markdown's CPU seconds for ``text`` in a child process; None past ``timeout``."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_python_markdown, args=(text, queue))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    if child.exitcode != 0:
        raise RuntimeError(f"Python-Markdown failed (exit code {child.exitcode})")
    return queue.get(timeout=5)


def anchor_version() -> str | None:
    try:
        return metadata.version("Markdown")
    except metadata.PackageNotFoundError:
        return None


def machine() -> str:
    model = cpu_model()
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"markdown-it-py {metadata.version('markdown-it-py')}, nh3 {metadata.version('nh3')}"
    )


def ms(seconds: float | None, timeout: float) -> str:
    return f">{timeout:.0f} s" if seconds is None else f"{seconds * 1000:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=int, default=20_000, help="characters (the setting)")
    parser.add_argument("--anchor-timeout", type=float, default=60.0, help="seconds")
    parser.add_argument("--no-anchor", action="store_true", help="skip Python-Markdown")
    args = parser.parse_args()
    version = None if args.no_anchor else anchor_version()
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print(f"# load average before: {os.getloadavg()}")
    print(f"# cap {args.cap:,} characters; anchor: Python-Markdown {version or '(not installed)'}")
    sizes = (args.cap // 4, args.cap // 2, args.cap)
    head = "| input | ms at 1/4 | ms at 1/2 | ms at cap | growth 1/2->cap |"
    rule = "|---|---:|---:|---:|---:|"
    if version:
        head += " Python-Markdown ms at 1/4 | at cap | ratio at cap |"
        rule += "---:|---:|---:|"
    print(head)
    print(rule)
    worst = ("", 0.0)
    for name in worst_inputs(args.cap):
        times = []
        for size in sizes:
            text = worst_inputs(size)[name]
            seconds, _ = best_cpu(
                lambda text=text: render_markdown(text, remote_images="refuse", site_url=SITE_URL)
            )
            times.append(seconds)
        if times[-1] > worst[1]:
            worst = (name, times[-1])
        growth = times[2] / times[1] if times[1] > 0 else float("nan")
        cells = [name, *(ms(t, 0) for t in times), f"{growth:.1f}"]
        if version:
            small = anchor_cpu(worst_inputs(sizes[0])[name], args.anchor_timeout)
            full = anchor_cpu(worst_inputs(args.cap)[name], args.anchor_timeout)
            if full is None:
                ratio = f">{args.anchor_timeout / times[2]:,.0f}x"
            else:
                ratio = f"{full / times[2]:,.1f}x"
            cells += [ms(small, args.anchor_timeout), ms(full, args.anchor_timeout), ratio]
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"# slowest render at the cap: {worst[0]}, {worst[1] * 1000:,.0f} ms")


if __name__ == "__main__":
    main()
