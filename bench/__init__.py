"""Benchmarks of the tracker (run from the project root; see each script's docstring).

``bench/announce.py`` and ``bench/udp.py`` are thin scripts over the library ``bench.lib``;
they run as files (``python bench/announce.py``) or as modules (``python -m bench.announce``).
"""
