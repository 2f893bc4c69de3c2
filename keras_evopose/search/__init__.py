"""Neuroevolution search: search space, mutation, weight transfer, oracle.

No TensorFlow import here: the search runs on any Keras backend.
"""
