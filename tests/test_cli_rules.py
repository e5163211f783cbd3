"""``budget-pipeline rules preview``: CliRunner for behaviour, one real subprocess for the wiring."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import budget_pipeline
from budget_pipeline.cli import app
from budget_pipeline.cli_rules import AdsetsCsvError, read_adsets_csv
from budget_pipeline.engine.meta_rules import load_rule

EXAMPLES = Path(budget_pipeline.__file__).parent / "examples" / "rules"
KEYS = ["adset_id", "campaign_id", "budget_type", "old_budget", "new_budget", "paused", "reason"]

# Meta's NO_PAUSE_PROPORTIONAL example, plus a lifetime ad set in its own campaign.
GOOD_CSV = """adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view
1,c1,3000,,,1
2,c1,3000,,,2
3,c1,3000,,,3
4,c1,3000,,,4
5,c1,3000,,,5
6,c2,,10000,2500,1
7,c2,,5000,1000,4
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str | bytes, name: str = "adsets.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def preview(runner: CliRunner, rule: Path, adsets: Path, *extra: str):
    args = ["rules", "preview", "--rule", str(rule), "--adsets", str(adsets), *extra]
    return runner.invoke(app, args)


NO_PAUSE = EXAMPLES / "no_pause_proportional.json"


def test_json_output_is_the_plan(runner: CliRunner, tmp_path: Path) -> None:
    result = preview(runner, NO_PAUSE, write(tmp_path, GOOD_CSV), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [list(row) for row in plan] == [KEYS] * 7
    assert [row["new_budget"] for row in plan[:5]] == [400, 800, 4200, 4600, 5000]
    # c2 lifetime: 6 matched (leftover 7500) donates D = 7500, shared 1:4 by video_view →
    # 1500 (6 keeps only that) and 6000 (7 adds it to its leftover 4000);
    # new lifetime_budget = lifetime_spend + new leftover.
    assert plan[5] == {
        "adset_id": "6",
        "campaign_id": "c2",
        "budget_type": "lifetime",
        "old_budget": 10000,
        "new_budget": 2500 + 1500,
        "paused": False,
        "reason": "matched: keeps its share 1500 of 7500",
    }
    assert plan[6]["new_budget"] == 1000 + 4000 + 6000
    assert all(isinstance(row["new_budget"], int) for row in plan)
    assert result.stderr == ""


def test_text_output_is_an_aligned_table(runner: CliRunner, tmp_path: Path) -> None:
    result = preview(runner, NO_PAUSE, write(tmp_path, GOOD_CSV))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "NO_PAUSE_PROPORTIONAL: 3 of 7 ad sets matched, 0 paused" in lines[0]
    header = lines[1]
    for key in KEYS:
        assert key in header
    rows = [line for line in lines[3:] if line.startswith("|")]
    assert len(rows) == 7
    assert len({len(line) for line in lines[1:]}) == 1  # aligned: every line the same width
    assert "| 4200 " in rows[2]


def test_even_example_pauses_in_text_and_json(runner: CliRunner, tmp_path: Path) -> None:
    csv = (
        "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,impressions,"
        "audience_reached_percentage\n"
        "a,c1,1000,,,9000,80\n"
        "b,c1,1000,,,100,10\n"
        "c,c1,1001,,,9000,90\n"
    )
    result = preview(runner, EXAMPLES / "even.json", write(tmp_path, csv), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [(r["new_budget"], r["paused"]) for r in plan] == [
        (1000, True),
        (3001, False),
        (1001, True),
    ]


def test_action_frequency_from_a_last_applied_column(runner: CliRunner, tmp_path: Path) -> None:
    csv = (
        "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,"
        "website_purchase_roas,yesterday__spent,last_applied\n"
        "a,c1,10000,,,3.0,50,2026-03-02T00:00:00\n"
        "b,c1,10000,,,3.0,50,2026-02-28T00:00:00\n"
        "c,c1,10000,,,3.0,50,\n"
    )
    result = preview(
        runner,
        EXAMPLES / "change_budget.json",
        write(tmp_path, csv),
        "--json",
        "--now",
        "2026-03-02T06:00:00",
    )
    assert result.exit_code == 0, result.output
    assert [r["new_budget"] for r in json.loads(result.stdout)] == [10000, 11500, 11500]


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,3000,,,1\n"
            "2,c1,abc,,,2\n",
            "row 3, column daily_budget: 'abc' is not an integer number of minor units",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,-5,,,1\n",
            "row 2, column daily_budget: '-5' is not an integer number of minor units",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,30.5,,,1\n",
            "row 2, column daily_budget: '30.5' is not an integer number of minor units",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,video_view\n1,c1,3000,,1\n",
            "missing required column(s): lifetime_spend",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,3000,,,1\n"
            "2,c1,3000,5000,100,2\n",
            "row 3: ad set '2' has both a daily_budget and a lifetime_budget",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,,,,1\n",
            "row 2: ad set '1' has neither a daily_budget nor a lifetime_budget",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,,5000,,1\n",
            "row 2, column lifetime_spend: empty, but ad set '1' has a lifetime_budget",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,,5000,6000,1\n",
            "row 2, column lifetime_spend: 6000 is above lifetime_budget",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,100,,,1\n"
            "1,c1,100,,,2\n",
            "row 3, column adset_id: duplicate '1' (first on row 2)",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,,100,,,1\n",
            "row 2, column campaign_id: empty",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view\n"
            "1,c1,100,,,1\n"
            "2,c1,100,,,n/a\n",
            "row 3, column video_view: 'n/a' is not a number",
        ),
        (
            "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,views\n"
            "1,c1,100,,,1\n",
            "field 'video_view': no such column",
        ),
    ],
)
def test_bad_adsets_exit_2_naming_row_and_column(
    runner: CliRunner, tmp_path: Path, csv: str, message: str
) -> None:
    result = preview(runner, NO_PAUSE, write(tmp_path, csv), "--json")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_bad_rule_exits_2_naming_the_operator(runner: CliRunner, tmp_path: Path) -> None:
    rule = json.loads(NO_PAUSE.read_text())
    rule["evaluation_spec"]["filters"][2]["operator"] = "LESS_OR_EQUAL"
    rule_path = write(tmp_path, json.dumps(rule), "rule.json")
    result = preview(runner, rule_path, write(tmp_path, GOOD_CSV))
    assert result.exit_code == 2
    assert (
        "evaluation_spec.filters[2].operator: unsupported operator 'LESS_OR_EQUAL'" in result.stderr
    )


def test_missing_files_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    result = preview(runner, tmp_path / "nope.json", write(tmp_path, GOOD_CSV))
    assert result.exit_code == 2 and "rule file not found" in result.stderr
    result = preview(runner, NO_PAUSE, tmp_path / "nope.csv")
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_read_adsets_csv_types(tmp_path: Path) -> None:
    csv = (
        "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,video_view,name,note\n"
        "1,c1,3000,,,1.5,prospecting,x\n"
        "2,c1, 200 ,,,,retargeting,\n"
    )
    frame = read_adsets_csv(write(tmp_path, csv), load_rule(NO_PAUSE))
    assert frame.schema["daily_budget"] == frame.schema["lifetime_budget"]
    assert str(frame.schema["daily_budget"]) == "Int64"
    assert frame["daily_budget"].to_list() == [3000, 200]
    assert frame["lifetime_budget"].to_list() == [None, None]
    assert str(frame.schema["video_view"]) == "Float64"
    assert frame["video_view"].to_list() == [1.5, None]
    assert str(frame.schema["name"]) == "String"
    assert str(frame.schema["note"]) == "String"
    with pytest.raises(AdsetsCsvError, match="no such file"):
        read_adsets_csv(tmp_path / "missing.csv")


def cli_command(*args: str) -> list[str]:
    """The installed console script, or ``python -m budget_pipeline.cli_rules`` before it exists."""
    script = Path(sys.executable).parent / "budget-pipeline"
    found = str(script) if script.exists() else shutil.which("budget-pipeline")
    if found:
        return [found, "rules", *args]
    return [sys.executable, "-m", "budget_pipeline.cli_rules", *args]


def test_installed_console_script_runs_the_preview(tmp_path: Path) -> None:
    adsets = write(tmp_path, GOOD_CSV)
    command = cli_command("preview", "--rule", str(NO_PAUSE), "--adsets", str(adsets), "--json")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [row["new_budget"] for row in plan[:5]] == [400, 800, 4200, 4600, 5000]

    bad = write(tmp_path, GOOD_CSV.replace("2,c1,3000", "2,c1,abc"), "bad.csv")
    command = cli_command("preview", "--rule", str(NO_PAUSE), "--adsets", str(bad), "--json")
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert (
        "row 3, column daily_budget: 'abc' is not an integer number of minor units" in done.stderr
    )
    assert done.stdout == ""


def test_json_carries_the_reason_the_table_shows(runner: CliRunner, tmp_path: Path) -> None:
    adsets = write(tmp_path, GOOD_CSV)
    as_json = json.loads(preview(runner, NO_PAUSE, adsets, "--json").stdout)
    table = preview(runner, NO_PAUSE, adsets).stdout
    assert [row["reason"] for row in as_json][:4] == [
        "matched: keeps its share 400 of 6000",
        "matched: keeps its share 800 of 6000",
        "recipient: +1200 (share of 6000)",
        "recipient: +1600 (share of 6000)",
    ]
    assert all(f"| {row['reason']}" in table for row in as_json)


def test_18_digit_budgets_split_evenly_to_the_minor_unit(runner: CliRunner, tmp_path: Path):
    csv = (
        "adset_id,campaign_id,daily_budget,lifetime_budget,lifetime_spend,impressions,"
        "audience_reached_percentage\n"
        "1,c1,999999999999999999,,,9000,80\n"
        "2,c1,3,,,10,10\n"
        "3,c1,5,,,10,10\n"
        "4,c1,7,,,10,10\n"
    )
    result = preview(runner, EXAMPLES / "even.json", write(tmp_path, csv), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [r["new_budget"] - r["old_budget"] for r in plan[1:]] == [333333333333333333] * 3


BAD_INPUTS = {
    "a directory of CSVs": lambda d: ("rule", d / "csvs"),
    "a binary CSV": lambda d: ("rule", write(d, b"\x89PNG\r\n\x1a\n\x00\x00", "a.png")),
    "a Latin-1 CSV": lambda d: (
        "rule",
        write(d, GOOD_CSV.replace("c2", "\xe92").encode("latin-1")),
    ),
    "an empty CSV": lambda d: ("rule", write(d, "", "empty.csv")),
    "a 19-digit budget": lambda d: ("rule", write(d, GOOD_CSV.replace("3000", "9" * 19, 1))),
    "budgets beyond int64 in sum": lambda d: (
        "rule",
        write(d, GOOD_CSV.split("\n")[0] + "".join(f"\n{i},c1,{'9' * 18},,,1" for i in range(10))),
    ),
    "a rule that is a directory": lambda d: ("dir", write(d, GOOD_CSV)),
    "a binary rule": lambda d: ("binary", write(d, GOOD_CSV)),
}
BAD_MESSAGES = {
    "a directory of CSVs": "csvs is a directory: give one CSV file",
    "a binary CSV": "a.png is a binary file",
    "a Latin-1 CSV": "is not UTF-8 text (byte 0xe9",
    "an empty CSV": "empty.csv is empty",
    "a 19-digit budget": "column daily_budget: '9999999999999999999' has more than 18 digits",
    "budgets beyond int64 in sum": "the budgets add up to 9999999999999999990 minor units",
    "a rule that is a directory": "is a directory, not a file",
    "a binary rule": "rule.bin is a binary file",
}


def _bad_args(tmp_path: Path, case: str) -> list[str]:
    (tmp_path / "csvs").mkdir()
    write(tmp_path / "csvs", GOOD_CSV, "a.csv")
    write(tmp_path / "csvs", GOOD_CSV.replace("c1", "c9"), "b.csv")
    kind, adsets = BAD_INPUTS[case](tmp_path)
    rule = {
        "rule": NO_PAUSE,
        "dir": tmp_path / "csvs",
        "binary": write(tmp_path, b"\x00\x01{", "rule.bin"),
    }[kind]
    return ["preview", "--rule", str(rule), "--adsets", str(adsets), "--json"]


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_files_exit_2_with_one_message_and_no_traceback(
    runner: CliRunner, tmp_path: Path, case: str
) -> None:
    result = runner.invoke(app, ["rules", *_bad_args(tmp_path, case)])
    assert result.exit_code == 2, result.output
    assert BAD_MESSAGES[case] in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_bad_now_exits_2_naming_the_option(runner: CliRunner, tmp_path: Path) -> None:
    result = preview(runner, NO_PAUSE, write(tmp_path, GOOD_CSV), "--now", "yesterday")
    assert result.exit_code == 2
    assert "--now: 'yesterday' is not an ISO 8601 time" in result.stderr


def test_the_installed_command_refuses_a_directory_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        cli_command(*_bad_args(tmp_path, "a directory of CSVs")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert BAD_MESSAGES["a directory of CSVs"] in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
