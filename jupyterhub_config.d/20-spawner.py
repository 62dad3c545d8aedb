# Where labs run and where their images come from.
#
# Environment:
#   LSST_LAB_NAMESPACE          Kubernetes namespace of the labs (default: the hub's own namespace)
#   LSST_IMAGE_SOURCE           registry (default) or static
#   LSST_IMAGE_REGISTRY         registry host[:port] (default ghcr.io; docker.io is Docker Hub)
#   LSST_IMAGE_REPOSITORY       repository of the lab images (default lsst-sqre/sciplat-lab)
#   LSST_IMAGE_PULL_SECRET      path of a Docker config JSON (.dockerconfigjson) with registry
#                               credentials, e.g. a mounted pull secret (default: anonymous)
#   LSST_IMAGE_RECOMMENDED_TAG  the tag shown first as "Recommended" (default recommended)
#   LSST_IMAGE_STATIC_BASE      with static: the image reference without tag
#   LSST_IMAGE_STATIC_TAGS      with static: comma-separated tags offered
from lsst_spawner.config import ConfigError, env_str, require_env

namespace = env_str("LSST_LAB_NAMESPACE", "")
if namespace:
    c.LSSTSpawner.namespace = namespace

image_source = env_str("LSST_IMAGE_SOURCE", "registry").lower()
c.LSSTSpawner.image_recommended_tag = env_str("LSST_IMAGE_RECOMMENDED_TAG", "recommended")
if image_source == "registry":
    c.LSSTSpawner.image_source = "registry"
    c.LSSTSpawner.registry_host = env_str("LSST_IMAGE_REGISTRY", "ghcr.io")
    c.LSSTSpawner.registry_repository = env_str("LSST_IMAGE_REPOSITORY", "lsst-sqre/sciplat-lab")
    pull_secret = env_str("LSST_IMAGE_PULL_SECRET", "")
    if pull_secret:
        c.LSSTSpawner.registry_credentials_file = pull_secret
elif image_source == "static":
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = require_env("LSST_IMAGE_STATIC_BASE")
    c.LSSTSpawner.static_image_tags = [
        tag.strip() for tag in require_env("LSST_IMAGE_STATIC_TAGS").split(",") if tag.strip()
    ]
else:
    raise ConfigError(f"LSST_IMAGE_SOURCE must be registry or static, not {image_source!r}")
