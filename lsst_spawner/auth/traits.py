"""The authenticators' traits, checked as a whole and frozen into settings.

:class:`IdentityTraits` are the identity rules every lsst_spawner authenticator
has; :class:`GitHubTraits` and :class:`CILogonTraits` add each provider's.
:func:`to_settings` is the only check of them: ``check-config``, hub start
(``check_allow_config``) and every login and refresh (``auth_settings``) come
through it, and it returns the frozen settings the login code reads, or ``None``
with every problem found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traitlets import Bool, Enum, Int, List, Set, Unicode

from ..config import CheckedConfigurable, ConfigProblem, Duration
from ..identity import GROUP_NAME_PATTERN, MAX_ID, IdentityPolicy
from .gids import DEFAULT_SYNTHETIC_GID_MAX, DEFAULT_SYNTHETIC_GID_MIN
from .groups import group_name_problem

__all__ = [
    "GITHUB_BASE_SCOPES",
    "GITHUB_GIT_SCOPE",
    "GROUP_TRAITS",
    "SETTINGS_TRAITS",
    "CILogonSettings",
    "CILogonTraits",
    "GitHubSettings",
    "GitHubTraits",
    "IdentitySettings",
    "IdentityTraits",
    "problem_trait",
    "to_settings",
]

#: OAuthenticator's traits that name JupyterHub groups (and so POSIX-safe names).
GROUP_TRAITS = ("admin_groups", "allowed_groups")
#: The scopes the GitHub authenticator needs, and the one of the git token.
GITHUB_BASE_SCOPES = ("read:org", "user:email")
GITHUB_GIT_SCOPE = "public_repo"


class IdentityTraits(CheckedConfigurable):
    """The identity rules of every lsst_spawner authenticator."""

    min_uid = Int(
        1000,
        config=True,
        help="Lowest uid a user may have; logins with a lower uid (or uid 0) are refused.",
    )

    min_gid = Int(
        1000,
        config=True,
        help=(
            "Lowest gid allowed. A primary gid below it refuses the login; a supplementary "
            "group below it is dropped and logged, so system groups never reach a lab."
        ),
    )

    allowed_system_gids = List(
        Int(),
        config=True,
        help=(
            "Supplementary gids below min_gid that are kept (for example a site's 'users' "
            "group, 100); other low gids (tty, disk, docker, ...) are dropped and logged."
        ),
    )

    require_gid = Bool(
        True,
        config=True,
        help=(
            "Refuse users for whom the provider gives no gid. When False, such a user gets a "
            "user-private group with gid = uid, and that is logged."
        ),
    )

    unsafe_group_names = Enum(
        ["reject", "drop"],
        default_value="reject",
        config=True,
        help=(
            "What to do with a group whose name cannot be made POSIX-safe (control characters, "
            "more than 256 characters): 'reject' the login, or 'drop' the group and log it."
        ),
    )

    refresh_grace_period = Duration(
        "1h",
        config=True,
        help=(
            "While the identity provider cannot be reached, keep using a user's last good "
            "identity for this long after it was last refreshed (for example '1h', '30m'); "
            "0 disables the grace period."
        ),
    )

    known_groups = Set(
        Unicode(),
        config=True,
        help=(
            "When set, the only groups a user may have besides the primary group (POSIX-safe "
            "names): others are dropped at login and refresh, and check-config flags lab mounts "
            "and admin_groups naming a group outside this set."
        ),
    )

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        problems.extend(to_settings(self)[1])
        return problems


class GitHubTraits(IdentityTraits):
    """What the GitHub authenticator adds: teams, the git token, the primary group, denials."""

    teams_as_groups = Bool(
        False,
        config=True,
        help="Also make the user's teams groups, named '{org}-{team}' with gid = the team id.",
    )

    provision_git_token = Bool(
        False,
        config=True,
        help=(
            "Ask for the 'public_repo' scope and store the OAuth token as the identity's "
            "git_token, "
            "so labs can push to GitHub. The token lives only in the encrypted auth_state."
        ),
    )

    primary_gid = Int(
        None,
        allow_none=True,
        config=True,
        help=(
            "Give every user this site gid as primary gid instead of a user-private group "
            "(named after the user, gid = uid). The group is named by primary_group_name."
        ),
    )

    primary_group_name = Unicode(
        "users",
        config=True,
        help="Name of the group whose gid is primary_gid, when primary_gid is set.",
    )

    denied_organizations = Set(
        Unicode(),
        config=True,
        help=(
            "Refuse members of these organizations ('org') or teams ('org:team'), with a message "
            "naming the organization. Checked at login and at every refresh; wins over any "
            "allow rule."
        ),
    )


class CILogonTraits(IdentityTraits):
    """What the CILogon authenticator adds: the claims, synthetic gids, group allow/deny."""

    uid_claim = Unicode(
        "uidNumber", config=True, help="Userinfo claim holding the user's numeric uid."
    )

    gid_claim = Unicode(
        "gidNumber", config=True, help="Userinfo claim holding the user's primary numeric gid."
    )

    groups_claim = Unicode(
        "isMemberOf",
        config=True,
        help="Userinfo claim listing the user's groups as objects with 'name' and 'id'.",
    )

    groups_without_gid = Enum(
        ["drop", "synthetic"],
        default_value="drop",
        config=True,
        help=(
            "What to do with a group that has no id: 'drop' it (logged), or give it a "
            "synthetic gid "
            "hashed from its name into synthetic_gid_min..synthetic_gid_max."
        ),
    )

    synthetic_gid_min = Int(
        DEFAULT_SYNTHETIC_GID_MIN,
        config=True,
        help="First gid of the synthetic gid range. Keep the range clear of real gids.",
    )

    synthetic_gid_max = Int(
        DEFAULT_SYNTHETIC_GID_MAX,
        config=True,
        help="Last gid (inclusive) of the synthetic gid range.",
    )

    allowed_idp_groups = Set(
        Unicode(),
        config=True,
        help=(
            "Allow members of these groups, matched against the provider's group name or its "
            "POSIX-mapped name. Adds to the other allow rules."
        ),
    ).tag(allow_config=True)

    denied_idp_groups = Set(
        Unicode(),
        config=True,
        help=(
            "Refuse members of these groups (provider name or POSIX-mapped name), with a message "
            "naming the group. Checked at login and every refresh; wins over any allow rule."
        ),
    )


# --- settings ------------------------------------------------------------------------

#: The traits the settings are made of (this module's).
SETTINGS_TRAITS = frozenset(
    name for cls in (IdentityTraits, GitHubTraits, CILogonTraits) for name in cls.class_own_traits()
)


@dataclass(frozen=True)
class IdentitySettings:
    """The checked identity rules of an authenticator."""

    policy: IdentityPolicy
    unsafe_group_names: str
    refresh_grace_period: float
    known_groups: frozenset[str]


@dataclass(frozen=True)
class GitHubSettings(IdentitySettings):
    teams_as_groups: bool
    provision_git_token: bool
    primary_gid: int | None
    primary_group_name: str
    denied_organizations: frozenset[str]


@dataclass(frozen=True)
class CILogonSettings(IdentitySettings):
    uid_claim: str
    gid_claim: str
    groups_claim: str
    groups_without_gid: str
    synthetic_gids: tuple[int, int]
    allowed_idp_groups: frozenset[str]
    denied_idp_groups: frozenset[str]


def problem_trait(problem: ConfigProblem) -> str:
    """The trait a problem names (``LSSTGitHubOAuthenticator.allowed_system_gids[1]`` ->
    ``allowed_system_gids``)."""
    trait = str(problem.where).partition(".")[2]
    return trait.partition("[")[0].partition(".")[0]


def _group_problems(traits: IdentityTraits) -> list[ConfigProblem]:
    """Group names (known_groups and OAuthenticator's group traits) and manage_groups."""
    problems = []
    for trait in ("known_groups", *GROUP_TRAITS):
        for name in sorted(getattr(traits, trait, ()) or ()):
            if why := group_name_problem(name):
                problems.append(ConfigProblem(traits.trait_where(trait), why))
    if not getattr(traits, "manage_groups", False):
        for trait in (*GROUP_TRAITS, "auth_state_groups_key"):
            if getattr(traits, trait, None):
                problems.append(
                    ConfigProblem(
                        traits.trait_where(trait),
                        "needs manage_groups = True (c.Authenticator.manage_groups)",
                    )
                )
    if traits.known_groups:
        for trait in GROUP_TRAITS:
            for name in sorted(set(getattr(traits, trait, ()) or ()) - traits.known_groups):
                if group_name_problem(name) is None:
                    problems.append(
                        ConfigProblem(
                            traits.trait_where(trait),
                            f"{name!r} is not among known_groups: no user can be in it",
                        )
                    )
    return problems


def _identity_problems(traits: IdentityTraits) -> list[ConfigProblem]:
    problems = []
    for trait in ("min_uid", "min_gid"):
        value = getattr(traits, trait)
        if not 1 <= value <= MAX_ID:
            problems.append(
                ConfigProblem(
                    traits.trait_where(trait), f"must be between 1 and {MAX_ID}, not {value}"
                )
            )
    for index, gid in enumerate(traits.allowed_system_gids):
        if not 1 <= gid <= MAX_ID:
            problems.append(
                ConfigProblem(
                    traits.trait_where(f"allowed_system_gids[{index}]"),
                    f"{gid} must be a gid in 1..{MAX_ID} (never root's group)",
                )
            )
    if not getattr(traits, "enable_auth_state", True):
        problems.append(
            ConfigProblem(
                traits.trait_where("enable_auth_state"),
                "must be True: the identity is stored in auth_state "
                "(and JUPYTERHUB_CRYPT_KEY must be set)",
            )
        )
    return problems


def _github_problems(traits: GitHubTraits) -> list[ConfigProblem]:
    problems = []
    scopes = set(getattr(traits, "scope", ()) or ())
    for needed in GITHUB_BASE_SCOPES:
        if needed not in scopes and not ({"user", "repo"} & scopes and needed == "user:email"):
            problems.append(
                ConfigProblem(
                    traits.trait_where("scope"), f"must include {needed!r} to read groups and email"
                )
            )
    if traits.provision_git_token and not ({GITHUB_GIT_SCOPE, "repo"} & scopes):
        problems.append(
            ConfigProblem(
                traits.trait_where("scope"),
                "must include 'public_repo' when provision_git_token is True",
            )
        )
    if not traits.provision_git_token and ({GITHUB_GIT_SCOPE, "repo"} & scopes):
        problems.append(
            ConfigProblem(
                traits.trait_where("scope"),
                "asks for repository access although provision_git_token is False; remove it",
            )
        )
    if traits.primary_gid is not None and not traits.min_gid <= traits.primary_gid <= MAX_ID:
        problems.append(
            ConfigProblem(
                traits.trait_where("primary_gid"),
                f"must be between min_gid ({traits.min_gid}) and {MAX_ID}, "
                f"not {traits.primary_gid}",
            )
        )
    if not GROUP_NAME_PATTERN.fullmatch(traits.primary_group_name):
        problems.append(
            ConfigProblem(
                traits.trait_where("primary_group_name"),
                f"{traits.primary_group_name!r} is not a POSIX group name "
                "([a-z_][a-z0-9_-]*, at most 32 characters)",
            )
        )
    for entry in sorted(traits.denied_organizations):
        if not entry or entry.count(":") > 1 or entry.startswith(":") or entry.endswith(":"):
            problems.append(
                ConfigProblem(
                    traits.trait_where("denied_organizations"),
                    f"{entry!r} is not 'org' or 'org:team'",
                )
            )
    return problems


def _cilogon_problems(traits: CILogonTraits) -> list[ConfigProblem]:
    problems = []
    low, high = traits.synthetic_gid_min, traits.synthetic_gid_max
    if not 1 <= low <= high <= MAX_ID:
        problems.append(
            ConfigProblem(
                traits.trait_where("synthetic_gid_min"),
                f"the synthetic gid range {low}..{high} must be increasing and within 1..{MAX_ID}",
            )
        )
    elif low < traits.min_gid:
        problems.append(
            ConfigProblem(
                traits.trait_where("synthetic_gid_min"),
                f"{low} is below min_gid ({traits.min_gid})",
            )
        )
    for trait in ("uid_claim", "gid_claim", "groups_claim"):
        if not getattr(traits, trait):
            problems.append(ConfigProblem(traits.trait_where(trait), "must name a claim"))
    overlap = traits.allowed_idp_groups & traits.denied_idp_groups
    if overlap:
        problems.append(
            ConfigProblem(
                traits.trait_where("denied_idp_groups"),
                f"also allowed by allowed_idp_groups: {sorted(overlap)}",
            )
        )
    return problems


def to_settings(traits: IdentityTraits) -> tuple[IdentitySettings | None, list[ConfigProblem]]:
    """The frozen settings of ``traits`` and every problem in them: :class:`GitHubSettings`
    for :class:`GitHubTraits`, :class:`CILogonSettings` for :class:`CILogonTraits`,
    :class:`IdentitySettings` otherwise.

    The settings are ``None`` when a problem is in one of this module's traits; a problem
    in a JupyterHub or OAuthenticator trait they are checked with (``enable_auth_state``,
    ``scope``, ``manage_groups``, ``admin_groups``) is reported without voiding them,
    as those traits are not part of the settings.
    """
    problems = _group_problems(traits) + _identity_problems(traits)
    if isinstance(traits, GitHubTraits):
        problems += _github_problems(traits)
    if isinstance(traits, CILogonTraits):
        problems += _cilogon_problems(traits)
    if any(problem_trait(problem) in SETTINGS_TRAITS for problem in problems):
        return None, problems
    common: dict[str, Any] = {
        "policy": IdentityPolicy(
            min_uid=traits.min_uid,
            min_gid=traits.min_gid,
            require_gid=traits.require_gid,
            allowed_gids=frozenset(traits.allowed_system_gids),
        ),
        "unsafe_group_names": traits.unsafe_group_names,
        "refresh_grace_period": float(traits.refresh_grace_period),
        "known_groups": frozenset(traits.known_groups),
    }
    if isinstance(traits, GitHubTraits):
        return GitHubSettings(
            **common,
            teams_as_groups=traits.teams_as_groups,
            provision_git_token=traits.provision_git_token,
            primary_gid=traits.primary_gid,
            primary_group_name=traits.primary_group_name,
            denied_organizations=frozenset(traits.denied_organizations),
        ), problems
    if isinstance(traits, CILogonTraits):
        return CILogonSettings(
            **common,
            uid_claim=traits.uid_claim,
            gid_claim=traits.gid_claim,
            groups_claim=traits.groups_claim,
            groups_without_gid=traits.groups_without_gid,
            synthetic_gids=(traits.synthetic_gid_min, traits.synthetic_gid_max),
            allowed_idp_groups=frozenset(traits.allowed_idp_groups),
            denied_idp_groups=frozenset(traits.denied_idp_groups),
        ), problems
    return IdentitySettings(**common), problems
