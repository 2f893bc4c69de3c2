"""Losses for heatmap pose estimation."""

from keras_evopose.losses.heatmap_mse import HeatmapMSE

__all__ = ["HeatmapMSE"]
