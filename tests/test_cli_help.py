"""--help: every option states its default, no Python syntax, and the README's command list
is the parser's (commands, their order, options, choices and the defaults it shows), all
generated from the parser's command table."""

import argparse
import re
from pathlib import Path

import pytest

from ssimref import cli

README = Path(__file__).resolve().parents[1] / "README.md"
PARSERS = list(cli.iter_parsers(cli.build_parser()))

# What Python prints and a user should never read: reprs of None and booleans, lists and
# tuples of strings, dtypes, classes, private or dunder names.
PYTHON = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|[\[(]'[^']*',|dtype\(|<class|\b_[a-z]\w*|"
                    r"__\w+__")


def help_of(parser, action):
    return parser._get_formatter()._get_help_string(action) or ""


def options(parser):
    return [a for a in parser._actions if a.option_strings
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))
            and a.help != argparse.SUPPRESS]


def leaves():
    return {words: p for words, p in PARSERS
            if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)}


@pytest.mark.parametrize("words, parser", PARSERS, ids=[" ".join(w) or "ssimref"
                                                        for w, _ in PARSERS])
def test_every_option_states_its_default(words, parser):
    """Options that take a value (and the --x/--no-x switches) say what happens when they
    are left out; plain flags (--force) are off unless given."""
    missing = [a.option_strings[-1] for a in options(parser)
               if not a.required and (a.nargs != 0 or isinstance(
                   a, argparse.BooleanOptionalAction))
               and (not a.help or "default" not in help_of(parser, a))]
    assert not missing, f"ssimref {' '.join(words)}: no default stated for {missing}"
    # argparse prints nothing at all for an option without help text
    silent = [a.option_strings[-1] for a in options(parser) if not a.help]
    assert not silent, f"ssimref {' '.join(words)}: no help text for {silent}"


@pytest.mark.parametrize("words, parser", PARSERS, ids=[" ".join(w) or "ssimref"
                                                        for w, _ in PARSERS])
def test_help_has_no_python_syntax(words, parser):
    text = parser.format_help()
    assert not PYTHON.search(text), (words, PYTHON.search(text).group(0))


def readme_entries():
    """The command lines of the README's "Command line" block, continuation lines
    joined."""
    entries = []
    for line in README.read_text().split("## Command line", 1)[1].splitlines():
        if line.startswith("    ssimref "):
            entries.append(line.split()[1:])
        elif line.startswith("     ") and entries:
            entries[-1] += line.split()
        elif line.strip() and not line.startswith("    "):
            break  # the prose after the block
    return entries


def resolve(words):
    """The parsers a README entry stands for (``train vae|gan`` stands for two) and the
    tokens after the command's name."""
    found = [((), PARSERS[0][1])]
    i = 0
    while i < len(words):
        subs = [a for a in found[0][1]._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            break
        names = words[i].split("|")
        assert set(names) <= set(subs[0].choices), f"README: unknown command {words[i]}"
        found = [(found[0][0] + (n,), subs[0].choices[n]) for n in names]
        i += 1
    return found, words[i:]


def test_the_readme_lists_every_command_of_the_parser_in_its_order():
    listed = []
    for words in readme_entries():
        found, _ = resolve(words)
        listed += [w for w, _ in found]
    assert sorted(listed) == sorted(leaves()), "README commands differ from the parser's"
    assert len(listed) == len(set(listed))
    top = [w[0] for w in listed]
    assert list(dict.fromkeys(top)) == [c.NAME for c in cli.COMMANDS]  # --help's order


def test_the_readme_options_choices_and_defaults_are_the_parsers():
    for words in readme_entries():
        found, rest = resolve(words)
        tokens = " ".join(rest).replace("[", " [ ").replace("]", " ] ").split()
        for k, token in enumerate(tokens):
            if not re.fullmatch(r"--?[a-z][a-z0-9-]*", token):
                continue
            actions = [a for _, p in found for a in p._actions if token in a.option_strings]
            assert actions, f"README: ssimref {' '.join(words[:2])} has no option {token}"
            value = tokens[k + 1] if k + 1 < len(tokens) else "]"
            following = tokens[k + 2] if k + 2 < len(tokens) else "]"
            for action in actions:
                if "|" in value and action.choices is not None:
                    listed = set(value.split("|"))
                    if following == "...":  # some of the choices
                        assert listed <= set(map(str, action.choices)), (token, listed)
                    else:
                        assert listed == set(map(str, action.choices)), (token, listed)
                if re.fullmatch(r"-?\d[0-9.e-]*", value) and tokens[k - 1] == "[":
                    parser = next(p for _, p in found if action in p._actions)
                    text = help_of(parser, action)
                    assert re.search(rf"default:? {re.escape(value)}\b", text), \
                        (token, value, text)


def test_top_level_help_lists_the_commands_in_the_table_order(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    places = [out.index(f"    {c.NAME} ") for c in cli.COMMANDS]
    assert places == sorted(places)


@pytest.mark.parametrize("message, expected", [
    ("size=9 is larger than the images of images (8x8 pixels)",
     "--size 9 is larger than the images of IMAGES (8x8 pixels)"),
    ("sigma=0.1 with covariance='sample' is refused; use window='uniform'",
     "--sigma 0.1 with --covariance sample is refused; use --window uniform"),
    ("channel_axis=5 needs 4 dimensions (leave channel_axis=None for 2-D data)",
     "--channel-axis 5 needs 4 dimensions (leave out --channel-axis for 2-D data)"),
    ("working_memory must be > 0", "--working-memory must be > 0"),
    ("backend must be one of ('auto', 'reference', 'numba', 'cupy'), got 'x'",
     "--backend must be one of auto, reference, numba, cupy, got 'x'"),
    ("available: ['reference']", "available: reference"),
    ("a plain sentence about size and images", "a plain sentence about size and images"),
])
def test_library_messages_in_the_command_lines_words(message, expected):
    from ssimref.cli.common import cli_wording
    assert cli_wording(message, cli.build_parser()) == expected


@pytest.fixture
def stacks(tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    np.save(tmp_path / "u8.npy", rng.integers(0, 256, (4, 8, 8), dtype=np.uint8))
    np.save(tmp_path / "f.npy", rng.random((4, 8, 8)))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 8, 8), np.uint8), b=np.zeros((2, 8, 8)))
    return tmp_path


@pytest.mark.parametrize("argv", [
    "distance u8.npy -o D.npy --size 9",
    "distance u8.npy -o D.npy --sigma 0.1",
    "distance u8.npy -o D.npy --channel-axis 5",
    "distance u8.npy -o D.npy --working-memory -1",
    "distance f.npy -o D.npy",
    "distance two.npz -o D.npy",
    "distance two.npz --key c -o D.npy",
    "distance digits:nope -o D.npy",
    "distance u8.npy -o D.txt",
    "kernel u8.npy -o K.npy --power 3",
    "mmd u8.npy f.npy --permutations 0",
    "verify skimage --convention nope",
])
def test_user_mistakes_read_as_one_line_without_python_syntax(argv, stacks, capsys,
                                                               monkeypatch):
    monkeypatch.chdir(stacks)
    assert cli.main(argv.split()) == 2
    err = capsys.readouterr().err
    assert err.startswith("ssimref: error: ") and err.count("\n") == 1
    assert not PYTHON.search(err), PYTHON.search(err).group(0)
    assert not re.search(r"\b[a-z]+_[a-z_]+=", err), err  # no Python keyword arguments
