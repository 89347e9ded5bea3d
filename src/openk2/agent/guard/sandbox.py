"""The OS sandbox every shell command (and everything it starts) runs in: bubblewrap.

Layout inside the sandbox (built by `bwrap_argv`):
- system directories (`/usr`, `/etc`, `/opt`, ... and their `/bin`-style symlinks) read-only;
  `/home`, `/root`, `/srv`, `/mnt`, `/var`, `/run` (docker's socket) are simply not there;
- `$HOME` is an empty tmpfs; only toolchain directories (`~/.pyenv`, `~/.cargo`, `~/.local/bin`,
  ...) come back read-only, so `~/.ssh`, `~/.aws`, `~/.config/gh`, keyrings and dotenv files in
  `$HOME` are not mounted at all; credential paths inside re-bound trees are masked again;
- the workspace and added directories read-write; their `.git/hooks`, `.git/config` and
  `.openk2/` re-bound read-only; dotenv files in the workspace's parent directories masked;
- a private `/tmp` and `/var/tmp`, fresh `/dev` and `/proc`, new PID/IPC/UTS/network
  namespaces (network off: even the host's 127.0.0.1 is unreachable), `--new-session`
  (no terminal injection), `--die-with-parent`, and every capability dropped (even when
  openk2 runs as root).

If bubblewrap cannot start, `Sandbox.open` raises `SandboxUnavailable` with the reason: the
caller must refuse to run shell commands. `Unsandboxed` exists only for an explicit
`--no-sandbox` and carries the warning to print every session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from openk2.agent.guard import netbridge
from openk2.agent.guard.netproxy import Decide, FilteringProxy
from openk2.agent.guard.paths import CREDENTIAL_DIRS, CREDENTIAL_FILES, is_dotenv, within

SYSTEM_DIRS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/nix",
)
"""Read-only system trees mounted into the sandbox (when present)."""

HOME_TOOLCHAINS = (
    ".pyenv",
    ".cargo/bin",
    ".rustup",
    ".nvm",
    ".local/bin",
    ".local/lib",
    ".local/share/uv",
    ".deno",
    ".bun",
    ".sdkman",
    ".gradle/wrapper",
    ".gitconfig",
    ".config/git",
    "go/bin",
)
"""`$HOME` entries re-bound read-only: interpreters and tools, no credentials."""

ETC_SECRETS = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/krb5.keytab",
    "/etc/security/opasswd",
    "/etc/NetworkManager/system-connections",
    "/etc/wpa_supplicant",
)
"""System files that hold secrets, masked even though /etc is mounted."""

SECRET_ENV = re.compile(
    r"TOKEN|SECRET|PASSW|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL|AUTH|COOKIE|SESSION"
    r"|^AWS_|^AZURE_|^GOOGLE_APPLICATION|^SSH_AUTH_SOCK$|^GPG_AGENT|^KUBECONFIG$|^DOCKER_CONFIG$",
    re.IGNORECASE,
)
"""Environment variable names that are not passed into the sandbox."""

PROBE_TIMEOUT_S = 10.0


class SandboxUnavailable(RuntimeError):
    """No sandbox can start here; `reason` says why. Shell commands must then be refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the shell sandbox cannot start: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """What the sandbox mounts. Paths are resolved when the argv is built."""

    workspace: Path
    writable: Sequence[Path] = ()
    """Added directories, writable like the workspace."""
    readable: Sequence[Path] = ()
    """Extra read-only trees (a virtualenv outside the workspace, a toolchain)."""
    readonly: Sequence[Path] = ()
    """Paths inside writable trees that stay read-only (beyond `.git/hooks` and config)."""
    home: Path = field(default_factory=Path.home)
    home_toolchains: Sequence[str] = HOME_TOOLCHAINS
    mask_workspace_dotenv: bool = True
    """Mask dotenv files inside the writable trees too (they read as empty, and cannot be
    written), so `grep -r TOKEN .` or an interpreter cannot read them."""
    allowed_hosts: Sequence[str] = ()
    """Hosts commands may reach through the filtering proxy (`netproxy`); empty = no network."""
    network_socket: Path | None = None
    """A running filtering proxy's unix socket (set by `Sandbox.open` from `allowed_hosts`)."""
    bwrap: str = "bwrap"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def bwrap_argv(config: SandboxConfig, argv: Sequence[str]) -> list[str]:
    """The full bwrap command line that runs `argv` inside the sandbox, cwd = workspace."""
    ws = _real(config.workspace)
    home = _real(config.home)
    out = [config.bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL"]
    out += _system_mounts()
    out += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    out += ["--tmpfs", str(home)]
    for rel in config.home_toolchains:
        if (home / rel).exists():
            out += ["--ro-bind", str(home / rel), str(home / rel)]
    for extra in config.readable:
        if extra.exists():
            out += ["--ro-bind", str(_real(extra)), str(_real(extra))]
    writable = [ws, *(_real(p) for p in config.writable)]
    for root in writable:
        out += ["--bind", str(root), str(root)]
    mounted = [*writable, *(_real(p) for p in config.readable)]
    mounted += [home / rel for rel in config.home_toolchains] + [Path(d) for d in SYSTEM_DIRS]
    out += _masks(writable, mounted, home, config)
    if config.network_socket is not None:
        out += _bridge_mounts(config.network_socket)
        argv = _bridged(config.network_socket, argv)
    out += ["--chdir", str(ws), "--", *argv]
    return out


BRIDGE_PORT = 3128
"""Port of the proxy bridge on the sandbox's own loopback (its namespace, so never in use)."""


def _bridge_mounts(sock: Path) -> list[str]:
    """The proxy socket's directory, the bridge script and the interpreter that runs it."""
    out: list[str] = []
    for path in (_real(sock).parent, Path(sys.base_prefix), Path(_BRIDGE)):
        out += ["--ro-bind", str(_real(path)), str(_real(path))]
    return out


def _bridged(sock: Path, argv: Sequence[str]) -> list[str]:
    python = os.path.realpath(sys.executable)
    bridge = ["--socket", str(_real(sock)), "--port", str(BRIDGE_PORT), "--"]
    return [python, "-I", "-S", _BRIDGE, *bridge, *argv]


_BRIDGE = os.path.realpath(netbridge.__file__)


def _system_mounts() -> list[str]:
    out: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            out += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            out += ["--ro-bind", d, d]
    return out


def _masks(
    writable: list[Path], mounted: list[Path], home: Path, config: SandboxConfig
) -> list[str]:
    """Read-only re-binds and secret masks, applied after every writable bind."""
    out: list[str] = []
    for root in writable:
        _prepare_git(root)
        for rel in (".git/hooks", ".git/config", ".openk2"):
            if (root / rel).exists():
                out += ["--ro-bind", str(root / rel), str(root / rel)]
    for path in config.readonly:
        if path.exists():
            out += ["--ro-bind", str(_real(path)), str(_real(path))]
    secrets = [home / rel for rel in CREDENTIAL_DIRS + CREDENTIAL_FILES]
    secrets += [Path(p) for p in ETC_SECRETS]
    secrets += _ancestor_dotenvs(writable)
    if config.mask_workspace_dotenv:
        secrets += [p for root in writable for p in _tree_dotenvs(root)]
    for secret in secrets:
        if within(secret, mounted):
            out += _mask(secret)
    return out


def _prepare_git(root: Path) -> None:
    """Create an empty `.git/hooks` so a command cannot plant hooks where none were."""
    git = root / ".git"
    if git.is_dir() and not (git / "hooks").exists():
        (git / "hooks").mkdir()


def _mask(path: Path) -> list[str]:
    if path.is_symlink() or not path.exists():
        return []
    if path.is_dir():
        return ["--tmpfs", str(path), "--remount-ro", str(path)]
    return ["--ro-bind", "/dev/null", str(path)]


def _ancestor_dotenvs(roots: list[Path]) -> list[Path]:
    """Dotenv files in the directories above the writable roots (e.g. `~/src/.env`)."""
    found: list[Path] = []
    for root in roots:
        for parent in root.parents:
            try:
                found += [parent / n for n in os.listdir(parent) if is_dotenv(Path(n))]
            except OSError:
                continue
    return found


SKIP_DIRS = frozenset(
    {
        ".git",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "target",
        "dist",
        "build",
        ".cache",
    }
)
"""Directories not searched for dotenv files (dependencies, caches, build output)."""

MAX_SCAN_ENTRIES = 20_000
"""Upper bound on directory entries looked at per writable tree when finding dotenv files
(top-down, so dotenv files near the root are always found)."""

SCAN_TTL_S = 10.0
"""How long one scan of a tree is reused: commands come in bursts, trees change slowly."""

_scans: dict[Path, tuple[float, list[Path]]] = {}


def _tree_dotenvs(root: Path) -> list[Path]:
    """Dotenv files in a writable tree (dependency and cache directories skipped)."""
    now = time.monotonic()
    cached = _scans.get(root)
    if cached is not None and now - cached[0] < SCAN_TTL_S:
        return [p for p in cached[1] if p.exists()]
    found: list[Path] = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        seen += len(dirnames) + len(filenames)
        found += [Path(dirpath) / n for n in filenames if is_dotenv(Path(n))]
        if seen > MAX_SCAN_ENTRIES:
            break
    _scans[root] = (now, found)
    return found


def sandbox_env(base: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment commands see: secrets dropped, HOME kept, TMPDIR the private /tmp."""
    env = {k: v for k, v in base.items() if not SECRET_ENV.search(k)}
    env["HOME"] = str(home)
    env["TMPDIR"] = "/tmp"
    return env


@lru_cache(maxsize=8)
def probe(bwrap: str = "bwrap") -> None:
    """Check that bubblewrap can start a sandbox here; raise SandboxUnavailable if not."""
    exe = shutil.which(bwrap)
    if exe is None:
        raise SandboxUnavailable(
            f"`{bwrap}` is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
        )
    argv = [exe, "--die-with-parent", "--unshare-all", *_system_mounts()]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap did not start: {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit status {done.returncode}"
        raise SandboxUnavailable(f"bubblewrap failed: {detail} (user namespaces disabled?)")


class Sandbox:
    """A started-and-checked bubblewrap sandbox: `wrap` turns argv into a sandboxed argv."""

    enabled = True

    def __init__(self, config: SandboxConfig, proxy: FilteringProxy | None = None) -> None:
        self.config = config
        self.proxy = proxy

    @classmethod
    def open(cls, config: SandboxConfig, *, on_network: Decide | None = None) -> Sandbox:
        """Probe bubblewrap (and start the filtering proxy when hosts are allowlisted);
        raise SandboxUnavailable if the sandbox cannot run. `on_network(host, port, allowed)`
        sees every proxied request (for the audit log)."""
        probe(config.bwrap)
        if not config.allowed_hosts:
            return cls(config)
        try:
            proxy = FilteringProxy(config.allowed_hosts, on_decision=on_network).start()
        except (OSError, RuntimeError) as exc:
            raise SandboxUnavailable(f"the network proxy did not start: {exc}") from exc
        return cls(replace(config, network_socket=proxy.socket_path), proxy)

    def close(self) -> None:
        """Stop the filtering proxy, if any."""
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return bwrap_argv(self.config, argv)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return sandbox_env(os.environ if base is None else base, _real(self.config.home))

    @property
    def banner(self) -> str | None:
        return None


class Unsandboxed:
    """What `--no-sandbox` gets: commands run on the host. Never a default."""

    enabled = False
    WARNING = (
        "WARNING: --no-sandbox: shell commands run directly on this machine with your full "
        "access (files outside the workspace, ~/.ssh, the network). Only the policy checks remain."
    )

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def close(self) -> None:
        return None

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return dict(os.environ if base is None else base)

    @property
    def banner(self) -> str | None:
        return self.WARNING


def open_sandbox(
    config: SandboxConfig, *, no_sandbox: bool = False, on_network: Decide | None = None
) -> Sandbox | Unsandboxed:
    """The sandbox for a session: bubblewrap, or `Unsandboxed` only when asked explicitly."""
    return Unsandboxed(config) if no_sandbox else Sandbox.open(config, on_network=on_network)
