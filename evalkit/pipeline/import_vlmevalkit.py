"""Reading VLMEvalKit's prediction file as the responses of an evalkit run.

VLMEvalKit writes `<work_dir>/<model>/<model>_<dataset>.xlsx` (or .tsv with its pred-format
setting): the dataset's TSV row without its base64 `image` column, plus `prediction`. The
columns read: `index` (VLMEvalKit's own row number, unique per file), `question`, `answer` (a
string; a Python list literal for the VQA datasets, e.g. "['Finance', 'finance']"), `prediction`,
and the task's own id column where the dataset's TSV keeps it (questionId, question_id, id, pid).

Rows are matched to the task's data by that id when the file has it, otherwise by the question
text and the gold answers together (whitespace and case folded); a row that matches no data row,
or more than one, is counted and listed as unmatched, never guessed.
"""
from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

from ..errors import EvalkitError
from ..task import Task
from .data import LoadedData
from .imported import Imported, SourceRun, fold, read_text

HARNESS = "VLMEvalKit"
# VLMEvalKit's dataset names for evalkit's tasks (vlmeval/dataset: image_vqa.py, image_mcq.py)
DATASETS = {"DocVQA_VAL": "docvqa", "TextVQA_VAL": "textvqa", "MMMU_DEV_VAL": "mmmu", "MathVista_MINI": "mathvista"}
_FILE = re.compile(r"^(?P<model>.+)_(?P<dataset>" + "|".join(DATASETS) + r")(?:_[^.]*)?\.(?P<ext>xlsx|tsv)$")
MAX_LISTED = 50


def task_of_file(path: Path, task: str | None) -> str:
    """The evalkit task: --task, checked against the dataset the file's name gives."""
    m = _FILE.match(path.name)
    named = DATASETS[m["dataset"]] if m else None
    if task is not None and named is not None and task != named:
        raise EvalkitError(f"{path}: is VLMEvalKit's {m['dataset']} file (evalkit task {named}), not {task}; give "
                           f"--task {named} or the {task} file")
    if task is None and named is None:
        raise EvalkitError(f"{path}: the name does not say which dataset it is (VLMEvalKit names its files "
                           f"<model>_<dataset>.xlsx, dataset one of {', '.join(DATASETS)}); give --task")
    return task or named


def read_table(path: Path) -> tuple[list[str], list[dict]]:
    """(header, rows as {column: text}) of an xlsx (first sheet) or a tsv."""
    if not path.exists():
        raise EvalkitError(f"{path}: no such file; give VLMEvalKit's <model>_<dataset>.xlsx or .tsv")
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx(path)
    if path.suffix.lower() == ".tsv":
        return _read_tsv(path)
    raise EvalkitError(f"{path}: not an .xlsx or .tsv file; VLMEvalKit's prediction files are <model>_<dataset>"
                       f".xlsx (its default) or .tsv")


def _read_tsv(path: Path) -> tuple[list[str], list[dict]]:
    text = read_text(path, "VLMEvalKit writes tsv in UTF-8", encoding="utf-8-sig")
    reader = csv.reader(text.splitlines(), delimiter="\t")
    rows = list(reader)
    if not rows:
        raise EvalkitError(f"{path}: is empty; give VLMEvalKit's prediction file (a header row, then one row per "
                           f"sample)")
    header = rows[0]
    out = []
    for n, r in enumerate(rows[1:], 2):
        if not any(c.strip() for c in r):
            continue
        if len(r) != len(header):
            raise EvalkitError(f"{path}:{n}: has {len(r)} fields, the header {len(header)}; give the file as "
                               f"VLMEvalKit wrote it (tab-separated, quoted where a field holds a tab or newline)")
        out.append({"_line": n, **dict(zip(header, r))})
    return header, out


def _read_xlsx(path: Path) -> tuple[list[str], list[dict]]:
    try:
        import openpyxl
    except ImportError:
        raise EvalkitError(f"{path}: reading .xlsx needs openpyxl: pip install 'evalkit[xlsx]' (or give "
                           f"VLMEvalKit's .tsv)") from None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several types for a file that is not a workbook
        raise EvalkitError(f"{path}: not a readable .xlsx workbook ({type(e).__name__}: {e}); give the file "
                           f"VLMEvalKit wrote") from None
    try:
        sheet = wb.worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
    finally:
        wb.close()
    if not rows:
        raise EvalkitError(f"{path}: the first sheet is empty; give VLMEvalKit's prediction file")
    header = ["" if c is None else str(c) for c in rows[0]]
    out = []
    for n, r in enumerate(rows[1:], 2):
        if all(c is None for c in r):
            continue
        out.append({"_line": n, **{h: ("" if c is None else _cell(c)) for h, c in zip(header, r)}})
    return header, out


def _cell(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _golds(answer: str) -> frozenset[str]:
    """VLMEvalKit's answer cell as a set of answers: a list literal is several (its own readers
    eval() it), anything else one."""
    text = answer.strip()
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
            if isinstance(value, (list, tuple)):
                return frozenset(fold(v) for v in value)
        except (ValueError, SyntaxError):
            pass
    return frozenset({fold(text)})


def read_vlmevalkit(path: Path, task: Task, data: LoadedData) -> tuple[Imported, LoadedData]:
    header, rows = read_table(path)
    needed = ("index", "question", "prediction") if task.id_field not in header else ("prediction",)
    missing = [c for c in needed if c not in header]
    if missing:
        raise EvalkitError(f"{path}: has no {', '.join(repr(c) for c in missing)} column (its columns: "
                           f"{', '.join(h for h in header if h)[:200]}); VLMEvalKit's prediction file has index, "
                           f"question, answer and prediction: give that file, not the dataset's tsv")
    plain = data.plain_rows()
    by_id, by_text = {}, {}
    for i, row in enumerate(plain):
        sid = task.sample_id(row, i)
        by_id[sid] = i
        golds = frozenset(fold(g) for g in task.gold(row))
        # evalkit's question (MathVista's prompt-ready `query`) and the dataset's raw `question`,
        # which is what VLMEvalKit's TSVs hold
        for text in {fold(task.question(row)), fold(row.get("question") or "")} - {""}:
            by_text.setdefault((text, golds), []).append(i)
    use_id = task.id_field in header
    seen: dict[str, int] = {}
    preds, matched, unmatched = {}, [], []
    for r in rows:
        n = r["_line"]
        if use_id:
            index = by_id.get(str(r[task.id_field]).strip())
            why = f"{task.id_field} {r[task.id_field]!r} is not in the data"
        else:
            if "answer" not in r:
                raise EvalkitError(f"{path}: has no {task.id_field} column and no 'answer' column; rows are matched "
                                   f"by question and answer when the file has no id: give VLMEvalKit's file")
            hits = by_text.get((fold(r["question"]), _golds(r["answer"])), [])
            index = hits[0] if len(hits) == 1 else None
            why = ("its question and answer match no data row" if not hits else
                   f"its question and answer match {len(hits)} data rows")
        # MMMU_DEV_VAL holds two splits; naming a row's split says why its dev rows match nothing
        split = f", split {r['split']}" if str(r.get("split") or "").strip() else ""
        label = f"line {n} (index {r.get('index', '?')}{split})"
        if index is None:
            unmatched.append(f"{label}: {why}")
            continue
        sid = task.sample_id(plain[index], index)
        if sid in seen:
            raise EvalkitError(f"{path}:{n}: matches {task.id_field} {sid!r}, as line {seen[sid]} does; give one "
                               f"prediction per sample (one VLMEvalKit run's file)")
        seen[sid] = n
        preds[sid] = r["prediction"]
        matched.append(index)
    if not matched:
        raise EvalkitError(f"{path}: none of its {len(rows)} rows matches a row of the {task.name} data "
                           f"({unmatched[0] if unmatched else 'no rows'}); give the data VLMEvalKit ran on with "
                           f"--data")
    m = _FILE.match(path.name)
    source = SourceRun(harness=HARNESS, task=m["dataset"] if m else None, model=m["model"] if m else None,
                       files=[str(path)], n_lines=len(rows),
                       matched_by=(f"the file's {task.id_field} column" if use_id else
                                   "question text and gold answers (the file keeps no id)"),
                       unmatched=unmatched[:MAX_LISTED], n_unmatched=len(unmatched))
    return Imported(source, preds), data.narrowed(matched)
