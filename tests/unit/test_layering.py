"""Only a domain's own package imports its repository (the import-linter contracts in
pyproject.toml pin the layers; this pins the repository rule for every domain at once)."""

from __future__ import annotations

import grimp

# bench/recall.py times retrieval's own vector SQL against exact neighbours: that SQL is what it
# measures, so it calls it directly.
ALLOWED = {("lorebase.bench.recall", "lorebase.retrieval.repository")}


def test_no_package_reads_another_domains_repository() -> None:
    graph = grimp.build_graph("lorebase")
    crossings = set()
    for module in graph.modules:
        if not module.endswith(".repository"):
            continue
        domain = module.rsplit(".", 1)[0]
        for importer in graph.find_modules_that_directly_import(module):
            if not importer.startswith(domain + "."):
                crossings.add((importer, module))
    assert crossings - ALLOWED == set()
