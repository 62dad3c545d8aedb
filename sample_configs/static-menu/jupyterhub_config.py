"""An air-gapped site's image menu: tags listed in config instead of read from a registry."""

c = get_config()
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "registry.example.org/science-platform/sciplat-lab"
c.LSSTSpawner.static_image_tags = [
    "recommended",
    "r28_0_1",
    "r27_0_0",
    "w_2026_46",
    "w_2026_45",
    "w_2026_44",
    "d_2026_11_20",
    "d_2026_11_19",
    "d_2026_11_18",
    "d_2026_11_17",
    "r29_0_0_rc1",
    "exp_w_2026_46_newpipe",
    "w_2026_46-arm64",
]
c.LSSTSpawner.static_image_digests = {
    "recommended": "sha256:" + "5" * 64,
    "w_2026_46": "sha256:" + "5" * 64,
}
c.LSSTSpawner.image_recommended_tag = "recommended"
