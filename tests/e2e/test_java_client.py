"""The Java client library (`clients/java`) builds with Maven, offline from Debian's packaged
repository, and its JUnit tests pass against real `cairn serve` processes that they start and
kill -9 themselves (routes, retries, SSE resume, WebSocket session, helpers, the 200-player soak)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from tests.support import ci

JAVA = Path(__file__).resolve().parents[2] / "clients" / "java"
DEBIAN_REPO = Path("/usr/share/maven-repo")
# What the offline build needs from Debian's repository, and the package that brings each.
NEEDS = {
    "org/apache/maven/plugins/maven-compiler-plugin/3.10.1": "libmaven-compiler-plugin-java",
    "org/apache/maven/plugins/maven-resources-plugin/3.3.0": "libmaven-resources-plugin-java",
    "org/apache/maven/plugins/maven-surefire-plugin/2.22.3": "libsurefire-java",
    "org/apache/maven/surefire/surefire-junit-platform/2.22.3": "libsurefire-java",
    "org/apache/maven/plugins/maven-jar-plugin/3.3.0": "libmaven-jar-plugin-java",
    "org/junit/jupiter/junit-jupiter/5.9.2": "junit5",
}
TEST_CLASSES = {"JsonTest", "ClientTest", "RetryTest", "EventsTest", "SessionTest", "HelpersTest", "SoakTest"}


def missing_packages() -> list[str]:
    missing = sorted({pkg for path, pkg in NEEDS.items() if not (DEBIAN_REPO / path).is_dir()})
    if shutil.which("mvn") is None or shutil.which("javac") is None:
        missing = ["maven", "default-jdk-headless", *missing]
    return missing


class Build:
    """The Maven build and its JUnit run, started once in the background (`start`) so that the suite's
    other tests run meanwhile (`tests/conftest.py` starts it with the unit tests); `wait` joins it."""

    proc: subprocess.Popen[str] | None = None
    out = ""

    @classmethod
    def start(cls) -> None:
        if cls.proc is not None or missing_packages():
            return
        shutil.rmtree(JAVA / "target", ignore_errors=True)
        cmd = ["mvn", "-B", "-s", "debian-settings.xml", f"-Dmaven.repo.local={DEBIAN_REPO}",
               f"-Dcairn.python={sys.executable}", "package"]  # fmt: skip
        cls.proc = subprocess.Popen(cmd, cwd=JAVA, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=cls._read, args=(cls.proc,), daemon=True).start()

    @classmethod
    def _read(cls, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        cls.out = proc.stdout.read()

    @classmethod
    def wait(cls) -> tuple[int, str]:
        cls.start()
        assert cls.proc is not None
        code = cls.proc.wait(timeout=540)
        for _ in range(100):  # the reader thread takes the last of the output
            if cls.out:
                break
            time.sleep(0.05)
        return code, cls.out


def test_java_client_builds_offline_and_passes_its_tests() -> None:
    missing = missing_packages()
    if missing:
        why = f"the Java client's offline build needs: apt-get install {' '.join(missing)}"
        if ci():
            pytest.fail(why + " (.ci/run installs them)")
        pytest.skip(why)
    code, stdout = Build.wait()
    assert code == 0, stdout[-15000:]

    reports = JAVA / "target" / "surefire-reports"
    ran = {}
    for xml in reports.glob("TEST-*.xml"):
        suite = ET.parse(xml).getroot()
        counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
        ran[suite.get("name", "").rsplit(".", 1)[-1]] = counts
    assert set(ran) == TEST_CLASSES, ran
    assert all(c["tests"] > 0 and c["failures"] == c["errors"] == c["skipped"] == 0 for c in ran.values()), ran
    assert "SoakTest: " in stdout, "the soak test reports its numbers"

    # The jar holds the library only: no test classes, no bundled dependency.
    with zipfile.ZipFile(JAVA / "target" / "cairn-client-0.1.0.jar") as jar:
        classes = [n for n in jar.namelist() if n.endswith(".class")]
    assert classes and all(n.startswith("dev/cairn/client/") for n in classes), classes
    assert not any("Test" in n for n in classes)
