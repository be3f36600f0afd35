"""LM Playground. No arguments: open the desktop app. `train`, `sample`, `tape`: headless sub-commands."""
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("train", "sample", "tape", "-h", "--help"):
        from engine.cli import main as cli_main
        return cli_main(argv)
    from app.launch import launch
    return launch(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
