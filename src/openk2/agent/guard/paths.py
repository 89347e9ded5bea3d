"""Path facts the policy decides on: resolution, writable roots, credential stores.

Every path is resolved (symlinks followed, `..` collapsed, `~` and `$HOME` expanded) before
a decision, so `ws/link -> ~/.ssh` or `ws/../../etc/passwd` are judged by where they lead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

CREDENTIAL_DIRS = (
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".config/gh",
    ".config/gcloud",
    ".config/hub",
    ".config/op",
    ".kube",
    ".docker",
    ".local/share/keyrings",
    ".password-store",
    ".terraform.d",
    ".vault-token",
)
"""Directories under `$HOME` that hold credentials: never read or written by the agent."""

CREDENTIAL_FILES = (
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".yarnrc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".config/pip/pip.conf",
    ".gem/credentials",
    ".pgpass",
    ".my.cnf",
)
"""Files under `$HOME` that hold credentials."""

CREDENTIAL_NAMES = ("id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*")
"""File names that are private keys wherever they live."""

SECRET_ENV_FILES = (".env", ".env.*", "*.env")
"""Dotenv files: secrets outside the workspace, sensitive (asked) inside it."""

_VAR = re.compile(r"\$(?:\{HOME\}|HOME\b)")


def expand_home(word: str, home: Path) -> str:
    """`~`, `~/x`, `$HOME/x`, `${HOME}/x` -> the path under `home` (other `~user` kept)."""
    word = _VAR.sub(str(home), word)
    if word == "~" or word.startswith("~/"):
        return str(home) + word[1:]
    return word


def resolve(path: str | os.PathLike[str], cwd: Path, home: Path) -> Path:
    """The absolute, symlink-free path a tool would touch (missing tails kept as written)."""
    expanded = Path(expand_home(os.fspath(path), home))
    if not expanded.is_absolute():
        expanded = cwd / expanded
    return Path(os.path.realpath(expanded))


def within(path: Path, roots: Iterable[Path]) -> bool:
    """True if `path` is one of `roots` or below one (paths must be resolved already)."""
    return any(path == root or root in path.parents for root in roots)


def credential_store(path: Path, home: Path) -> str | None:
    """The credential store `path` is in or is, or None; `home` must be resolved."""
    for rel in CREDENTIAL_DIRS + CREDENTIAL_FILES:
        store = home / rel
        if path == store or store in path.parents:
            return f"~/{rel}"
    if any(fnmatch(path.name, pattern) for pattern in CREDENTIAL_NAMES):
        return f"private key file {path.name}"
    return None


DOTENV_TEMPLATES = (".example", ".sample", ".template", ".dist", ".defaults")
"""Suffixes of checked-in dotenv templates (`.env.example`): no secrets, not guarded."""


def is_dotenv(path: Path) -> bool:
    """True for `.env`, `.env.local`, `prod.env` and the like (templates excluded)."""
    if path.name.endswith(DOTENV_TEMPLATES):
        return False
    return any(fnmatch(path.name, pattern) for pattern in SECRET_ENV_FILES)


def protected_in_workspace(path: Path, workspace: Path) -> str | None:
    """Workspace paths the agent may read but never write: git hooks/config, openk2's config."""
    for rel in (".git/hooks", ".git/config", ".openk2"):
        target = workspace / rel
        if path == target or target in path.parents:
            return rel
    return None
