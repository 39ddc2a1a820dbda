"""The benchmark's command line refuses every bad flag at parse time: exit code 2, one error line
naming the flag, no traceback, before any work starts."""
import pytest
import torch

from posterior_tutor.evaluation import bench

BAD = [
    (["--images", "0"], "--images"),
    (["--samples", "0"], "--samples"),
    (["--n", "0"], "--n"),
    (["--threads", "0"], "--threads"),
    (["--n", "1.5"], "--n"),
    (["--device", "banana"], "--device"),
    (["--suite", "toy", "--device", "banana"], "--device"),
    (["--tasks", "nope"], "--tasks"),
    (["--tasks"], "--tasks"),
    (["--methods", "nope"], "--methods"),
    (["--suite", "toy", "--methods", "aps"], "--methods"),
    (["--suite", "nope"], "--suite"),
    (["--memory", "nope"], "--memory"),
]


@pytest.mark.parametrize("argv,flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flag_exits_2_naming_it(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert f"argument {flag}" in err and "Traceback" not in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("suite", ["toy", "images"])
def test_cuda_without_cuda_is_refused_for_both_suites(suite, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--suite", suite, "--device", "cuda"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --device" in err and "CUDA" in err, err


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--suite", "toy", "--out", str(f)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --out" in err and "is a file" in err, err
