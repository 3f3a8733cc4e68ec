"""The loadtest binary a bench measures: the one `--binary PATH` names
(so two builds can be compared in alternating runs), or else this
workspace's release build, built first."""
import os, subprocess


def loadtest_binary(flags):
    if "--binary" in flags:
        return flags[flags.index("--binary") + 1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "loadtest"], cwd=root, check=True)
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    return os.path.join(target_dir, "release", "loadtest")
