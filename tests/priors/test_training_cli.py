"""Every training command refuses each bad flag at parse time: exit code 2, one line naming the
flag and the value, no traceback, and no work done (the first call of each command's work is
replaced by one that fails the test).  In-process ``main(argv)``: each case takes milliseconds."""
import pytest
import torch

import posterior_tutor as pt
from posterior_tutor.evaluation import model_card
from posterior_tutor.priors import train_cli
from conftest import load_script

UD2M, APS, PRESETS = (load_script(n) for n in ("train_ud2m_mnist", "train_aps_mnist",
                                               "measure_ud2m_presets"))
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
FILE = "{file}"      # an existing file, where a folder is wanted (an --out that cannot be made)

PRIOR = [  # python -m posterior_tutor.priors.train: (argv, the flag the message must name)
    (["--steps", "0"], "--steps"), (["--steps", "-3"], "--steps"), (["--steps", "2.5"], "--steps"),
    (["--batch", "0"], "--batch"), (["--ckpt-every", "0"], "--ckpt-every"),
    (["--warmup", "-1"], "--warmup"), (["--lr", "0"], "--lr"), (["--lr", "nan"], "--lr"),
    (["--ema", "1.5"], "--ema"), (["--weight-decay", "-1"], "--weight-decay"),
    (["--dropout", "2"], "--dropout"), (["--clip", "0"], "--clip"),
    (["--attention", "banana"], "--attention"), (["--subset", "5:5"], "--subset"),
    (["--subset", "10:5"], "--subset"), (["--subset", "a:b"], "--subset"),
    (["--subset", "5"], "--subset"), (["--subset=-5:"], "--subset"),
    (["--channels", "8,0"], "--channels"), (["--size", "0"], "--size"),
    (["--seed", "-1"], "--seed"), (["--threads", "-1"], "--threads"),
    (["--threads", "0"], "--threads"), (["--data", "cifar"], "--data"),
    (["--split", "val"], "--split"), (["--data", "kmnist", "--split", "train"], "--split"),
    (["--data-root", "/no/such/folder"], "--data-root"), (["--device", "tpu"], "--device"),
    (["--out", FILE], "--out"), (["--recipe", "no_such_recipe.json"], "--recipe")]
CARD = [  # python -m posterior_tutor.evaluation.model_card FOLDER --data digits
    (["{empty}", "--data", "digits"], "folder"), ([FILE, "--data", "digits"], "folder"),
    (["{prior}", "--data", "cifar"], "--data"), (["{prior}", "--data", "digits", "--n", "0"], "--n"),
    (["{prior}", "--data", "digits", "--steps", "0"], "--steps"),
    (["{prior}", "--data", "digits", "--eta", "2"], "--eta"),
    (["{prior}", "--data", "digits", "--seed", "-1"], "--seed"),
    (["{prior}", "--data", "digits", "--threads", "-1"], "--threads")]
UD2M_CASES = [(["--task", "colourise"], "--task"), (["--steps", "0"], "--steps"),
              (["--batch", "0"], "--batch"), (["--lr", "-1"], "--lr"),
              (["--adv-weight", "-1"], "--adv-weight"), (["--K", "0"], "--K"), (["--N", "0"], "--N"),
              (["--sigma", "0"], "--sigma"), (["--sigma-factor", "0"], "--sigma-factor"),
              (["--rank", "0"], "--rank"), (["--seed", "-1"], "--seed"),
              (["--threads", "-1"], "--threads"), (["--checkpoint-every", "0"], "--checkpoint-every"),
              (["--eval-images", "0"], "--eval-images"), (["--eval-images", "5000"], "--eval-images"),
              (["--eval-samples", "0"], "--eval-samples"), (["--train-times", "x"], "--train-times"),
              (["--out", FILE], "--out"), (["--init", "/no/such/run"], "--init"),
              (["--recipe", "no_such_recipe.json"], "--recipe")]
APS_CASES = [(["--task", "colourise"], "--task"), (["--steps", "0"], "--steps"),
             (["--batch", "0"], "--batch"), (["--lr", "0"], "--lr"),
             (["--anneal-steps", "-1"], "--anneal-steps"), (["--hidden", "0"], "--hidden"),
             (["--feat", "0"], "--feat"), (["--seed", "-1"], "--seed"),
             (["--threads", "-1"], "--threads"), (["--minutes", "0"], "--minutes"),
             (["--save-every", "0"], "--save-every"), (["--eval-images", "0"], "--eval-images"),
             (["--eval-samples", "0"], "--eval-samples"), (["--dps-images", "-1"], "--dps-images"),
             (["--dps-images", "3000"], "--dps-images"), (["--dps-samples", "0"], "--dps-samples"),
             (["--out", FILE], "--out"), (["--resume", "/no/such/flow.pt"], "--resume"),
             (["--recipe", "no_such_recipe.json"], "--recipe")]
PRESET_CASES = [(["--images", "0"], "--images"), (["--images", "x"], "--images"),
                (["--samples", "0"], "--samples"), (["--json", "{empty}"], "--json")]
CUDA = [(c, ["--device", "cuda"]) for c in ("prior", "ud2m", "aps", "presets")]


def _no_work(*a, **k):
    raise AssertionError("the command started work before refusing a bad flag")


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """run(command, argv) -> (exit code, stderr); {file}, {empty}, {prior} become tmp paths."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "prior").mkdir()
    for name in ("prior.pt", "model_card.json"):
        (tmp_path / "prior" / name).write_text("{}")
    monkeypatch.setattr(train_cli, "train_prior", _no_work)
    monkeypatch.setattr(model_card, "evaluate", _no_work)
    monkeypatch.setattr(pt, "pretrained", _no_work)          # the scripts' first step
    mains = {"prior": (train_cli.main, []), "card": (model_card.main, []),
             "ud2m": (UD2M.main, ["--task", "sr4", "--out", str(tmp_path / "o")]),
             "aps": (APS.main, ["--task", "sr4", "--out", str(tmp_path / "o")]),
             "presets": (PRESETS.main, [])}

    def go(command, argv):
        """(exit code, stderr); ``go.argv``: the argv with the tmp paths filled in."""
        main, base = mains[command]
        argv = [a.format(file=tmp_path / "file", empty=tmp_path / "empty",
                         prior=tmp_path / "prior") for a in argv]
        with pytest.raises(SystemExit) as stop:
            main(base + argv)
        go.argv = argv
        return stop.value.code, capsys.readouterr().err
    return go


CASES = ([("prior", *c) for c in PRIOR] + [("card", *c) for c in CARD]
         + [("ud2m", *c) for c in UD2M_CASES] + [("aps", *c) for c in APS_CASES]
         + [("presets", *c) for c in PRESET_CASES])


@pytest.mark.parametrize("command, argv, flag", CASES,
                         ids=[f"{c}:{' '.join(a)}" for c, a, _ in CASES])
def test_bad_flag_is_refused_before_any_work(run, command, argv, flag):
    code, err = run(command, argv)
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert f"argument {flag}" in last and "Traceback" not in err, err
    argv = run.argv
    if not flag.startswith("--"):
        value = argv[0]                                  # the positional folder
    elif flag in argv:
        value = argv[argv.index(flag) + 1]
    else:                                                # --flag=value
        value = next(a for a in argv if a.startswith(flag + "=")).split("=", 1)[1]
    assert value in last, last


@NO_CUDA
@pytest.mark.parametrize("command, argv", CUDA, ids=[c for c, _ in CUDA])
def test_cuda_without_cuda_is_refused(run, command, argv):
    code, err = run(command, argv)
    assert code == 2 and "argument --device" in err and "no CUDA" in err, err


def test_bad_recipe_value_through_each_training_command(run, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"args": {"steps": true}}')
    for command in ("prior", "ud2m", "aps"):
        code, err = run(command, ["--recipe", str(bad)])
        assert code == 2 and "argument --recipe" in err and "'steps' is true" in err, err
        assert "Traceback" not in err


def test_subset_past_the_data_set_is_refused_once_loaded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POSTERIOR_TUTOR_PROGRESS", "0")
    with pytest.raises(SystemExit) as stop:
        train_cli.main(["--data", "digits", "--subset", "3000:4000", "--steps", "1",
                        "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --subset" in err and "1797 images" in err
    assert not (tmp_path / "run" / "prior.pt").exists()
