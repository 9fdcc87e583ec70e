"""Pen data: the UNIPEN reader on small hand-written files, checksums, the cache, writer splits, rendering,
generated non-digits, and a smoke training run that mixes pen digits and non-digits."""

import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest

from digitglyph.data import pen
from digitglyph.data.pen import PenDataError, load_pen_characters, parse_unipen, writer_splits

# pendigits style: ink inline, a .COMMENT <label> <writer> <n> after each segment, empty .PEN_UP runs
PENDIGITS_TEXT = """.INCLUDE dene.doc
.SEGMENT DIGIT    0 ? "1"
.COMMENT 1 12  224
.PEN_DOWN
 100 500
 100 400
 100 300
.PEN_UP

.DT 300
.SEGMENT DIGIT    1-2 ? "7"
.COMMENT 7 13  5
.PEN_DOWN
 0 500
 200 500
 100 300
.PEN_UP
.PEN_DOWN
 60 400
 140 400
.PEN_UP
"""

# UNIPEN train_r01_v07 style: the ink file, with a hover run that holds points (a component) and a
# multi-line keyword value that is not ink
INK_TEXT = """.WRITER_ID 159
.COMMENT ### DATA LAYOUT ###
         ### (prose, not points) ###
.PEN_UP
 5 5
.PEN_DOWN
 10 100
 10 50
 10 0
.PEN_UP
.PEN_DOWN
 0 0
 50 0
 50 50
 0 50
 0 0
.PEN_UP
 60 60
 70 70
.PEN_DOWN
 100 100
 120 100
 140 100
 160 100
"""
# components: 0 = hover (5,5); 1 = the "1"; 2 = the square "0"; 3 = hover; 4 = a 4-point stroke
DATA_TEXT = """.VERSION 1.0
.INCLUDE site/site.doc
.INCLUDE site/data/w1.dat
.SEGMENT CHARACTER 1 ? "1"
.SEGMENT CHARACTER 2-3 OK "0"
.SEGMENT CHARACTER 4:1-4:2 OK "-"
.SEGMENT CHARACTER 0-1 ? "l"
"""


def write_pen_dir(directory, data_text=DATA_TEXT, ink_text=INK_TEXT, pendigits_text=PENDIGITS_TEXT, extra_files=()):
    """A pen data directory holding both sources, as the real one does (small)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / pen.PENDIGITS[0]).write_bytes(gzip.compress(pendigits_text.encode()))
    files = {"data/1a/site/site0/w1.dat": data_text, "include/site/data/w1.dat": ink_text, **dict(extra_files)}
    with tarfile.open(directory / pen.UNIPEN[0], "w:gz") as archive:
        for name, text in files.items():
            content = text.encode()
            info = tarfile.TarInfo(f"{pen.UNIPEN_TREE}/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return directory


@pytest.fixture
def pen_dir(tmp_path, monkeypatch):
    """A small pen directory whose checksums the reader is told to expect; the cache in tmp_path."""
    directory = write_pen_dir(tmp_path / "pendata")
    trust(directory, monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(pen, "default_pen_dir", lambda: tmp_path / "cache" / "digitglyph" / "pendata")
    return directory


def trust(directory, monkeypatch):
    for name in ("PENDIGITS", "UNIPEN"):
        file_name = getattr(pen, name)[0]
        monkeypatch.setattr(pen, name, (file_name, hashlib.sha256((directory / file_name).read_bytes()).hexdigest()))


def test_inline_ink_pendigits_style():
    characters = parse_unipen(PENDIGITS_TEXT, "p.tra", "digit", "pendigits", "pendigits", pendigits=True)
    assert list(characters.labels) == ["1", "7"]
    assert list(characters.writers) == ["pendigits/12", "pendigits/13"]
    one, seven = characters.strokes(0), characters.strokes(1)
    assert len(one) == 1 and len(seven) == 2
    # y is flipped: the tablet's 500 (top of the 1) is the smallest screen y
    assert one[0][0].tolist() == [100, -500] and one[0][-1].tolist() == [100, -300]
    assert seven[1].tolist() == [[60, -400], [140, -400]]


def test_included_ink_counts_hover_runs_with_points_and_reads_point_ranges():
    characters = parse_unipen(
        DATA_TEXT,
        "w1.dat",
        "digit",
        "unipen/site",
        "unipen/site",
        read_include=lambda path: INK_TEXT if path == "site/data/w1.dat" else None,
    )
    assert list(characters.labels) == ["1", "0", "-", "l"]
    assert set(characters.writers) == {"unipen/site/159"}
    one = characters.strokes(0)
    assert len(one) == 1 and one[0][:, 0].tolist() == [10, 10, 10]  # component 1, not the hover run 0
    square = characters.strokes(1)
    assert len(square) == 1 and len(square[0]) == 5  # 2-3: the square; the hover run 3 is not ink
    dash = characters.strokes(2)
    assert dash[0].tolist() == [[120, -100], [140, -100]]  # points 1 to 2 of component 4, inclusive
    assert [len(s) for s in characters.strokes(3)] == [3]  # 0-1: hover (no ink) + the 1


def test_a_segment_past_the_ink_is_skipped_and_counted():
    text = DATA_TEXT + '.SEGMENT CHARACTER 9 ? "5"\n' + "".join('.SEGMENT CHARACTER 1 ? "1"\n' for _ in range(20))
    characters = parse_unipen(text, "w1.dat", "digit", "unipen/site", "unipen/site", read_include=lambda path: INK_TEXT)
    assert len(characters) == 24 and characters.skipped == {"w1.dat": 1}


def test_a_file_whose_segments_mostly_miss_the_ink_is_an_error():
    text = ".INCLUDE site/data/w1.dat\n" + "".join(f'.SEGMENT CHARACTER {c} ? "1"\n' for c in (1, 7, 8, 9))
    with pytest.raises(PenDataError, match=r"w1.dat: 3 of 4 segments point past the ink"):
        parse_unipen(text, "w1.dat", "digit", "s", "s", read_include=lambda path: INK_TEXT)


@pytest.mark.parametrize(
    "ink, message",
    [
        (INK_TEXT.replace(" 10 50", " 10 fifty"), r"site/data/w1.dat, line 8: '10 fifty' in a pen run is not an 'x y'"),
        (None, r"w1.dat, line 3: the included ink file 'site/data/w1.dat' is missing"),
    ],
)
def test_malformed_or_missing_ink_names_the_file_and_line(ink, message):
    with pytest.raises(PenDataError, match=message):
        parse_unipen(DATA_TEXT, "w1.dat", "digit", "s", "s", read_include=lambda path: ink)


def test_malformed_segment_line_is_reported():
    with pytest.raises(PenDataError, match=r"x.dat, line 1: malformed .SEGMENT"):
        parse_unipen(".SEGMENT CHARACTER 1 ? 7\n", "x.dat", "digit", "s", "s")


def test_loads_both_sources_verified_and_split_by_category(pen_dir):
    characters = load_pen_characters(pen_dir, progress=False)
    assert sorted(set(characters.sources)) == ["pendigits", "unipen/site"]
    assert list(characters.labels) == ["1", "7", "1", "0", "-", "l"]
    assert set(characters.categories) == {"digit"}  # everything in these fixtures sits under data/1a


def test_an_extracted_tree_is_read_like_the_tarball(pen_dir, tmp_path, monkeypatch):
    tree_dir = tmp_path / "extracted"
    tree_dir.mkdir()
    (tree_dir / pen.PENDIGITS[0]).write_bytes((pen_dir / pen.PENDIGITS[0]).read_bytes())
    with tarfile.open(pen_dir / pen.UNIPEN[0]) as archive:
        archive.extractall(tree_dir, filter="data")
    monkeypatch.setattr(pen, "UNIPEN_TREE_DIGEST", pen.tree_digest(tree_dir / pen.UNIPEN_TREE))
    from_tree = load_pen_characters(tree_dir, use_cache=False, progress=False)
    from_tarball = load_pen_characters(pen_dir, use_cache=False, progress=False)
    assert list(from_tree.labels) == list(from_tarball.labels)
    assert np.array_equal(from_tree.points, from_tarball.points)
    (tree_dir / pen.UNIPEN_TREE / "include/site/data/w1.dat").write_text(INK_TEXT + " 1 1\n")
    with pytest.raises(PenDataError, match="does not hold the files of .*Extract the archive again"):
        load_pen_characters(tree_dir, use_cache=False, progress=False)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / pen.PENDIGITS[0]).unlink(), r"pendigits-orig.tra.gz is missing from .*DIGITGLYPH_PEN_DATA"),
        (lambda d: (d / pen.UNIPEN[0]).unlink(), r"unipen-train_r01_v07.* is missing"),
        (
            lambda d: (d / pen.UNIPEN[0]).write_bytes((d / pen.UNIPEN[0]).read_bytes()[:-40]),
            r"unipen-train_r01_v07.*tar.gz has the wrong content .*truncated, corrupted",
        ),
        (lambda d: (d / pen.PENDIGITS[0]).write_bytes(b"not gzip"), r"pendigits-orig.tra.gz has the wrong content"),
    ],
)
def test_missing_truncated_or_corrupted_sources_give_one_clear_error(pen_dir, damage, message):
    damage(pen_dir)
    with pytest.raises(PenDataError, match=message):
        load_pen_characters(pen_dir, progress=False)


def test_a_truncated_file_with_the_expected_checksum_is_still_reported(pen_dir, monkeypatch):
    """A checksum list that agrees with a broken file (say a wrong SHA256SUMS) still gets a clear error."""
    path = pen_dir / pen.PENDIGITS[0]
    path.write_bytes(path.read_bytes()[:30])
    trust(pen_dir, monkeypatch)
    with pytest.raises(PenDataError, match="pendigits-orig.tra.gz is not a readable gzip file"):
        load_pen_characters(pen_dir, progress=False)


def test_the_cache_is_used_and_rebuilt_when_a_source_changes(pen_dir, monkeypatch):
    first = load_pen_characters(pen_dir, progress=False)
    caches = list(pen.default_pen_dir().parent.glob("pen-cache/pen-characters-*.npz"))
    assert len(caches) == 1
    # the cache is what is read now: parsing is not called
    monkeypatch.setattr(pen, "read_pendigits", lambda path: pytest.fail("parsed although cached"))
    assert list(load_pen_characters(pen_dir, progress=False).labels) == list(first.labels)
    monkeypatch.undo()
    # a changed source has other checksums: a new cache, with the new content
    write_pen_dir(pen_dir, pendigits_text=PENDIGITS_TEXT.replace('"7"', '"4"'))
    trust(pen_dir, monkeypatch)
    monkeypatch.setattr(pen, "default_pen_dir", lambda: caches[0].parent.parent / "pendata")
    changed = load_pen_characters(pen_dir, progress=False)
    assert list(changed.labels)[:2] == ["1", "4"]
    assert len(list(caches[0].parent.glob("pen-characters-*.npz"))) == 2


def test_a_corrupted_cache_is_rebuilt_not_trusted(pen_dir):
    load_pen_characters(pen_dir, progress=False)
    cache = next(pen.default_pen_dir().parent.glob("pen-cache/pen-characters-*.npz"))
    cache.write_bytes(b"garbage")
    assert len(load_pen_characters(pen_dir, progress=False)) == 6


def test_writer_splits_are_disjoint_per_source_and_fixed_by_seed():
    builder = pen._Builder()
    rng = np.random.default_rng(0)
    for source, writers in (("pendigits", 30), ("unipen/a", 10), ("unipen/b", 2)):
        for writer in range(writers):
            for _ in range(rng.integers(1, 5)):
                builder.add([np.zeros((2, 2))], "3", "digit", f"{source}/{writer}", source)
    characters = builder.build({})
    split = writer_splits(characters, seed=4)
    assert np.array_equal(split, writer_splits(characters, seed=4))
    assert not np.array_equal(split, writer_splits(characters, seed=5))
    for name in ("train", "validation", "test"):
        for other in ("train", "validation", "test"):
            if name != other:
                assert not set(characters.writers[split == name]) & set(characters.writers[split == other])
    for source, validation_writers in (("pendigits", 4), ("unipen/a", 2)):  # round(0.15 n), at least one
        members = characters.sources == source
        assert len(set(characters.writers[members & (split == "validation")])) == validation_writers
        assert len(set(characters.writers[members & (split == "test")])) == validation_writers
    assert set(split[characters.sources == "unipen/b"]) == {"train"}  # two writers: both train


def best_shift_correlation(first, second) -> float:
    return max(
        np.corrcoef(first.ravel(), np.roll(second, (dy, dx), axis=(0, 1)).ravel())[0, 1]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def test_training_renders_match_the_apps_full_size_rendering():
    """Rendering at the training scale (64 px) and at the app's size (280 px canvas) give the same image up to
    a one-pixel shift of the centring (which the training augmentation's +-2 px shifts cover)."""
    from digitglyph.strokes import TRAINING_SCALE, DrawingStyle, render_as_drawn

    characters = parse_unipen(PENDIGITS_TEXT, "p", "digit", "pendigits", "pendigits", pendigits=True)
    for index in range(len(characters)):
        for brush in (12.0, 20.0, 30.0):
            style = DrawingStyle(size=180.0, brush=brush)
            full = render_as_drawn(characters.strokes(index), style).astype(float)
            small = render_as_drawn(characters.strokes(index), style, scale=TRAINING_SCALE / 180).astype(float)
            assert best_shift_correlation(full, small) > 0.85, (index, brush)


def test_devices_draw_the_same_character_differently_but_recognisably():
    from digitglyph.strokes import DrawingStyle, render_as_drawn

    characters = parse_unipen(PENDIGITS_TEXT, "p", "digit", "pendigits", "pendigits", pendigits=True)
    seven = characters.strokes(1)
    pen_image = render_as_drawn(seven, DrawingStyle(device="pen")).astype(float)
    mouse = render_as_drawn(seven, DrawingStyle(device="mouse", spacing=12.0)).astype(float)
    touch = render_as_drawn(
        seven, DrawingStyle(device="touch", spacing=6.0, jitter=1.5), np.random.default_rng(1)
    ).astype(float)
    assert 0 < np.abs(pen_image - touch).mean() < 40  # different renderings of the same shape
    assert np.corrcoef(pen_image.ravel(), mouse.ravel())[0, 1] > 0.8


def test_generated_non_digits_are_all_drawable_and_of_every_kind():
    from digitglyph.data.sources import GENERATED_KINDS, generated_non_digits
    from digitglyph.strokes import DrawingStyle, render_as_drawn

    characters = parse_unipen(PENDIGITS_TEXT, "p", "digit", "pendigits", "pendigits", pendigits=True)
    strokes_list, kinds = generated_non_digits(21, [characters.strokes(i) for i in range(2)], seed=0)
    assert sorted(set(kinds)) == sorted(GENERATED_KINDS)
    for strokes, kind in zip(strokes_list, kinds, strict=True):
        image = render_as_drawn(strokes, DrawingStyle())
        assert image is not None and image.max() == 255, kind  # none is "empty"
    side_by_side = [s for s, k in zip(strokes_list, kinds, strict=True) if k == "side_by_side"][0]
    assert len(side_by_side) >= 2 * 1  # two digits or more


def test_digit_like_characters_are_not_clear_non_digits():
    from digitglyph.data.sources import is_clear_non_digit

    for label in ("O", "o", "l", "I", "|", "Z", "S", "b", "B", "g", "q", "/", ".", "\\@", "7", "0"):
        assert not is_clear_non_digit(label)
    for label in ("x", "+", "^", "e", "?", "-", "A", "#"):
        assert is_clear_non_digit(label)


def many_writers_pendigits(writers: int) -> str:
    """PENDIGITS_TEXT's two digits written by each of ``writers`` writers (components numbered on)."""
    lines = []
    for writer in range(writers):
        base = 3 * writer
        lines.append(
            PENDIGITS_TEXT.split(".INCLUDE dene.doc\n")[1]
            .replace("DIGIT    0 ?", f"DIGIT    {base} ?")
            .replace("DIGIT    1-2 ?", f"DIGIT    {base + 1}-{base + 2} ?")
            .replace(".COMMENT 1 12", f".COMMENT 1 {writer}")
            .replace(".COMMENT 7 13", f".COMMENT 7 {writer}")
        )
    return "".join(lines)


def test_many_writers_fixture_reads_as_written():
    characters = parse_unipen(many_writers_pendigits(3), "p", "digit", "pendigits", "pendigits", pendigits=True)
    assert list(characters.labels) == ["1", "7"] * 3
    assert list(characters.writers) == [f"pendigits/{w}" for w in (0, 0, 1, 1, 2, 2)]
    assert [len(characters.strokes(i)) for i in range(6)] == [1, 2] * 3


@pytest.mark.slow
def test_a_smoke_training_run_mixes_pen_digits_and_non_digits(pen_dir, mnist_dir, tmp_path, monkeypatch):
    from digitglyph.data import sources
    from digitglyph.train import TrainConfig, train

    write_pen_dir(pen_dir, pendigits_text=many_writers_pendigits(10))
    trust(pen_dir, monkeypatch)

    monkeypatch.setattr(sources, "default_data_dir", lambda: tmp_path / "cache" / "mnist")
    config = dict(
        architecture="glyphnet-small",
        epochs=1,
        batch_size=64,
        train_subset=300,
        validation_size=200,
        seed=3,
        data_dir=str(mnist_dir),
        pen_dir=str(pen_dir),
        pen_digits=3,
        not_a_digit=40,
        pen_variants=2,
    )
    data = sources.run_data(TrainConfig(**config))
    assert data.classes == 11 and list(data.labels).count(10) == 40
    assert data.candidates.shape[1] == 2 and data.pool.shape[1:] == (28, 28)
    # 10 pendigits writers (2 digits each): 6 train (after 2 validation and 2 test writers), and 1 UNIPEN writer
    # with 2 digits (its "-" is a non-digit, its "l" digit-like); each training pen digit three times
    pen_training_digits = 2 * 6 + 2
    assert data.train_size == 300 + 3 * pen_training_digits + 40
    assert set(data.validation) == {"mnist", "pen_digits", "non_digits"}
    assert len(data.validation["pen_digits"].labels) == 4 and len(data.test["pen_digits"].labels) == 4
    metrics = train(config, tmp_path / "run")
    assert metrics["outputs"] == 11
    assert 0 < metrics["answer_rule"]["not_a_digit_at"] <= 1.01
    assert metrics["sources"]["test/mnist"]["count"] == 10000
    assert metrics["sources"]["test/pen_digits"]["count"] == 4
    assert set(metrics["sources"]["test/non_digits"]["by_source"]) >= {"generated/scribble", "generated/dot"}


def test_a_single_straight_stroke_labelled_4_is_a_fragment_but_real_digits_are_not():
    from digitglyph.data.sources import is_stroke_fragment

    line = [np.array([[100.0, 10.0], [102.0, 60.0], [101.0, 120.0]])]
    open_four = [np.array([[60.0, 10.0], [20.0, 80.0], [90.0, 80.0], [80.0, 40.0], [80.0, 140.0]])]
    assert is_stroke_fragment(line, "4") and is_stroke_fragment(line, "0")
    assert not is_stroke_fragment(line, "1") and not is_stroke_fragment(line, "7")  # a 1 is one straight stroke
    assert not is_stroke_fragment(open_four, "4")  # an open 4 drawn in one stroke
    assert not is_stroke_fragment([line[0], line[0] + 40], "4")  # two strokes
    assert not is_stroke_fragment(line, "x")  # not a digit label
