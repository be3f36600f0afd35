"""The engine must stay usable without Qt: the CLI, tests and the GPU machine (no PySide6 there) rely on it."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_imports_no_gui_modules():
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'app'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"engine pulled in GUI modules: {out.stdout.strip()}"


def test_launch_without_display_explains_instead_of_crashing():
    from app.launch import display_problem

    msg = display_problem(env={}, find_library=lambda name: "found")
    assert msg is not None and "xvfb-run" in msg and "main.py train" in msg
    msg = display_problem(env={"DISPLAY": ":99"}, find_library=lambda name: None)
    assert "libxcb-icccm4" in msg and "libxcb-keysyms1" in msg
    assert display_problem(env={"DISPLAY": ":99"}, find_library=lambda name: "found") is None
    assert display_problem(env={"QT_QPA_PLATFORM": "offscreen"}) is None


def test_main_without_display_exits_with_message():
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "main.py"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1
    assert "No display found" in out.stderr


def test_app_reads_as_one_folder_per_tab():
    """Each tab's code lives in its own folder and what several tabs share in app/common, so that a file's folder
    says which tab it serves. Only the window itself and its start-up stay at the top of app/; the window's own
    parts (menus, the run-end notice, checkpoint commands) are in app/window."""
    app = ROOT / "app"
    top = sorted(p.name for p in app.glob("*.py"))
    assert top == ["__init__.py", "gui.py", "launch.py", "main_window.py"], top
    folders = sorted(p.name for p in app.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == ["common", "graph", "inside", "sample", "tokens", "training", "window"], folders
    # a tab's module may use its own folder and app/common, never another tab's folder
    import re
    for folder in ["graph", "inside", "sample", "tokens"]:
        for f in (app / folder).glob("*.py"):
            used = set(re.findall(r"^from app\.(\w+)", f.read_text(), flags=re.M))
            assert used <= {folder, "common"}, f"{f.relative_to(ROOT)} imports from app.{sorted(used)}"
