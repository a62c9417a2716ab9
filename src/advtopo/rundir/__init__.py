"""The run directory's one owner: its layout, its index records, its writer and its reader.

    from advtopo.rundir import open_run
    run = open_run("runs/demo")
    run.graph(run.graph_entries()[0].id)          # a mapper graph's JSON
    run.point_cloud(run.graph_entry(gid))         # the activations it was built from

``layout`` names every file and key (``eps_key``, ``graph_id``, image and cache paths,
``FORMAT_VERSION``); ``records`` types index.json's entries; ``writer`` is the study's publish
step; :class:`Run` reads (path-confined, cached, thread-safe). Sits between the analysis
stages and the study / app: it imports neither of those.
"""
from advtopo.rundir import layout, writer
from advtopo.rundir.errors import ArtefactInvalid, ArtefactMissing, RunError, RunNotFound, UnsupportedFormat
from advtopo.rundir.layout import FORMAT_VERSION, eps_key, graph_id
from advtopo.rundir.reader import Run, open_run
from advtopo.rundir.records import (AccuracyEntry, ActivationEntry, AttackEntry, DatasetEntry, GraphEntry, ModelEntry,
                                    RunIndex)

__all__ = ["layout", "writer", "Run", "open_run", "FORMAT_VERSION", "eps_key", "graph_id", "RunError", "RunNotFound",
           "UnsupportedFormat", "ArtefactMissing", "ArtefactInvalid", "RunIndex", "DatasetEntry", "ModelEntry",
           "AttackEntry", "AccuracyEntry", "GraphEntry", "ActivationEntry"]
