"""Persistent homology of activations.

Point-cloud persistence (Vietoris-Rips on giotto-ph), diagram distances and
vectorisations, layer x layer comparisons beside CKA/SVCCA, and the per-input
activation-graph filtration of Gebhart et al. (2019). See docs/persistence.md.
"""
from advtopo.persistence.activation_graph import (ActivationGraph, FlagPersistence, GraphPersistence, bag_of_edges,
                                                  barcode_statistics, flag_persistence, graph_persistence,
                                                  is_bipartite, maximum_spanning_forest)
from advtopo.persistence.distances import (DISTANCES, bottleneck_distance, diagram_distance, finite_part,
                                           sliced_wasserstein_distance, wasserstein_distance)
from advtopo.persistence.layers import (LayerDistance, compare_layers, layer_distance_matrix, linear_cka,
                                       pca_removal_sensitivity, rank_correlation, similarity_matrix, svcca)
from advtopo.persistence.pointclouds import top_l2_point_cloud
from advtopo.persistence.recovery import (DominantSubgraphFeatures, cross_fitted_folds, recovery_experiment,
                                          recovery_scores)
from advtopo.persistence.rips import (RipsPersistence, maxmin_landmarks, pairwise_distances, rips_diagrams,
                                      split_diagrams, stack_diagrams)
from advtopo.persistence.stage import DEFAULT_SETTINGS, persistence_stage, validate_settings
from advtopo.persistence.vectorize import (betti_curve, diagram_summary, persistence_image,
                                           persistence_landscape, persistent_entropy, total_persistence)

__all__ = [
    "RipsPersistence", "rips_diagrams", "maxmin_landmarks", "pairwise_distances", "stack_diagrams",
    "split_diagrams",
    "DISTANCES", "diagram_distance", "bottleneck_distance", "wasserstein_distance",
    "sliced_wasserstein_distance", "finite_part",
    "betti_curve", "persistence_landscape", "persistence_image", "total_persistence",
    "persistent_entropy", "diagram_summary",
    "ActivationGraph", "GraphPersistence", "graph_persistence", "maximum_spanning_forest", "bag_of_edges",
    "FlagPersistence", "flag_persistence", "is_bipartite", "barcode_statistics",
    "top_l2_point_cloud", "LayerDistance", "layer_distance_matrix", "compare_layers", "linear_cka", "svcca",
    "similarity_matrix", "rank_correlation", "pca_removal_sensitivity",
    "persistence_stage", "validate_settings", "DEFAULT_SETTINGS",
    "DominantSubgraphFeatures", "cross_fitted_folds", "recovery_experiment", "recovery_scores",
]
