"""The job recipes of docs/operations.md, run as written: the crontab line under cron's bare
environment, the systemd service with its credentials and state directory emulated.

Only the paths are swapped for temporary ones (and the API for the test sandbox); a recipe
line that names any other path, or that needs anything from the developer's shell, fails.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kprov.config import SANDBOX_API_SECRET
from kprov.sample_semester import write_sample_semester
from tests.conftest import SANDBOX_KEY, Sandbox

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "docs" / "operations.md"
CRON_PATH = "/usr/bin:/bin"  # what cron gives a job
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RECIPE_PATHS = ("/etc/kprov", "/opt/kprov", "/var/lib/kprov", "/srv/sis", "/var/log/kprov")


def fenced_block(first_line: str) -> str:
    """The code block of docs/operations.md whose first line is *first_line*."""
    text = RECIPES.read_text(encoding="utf-8")
    found = [
        body
        for _lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
        if body.startswith(first_line)
    ]
    assert len(found) == 1, f"docs/operations.md needs exactly one block starting {first_line!r}"
    return found[0]


def installed_kprov() -> str:
    """The kprov console script of the interpreter running the tests (absolute path)."""
    path = shutil.which("kprov", path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip("kprov is not installed as a console script next to this Python")
    return path


class Box:
    """A temporary stand-in for the server's file system."""

    def __init__(self, root: Path, sandbox: Sandbox) -> None:
        self.root = root
        self.sandbox = sandbox
        self.home = root / "home" / "kprov"
        self.home.mkdir(parents=True)
        write_sample_semester(root / "srv" / "sis")
        secret = root / "etc" / "kprov" / "prod.secret"
        secret.parent.mkdir(parents=True)
        secret.write_text(SANDBOX_API_SECRET + "\n", encoding="utf-8")
        secret.chmod(0o600)

    def swap(self, text: str) -> str:
        """Recipe paths -> this box's; the real API -> the sandbox; the executable -> ours."""
        text = text.replace("/opt/kprov/bin/kprov", installed_kprov())
        text = text.replace("https://api.knewton.com/v0", self.sandbox.base_url)
        text = text.replace("YOUR_API_KEY", SANDBOX_KEY)
        for prefix in ("/etc/kprov", "/var/lib/kprov", "/srv/sis", "/var/log/kprov"):
            text = text.replace(prefix, str(self.root) + prefix)
        return text

    def account_ids(self) -> set[str]:
        with self.sandbox.store.lock:
            return {
                a["external_user_id"]
                for a in self.sandbox.store.accounts.values()
                if a["external_user_id"] != "partner-admin"
            }


SAMPLE_PEOPLE = 30


def test_readme_crontab_line_runs_under_cron_environment(sandbox: Sandbox, tmp_path: Path) -> None:
    lines = [
        line
        for line in fenced_block("# /etc/cron.d/kprov").splitlines()
        if not line.startswith("#")
    ]
    assert len(lines) == 1
    minute, hour, dom, month, dow, user, command = lines[0].split(None, 6)
    assert (minute, hour, dom, month, dow, user) == ("0", "2", "*", "*", "*", "kprov")
    assert "%" not in command  # cron turns % into a newline
    assert command.startswith("set -a; . /etc/kprov/prod.env; set +a; ")
    assert re.search(r"(^|\s)kprov\s", command.replace("/opt/kprov/bin/kprov", "")) is None
    assert "--profile prod " in command and "KPROV_STATE_DIR=/var/lib/kprov/prod " in command

    box = Box(tmp_path, sandbox)
    env_file = tmp_path / "etc" / "kprov" / "prod.env"
    env_file.write_text(box.swap(fenced_block("# /etc/kprov/prod.env")), encoding="utf-8")
    env_file.chmod(0o600)
    (tmp_path / "var" / "log" / "kprov").mkdir(parents=True)
    job = box.swap(command)
    assert not any(re.search(r"(?<![\w/.-])" + re.escape(p), job) for p in RECIPE_PATHS)

    def cron(line: str) -> subprocess.CompletedProcess[str]:
        bare = ["env", "-i", f"HOME={box.home}", "LOGNAME=kprov", "SHELL=/bin/sh"]
        return subprocess.run(
            [*bare, f"PATH={CRON_PATH}", "/bin/sh", "-c", line],
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = cron(job)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # silent: no cron mail
    assert len(box.account_ids()) == SAMPLE_PEOPLE
    assert len(sandbox.enrolments()) == SAMPLE_PEOPLE
    mapping = (tmp_path / "var/lib/kprov/prod/mapping.csv").read_text().splitlines()
    assert {row.split(",")[0] for row in mapping[1:]} == box.account_ids()
    logged = [json.loads(line) for line in (tmp_path / "var/log/kprov/sync.log").open()]
    assert logged and logged[-1]["exit_code"] == 0

    # The recipe's check line shows the job's settings: the same prefix, `config show`.
    check = fenced_block("sudo -u kprov sh -c '").strip()
    inner = shlex.split(check)[-1]
    assert inner == command.split(" sync ")[0] + " config show"
    shown = cron(box.swap(inner) + " --json")
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)["settings"]
    assert (settings["profile"]["value"], settings["profile"]["source"]) == ("prod", "flag")
    assert settings["state_dir"]["source"] == "env"
    assert settings["api_secret"]["source"] == "file"
    assert str(tmp_path / "etc/kprov/prod.secret") in settings["api_secret"]["location"]
    assert SANDBOX_API_SECRET not in shown.stdout


def test_readme_crontab_line_fails_loudly_when_the_secret_file_is_readable_by_others(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    box = Box(tmp_path, sandbox)
    env_file = tmp_path / "etc" / "kprov" / "prod.env"
    env_file.write_text(box.swap(fenced_block("# /etc/kprov/prod.env")), encoding="utf-8")
    (tmp_path / "etc/kprov/prod.secret").chmod(0o644)
    (tmp_path / "var" / "log" / "kprov").mkdir(parents=True)  # the recipe's `install -d`
    line = fenced_block("# /etc/cron.d/kprov").splitlines()[-1].split(None, 6)[6]
    done = subprocess.run(
        ["env", "-i", f"HOME={box.home}", f"PATH={CRON_PATH}", "/bin/sh", "-c", box.swap(line)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert f"chmod 600 {tmp_path}/etc/kprov/prod.secret" in done.stderr
    assert sandbox.requests() == {}  # nothing was sent


def _unit(first_line: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in fenced_block(first_line).splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


def test_readme_systemd_service_runs_with_its_credential_and_state_directory(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    unit = _unit("# /etc/systemd/system/kprov-sync.service")
    environment = dict(value.split("=", 1) for value in unit["Environment"])
    (state_directory,) = unit["StateDirectory"]
    assert environment["KPROV_STATE_DIR"] == f"/var/lib/{state_directory}"
    assert not any(name.startswith("KPROV_API_SECRET") for name in environment)
    assert unit["LoadCredential"] == ["kprov-api-secret:/etc/kprov/prod.secret"]
    (exec_start,) = unit["ExecStart"]
    assert exec_start.startswith("/opt/kprov/bin/kprov --profile prod ")

    box = Box(tmp_path, sandbox)
    (box.root / "etc/kprov/prod.secret").chmod(0o600)
    # What systemd does before ExecStart: the directories, the credential, the variables.
    state = tmp_path / "var" / "lib" / state_directory
    state.mkdir(parents=True, mode=0o700)
    (logs,) = unit["LogsDirectory"]
    (tmp_path / "var" / "log" / logs).mkdir(parents=True)
    credentials = tmp_path / "run" / "credentials" / "kprov-sync.service"
    credentials.mkdir(parents=True)
    for spec in unit["LoadCredential"]:
        name, source = spec.split(":", 1)
        shutil.copy(box.swap(source), credentials / name)
        (credentials / name).chmod(0o400)
    env = {
        "PATH": SYSTEMD_PATH,
        "HOME": str(box.home),
        "STATE_DIRECTORY": str(state),
        "CREDENTIALS_DIRECTORY": str(credentials),
        **{name: box.swap(value) for name, value in environment.items()},
    }
    argv = shlex.split(box.swap(exec_start))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    assert len(box.account_ids()) == SAMPLE_PEOPLE
    assert len((state / "mapping.csv").read_text().splitlines()) == SAMPLE_PEOPLE + 1

    shown = subprocess.run(
        [argv[0], "--profile", "prod", "config", "show", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    secret = json.loads(shown.stdout)["settings"]["api_secret"]
    assert (secret["source"], secret["location"]) == (
        "systemd-credential",
        str(credentials / "kprov-api-secret"),
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_readme_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in ("kprov-sync.service", "kprov-sync.timer"):
        body = fenced_block(f"# /etc/systemd/system/{name}")
        (tmp_path / name).write_text(body.replace("/opt/kprov/bin/kprov", installed_kprov()))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "kprov-sync.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_readme_kubernetes_cronjob_keeps_state_on_a_volume_and_calls_kprov_by_path() -> None:
    job = yaml.safe_load(fenced_block("apiVersion: batch/v1\nkind: CronJob"))
    template = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = template["containers"]
    assert container["command"][:3] == ["/opt/kprov/bin/kprov", "--profile", "prod"]
    env = {item["name"]: item for item in container["env"]}
    state_dir = env["KPROV_STATE_DIR"]["value"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in template["volumes"]}
    assert state_dir.startswith(mounts["state"] + "/")
    assert "persistentVolumeClaim" in volumes["state"]
    assert "secretKeyRef" in env["KPROV_API_SECRET"]["valueFrom"]


def test_readme_windows_script_names_profile_state_and_secret_file() -> None:
    script = fenced_block(":: C:\\kprov\\sync.cmd")
    assert not any(line != line.rstrip() for line in script.splitlines())  # cmd keeps spaces
    assert "set KPROV_STATE_DIR=" in script and "set KPROV_API_SECRET_FILE=" in script
    assert '"C:\\kprov\\venv\\Scripts\\kprov.exe" --profile prod sync' in script


def test_the_readme_cron_line_is_the_tested_one() -> None:
    """The README's nightly line in brief is the recipe's line, word for word."""
    recipe = fenced_block("# /etc/cron.d/kprov")
    line = next(x for x in recipe.splitlines() if x.startswith("0 2 * * *"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert line in readme.splitlines()
