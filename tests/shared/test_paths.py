"""Path validation: every rule closes a way to write outside the install folder or to collide on some filesystem."""

import pytest

from shared.errors import ManifestError
from shared.paths import fold, validate_path, validate_tree


@pytest.mark.parametrize(
    "path",
    ["a.txt", "Data/Sub Dir/file.bin", "data/caf\u00e9.txt", ".hidden", "mist/x", ".mistral/x", "com10.txt", "a/.b/c"],
)
def test_safe_relative_paths_are_returned_unchanged(path):
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "non-empty"),
        ("/etc/passwd", "relative"),
        ("C:/Windows/x", "relative"),
        ("c:x", "relative"),
        ("\\\\server\\share", "relative"),
        ("..", "'..'"),
        ("../x", "'..'"),
        ("a/../../b", "'..'"),
        ("./x", "'.'"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("a\\b", "character"),
        ("dir/a:b", "character"),
        ("a\x00b", "character"),
        ("a\nb", "character"),
        ("a\x1bb", "character"),
        ("a\x7fb", "character"),
        ("con.txt", "reserved device name"),
        ("aux", "reserved device name"),
        ("dir/NUL", "reserved device name"),
        ("LPT1.log", "reserved device name"),
        ("a.", "space or dot"),
        ("a ", "space or dot"),
        ("dir./x", "space or dot"),
        (".mist", "'.mist'"),
        (".mist/journal.json", "'.mist'"),
        (".MIST/x", "'.mist'"),
        ("cafe\u0301.txt", "NFC"),
        ("game\u202eexe.txt", "U+202E"),  # right-to-left override: shown as "gametxt.exe"
        ("a\u200bb.txt", "U+200B"),  # zero-width space
        ("\ufeffreadme.txt", "U+FEFF"),  # byte order mark
        ("data\u00a0file.pak", "U+00A0"),  # no-break space: looks like a plain one
        ("x\u2028y", "U+2028"),
        ("a" * 256, "longer than 255"),
        ("/".join(["a" * 200] * 6), "longer than 1024"),
    ],
)
def test_hostile_path_is_rejected_naming_the_problem(path, problem):
    with pytest.raises(ManifestError, match="rejected") as info:
        validate_path(path)
    assert problem in str(info.value)


@pytest.mark.parametrize("path", [None, b"a.txt", 3])
def test_non_string_path_is_rejected(path):
    with pytest.raises(ManifestError, match="non-empty string"):
        validate_path(path)


def test_lone_surrogate_is_rejected_with_manifest_error():
    # JSON can carry "\ud800"; it is not encodable, so it must be a ManifestError, not a UnicodeEncodeError.
    with pytest.raises(ManifestError):
        validate_path("a\ud800b")


def test_fold_makes_case_variants_one_key():
    assert fold("Data/A.bin") == fold("data/a.bin")
    assert fold("data/a.bin") != fold("data/b.bin")


def test_a_valid_tree_passes():
    validate_tree(["a/b.txt", "a/c.txt", "b", "c/d/e"])


def test_duplicate_path_is_rejected():
    with pytest.raises(ManifestError, match="'a/b' twice"):
        validate_tree(["a/b", "c", "a/b"])


def test_case_collision_is_rejected():
    with pytest.raises(ManifestError, match="differ only in case"):
        validate_tree(["Data/A.bin", "data/a.bin"])


@pytest.mark.parametrize("paths", [["a", "a/b"], ["a/b", "a"], ["A", "a/b"], ["x/a", "x/A/b/c"]])
def test_file_used_as_folder_is_rejected(paths):
    with pytest.raises(ManifestError, match="both as a file and as a folder"):
        validate_tree(paths)


def test_tree_validates_each_path():
    with pytest.raises(ManifestError, match="relative"):
        validate_tree(["ok.txt", "/etc/passwd"])
