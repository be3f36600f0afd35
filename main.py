"""LM Playground. No arguments: open the desktop app. `train`, `prepare`, `sample`, `tape`, `inspect`, `export`: headless
sub-commands."""
import sys

COMMANDS = ("train", "prepare", "sample", "tape", "inspect", "export", "-h", "--help")


def main(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        from engine.cli import main as cli_main
        return cli_main(argv)
    if argv:  # a mistyped command must not open a window the user did not ask for
        print(f"error: unknown command {argv[0]!r}; use train, prepare, sample, tape, inspect or export, or no "
              "arguments for the window",
              file=sys.stderr)
        return 2
    from app.launch import launch
    return launch(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
