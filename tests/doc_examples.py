"""The shell examples of the documentation, read out of the Markdown, and what each says it prints.

A fenced `sh` block that holds a `curl` command is an example. Each command in it is followed by
the output it prints, as comment lines (`# {"job_id":"3f0c…","status":"queued"}`), or, for the
block's last command, by a fenced `json` block right after the example. In what is shown, `…`
stands for anything, whitespace is not compared, and a made-up job id (`3f0c…`, a 32-digit one,
`<job_id>`) stands for the job the example that first printed it created.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "api.md")
ELLIPSIS = "…"
_FENCE = re.compile(r"^```(\w*)\s*$")
# A job id as the examples make one up: some hex digits and an ellipsis, all 32, or <job_id>.
PLACEHOLDER_ID = re.compile(rf"\b[0-9a-f]{{4,31}}{ELLIPSIS}|\b[0-9a-f]{{32}}\b|<job_id>")
JOB_ID = re.compile(r'"job_id":\s*"([0-9a-f]{32})"')


@dataclass
class Command:
    """One command of an example and the output it says it prints."""

    line: str
    shown: list[str] = field(default_factory=list)
    where: str = ""

    @property
    def is_curl(self) -> bool:
        return self.line.startswith("curl ")

    @property
    def sends(self) -> bool:
        """Whether it makes a job rather than reads one."""
        return bool(re.search(r"\s(-F|-d|--data\S*|--form)\s", f" {self.line} "))


@dataclass
class Example:
    document: Path
    line_number: int
    commands: list[Command]


def examples_in(document: Path) -> list[Example]:
    """Every fenced `sh` block of `document` that runs curl, with its commands and their output."""
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks = _fenced_blocks(lines)
    examples = []
    for index, (language, start, body) in enumerate(blocks):
        if language != "sh" or not any(line.startswith("curl ") for line in body):
            continue
        commands = _commands(body, f"{document.name}:{start + 1}")
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if (
            following is not None
            and following[0] == "json"
            and commands
            and not commands[-1].shown
            and all(not line.strip() for line in lines[start + len(body) + 2 : following[1]])
        ):
            commands[-1].shown = following[2]
        examples.append(Example(document, start + 1, commands))
    return examples


def _fenced_blocks(lines: list[str]) -> list[tuple[str, int, list[str]]]:
    """(language, index of the opening fence, lines inside) of each fenced block."""
    blocks = []
    opened: tuple[str, int] | None = None
    for number, line in enumerate(lines):
        fence = _FENCE.match(line)
        if fence is None:
            continue
        if opened is None:
            opened = (fence[1], number)
        else:
            blocks.append((opened[0], opened[1], lines[opened[1] + 1 : number]))
            opened = None
    return blocks


def _commands(body: list[str], where: str) -> list[Command]:
    commands: list[Command] = []
    for line in body:
        if line.startswith("#"):
            if not commands:
                raise ValueError(f"{where}: output shown before any command")
            commands[-1].shown.append(line[1:].strip())
        elif line.strip():
            commands.append(Command(line.strip(), where=where))
    return commands


def placeholder_key(token: str) -> str:
    """Made-up ids that start alike are one job: '3f0c…' and '3f0c9a6e…2b1a' both."""
    return token if token == "<job_id>" else token.rstrip(ELLIPSIS)[:4]


def fill_in(text: str, jobs: dict[str, str]) -> str:
    """`text` with each made-up job id that is bound in `jobs` replaced by the real one."""
    return PLACEHOLDER_ID.sub(lambda found: jobs.get(placeholder_key(found[0]), found[0]), text)


def bind(shown: str, printed: str, jobs: dict[str, str]) -> None:
    """Bind the made-up ids first seen in `shown` to the job ids `printed` gave, in order."""
    made_up = [placeholder_key(token) for token in PLACEHOLDER_ID.findall(shown)]
    real = JOB_ID.findall(printed) or re.findall(r"[0-9a-f]{32}", printed)
    for key in made_up:
        if key not in jobs and real:
            jobs[key] = real[0]


def mismatch(shown: str, printed: str) -> str | None:
    """Why `printed` is not what `shown` says (None if it is): every piece of `shown` between
    ellipses must be found in `printed`, in order; whitespace is not compared."""
    squeezed = re.sub(r"\s+", "", printed)
    position = 0
    for piece in re.sub(r"\s+", "", shown).split(ELLIPSIS):
        found = squeezed.find(piece, position)
        if found < 0:
            return f"{piece!r} not found in what follows {squeezed[:position][-60:]!r}"
        position = found + len(piece)
    return None
