import random

import pytest

from keras_evopose.models import decode_genotype
from keras_evopose.search.mutation import gene_probabilities
from keras_evopose.search.mutation import mutate
from keras_evopose.search.mutation import possible_mutations
from keras_evopose.search.search_space import GENES
from keras_evopose.search.search_space import SearchSpace


def changed_genes(parent, child):
    changes = []
    for stage, (a, b) in enumerate(
        zip(decode_genotype(parent), decode_genotype(child)), 1
    ):
        for gene in GENES:
            if getattr(a, gene) != getattr(b, gene):
                changes.append(
                    (stage, gene, getattr(a, gene), getattr(b, gene))
                )
    return changes


def test_random_walk_changes_one_gene_and_stays_in_the_space():
    space = SearchSpace()
    rng = random.Random(0)
    genotype = space.ancestor
    seen_genes = set()
    for _ in range(500):
        child, description = mutate(genotype, space, rng)
        changes = changed_genes(genotype, child)
        assert len(changes) == 1, (genotype, child)
        stage, gene, old, new = changes[0]
        assert description == f"stage {stage} {gene} {old}->{new}"
        if gene == "num_repeats":
            assert abs(new - old) == 1
        if gene == "strides":
            assert stage in space.stride_stages
        assert space.contains(child)
        seen_genes.add(gene)
        genotype = child
    assert seen_genes == set(GENES)


def test_mutation_is_pure_and_seeded():
    space = SearchSpace()
    first = [mutate(space.ancestor, space, random.Random(s)) for s in range(20)]
    second = [
        mutate(space.ancestor, space, random.Random(s)) for s in range(20)
    ]
    assert first == second
    assert len({tuple(child) for child, _ in first}) > 10


def test_stride_budget_blocks_a_fifth_stride_two_stage():
    space = SearchSpace()
    # The ancestor already has four stride-2 stages (output stride 32):
    # stages 5 and 7 may not become stride 2, stage 6 may become stride 1.
    stride_options = [
        (stage, values)
        for stage, gene, values in possible_mutations(space.ancestor, space)
        if gene == "strides"
    ]
    assert stride_options == [(6, [1])]


def test_no_possible_mutation_is_a_clear_error():
    space = SearchSpace(ancestor=["ir_r1_k3_s1_e1_c8_se0.25"], channel_step=8)
    with pytest.raises(ValueError, match="No gene of this genotype can change"):
        mutate(space.ancestor, space, random.Random(0))


def test_parent_outside_the_space_is_rejected():
    space = SearchSpace.from_preset("test")
    parent = list(space.ancestor)
    parent[0] = parent[0].replace("k3", "k7")
    with pytest.raises(ValueError, match="kernel_size=7"):
        mutate(parent, space, random.Random(0))


def test_reference_weighting_draws_genes_by_their_chance_to_change():
    space = SearchSpace()
    shares = {}
    for weighting in ("uniform", "reference"):
        probabilities = gene_probabilities(space.ancestor, space, weighting)
        assert sum(probabilities.values()) == pytest.approx(1.0)
        shares[weighting] = {
            gene: sum(p for (_, g), p in probabilities.items() if g == gene)
            for gene in GENES
        }
    # EfficientNet-B0: 7 kernel, 7 repeat, 7 channel and 1 stride option.
    assert shares["uniform"]["kernel_size"] == pytest.approx(7 / 22)
    assert shares["uniform"]["num_repeats"] == pytest.approx(7 / 22)
    # The reference's shares (measured on its code: 19.9% / 40.6%).
    assert shares["reference"]["kernel_size"] == pytest.approx(0.2032, 1e-3)
    assert shares["reference"]["num_repeats"] == pytest.approx(0.4063, 1e-3)
    rng = random.Random(0)
    draws = [
        mutate(space.ancestor, space, rng, gene_weighting="reference")[1]
        for _ in range(2000)
    ]
    repeats = sum("num_repeats" in change for change in draws) / len(draws)
    assert repeats == pytest.approx(0.4063, abs=0.04)


def test_unknown_gene_weighting_is_named():
    space = SearchSpace()
    with pytest.raises(ValueError, match="gene_weighting='paper'"):
        mutate(space.ancestor, space, random.Random(0), "paper")


def test_head_genes_mutate_one_at_a_time_within_bounds():
    space = SearchSpace.from_preset(
        "test", head_filter_choices=[8, 16, 32], head_steps=(1, 4)
    )
    num_stages = space.num_stages
    rng = random.Random(0)
    genotype = space.ancestor
    seen = set()
    for _ in range(300):
        child, description = mutate(genotype, space, rng)
        assert space.contains(child)
        old_head, new_head = genotype[num_stages:], child[num_stages:]
        if description.startswith("head "):
            # The backbone is untouched; one head gene changed.
            assert child[:num_stages] == genotype[:num_stages]
            gene = description.split()[1]
            seen.add(gene.split("_")[0] if gene != "num_steps" else gene)
            if gene == "num_steps":
                assert abs(len(new_head) - len(old_head)) == 1
                common = min(len(old_head), len(new_head))
                assert new_head[:common] == old_head[:common]
                if len(new_head) > len(old_head):
                    assert new_head[-1] == old_head[-1]
            else:
                assert len(new_head) == len(old_head)
                assert sum(a != b for a, b in zip(old_head, new_head)) == 1
        else:
            assert new_head == old_head
            backbones = genotype[:num_stages], child[:num_stages]
            assert len(changed_genes(*backbones)) == 1
        genotype = child
    assert {"num_steps", "step1", "step4"} <= seen
    probabilities = gene_probabilities(space.ancestor, space, "reference")
    assert ("head", "num_steps") in probabilities
    assert ("head", "step3_filters") in probabilities
    assert abs(sum(probabilities.values()) - 1.0) < 1e-9


def test_head_genes_off_leave_the_draws_unchanged():
    # Same seed, same space arguments: the paper's genes and draws.
    space = SearchSpace.from_preset("test")
    options = possible_mutations(space.ancestor, space)
    assert all(stage != "head" for stage, _, _ in options)
    with_head = SearchSpace.from_preset("test", head_steps=(1, 3))
    head_options = possible_mutations(with_head.ancestor, with_head)
    # The head's options come after the backbone's.
    assert head_options[: len(options)] == options
    assert head_options[len(options) :] == [("head", "num_steps", [2])]
