"""Shapes of cfkit's vision presets for the benchmark drivers (cfkit_tools.bench), read from
`cfkit presets --json` (models/src/config.rs stays the one place they are defined).

`PRESETS` is empty until `load(cfkit)` has run (each driver calls it after parsing its arguments).
"""
import subprocess

from cfkit_tools import records

# The vision_config fields the drivers use (transformers' CLIPVisionConfig names).
FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size",
          "projection_dim")
PRESETS = {}


def load(cfkit):
    """Fills PRESETS from the cfkit binary at `cfkit`."""
    out = subprocess.run([cfkit, "presets", "--json"], check=True, capture_output=True, text=True)
    PRESETS.update(records.parse_presets(out.stdout, FIELDS))
    return PRESETS
