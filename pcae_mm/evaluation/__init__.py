"""Evaluation maths shared by hooks and tools (nothing registered): weighted kNN of frozen
features (:mod:`.knn`)."""
from .knn import (check_knn_settings, extract_features, knn_accuracies, knn_summary,
                  pool_features, weighted_knn)

__all__ = [
    'check_knn_settings', 'extract_features', 'knn_accuracies', 'knn_summary', 'pool_features',
    'weighted_knn'
]
