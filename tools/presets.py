"""Shapes of cfkit's vision presets for the benchmark drivers in this directory, read from
`cfkit presets --json` (models/src/config.rs stays the one place they are defined).

`PRESETS` is empty until `load(cfkit)` has run (each driver calls it after parsing its arguments).
"""
import json
import subprocess

# The vision_config fields the drivers use (transformers' CLIPVisionConfig names).
FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size",
          "projection_dim")
PRESETS = {}


def load(cfkit):
    """Fills PRESETS from the cfkit binary at `cfkit`."""
    out = subprocess.run([cfkit, "presets", "--json"], check=True, capture_output=True, text=True)
    for name, cfg in json.loads(out.stdout).items():
        PRESETS[name] = {k: cfg["vision_config"][k] for k in FIELDS}
    return PRESETS
