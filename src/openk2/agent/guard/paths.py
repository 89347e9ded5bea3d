"""Path facts the policy decides on: resolution, writable roots, credential stores.

Every path is resolved (symlinks followed, `..` collapsed, `~` and `$HOME` expanded) before
a decision, so `ws/link -> ~/.ssh` or `ws/../../etc/passwd` are judged by where they lead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from fnmatch import fnmatch
from functools import lru_cache
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
    """`~`, `~/x`, `$HOME/x`, `${HOME}/x` -> the path under `home`; `~user/x` -> that user's."""
    word = _VAR.sub(str(home), word)
    if word == "~" or word.startswith("~/"):
        return str(home) + word[1:]
    return os.path.expanduser(word) if word.startswith("~") else word


def resolve(path: str | os.PathLike[str], cwd: Path, home: Path) -> Path:
    """The absolute, symlink-free path a tool would touch (missing tails kept as written)."""
    expanded = Path(expand_home(os.fspath(path), home))
    if not expanded.is_absolute():
        expanded = cwd / expanded
    return Path(os.path.realpath(expanded))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def within(path: Path, roots: Iterable[Path]) -> bool:
    """True if `path` is one of `roots` or below one (paths must be resolved already)."""
    text = str(path)
    return any(_under(text, str(root)) for root in roots)


@lru_cache(maxsize=16)
def _credential_roots(home: str) -> tuple[tuple[str, str], ...]:
    stores = CREDENTIAL_DIRS + CREDENTIAL_FILES
    return tuple((os.path.join(home, rel), f"~/{rel}") for rel in stores)


ANYWHERE_STORES = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".password-store",
    ".config/gh",
    ".local/share/keyrings",
    ".git-credentials",
    ".netrc",
)
"""Credential stores recognised in any directory (another user's home, a copied profile),
not only under `$HOME`; the rest (`.docker`, `.npmrc`, ...) also appear in projects."""


def credential_store(path: Path, home: Path) -> str | None:
    """The credential store `path` is in or is, or None; `home` must be resolved."""
    text = str(path)
    for root, name in _credential_roots(str(home)):
        if _under(text, root):
            return name
    for rel in ANYWHERE_STORES:
        if f"/{rel}/" in text + "/":
            return rel
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
    text = str(path)
    for rel in (".git/hooks", ".git/config", ".openk2"):
        if _under(text, os.path.join(workspace, rel)):
            return rel
    return None
