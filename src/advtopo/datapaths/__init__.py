"""Critical datapaths (Cao et al., "Analyzing the noise robustness of deep neural networks",
TVCG 2021): per input, the few neurons that carry its prediction, found by training a gate
per neuron with an L1 penalty; clean and adversarial datapaths compared layer by layer.
See docs/datapaths.md.
"""
from advtopo.datapaths.compare import (DatapathComparison, compare_datapaths, divergence_layer, jaccard,
                                       weighted_jaccard)
from advtopo.datapaths.extract import TARGETS, DatapathExtractor, Datapaths
from advtopo.datapaths.flow import Connection, flow_edges, layer_connections
from advtopo.datapaths.stage import datapath_report, format_table

__all__ = ["DatapathExtractor", "Datapaths", "TARGETS", "jaccard", "weighted_jaccard", "divergence_layer",
           "compare_datapaths", "DatapathComparison", "Connection", "layer_connections", "flow_edges",
           "datapath_report", "format_table"]
