"""Every bad input gets a clear error and loses nothing: the fuzz list over every command and public
loader (harness: tests/bad_input.py; case tables: tests/bad_input_*.py, one per part of the product)."""

import pytest
from bad_input import ApiCase, CliCase, Inputs, ids_are_unique, params, run_api_case, run_cli_case
from bad_input_ablate import API_CASES as ABLATE_API, CLI_CASES as ABLATE_CLI
from bad_input_compbench import API_CASES as COMPBENCH_API, CLI_CASES as COMPBENCH_CLI
from bad_input_fid import API_CASES as FID_API, CLI_CASES as FID_CLI
from bad_input_fid_coco import API_CASES as FID_COCO_API, CLI_CASES as FID_COCO_CLI
from bad_input_generate import API_CASES as GENERATE_API, CLI_CASES as GENERATE_CLI
from bad_input_model import API_CASES as MODEL_API, CLI_CASES as MODEL_CLI
from bad_input_report import API_CASES as REPORT_API, CLI_CASES as REPORT_CLI
from bad_input_study import API_CASES as STUDY_API, CLI_CASES as STUDY_CLI
from bad_input_training import API_CASES as TRAINING_API, CLI_CASES as TRAINING_CLI
from bad_input_world import API_CASES as WORLD_API, CLI_CASES as WORLD_CLI

CLI_CASES = (MODEL_CLI + TRAINING_CLI + WORLD_CLI + GENERATE_CLI + COMPBENCH_CLI + FID_CLI + FID_COCO_CLI
             + STUDY_CLI + ABLATE_CLI + REPORT_CLI)
API_CASES = (MODEL_API + TRAINING_API + WORLD_API + GENERATE_API + COMPBENCH_API + FID_API + FID_COCO_API
             + STUDY_API + ABLATE_API + REPORT_API)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    return Inputs(tmp_path_factory.mktemp("good-inputs"))


@pytest.fixture
def no_server(request, monkeypatch):
    """A study case that reaches the server's launch fails there instead of serving (and blocking the run)."""
    if request.node.callspec.params["case"].id.startswith(("study serve", "study demo")):
        def launch(*args, **kwargs):
            raise AssertionError("a bad-input case launched the study server")

        monkeypatch.setattr("human_study.app.launch", launch)


@pytest.mark.parametrize("case", params(CLI_CASES))
def test_command(case: CliCase, inputs, tmp_path, no_server):
    run_cli_case(case, tmp_path, inputs)


@pytest.mark.parametrize("case", params(API_CASES))
def test_library(case: ApiCase, inputs, tmp_path):
    run_api_case(case, tmp_path, inputs)


def test_the_list_covers_every_command():
    """Each command of the CLI has at least one case (a new command adds its own)."""
    import typer.main

    from bench.cli import app

    def names(group, prefix=()):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from names(cmd, (*prefix, name))
            else:
                yield " ".join((*prefix, name))

    commands = set(names(typer.main.get_command(app)))
    covered = {c.id.split(":")[0] for c in CLI_CASES}
    assert commands <= covered, f"commands without a bad-input case: {sorted(commands - covered)}"
    assert ids_are_unique(CLI_CASES) and ids_are_unique(API_CASES)
