"""World-FID: Fréchet distance in the feature space of a small CNN trained on the shapes world.

The world brings its own feature extractor instead of Inception: ImageNet Inception features
fit flat synthetic shapes poorly, and the world runs offline, with no downloaded weights.
``WorldCNN`` is trained on images rendered by ``bench.world.render``; its weights are bundled as
``bench/world/reference/feature_extractor.safetensors`` beside the config
``feature_extractor.json`` (architecture, head layout, and a "training" record with the run's
wall times and held-out accuracy). ``pixart-bench world train-extractor`` rebuilds them.

- ``labels``: the attribute label groups, their head layout, ``scene_targets``;
- ``network``: ``WorldCNN``, ``preprocess``, loading (``load_world_cnn``, ``DEFAULT_WEIGHTS``);
- ``extractor``: ``WorldFeatureExtractor``, the torch-fidelity extractor "world-cnn", and
  ``register_world_extractor``;
- ``metric``: ``world_fid(real, generated)`` over folders or in-memory image sets (a thin call of
  ``bench.fid.compute_fid``), and what its values look like;
- ``train``: ``train_feature_extractor`` and ``attribute_accuracy``.
"""

from bench.world.fid.extractor import EXTRACTOR_NAME, WorldFeatureExtractor, register_world_extractor
from bench.world.fid.labels import HEADS, MULTI_LABEL, NUM_LOGITS, SINGLE_LABEL, scene_targets
from bench.world.fid.metric import world_fid
from bench.world.fid.network import (
    ARCH,
    DEFAULT_WEIGHTS,
    FEATURE_LAYER,
    INPUT_SIZE,
    LOGITS_LAYER,
    REFERENCE_DIR,
    WorldCNN,
    config_path_for,
    load_world_cnn,
    pil_to_uint8,
    preprocess,
    weights_digest,
)
from bench.world.fid.train import attribute_accuracy, render_training_set, sample_scene_retry, train_feature_extractor

__all__ = [
    "ARCH",
    "DEFAULT_WEIGHTS",
    "EXTRACTOR_NAME",
    "FEATURE_LAYER",
    "HEADS",
    "INPUT_SIZE",
    "LOGITS_LAYER",
    "MULTI_LABEL",
    "NUM_LOGITS",
    "REFERENCE_DIR",
    "SINGLE_LABEL",
    "WorldCNN",
    "WorldFeatureExtractor",
    "attribute_accuracy",
    "config_path_for",
    "load_world_cnn",
    "pil_to_uint8",
    "preprocess",
    "register_world_extractor",
    "render_training_set",
    "sample_scene_retry",
    "scene_targets",
    "train_feature_extractor",
    "weights_digest",
    "world_fid",
]
