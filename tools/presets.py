"""Shapes of cfkit's vision presets (must match models/src/config.rs `preset`), shared by the
benchmark drivers in this directory."""

PRESETS = {
    "tiny": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, image_size=56, patch_size=8,
                 projection_dim=128),
    "vit-b-32": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                     patch_size=32, projection_dim=512),
    "vit-b-16": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                     patch_size=16, projection_dim=512),
}
