"""Neuroevolution search: search space, mutation, weight transfer, oracle.

No TensorFlow import here: the search runs on any Keras backend.
"""

from keras_evopose.search.evolution_oracle import EvolutionOracle
from keras_evopose.search.evolution_oracle import EvolutionTuner
from keras_evopose.search.mutation import mutate
from keras_evopose.search.pareto import dominates
from keras_evopose.search.pareto import non_dominated_sort
from keras_evopose.search.search_space import SearchSpace
from keras_evopose.search.search_space import genotype_from_string
from keras_evopose.search.search_space import genotype_to_string
from keras_evopose.search.weight_transfer import TransferEntry
from keras_evopose.search.weight_transfer import TransferReport
from keras_evopose.search.weight_transfer import transfer_weights

__all__ = [
    "EvolutionOracle",
    "EvolutionTuner",
    "SearchSpace",
    "TransferEntry",
    "TransferReport",
    "dominates",
    "genotype_from_string",
    "genotype_to_string",
    "mutate",
    "non_dominated_sort",
    "transfer_weights",
]
