"""EvoPose2D presets: data only.

`backbone` and `head` hold exactly the constructor arguments of
`EvoPose2DBackbone` and `EvoPose2D`. medium and large are small compound-
scaled to their input size (`compound_scale`); a test re-derives them.
`paper` holds the published numbers (COCO val2017, detector boxes) that
the built networks are checked against. `params` (BN statistics included),
`flops` (multiply-accumulates) and `heatmap_size` are the built network's,
as `keras-hub` presets carry `params`: `keras-evopose info` reads them
without building (or importing Keras), and tests/test_presets.py checks
them against the built network.
"""

SMALL_GENOTYPE = [
    "ir_r1_k3_s1_e1_c16_se0.25",
    "ir_r3_k3_s2_e6_c24_se0.25",
    "ir_r2_k5_s2_e6_c40_se0.25",
    "ir_r4_k3_s2_e6_c80_se0.25",
    "ir_r2_k5_s1_e6_c112_se0.25",
    "ir_r4_k5_s1_e6_c128_se0.25",
    "ir_r2_k3_s1_e6_c80_se0.25",
]

# The search's generation-0 ancestor: EfficientNet-B0's block table.
ANCESTOR_GENOTYPE = [
    "ir_r1_k3_s1_e1_c16_se0.25",
    "ir_r2_k3_s2_e6_c24_se0.25",
    "ir_r2_k5_s2_e6_c40_se0.25",
    "ir_r3_k3_s2_e6_c80_se0.25",
    "ir_r3_k5_s1_e6_c112_se0.25",
    "ir_r4_k5_s2_e6_c192_se0.25",
    "ir_r1_k3_s1_e6_c320_se0.25",
]

backbone_presets = {
    "extra_small": {
        "metadata": {
            "description": (
                "EvoPose2D-XS: the searched genotype with stage 6 at "
                "stride 2 (output stride 32, 64x48 heatmaps at 256x192)."
            ),
            "paper": {"params": 2.53e6, "flops": 0.47e9, "ap": 67.7},
            "params": 2_531_199,
            "flops": 462_372_800,
            "heatmap_size": [64, 48],
        },
        "backbone": {
            "genotype": SMALL_GENOTYPE[:5]
            + ["ir_r4_k5_s2_e6_c128_se0.25"]
            + SMALL_GENOTYPE[6:],
            "stem_filters": 32,
            "image_shape": [256, 192, 3],
            "stochastic_depth_rate": 0.2,
        },
        "head": {"num_keypoints": 17, "head_filters": [128, 128, 128]},
    },
    "small": {
        "metadata": {
            "description": (
                "EvoPose2D-S: the searched genotype (output stride 16, "
                "128x96 heatmaps at 256x192)."
            ),
            "paper": {"params": 2.53e6, "flops": 1.07e9, "ap": 69.8},
            "params": 2_531_199,
            "flops": 1_064_085_440,
            "heatmap_size": [128, 96],
        },
        "backbone": {
            "genotype": SMALL_GENOTYPE,
            "stem_filters": 32,
            "image_shape": [256, 192, 3],
            "stochastic_depth_rate": 0.2,
        },
        "head": {"num_keypoints": 17, "head_filters": [128, 128, 128]},
    },
    "medium": {
        "metadata": {
            "description": "EvoPose2D-M: small compound-scaled to 384x288.",
            "paper": {"params": 7.34e6, "flops": 5.59e9, "ap": 75.1},
            "params": 7_341_609,
            "flops": 5_550_593_216,
            "heatmap_size": [192, 144],
        },
        "backbone": {
            "genotype": [
                "ir_r2_k3_s1_e1_c24_se0.25",
                "ir_r6_k3_s2_e6_c32_se0.25",
                "ir_r4_k5_s2_e6_c56_se0.25",
                "ir_r7_k3_s2_e6_c104_se0.25",
                "ir_r4_k5_s1_e6_c144_se0.25",
                "ir_r7_k5_s1_e6_c168_se0.25",
                "ir_r4_k3_s1_e6_c104_se0.25",
            ],
            "stem_filters": 40,
            "image_shape": [384, 288, 3],
            "stochastic_depth_rate": 0.4,
        },
        "head": {"num_keypoints": 17, "head_filters": [168, 168, 168]},
    },
    "large": {
        "metadata": {
            "description": "EvoPose2D-L: small compound-scaled to 512x384.",
            "paper": {"params": 14.7e6, "flops": 17.7e9, "ap": 76.6},
            "params": 14_709_587,
            "flops": 17_591_425_152,
            "heatmap_size": [256, 192],
        },
        "backbone": {
            "genotype": [
                "ir_r3_k3_s1_e1_c24_se0.25",
                "ir_r8_k3_s2_e6_c40_se0.25",
                "ir_r5_k5_s2_e6_c64_se0.25",
                "ir_r10_k3_s2_e6_c128_se0.25",
                "ir_r5_k5_s1_e6_c176_se0.25",
                "ir_r10_k5_s1_e6_c208_se0.25",
                "ir_r5_k3_s1_e6_c128_se0.25",
            ],
            "stem_filters": 48,
            "image_shape": [512, 384, 3],
            "stochastic_depth_rate": 0.4,
        },
        "head": {"num_keypoints": 17, "head_filters": [208, 208, 208]},
    },
    "test": {
        "metadata": {
            "description": (
                "A tiny 4-stage genotype at 64x48 for fast tests and smoke "
                "runs (output stride 16, 32x24 heatmaps). Not a paper model."
            ),
            "params": 16_921,
            "flops": 1_535_712,
            "heatmap_size": [32, 24],
        },
        "backbone": {
            "genotype": [
                "ir_r1_k3_s1_e1_c8_se0.25",
                "ir_r1_k3_s2_e2_c16_se0.25",
                "ir_r2_k5_s2_e2_c16_se0.25",
                "ir_r1_k3_s2_e2_c24_se0.25",
            ],
            "stem_filters": 8,
            "image_shape": [64, 48, 3],
            "stochastic_depth_rate": 0.0,
        },
        "head": {"num_keypoints": 17, "head_filters": [16, 16, 16]},
    },
}
