"""Lore ingestion: files and folders of authored knowledge, chunked into shared memories.

`ingest` reads Markdown, plain text, JSON and YAML files (folders
recursively, hidden files skipped), cuts them into chunks of about
`chunk_tokens` tokens and stores each chunk as a `kind="lore"` memory shared
by every scope of the persona.

- **Markdown** is split by headings, then paragraphs; each chunk starts with
  its heading path ("Town > The Lantern") so it reads well on its own.
- **Plain text** is split by paragraphs.
- **JSON and YAML** holding lore entries (objects with `content` and `keys` or
  `key`, as in SillyTavern world info and Character Card books) give one or
  more chunks per entry, titled with the entry's `name` or `comment`;
  disabled entries are left out. Any other data is flattened to
  `path.to.key: value` lines.
- Chunks break between paragraphs, then between sentences; a sentence is cut
  only when it alone is longer than `chunk_tokens`.

Each chunk's `source` is ``<relative path>#<chunk index>:<content hash prefix>``;
a folder's files are named relative to the folder's parent (``lore/town.md``),
a file given directly by its name. Storing is idempotent by content hash:
ingesting the same files again adds nothing, and a changed file adds only its
changed chunks. Ingesting also removes what is gone (`IngestReport.removed`):
chunks of an ingested file that the file no longer holds, and chunks of files
deleted from an ingested folder. A file that fails to read keeps its old
chunks. A text found in several files is stored once, under the first file
that brought it.

Files that cannot be read or are not supported are reported in
`IngestReport.errors` with the reason; ingestion goes on with the others.

Example:
    ```python
    report = ingest(store, "brenna", [Path("lore/")], progress=lambda done, total: ...)
    print(report.added, report.skipped, report.errors)
    ```

"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from personae.memory.records import MemoryRecord, NewMemory, content_hash
from personae.scope import Scope
from personae.tokens import TokenCounter, default_counter

if TYPE_CHECKING:
    from personae.memory.store import MemoryStore

__all__ = ["SUPPORTED_SUFFIXES", "IngestReport", "chunk_file", "ingest"]

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".json", ".yaml", ".yml")
"""File name endings `ingest` reads."""

_HASH_CHARS = 12
_BATCH = 32
_LORE_IMPORTANCE = 5
_LIST_PAGE = 1000


class IngestReport(BaseModel):
    """What one `ingest` run did."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    files: int = 0
    """Files read and chunked."""
    chunks: int = 0
    """Chunks found in them."""
    added: int = 0
    """Chunks stored that were not there before."""
    skipped: int = 0
    """Chunks already stored (same content), left as they were."""
    removed: int = 0
    """Stored chunks of ingested files that the files no longer contain."""
    errors: dict[str, str] = Field(default_factory=dict)
    """Files that could not be ingested, with the reason."""

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (what `--json` prints)."""
        return self.model_dump(mode="json")


# Sentence ends: Latin punctuation followed by space, or CJK punctuation.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


class _Packer:
    """Greedy packing of paragraphs (or lines) into chunks within a token budget."""

    def __init__(self, budget: int, counter: TokenCounter) -> None:
        self.budget = budget
        self.counter = counter

    def pack(self, units: Sequence[str], *, title: str = "", joiner: str = "\n\n") -> list[str]:
        head = f"{title}\n" if title else ""
        room = max(1, self.budget - self.counter.count(head))
        pieces: list[tuple[str, str]] = []
        for unit in units:
            if self.counter.count(unit) <= room:
                pieces.append((unit, joiner))
                continue
            for index, part in enumerate(self._split_long(unit, room)):
                pieces.append((part, joiner if index == 0 else " "))
        chunks: list[str] = []
        current = ""
        used = 0
        for piece, glue in pieces:
            cost = self.counter.count(piece)
            if current and used + cost > room:
                chunks.append(head + current)
                current, used = "", 0
            current = f"{current}{glue}{piece}" if current else piece
            used += cost
        if current:
            chunks.append(head + current)
        return chunks

    def _split_long(self, unit: str, room: int) -> Iterator[str]:
        for sentence in _sentences(" ".join(unit.split()) if "\n" not in unit else unit):
            if self.counter.count(sentence) <= room:
                yield sentence
                continue
            # One sentence longer than a whole chunk: cut between words.
            words: list[str] = []
            for word in sentence.split():
                if words and self.counter.count(" ".join([*words, word])) > room:
                    yield " ".join(words)
                    words = []
                words.append(word)
            if words:
                yield " ".join(words)


def _markdown(text: str, packer: _Packer) -> list[str]:
    chunks: list[str] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    fenced = False

    def flush() -> None:
        title = " > ".join(name for _, name in path)
        paragraphs = _paragraphs("\n".join(body))
        if paragraphs:
            chunks.extend(packer.pack(paragraphs, title=title))
        elif title and not chunks:
            chunks.append(title)
        body.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading is None:
            body.append(line)
            continue
        flush()
        level = len(heading.group(1))
        path[:] = [(lvl, name) for lvl, name in path if lvl < level]
        path.append((level, heading.group(2).strip()))
    flush()
    return chunks


def _entries(data: object) -> list[tuple[str, str]] | None:
    """Return `(title, content)` of every lore entry in `data`, or None if it holds none."""
    found: list[tuple[str, str]] = []
    any_entry = False

    def walk(node: object) -> None:
        nonlocal any_entry
        if isinstance(node, dict):
            if isinstance(node.get("content"), str) and ("keys" in node or "key" in node):
                any_entry = True
                if node.get("enabled", True) is not False and not node.get("disable", False):
                    title = node.get("name") or node.get("comment") or ""
                    found.append((str(title).strip(), node["content"]))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return found if any_entry else None


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return " ".join(str(value).split()) if value is not None else "null"


def _flatten(node: object, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        if node and all(not isinstance(v, dict | list) for v in node):
            yield f"{prefix}: {', '.join(_scalar(v) for v in node)}" if prefix else ", ".join(
                _scalar(v) for v in node
            )
            return
        for index, value in enumerate(node):
            yield from _flatten(value, f"{prefix}[{index}]")
    elif prefix:
        yield f"{prefix}: {_scalar(node)}"
    elif _scalar(node):
        yield _scalar(node)


def _data(data: object, packer: _Packer) -> list[str]:
    entries = _entries(data)
    if entries is None:
        return packer.pack(list(_flatten(data)), joiner="\n")
    chunks: list[str] = []
    for title, content in entries:
        paragraphs = _paragraphs(content)
        if paragraphs:
            chunks.extend(packer.pack(paragraphs, title=title))
    return chunks


def chunk_file(
    path: Path, *, chunk_tokens: int = 200, counter: TokenCounter | None = None
) -> list[str]:
    """Return the chunks `ingest` would store for one file.

    Args:
        path: A `.md`, `.markdown`, `.txt`, `.json`, `.yaml` or `.yml` file.
        chunk_tokens: Target chunk size in tokens (by `counter`).
        counter: Token counter; `default_counter()` by default.

    Raises:
        ValueError: The file type is not supported, or the JSON or YAML is invalid.
        OSError: The file cannot be read.
        UnicodeDecodeError: The file is not UTF-8 text.

    """
    packer = _Packer(chunk_tokens, counter or default_counter())
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise ValueError(f"unsupported file type {suffix or '(none)'!r}; use one of {kinds}")
    text = path.read_text(encoding="utf-8-sig")
    if suffix in (".md", ".markdown"):
        return _markdown(text, packer)
    if suffix == ".txt":
        return packer.pack(_paragraphs(text))
    if suffix == ".json":
        try:
            data: object = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    else:
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ValueError(f"invalid YAML{where}: {problem}") from exc
        data = documents[0] if len(documents) == 1 else documents
    return _data(data, packer)


def _files(
    paths: Sequence[Path], errors: dict[str, str]
) -> tuple[list[tuple[Path, str]], list[str]]:
    """Return `(file, relative name)` of every file to read, and the folders' name prefixes."""
    found: list[tuple[Path, str]] = []
    folders: list[str] = []
    for given in paths:
        if given.is_dir():
            base = given.resolve()
            folders.append(f"{base.name}/")
            for file in sorted(base.rglob("*")):
                relative = file.relative_to(base)
                if file.is_file() and not any(p.startswith(".") for p in relative.parts):
                    found.append((file, (Path(base.name) / relative).as_posix()))
        elif given.is_file():
            found.append((given, given.name))
        else:
            errors[str(given)] = "no such file or folder"
    return found, folders


def ingest(
    store: MemoryStore,
    persona: str,
    paths: Sequence[Path],
    *,
    chunk_tokens: int = 200,
    progress: Callable[[int, int], None] | None = None,
    counter: TokenCounter | None = None,
) -> IngestReport:
    """Store lore files as memories shared by every scope of `persona`. Blocking.

    Args:
        store: Where the chunks go (a `MemoryStore`).
        persona: Persona id the lore belongs to.
        paths: Files and folders; folders are read recursively, hidden files skipped.
        chunk_tokens: Target chunk size in tokens (by the offline counter).
        progress: Called as `progress(done, total)` with chunk counts, first with 0 done
            and after each stored batch.
        counter: Token counter; `default_counter()` by default.

    Returns:
        Counts of files, chunks, added, skipped and removed chunks, and per-file errors.

    Raises:
        MemoryStoreError: When the store fails; file problems are reported, not raised.

    """
    report = IngestReport()
    counter = counter or default_counter()
    pending: dict[str, NewMemory] = {}
    ingested: set[str] = set()
    files, folders = _files(paths, report.errors)
    for file, relative in files:
        try:
            chunks = chunk_file(file, chunk_tokens=chunk_tokens, counter=counter)
        except UnicodeDecodeError:
            report.errors[relative] = "not UTF-8 text"
            continue
        except (OSError, ValueError, RecursionError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            report.errors[relative] = reason or type(exc).__name__
            continue
        report.files += 1
        report.chunks += len(chunks)
        ingested.add(relative)
        for index, chunk in enumerate(chunks):
            digest = content_hash(chunk)
            source = f"{relative}#{index}:{digest[:_HASH_CHARS]}"
            pending.setdefault(digest, NewMemory(
                text=chunk, kind="lore", importance=_LORE_IMPORTANCE, source=source
            ))
    scope = Scope(persona=persona)
    stored = _stored_lore(store, scope)
    todo = [memory for digest, memory in pending.items() if digest not in stored]
    report.skipped = report.chunks - len(todo)
    total = len(todo)
    if progress is not None:
        progress(0, total)
    for start in range(0, total, _BATCH):
        report.added += len(store.add_shared(persona, todo[start : start + _BATCH]))
        if progress is not None:
            progress(min(start + _BATCH, total), total)
    found = {relative for _, relative in files}
    for digest, record in stored.items():
        name = _file_of(record.source)
        if digest in pending or name is None:
            continue
        deleted_file = name not in found and name.startswith(tuple(folders))
        if name in ingested or deleted_file:
            report.removed += store.delete(scope, record.id, purge=False)
    return report


def _file_of(source: str | None) -> str | None:
    return source.rsplit("#", 1)[0] if source and "#" in source else None


def _stored_lore(store: MemoryStore, scope: Scope) -> dict[str, MemoryRecord]:
    stored: dict[str, MemoryRecord] = {}
    offset = 0
    while True:
        page = store.list(scope, kind="lore", limit=_LIST_PAGE, offset=offset, shared=True)
        stored.update((record.content_hash, record) for record in page)
        if len(page) < _LIST_PAGE:
            return stored
        offset += _LIST_PAGE
