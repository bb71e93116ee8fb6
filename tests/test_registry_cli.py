"""``empanada-rs models ...``: output and exit codes (driven through ``cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from empanada_rs.cli import ExitCode, main
from empanada_rs.registry import list_models, paths

from .registry_helpers import config_dict, home, save_model, write_yaml

__all__ = ["home"]  # the fixture


@pytest.fixture
def pair(home: Path) -> Path:
    save_model(home / "src" / "f.pth", kind=1)
    save_model(home / "src" / "q.pth", kind=2)
    return write_yaml(home / "src" / "pair.yaml", config_dict("f.pth", "q.pth"))


def test_list_text_and_json(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "MitoNet_v1 " in out and "builtin" in out
    assert main(["models", "list", "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in data["models"]]
    assert names == list(list_models())
    assert {"name", "source", "config"} <= set(data["models"][0])


def test_info(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", "MitoNet_v1_mini"]) == ExitCode.OK
    assert "divisible by 128" in capsys.readouterr().out
    assert main(["models", "info", "Nope"]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert "Nope" in err and "MitoNet_v1" in err


def test_register_export_import_archive(
    pair: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "register", "m", str(pair)]) == ExitCode.OK
    assert "'m'" in capsys.readouterr().out
    assert main(["models", "register", "m", str(pair), "--json"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["name"] == "mNew"
    args = ["models", "register", "m", str(pair), "--model", "src/q.pth", "--overwrite"]
    assert main(args) == ExitCode.OK
    capsys.readouterr()

    out_dir = home / "out"
    out_dir.mkdir()
    assert main(["models", "export", "m", str(out_dir)]) == ExitCode.OK
    assert (out_dir / "m.empanada").is_file()
    assert main(["models", "export", "m", str(out_dir)]) == ExitCode.OUTPUT_EXISTS
    capsys.readouterr()

    args = ["models", "import", str(out_dir / "m.empanada"), "--name", "imp", "--json"]
    assert main(args) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "imp" and Path(data["config"]).parent == paths.user_config_dir()

    assert main(["models", "archive", "imp"]) == ExitCode.OK
    assert "imp" not in list_models()
    assert (paths.archive_dir() / "imp.yaml").is_file()
    assert main(["models", "archive", "MitoNet_v1"]) == ExitCode.BAD_INPUT


def test_bad_inputs_map_to_exit_codes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_yaml(home / "bad.yaml", {"model": "x.pth"})
    assert main(["models", "register", "b", str(bad)]) == ExitCode.BAD_INPUT
    assert "missing key" in capsys.readouterr().err
    good = write_yaml(home / "good.yaml", config_dict("absent.pth"))
    assert main(["models", "register", "b", str(good)]) == ExitCode.NOT_FOUND
    assert main(["models", "register", "b", str(home / "none.yaml")]) == ExitCode.NOT_FOUND
    (home / "junk.empanada").write_bytes(b"junk")
    assert main(["models", "import", str(home / "junk.empanada")]) == ExitCode.BAD_INPUT
    assert not paths.user_config_dir().exists()
    with pytest.raises(SystemExit) as exc:
        main(["models"])
    assert exc.value.code == ExitCode.USAGE
