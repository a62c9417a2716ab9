"""mapper stage: exact, fast mapper graphs of activations, with clean-vs-adversarial statistics.

    from advtopo.mapper import Mapper, MapperParams
    graph = Mapper(lens="l2norm", cover="uniform", n_intervals=10, overlap=0.3,
                   clusterer="dbscan", eps="auto", metric="euclidean").fit(X, metadata)
    graph.to_dict()   # the JSON the web app reads (docs/architecture.md)
    graph_shape(graph)   # loops (a cycle basis) and branch points; cross_layer_flow(g_layer1, g_layer2)
    params = MapperParams.from_dict({"n_intervals": 15, "metric": "cosine"})  # typed, checked
    graph = Mapper.from_params(params).fit(X, metadata)
"""
from advtopo.mapper.clusterers import CLUSTERERS, DBSCAN, HDBSCAN, SingleLinkage, SklearnClusterer, dbscan_labels, make_clusterer
from advtopo.mapper.cover import COVERS, BalancedCover, Cover, CoverElements, KMapperCover, UniformCover, make_cover
from advtopo.mapper.graph import MapperGraph, check_graph_dict
from advtopo.mapper.lenses import LENSES, compute_lens, data_lenses
from advtopo.mapper.mapper import Mapper, mapper_sweep
from advtopo.mapper.neighbors import auto_eps, build_eps_graph, k_distance, knee_eps
from advtopo.mapper.params import STUDY_KEYS, MapperParams
from advtopo.mapper.shape import branch_points, cross_layer_flow, cycle_basis, graph_shape, shape_counts
from advtopo.mapper.stats import (
    graph_statistics, mixing_metrics, point_purity, rank_vulnerable, roc_auc, vulnerability_auc,
    vulnerability_scores,
)
from advtopo.mapper.synthetic import synthetic_activations

__all__ = [
    "Mapper", "MapperGraph", "check_graph_dict", "MapperParams", "STUDY_KEYS", "mapper_sweep",
    "LENSES", "compute_lens", "data_lenses", "COVERS", "Cover", "CoverElements", "UniformCover", "KMapperCover", "BalancedCover",
    "make_cover", "CLUSTERERS", "DBSCAN", "SingleLinkage", "HDBSCAN", "SklearnClusterer", "make_clusterer",
    "dbscan_labels", "auto_eps", "k_distance", "knee_eps", "build_eps_graph",
    "graph_statistics", "mixing_metrics", "point_purity", "vulnerability_scores", "rank_vulnerable",
    "roc_auc", "vulnerability_auc", "synthetic_activations",
    "graph_shape", "shape_counts", "cycle_basis", "branch_points", "cross_layer_flow",
]
