"""Neuroevolution search: search space, mutation, weight transfer, oracle.

No TensorFlow import here: the search runs on any Keras backend.
"""

from keras_evopose.models.efficientnet_weights import load_efficientnet_weights

# Deprecated aliases of `keras_evopose.models.Genotype` (one release).
from keras_evopose.models.genotype import genotype_from_string
from keras_evopose.models.genotype import genotype_to_string
from keras_evopose.models.weight_transfer import TransferEntry
from keras_evopose.models.weight_transfer import TransferReport
from keras_evopose.models.weight_transfer import transfer_weights
from keras_evopose.search.coco_search import SearchOutcome
from keras_evopose.search.coco_search import run_coco_search
from keras_evopose.search.coco_search_config import COCOSearchConfig
from keras_evopose.search.evolution_oracle import EvolutionOracle
from keras_evopose.search.evolution_tuner import EvolutionTuner
from keras_evopose.search.evopose2d_hypermodel import EvoPose2DHyperModel
from keras_evopose.search.fitness import paper_fitness
from keras_evopose.search.genotype_hyperparameters import (
    genotype_from_hyperparameters,
)
from keras_evopose.search.genotype_hyperparameters import (
    genotype_to_hyperparameter_values,
)
from keras_evopose.search.mutation import mutate
from keras_evopose.search.pareto import dominates
from keras_evopose.search.pareto import non_dominated_sort
from keras_evopose.search.results import load_search_results
from keras_evopose.search.results import search_results
from keras_evopose.search.results import write_search_results
from keras_evopose.search.resumable_oracle import ResumeError
from keras_evopose.search.search_space import SearchSpace
from keras_evopose.search.trial_optimizer import TrialOptimizer
from keras_evopose.search.trial_timing import TrialTiming

__all__ = [
    "COCOSearchConfig",
    "EvoPose2DHyperModel",
    "EvolutionOracle",
    "EvolutionTuner",
    "ResumeError",
    "SearchOutcome",
    "SearchSpace",
    "TransferEntry",
    "TransferReport",
    "TrialOptimizer",
    "TrialTiming",
    "dominates",
    "genotype_from_hyperparameters",
    "genotype_from_string",
    "genotype_to_hyperparameter_values",
    "genotype_to_string",
    "load_efficientnet_weights",
    "load_search_results",
    "mutate",
    "non_dominated_sort",
    "paper_fitness",
    "run_coco_search",
    "search_results",
    "transfer_weights",
    "write_search_results",
]
