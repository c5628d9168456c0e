"""The Java client library (`clients/java`) builds with Maven, offline from Debian's packaged
repository, and its JUnit tests pass against real `cairn serve` processes that they start and
kill -9 themselves (routes, retries, SSE resume, WebSocket session, helpers, the 200-player soak)."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def test_java_client_builds_offline_and_passes_its_tests() -> None:
    missing = sorted({pkg for path, pkg in NEEDS.items() if not (DEBIAN_REPO / path).is_dir()})
    if shutil.which("mvn") is None or shutil.which("javac") is None:
        missing = ["maven", "default-jdk-headless", *missing]
    if missing:
        why = f"the Java client's offline build needs: apt-get install {' '.join(missing)}"
        if ci():
            pytest.fail(why + " (.ci/run installs them)")
        pytest.skip(why)
    shutil.rmtree(JAVA / "target", ignore_errors=True)
    cmd = ["mvn", "-B", "-s", "debian-settings.xml", f"-Dmaven.repo.local={DEBIAN_REPO}",
           f"-Dcairn.python={sys.executable}", "package"]  # fmt: skip
    run = subprocess.run(cmd, cwd=JAVA, capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]

    reports = JAVA / "target" / "surefire-reports"
    ran = {}
    for xml in reports.glob("TEST-*.xml"):
        suite = ET.parse(xml).getroot()
        counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
        ran[suite.get("name", "").rsplit(".", 1)[-1]] = counts
    assert set(ran) == TEST_CLASSES, ran
    assert all(c["tests"] > 0 and c["failures"] == c["errors"] == c["skipped"] == 0 for c in ran.values()), ran
    assert "SoakTest: " in run.stdout, "the soak test reports its numbers"

    # The jar holds the library only: no test classes, no bundled dependency.
    with zipfile.ZipFile(JAVA / "target" / "cairn-client-0.1.0.jar") as jar:
        classes = [n for n in jar.namelist() if n.endswith(".class")]
    assert classes and all(n.startswith("dev/cairn/client/") for n in classes), classes
    assert not any("Test" in n for n in classes)
