"""Every command the README and the docs pages show runs as written: its
program exists and can be run that way, and every --flag it shows is one the
program accepts. The README stays a landing page (at most 200 lines)."""
import glob
import functools
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = '.venv/bin/python'


DOCUMENTS = ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def readme_commands() -> list[str]:
    """Commands of the ```bash blocks (continuations joined, comments cut)
    and of the inline code spans that start with a tool, in the README and
    every docs page."""
    text = ''
    for document in DOCUMENTS:
        with open(os.path.join(ROOT, document)) as handle:
            text += handle.read() + '\n'
    commands = []
    for block in re.findall(r'```bash\n(.*?)```', text, flags=re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = re.sub(r'(^|\s)#.*$', '', line).strip()
            if line:
                commands.append(line)
    for span in re.findall(r'`([^`\n]+)`', re.sub(r'```.*?```', '', text, flags=re.S)):
        if re.match(r'(\.venv/bin/python )?tools/\S+ ', span):
            commands.append(span)
    return commands


def program_and_flags(command: str) -> tuple[list[str], list[str]]:
    """(the program as argv prefix, the --flags shown), placeholders dropped."""
    command = re.sub(r'<[^<>]*>', 'PLACEHOLDER', command)  # <index of the cu126 builds>
    words = shlex.split(command.replace('[', ' ').replace(']', ' '))
    while words and re.match(r'^[A-Z_][A-Z0-9_]*=', words[0]):  # VAR=value prefixes
        words.pop(0)
    program = words[:2] if words[0] == PYTHON else words[:1]
    flags = [w.split('=')[0] for w in words[len(program):] if w.startswith('--') and w != '--help']
    return program, flags


@functools.lru_cache(maxsize=None)
def help_text(program: tuple) -> str:
    """The program's --help (run with this interpreter for .venv/bin/python)."""
    argv = [sys.executable, *program[1:]] if program[0] == PYTHON else [os.path.join(ROOT, program[0])]
    result = subprocess.run([*argv, '--help'], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, R2O_SKIP_SETUP='1'))
    assert result.returncode == 0, f'{" ".join(program)} --help failed: {result.stderr[-2000:]}'
    return result.stdout + result.stderr


COMMANDS = list(dict.fromkeys(readme_commands()))


def test_the_readme_shows_commands():
    assert len(COMMANDS) > 30
    assert 'tools/run_tests.sh' in COMMANDS and 'tools/demo.sh' in COMMANDS


@pytest.mark.parametrize('command', COMMANDS)
def test_readme_command_runs_as_written(command):
    program, flags = program_and_flags(command)
    if program[0] == PYTHON:
        if program[1] in ('-c', '-m'):
            return  # inline Python: the modules it names are imported by other tests
        path = os.path.join(ROOT, program[1])
        assert os.path.isfile(path), f'{command}: {program[1]} does not exist'
    else:
        path = os.path.join(ROOT, program[0])
        assert os.path.isfile(path), f'{command}: {program[0]} does not exist'
        assert os.access(path, os.X_OK), f'{command}: {program[0]} is not executable (run bit, shebang)'
        with open(path) as handle:
            assert handle.readline().startswith('#!'), f'{program[0]} has no shebang'
    accepted = help_text(tuple(program))
    if program[0] in ('tools/dist_train.sh', 'tools/slurm_train.sh'):  # they pass train.py's options on
        accepted += help_text((PYTHON, 'tools/train.py'))
    for flag in flags:
        assert re.search(re.escape(flag) + r'\b', accepted), f'{command}: {flag} is not an option of {program}'


def test_python_tools_are_shown_with_the_interpreter():
    """A tools/*.py is shown with the interpreter unless it runs itself
    (executable, a shebang, its own set-up: tools/reproduce.py)."""
    bare = {program_and_flags(c)[0][0] for c in COMMANDS if re.match(r'tools/\S+\.py', program_and_flags(c)[0][0])}
    assert bare == {'tools/reproduce.py'}
    with open(os.path.join(ROOT, 'tools', 'reproduce.py')) as handle:
        head = handle.read(400)
    assert head.startswith('#!/bin/sh') and 'tools/setup_env.sh' in head and '.venv/bin/python' in head


def test_readme_is_a_landing_page():
    with open(os.path.join(ROOT, 'README.md')) as handle:
        lines = handle.read().splitlines()
    assert len(lines) <= 200, f'README.md has {len(lines)} lines: move details to docs/'
    # Every docs page is linked from the README or reachable from docs/index.md, which the README links.
    assert any('docs/index.md' in line for line in lines)


def test_readme_names_no_outside_document():
    with open(os.path.join(ROOT, 'README.md')) as handle:
        text = handle.read()
    assert 'SPEC' not in text
    for path in re.findall(r'\]\((?!http)([^)#]+)', text):  # relative links
        assert os.path.exists(os.path.join(ROOT, path)), path
    quirks = sorted({int(n) for n in re.findall(r'\bQ(\d+)\b', text)})
    with open(os.path.join(ROOT, 'docs', 'method.md')) as handle:
        documented = sorted({int(n) for n in re.findall(r'\*\*Q(\d+) ', handle.read())})
    assert documented == list(range(1, 11))
    assert set(quirks) <= set(documented)
