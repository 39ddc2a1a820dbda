"""The library's structure in numbers: largest files and functions, import arrows that run back,
(repeated blocks: the tool library's `duplicates --repo posterior_tutor`).

    python scripts/structure_numbers.py [ROOT]      # ROOT: a checkout (default: this one)

"Run back": a module of a lower layer importing a higher one.  Layers, low to high: the core
(schedules, operators/, denoisers, toy, nets, data, tasks, metrics/, priors/, and the
infrastructure: checks/, files/, runtime/), the zero-shot samplers (`samplers/`), the trained
samplers (`trained/`), then the consumers (`viz/`, `evaluation/`, `exercises/`).  A checkout from
before the packages (flat modules) is read with the same rule on its old names.

Also: entries at the top of `posterior_tutor/`, the names the inverse problem goes by in the
sampling entry points' signatures, the `pretrained` functions and the shipped-table constants.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

CONSUMERS = {"viz", "widgets", "bench", "bench_images", "evaluation", "exercises", "model_card",
             "method_grid"}
ENTRY_POINTS = {"sample", "iterate", "step_through", "sample_from"}
#: command modules that consume the whole package (the book renders the chapters, solved or not)
COMMAND_CONSUMERS = {"posterior_tutor.runtime.book"}


def layer(mod: str) -> int:
    if mod in COMMAND_CONSUMERS:
        return 3
    parts = mod.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in {"samplers"}:
        return 1
    if top in {"trained", "unfolding", "amortized", "ud2m_presets"}:
        return 2
    if top in CONSUMERS:
        return 3
    return 0


def modules(root: Path):
    pkg = root / "posterior_tutor"
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def resolve(name: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = name.split(".")
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def main(argv=None) -> None:
    root = Path((argv or sys.argv[1:] or ["."])[0]).resolve()
    files, funcs, back = [], [], []
    problem_names, pretrained, tables = set(), [], []
    for name, path in modules(root):
        text = path.read_text()
        files.append((len(text.splitlines()), str(path.relative_to(root))))
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append((node.end_lineno - node.lineno + 1,
                              f"{path.relative_to(root)}:{node.name}"))
                args = [a.arg for a in node.args.args + node.args.kwonlyargs]
                if node.name in ENTRY_POINTS:
                    problem_names.update(a for a in args if a in {"prob", "problem", "inverse_problem"})
                if node.name == "pretrained":
                    pretrained.append(f"{name}({', '.join(args)})")
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id in {"SHIPPED", "PRETRAINED"} for t in node.targets):
                tables.append(name)
            if isinstance(node, ast.ImportFrom):
                target = resolve(name, node, path.name == "__init__.py")
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
                if target.startswith("posterior_tutor"):
                    hi = max(layer(t) for t in targets if t.startswith("posterior_tutor"))
                    if hi > layer(name) and name != "posterior_tutor":   # its lazy loader
                        back.append(f"{name} -> {target}")
    files.sort(reverse=True)
    funcs.sort(reverse=True)
    print(f"library files: {len(files)}; over 300 lines: {sum(n > 300 for n, _ in files)}")
    print("largest files:", ", ".join(f"{p} {n}" for n, p in files[:4]))
    print("largest functions:", ", ".join(f"{p} {n}" for n, p in funcs[:4]))
    print(f"functions over 80 lines: {sum(n > 80 for n, _ in funcs)}")
    print(f"import arrows that run back: {len(back)}" + ("".join(f"\n  {b}" for b in back)))
    top = [p.name for p in (root / "posterior_tutor").iterdir() if p.name != "__pycache__"]
    print(f"entries at the top of posterior_tutor/: {len(top)}")
    print(f"names of the inverse problem in sample/iterate/step_through: {sorted(problem_names)}")
    print(f"pretrained functions: {len(pretrained)}: " + "; ".join(pretrained))
    print(f"SHIPPED/PRETRAINED constants: {len(tables)}: " + ", ".join(tables))


if __name__ == "__main__":
    main()
