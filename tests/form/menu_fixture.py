"""A static image menu and sizes shared by the form tests and the test hub's spawner."""

from __future__ import annotations

from lsst_spawner.form.options import OptionsCatalog, SizeChoice
from lsst_spawner.images.model import ImageMenu, MenuImage, TagKind

IMAGE_BASE = "registry.example.org/lsst/sciplat-lab"
HOSTILE_TAG = '"><script>alert(1)</script>'
DIGEST_W10 = "sha256:" + "1" * 64
DIGEST_R23 = "sha256:" + "2" * 64
UNLISTED_DIGEST = "sha256:" + "f" * 64
#: An image the menu holds by a sha512 digest (OCI allows it; so must the options).
DIGEST512_W09 = "sha512:" + "9" * 128


def image(tag: str, kind: TagKind, display: str, digest: str | None = None, choice="dropdown"):
    return MenuImage(tag, kind, display, f"{IMAGE_BASE}:{tag}", digest, choice)


RECOMMENDED = image(
    "recommended", TagKind.ALIAS, "Recommended (Weekly 2024_10)", DIGEST_W10, "radio"
)
W10 = image("w_2024_10", TagKind.WEEKLY, "Weekly 2024_10", DIGEST_W10, "radio")
R23 = image("r23_0_1", TagKind.RELEASE, "Release r23.0.1", DIGEST_R23, "radio")
D0203 = image("d_2024_02_03", TagKind.DAILY, "Daily 2024_02_03")
W01 = image("w_2024_01", TagKind.WEEKLY, "Weekly 2024_01")
W09 = image("w_2024_09", TagKind.WEEKLY, "Weekly 2024_09", DIGEST512_W09)
# Whatever a registry answers may reach the menu; the form must escape it everywhere.
HOSTILE = MenuImage(HOSTILE_TAG, TagKind.UNKNOWN, f"Unknown {HOSTILE_TAG}", f"{IMAGE_BASE}:bad")


def make_menu(*, complete: bool = True, hostile: bool = False) -> ImageMenu:
    dropdown = (W09, D0203, W01, HOSTILE) if hostile else (W09, D0203, W01)
    return ImageMenu(
        image_base=IMAGE_BASE,
        radio=(RECOMMENDED, R23, W10) if complete else (RECOMMENDED,),
        dropdown=dropdown if complete else (),
        recommended=RECOMMENDED,
        complete=complete,
        latest={TagKind.RELEASE: R23, TagKind.WEEKLY: W10, TagKind.DAILY: D0203}
        if complete
        else {},
    )


SIZES = (SizeChoice("small", "Small (1 CPU, 4 GiB)"), SizeChoice("medium", "Medium (2 CPU, 8 GiB)"))


def make_catalog(**kwargs) -> OptionsCatalog:
    return OptionsCatalog(menu=make_menu(**kwargs), sizes=SIZES, default_size="medium")
