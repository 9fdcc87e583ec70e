"""Real pen handwriting: UNIPEN text files read into characters, cached, and split by writer.

Two public collections (``../shared/pendata/README.md``) are read from a directory chosen like MNIST's:
the ``pen_dir`` argument, then ``$DIGITGLYPH_PEN_DATA``, then ``<user cache>/pendata``:

* ``pendigits-orig.tra.gz``: pendigits (UCI 81), 7,494 digits by 30 writers, ink inline;
* ``unipen-train_r01_v07-digits-letters-symbols.tar.gz`` (or the extracted ``train_r01_v07/`` tree):
  UNIPEN categories 1a digits, 1b upper-case, 1c lower-case, 1d symbols; each data file holds only
  ``.SEGMENT`` lines and ``.INCLUDE``s the file (under ``include/``) that holds the ink.

**The UNIPEN rules followed here.**  ``.INCLUDE`` is textual inclusion: the included file's lines count
as if they stood there.  ``.PEN_DOWN`` and ``.PEN_UP`` each start a run of points; components are
numbered from 0 in file order, counting every run (down *or* up) that holds at least one point; only
pen-down points are ink.  A segment's components are a comma list of ``c``, ``a-b`` or
``a:p-b:q`` (component:point, both inclusive, points from 0).  Tablet y grows upward: y is negated
so characters come out in screen coordinates.  Writers: pendigits' ``.COMMENT <label> <writer> <n>``;
UNIPEN's ``.WRITER_ID`` (when missing, the included file is one writer's session).

**Checks.**  Each source's sha256 is verified before it is read (the extracted tree by a digest of its
files' digests).  A missing, truncated or corrupted source, or a malformed line, raises one
:class:`PenDataError` naming the file (and line) and what to do.  A segment that points past the
ink of its file is skipped and counted (``PenCharacters.skipped``); more than ``MAX_BAD_FRACTION`` of a
file's segments being bad means the file itself is wrong, which is an error.

**Cache.**  Parsing 93 MB of text takes about a minute, so the parsed characters are kept in a
compressed ``.npz`` in the user cache, named by the sources' checksums and the parser version: a changed
source or parser gives a new cache file, never a stale one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .location import resolve, user_cache

ENV_VAR = "DIGITGLYPH_PEN_DATA"
PENDIGITS = ("pendigits-orig.tra.gz", "d6a5f33f75b481a5bdbfc64a3429574ad21d54c258767f2c31aca6e47b9159fc")
UNIPEN = (
    "unipen-train_r01_v07-digits-letters-symbols.tar.gz",
    "9e80c10fbebfca89d304da6545a3e3105bee3e7d864f26125fa81ffd9f5baf18",
)
UNIPEN_TREE = "train_r01_v07"
# sha256 over the sorted "<relative path> <sha256 of the file>" lines of data/ and include/ in the tree
UNIPEN_TREE_DIGEST = "2c84f7dd650a45023848a0e871b543aaef5a9283ab49e2557a1f0ead5c2320cd"
CATEGORIES = {"1a": "digit", "1b": "upper", "1c": "lower", "1d": "symbol"}
PARSER_VERSION = 1
MAX_BAD_FRACTION = 0.2


class PenDataError(RuntimeError):
    """A clear, user-facing problem with the pen data files."""


# -- the characters ---------------------------------------------------------------------------------


@dataclass
class PenCharacters:
    """Characters as flat arrays: strokes of character ``i`` are ``strokes(i)``.

    ``points`` holds every ink point (x, y screen coordinates, float32); stroke ``s`` is
    ``points[stroke_starts[s]:stroke_starts[s + 1]]``; character ``i`` is strokes
    ``char_starts[i]`` to ``char_starts[i + 1]``.
    """

    labels: np.ndarray  # str: the label as recorded ("7", "a", "+")
    categories: np.ndarray  # str: "digit", "upper", "lower" or "symbol"
    writers: np.ndarray  # str: unique across sources, "pendigits/12", "unipen/pri/159"
    sources: np.ndarray  # str: "pendigits" or "unipen/<site>"
    points: np.ndarray
    stroke_starts: np.ndarray
    char_starts: np.ndarray
    skipped: dict = field(default_factory=dict)  # file -> number of bad segments skipped

    def __len__(self) -> int:
        return len(self.labels)

    def strokes(self, index: int) -> list[np.ndarray]:
        first, last = self.char_starts[index], self.char_starts[index + 1]
        return [self.points[self.stroke_starts[s] : self.stroke_starts[s + 1]] for s in range(first, last)]

    @property
    def stroke_counts(self) -> np.ndarray:
        return np.diff(self.char_starts)

    def table(self):
        """One row per character (label, category, writer, source, strokes, points) as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(
            {
                "label": self.labels,
                "category": self.categories,
                "writer": self.writers,
                "source": self.sources,
                "strokes": self.stroke_counts,
                "points": np.diff(self.stroke_starts[self.char_starts]),
            }
        )


class _Builder:
    def __init__(self):
        self.labels, self.categories, self.writers, self.sources = [], [], [], []
        self.strokes: list[np.ndarray] = []
        self.char_starts = [0]

    def add(self, strokes, label, category, writer, source):
        self.strokes.extend(np.asarray(s, np.float32).reshape(-1, 2) for s in strokes)
        self.char_starts.append(len(self.strokes))
        self.labels.append(label)
        self.categories.append(category)
        self.writers.append(writer)
        self.sources.append(source)

    def build(self, skipped: dict) -> PenCharacters:
        lengths = [len(s) for s in self.strokes]
        return PenCharacters(
            np.asarray(self.labels, str),
            np.asarray(self.categories, str),
            np.asarray(self.writers, str),
            np.asarray(self.sources, str),
            np.concatenate(self.strokes) if self.strokes else np.zeros((0, 2), np.float32),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.asarray(self.char_starts, np.int64),
            skipped,
        )


def concatenate(parts: list[PenCharacters]) -> PenCharacters:
    builder = _Builder()
    skipped = {}
    for part in parts:
        skipped.update(part.skipped)
        for index in range(len(part)):
            builder.add(
                part.strokes(index),
                part.labels[index],
                part.categories[index],
                part.writers[index],
                part.sources[index],
            )
    return builder.build(skipped)


# -- parsing UNIPEN text ----------------------------------------------------------------------------

_COMPONENT = re.compile(r"^(\d+)(?::(\d+))?(?:-(\d+)(?::(\d+))?)?$")
_SEGMENT = re.compile(r'^\.SEGMENT\s+(\S+)\s+(\S+)\s+(\S+)\s+"(.*)"\s*$')


@dataclass
class _Ink:
    """The runs of one (textually included) file: components with pen state, points and writer."""

    down: list = field(default_factory=list)  # per component: pen down?
    points: list = field(default_factory=list)  # per component: (n, 2) array, y already flipped
    writers: list = field(default_factory=list)  # per component: the .WRITER_ID in force


class _Parser:
    """One UNIPEN file, with its includes resolved by ``read_include(path) -> text or None``."""

    def __init__(self, name: str, read_include=None):
        self.name, self.read_include = name, read_include
        self.ink = _Ink()
        self.segments = []  # (line number, components, label, comment fields)
        self.writer = None
        self._run_down, self._run_points = None, []

    def feed(self, text: str, name: str, depth: int = 0) -> None:
        """Read lines: after ``.PEN_DOWN``/``.PEN_UP`` every line is an ``x y`` point until the next keyword;
        after any other keyword, lines continue that keyword's value (multi-line comments, alphabets)."""
        in_run = False
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            if line[0] != ".":
                if in_run:
                    parts = line.split()
                    try:
                        self._run_points.append((float(parts[0]), float(parts[1])))
                    except (ValueError, IndexError):
                        raise PenDataError(
                            f"{name}, line {number}: {line[:60]!r} in a pen run is not an 'x y' "
                            "point: the file is corrupted; restore it from the original "
                            "archive"
                        ) from None
                continue
            keyword = line.split(None, 1)[0]
            in_run = keyword in (".PEN_DOWN", ".PEN_UP")
            if in_run:
                self._close_run()
                self._run_down = keyword == ".PEN_DOWN"
            elif keyword == ".WRITER_ID":
                value = line.split(None, 1)
                self.writer = value[1].strip() if len(value) > 1 else None
            elif keyword == ".SEGMENT":
                match = _SEGMENT.match(line)
                if not match:
                    raise PenDataError(f"{name}, line {number}: malformed .SEGMENT line {line[:80]!r}")
                self.segments.append([number, match.group(2), match.group(4), None])
            elif keyword == ".COMMENT" and self.segments and self.segments[-1][3] is None:
                self.segments[-1][3] = line.split()[1:]
            elif keyword == ".INCLUDE":
                self._close_run()
                self._include(line.split(None, 1)[1].strip(), name, number, depth)

    def _include(self, path: str, name: str, number: int, depth: int) -> None:
        """Include an ink file (``.dat``) as if its lines stood here; ``.doc``/``.lex`` files describe the
        collection in prose (some quote keywords mid-sentence) and hold no ink, so they are not read."""
        if self.read_include is None or depth > 3 or not path.endswith(".dat"):
            return
        text = self.read_include(path)
        if text is None:
            raise PenDataError(
                f"{name}, line {number}: the included ink file {path!r} is missing: the "
                "archive is incomplete; restore it from the original distribution"
            )
        self.feed(text, path, depth + 1)
        self._close_run()
        self._run_down = None  # points after an included file's end belong to no run

    def _close_run(self) -> None:
        if self._run_down is not None and self._run_points:
            points = np.asarray(self._run_points, np.float32)
            points[:, 1] = -points[:, 1]  # tablet y grows upward
            self.ink.down.append(self._run_down)
            self.ink.points.append(points)
            self.ink.writers.append(self.writer)
        self._run_points = []

    def finish(self) -> None:
        self._close_run()
        self._run_down = None

    def segment_strokes(self, components: str) -> list[np.ndarray] | None:
        """The ink strokes a component list names, or None when it points past the ink.

        ``c`` is component c; ``c:p`` its point p; ``a-b`` components a to b; ``a:p-b:q`` from point p of a
        to point q of b (either end may omit its point: from the start of a, to the end of b).
        """
        strokes = []
        count = len(self.ink.points)
        for part in components.split(","):
            match = _COMPONENT.match(part)
            if not match:
                return None
            first, first_point, last, last_point = match.groups()
            ranged = last is not None
            first, last = int(first), int(last) if ranged else int(first)
            if not 0 <= first <= last < count:
                return None
            if not ranged and first_point is not None:
                last_point = first_point  # "c:p": one point
            for component in range(first, last + 1):
                points = self.ink.points[component]
                start = int(first_point) if component == first and first_point is not None else 0
                end = int(last_point) + 1 if component == last and last_point is not None else len(points)
                if start >= end or end > len(points):
                    return None
                if self.ink.down[component]:
                    strokes.append(points[start:end])
        return strokes if strokes else None


def parse_unipen(
    text: str, name: str, category: str, source: str, writer_prefix: str, read_include=None, pendigits: bool = False
) -> PenCharacters:
    """The characters of one UNIPEN file (see the module docstring for the rules)."""
    parser = _Parser(name, read_include)
    parser.feed(text, name)
    parser.finish()
    builder = _Builder()
    bad = 0
    for _line, components, label, comment in parser.segments:
        strokes = parser.segment_strokes(components)
        if strokes is None:
            bad += 1
            continue
        if pendigits:
            writer = comment[1] if comment and len(comment) >= 2 else "unknown"
        else:
            first = int(re.match(r"\d+", components).group())
            writer = parser.ink.writers[first] or name
        builder.add(strokes, label, category, f"{writer_prefix}/{writer}", source)
    if parser.segments and bad > MAX_BAD_FRACTION * len(parser.segments):
        raise PenDataError(
            f"{name}: {bad} of {len(parser.segments)} segments point past the ink of the file: "
            "the file or its included ink is truncated or corrupted; restore it from the original "
            "archive"
        )
    return builder.build({name: bad} if bad else {})


# -- the sources on disk --------------------------------------------------------------------------


def default_pen_dir() -> Path:
    return user_cache("pendata")


def resolve_pen_dir(pen_dir: str | os.PathLike | None = None) -> Path:
    return resolve(pen_dir, ENV_VAR, default_pen_dir)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing(directory: Path, what: str) -> PenDataError:
    return PenDataError(
        f"{what} is missing from {directory}. Copy the files of ../shared/pendata there, or set "
        f"{ENV_VAR} (or pass pen_dir) to a directory holding them."
    )


def tree_digest(tree: Path) -> str:
    """The digest of an extracted ``train_r01_v07/`` tree: sha256 of its sorted ``path sha256`` lines."""
    lines = sorted(
        f"{path.relative_to(tree).as_posix()} {_sha256_file(path)}"
        for path in tree.rglob("*")
        if path.is_file() and path.relative_to(tree).parts[0] in ("data", "include")
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def source_checksums(directory: Path) -> dict:
    """The verified checksum of each source found (raises when a source is missing or wrong)."""
    if directory.exists() and not directory.is_dir():
        raise PenDataError(f"{directory} is a file, not a directory of pen data.")
    checks = {}
    pendigits = directory / PENDIGITS[0]
    if not pendigits.is_file():
        raise _missing(directory, PENDIGITS[0])
    checks["pendigits"] = _checked(pendigits, PENDIGITS[1])
    tarball, tree = directory / UNIPEN[0], directory / UNIPEN_TREE
    if tarball.is_file():
        checks["unipen"] = _checked(tarball, UNIPEN[1])
    elif tree.is_dir():
        digest = tree_digest(tree)
        if digest != UNIPEN_TREE_DIGEST:
            raise PenDataError(
                f"{tree} does not hold the files of {UNIPEN[0]} (tree digest {digest[:12]}..., "
                f"expected {UNIPEN_TREE_DIGEST[:12]}...): a file is missing, extra or changed. "
                "Extract the archive again."
            )
        checks["unipen"] = digest
    else:
        raise _missing(directory, f"{UNIPEN[0]} (or its extracted {UNIPEN_TREE}/ tree)")
    return checks


def _checked(path: Path, expected: str) -> str:
    digest = _sha256_file(path)
    if digest != expected:
        raise PenDataError(
            f"{path} has the wrong content (sha256 {digest[:12]}..., expected {expected[:12]}...): "
            "it is truncated, corrupted or another version. Copy it again from ../shared/pendata."
        )
    return digest


def _gunzip_text(path: Path) -> str:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read().decode("latin-1")
    except (OSError, EOFError, zlib.error) as error:
        raise PenDataError(
            f"{path} is not a readable gzip file ({error}): it is truncated or corrupted. "
            "Copy it again from ../shared/pendata."
        ) from None


def read_pendigits(path: Path) -> PenCharacters:
    return parse_unipen(_gunzip_text(path), path.name, "digit", "pendigits", "pendigits", pendigits=True)


def _unipen_files(directory: Path) -> dict[str, bytes]:
    """``train_r01_v07``-relative path -> content, from the tarball or the extracted tree."""
    tarball, tree = directory / UNIPEN[0], directory / UNIPEN_TREE
    files = {}
    if tarball.is_file():
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                for member in archive:
                    if member.isfile():
                        name = member.name.split("/", 1)[1] if "/" in member.name else member.name
                        files[name] = archive.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise PenDataError(
                f"{tarball} is not a readable .tar.gz ({error}): it is truncated or corrupted. "
                "Copy it again from ../shared/pendata."
            ) from None
    else:
        for path in tree.rglob("*"):
            if path.is_file():
                files[path.relative_to(tree).as_posix()] = path.read_bytes()
    return files


def read_unipen(directory: Path, progress: bool = True) -> PenCharacters:
    files = _unipen_files(directory)
    data_files = sorted(name for name in files if name.startswith("data/") and name.endswith(".dat"))
    if not data_files:
        raise PenDataError(f"{directory}: the UNIPEN archive holds no data/*.dat files: it is not train_r01_v07.")

    def read_include(path: str):
        content = files.get(f"include/{path}")
        return None if content is None else content.decode("latin-1")

    parts = []
    from tqdm.auto import tqdm

    for name in tqdm(data_files, desc="UNIPEN files", disable=not progress, mininterval=2):
        _, category_code, site = name.split("/")[:3]
        category = CATEGORIES.get(category_code)
        if category is None:
            continue
        parts.append(
            parse_unipen(
                files[name].decode("latin-1"),
                f"{UNIPEN_TREE}/{name}",
                category,
                f"unipen/{site}",
                f"unipen/{site}",
                read_include,
            )
        )
    return concatenate(parts)


# -- loading with the cache -----------------------------------------------------------------------


def _cache_path(checksums: dict) -> Path:
    key = hashlib.sha256(f"{PARSER_VERSION} {checksums['pendigits']} {checksums['unipen']}".encode()).hexdigest()
    return default_pen_dir().parent / "pen-cache" / f"pen-characters-{key[:16]}.npz"


def _save(characters: PenCharacters, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    skipped = np.asarray([f"{k}\t{v}" for k, v in characters.skipped.items()], str)
    np.savez_compressed(
        tmp,
        labels=characters.labels,
        categories=characters.categories,
        writers=characters.writers,
        sources=characters.sources,
        points=characters.points,
        stroke_starts=characters.stroke_starts,
        char_starts=characters.char_starts,
        skipped=skipped,
    )
    os.replace(tmp, path)


def _load_cache(path: Path) -> PenCharacters | None:
    try:
        with np.load(path) as stored:
            skipped = {line.split("\t")[0]: int(line.split("\t")[1]) for line in stored["skipped"]}
            return PenCharacters(
                stored["labels"],
                stored["categories"],
                stored["writers"],
                stored["sources"],
                stored["points"],
                stored["stroke_starts"],
                stored["char_starts"],
                skipped,
            )
    except (OSError, ValueError, KeyError, zlib.error, IndexError):
        return None  # an unreadable cache is rebuilt, not trusted


def load_pen_characters(
    pen_dir: str | os.PathLike | None = None, use_cache: bool = True, progress: bool = True
) -> PenCharacters:
    """Every character of both collections (digits, letters, symbols), verified, parsed once and cached."""
    directory = resolve_pen_dir(pen_dir)
    checksums = source_checksums(directory)
    cache = _cache_path(checksums)
    if use_cache and cache.exists():
        cached = _load_cache(cache)
        if cached is not None:
            return cached
    characters = concatenate([read_pendigits(directory / PENDIGITS[0]), read_unipen(directory, progress)])
    if use_cache:
        _save(characters, cache)
    return characters


# -- writer-disjoint splits --------------------------------------------------------------------------

# One writer split for every run, benchmark and report, whatever their own seed: the held-out writers stay
# held out when a run changes its seed (2 is the seed the shipped model was trained with).
WRITER_SPLIT_SEED = 2


def writer_splits(
    characters: PenCharacters,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = WRITER_SPLIT_SEED,
) -> np.ndarray:
    """Each character's split ("train", "validation" or "test"), by writer, per source.

    Within each source (pendigits, each UNIPEN site), the writers are shuffled (fixed by ``seed`` and the
    source's name) and the first ``round(validation_fraction * n)`` go to validation, the next
    ``round(test_fraction * n)`` to test (each at least one when the source has three or more writers),
    the rest to training.  So no writer is ever in two splits.
    """
    if not (0 <= validation_fraction < 1 and 0 <= test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise ValueError("validation_fraction and test_fraction must be in [0, 1) and sum below 1")
    split = np.full(len(characters), "train", dtype=object)
    for source in np.unique(characters.sources):
        members = characters.sources == source
        writers = np.unique(characters.writers[members])
        salt = int(hashlib.sha256(f"{seed}/{source}".encode()).hexdigest()[:8], 16)
        writers = writers[np.random.default_rng(salt).permutation(len(writers))]
        small = len(writers) >= 3
        n_validation = max(int(small and validation_fraction > 0), int(round(validation_fraction * len(writers))))
        n_test = max(int(small and test_fraction > 0), int(round(test_fraction * len(writers))))
        validation, test = set(writers[:n_validation]), set(writers[n_validation : n_validation + n_test])
        for index in np.flatnonzero(members):
            writer = characters.writers[index]
            if writer in validation:
                split[index] = "validation"
            elif writer in test:
                split[index] = "test"
    return split.astype(str)
