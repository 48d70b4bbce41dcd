"""Nothing the documentation names may be missing.

What is read: ``README.md`` and ``docs/*.md`` (all their text), and for every
tool (``tools/**/*.py``) its module docstring and its argparse text
(description, epilog, each option's help and string default).

What is checked:

1. **Repository paths.** A token that starts with one of the repository's
   top-level folders (:data:`ROOT_FOLDERS`: ``configs/``, ``tools/``,
   ``docs/``, ...) or is one of its top-level files (:data:`ROOT_FILES`) must
   exist, as a file or a folder. Paths are written from the repository root,
   in ``docs/`` too. ``{s,b}`` is expanded; ``*`` and ``?`` must match at
   least one path.
2. **Markdown links** ``[text](target)`` of README.md and docs/*.md that are
   not URLs: the target exists relative to the linking file, and a
   ``#anchor`` is a heading of the target (GitHub's heading slugs).
3. **Module names** ``stvit_mm.a.b``: a module of the package, or a name
   defined (or imported) in its parent module.
4. **Command options.** In fenced shell blocks (``bash``, ``sh``, ``shell``,
   ``console`` or no language) and in inline code spans of README.md and
   docs/*.md, and in the tools' docstrings: every ``python tools/X.py ...``,
   ``bash tools/X.sh ...`` and ``tools/X.sh ...`` command. Each ``--option``
   (or ``-x``) shown must be accepted by that tool's argparse parser
   (``tools/dist_train.sh`` passes its options to ``tools/train.py``,
   ``tools/dist_test.sh`` to ``tools/test.py``; other shell scripts take no
   options). The parser is taken from the tool without running it: the tool
   module is imported from its file, and its ``parse_args`` (else ``main``)
   is called with ``argparse.ArgumentParser.parse_args`` replaced by a
   function that hands back the parser.
5. **make.** ``make TARGET`` names a target of the Makefile, and options in
   ``make TARGET VAR="..."`` are accepted by the tool that the target's
   recipe passes ``$(VAR)`` to.

Exempt (:func:`exempt`): paths under ``work_dirs/``, ``data/``,
``checkpoints/`` and ``/tmp`` (run outputs and user data), the install's
``.venv/`` and ``.whl/``, the wheel's ``stvit_mm/.mim/`` (made when the wheel
is built), and placeholders: a path holding ``<``, ``>`` or ``...``, or a
component that is an all-capital word such as ``CKPT`` or ``CONFIG``. Such
paths are not candidates of rule 1 anyway unless they start with a
top-level folder.
"""
import argparse
import ast
import functools
import glob
import importlib.util
import re
import shlex
from pathlib import Path
from unittest import mock

import pytest

from helpers.paths import REPO

#: Top-level folders of the repository: a token starting with one of these
#: and a slash is a repository path.
ROOT_FOLDERS = ('configs', 'tools', 'docs', 'stvit_mm', 'tests',
                'requirements', '.ci')
#: Top-level files of the repository that the documentation may name.
ROOT_FILES = ('README.md', 'CHANGELOG.md', 'LICENSE', 'CITATION.cff',
              'Makefile', 'requirements.txt', 'setup.py', 'pytest.ini',
              'MANIFEST.in')
#: Paths that need not exist (see the module docstring).
EXEMPT_PREFIXES = ('work_dirs/', 'data/', 'checkpoints/', '/tmp', '.venv/',
                   '.whl/', 'stvit_mm/.mim/')
#: Languages of fenced blocks holding shell commands.
SHELL_LANGUAGES = {'', 'bash', 'sh', 'shell', 'console'}
#: Shell scripts whose options are those of a Python tool.
SCRIPT_TOOLS = {'tools/dist_train.sh': 'tools/train.py',
                'tools/dist_test.sh': 'tools/test.py'}

_PATH_CHARS = r'[\w.*?{},<>\-]'
PATH_RE = re.compile(
    r'(?<![\w./~:-])(?:\./)?((?:' +
    '|'.join(re.escape(f) for f in ROOT_FOLDERS) + r')/' + _PATH_CHARS +
    r'*(?:/' + _PATH_CHARS + r'*)*)')
ROOT_FILE_RE = re.compile(r'(?<![\w./-])(' + '|'.join(
    re.escape(f) for f in ROOT_FILES) + r')(?![\w/-])')
MODULE_RE = re.compile(r'(?<![\w./])stvit_mm(?:\.\w+)+')
LINK_RE = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
FENCE_RE = re.compile(r'^```([\w-]*)[^\n]*\n(.*?)^```', re.M | re.S)
INLINE_CODE_RE = re.compile(r'(?<!`)`([^`\n]+)`(?!`)')
PLACEHOLDER_PART_RE = re.compile(r'^[A-Z][A-Z0-9_]*$')


def doc_files():
    return [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]


def tool_files():
    return sorted((REPO / 'tools').rglob('*.py'))


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def join_continuations(text: str) -> str:
    """Shell line continuations (backslash, newline) joined: the next line's
    indentation separates the words, and a path split at a slash joins."""
    return text.replace('\\\n', '')


def exempt(path: str) -> bool:
    path = path[2:] if path.startswith('./') else path
    if path.startswith(EXEMPT_PREFIXES):
        return True
    if '<' in path or '>' in path or '...' in path:
        return True
    return any(PLACEHOLDER_PART_RE.match(Path(part).stem)
               for part in path.split('/') if part)


def expand_braces(path: str):
    match = re.search(r'\{([^{}]*)\}', path)
    if not match:
        return [path]
    return [
        expanded for choice in match.group(1).split(',')
        for expanded in expand_braces(path[:match.start()] + choice +
                                      path[match.end():])
    ]


def path_exists(path: str) -> bool:
    if any(c in path for c in '*?'):
        return bool(glob.glob(str(REPO / path)))
    return (REPO / path).exists()


def named_paths(text: str):
    """The repository paths (rule 1) that ``text`` names."""
    text = join_continuations(text)
    found = set()
    for match in PATH_RE.finditer(text):
        path = match.group(1).rstrip('.,;:')
        if path.startswith('./'):
            path = path[2:]
        found.add(path)
    found.update(m.group(1) for m in ROOT_FILE_RE.finditer(text))
    return found


def missing_paths(text: str):
    return sorted(
        path for path in named_paths(text) if not exempt(path)
        and not all(path_exists(p) for p in expand_braces(path)))


# ---------------------------------------------------------------------------
# Links and module names
# ---------------------------------------------------------------------------
def heading_slugs(markdown: str):
    """GitHub's anchors of the headings of a Markdown text."""
    slugs = set()
    text = FENCE_RE.sub('', markdown)
    for line in text.splitlines():
        match = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if match:
            title = re.sub(r'[^\w\- ]', '', match.group(1).lower())
            slugs.add(title.replace(' ', '-'))
    return slugs


def broken_links(doc: Path):
    problems = []
    for target in LINK_RE.findall(doc.read_text()):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # a URL, mailto: etc.
            continue
        file_part, _, anchor = target.partition('#')
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            problems.append(f'{target}: {linked} does not exist')
        elif anchor and linked.suffix == '.md' and anchor not in heading_slugs(
                linked.read_text()):
            problems.append(f'{target}: no heading #{anchor} in '
                            f'{linked.name}')
    return problems


def module_resolves(name: str) -> bool:
    parts = name.split('.')
    for i in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:i])
        module = base.with_suffix('.py') if base.with_suffix(
            '.py').is_file() else base / '__init__.py'
        if module.is_file():
            rest = parts[i:]
            if rest and re.fullmatch(r'__\w+__', rest[0]):
                return True  # a module's own attribute (__file__, ...)
            return not rest or re.search(rf'\b{re.escape(rest[0])}\b',
                                         module.read_text()) is not None
    return False


def unknown_modules(text: str):
    return sorted({m.group(0) for m in MODULE_RE.finditer(text)
                   if not module_resolves(m.group(0))})


# ---------------------------------------------------------------------------
# Tools' parsers
# ---------------------------------------------------------------------------
class _ParserCaptured(Exception):

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def _hand_back(self, *args, **kwargs):
    raise _ParserCaptured(self)


@functools.lru_cache(maxsize=None)
def tool_parser(tool: str) -> argparse.ArgumentParser:
    """The argparse parser of ``tools/...py``, without running the tool."""
    path = REPO / tool
    spec = importlib.util.spec_from_file_location(
        'docs_checked_' + re.sub(r'\W', '_', tool), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry = (getattr(module, 'build_parser', None)
             or getattr(module, 'parse_args', None) or module.main)
    with mock.patch.object(argparse.ArgumentParser, 'parse_args',
                           _hand_back), \
            mock.patch.object(argparse.ArgumentParser, 'parse_known_args',
                              _hand_back):
        try:
            result = entry([])
        except _ParserCaptured as captured:
            return captured.parser
    assert isinstance(result, argparse.ArgumentParser), (
        f'{tool}: found no argparse parser through {entry.__name__}')
    return result


def parser_text(parser: argparse.ArgumentParser) -> str:
    """Description, epilog and every option's help and string default."""
    texts = [parser.description or '', parser.epilog or '']
    for action in parser._actions:
        texts.append(action.help or '')
        if isinstance(action.default, str):
            texts.append(action.default)
    return '\n'.join(texts)


def tool_docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ''


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
def shell_words(line: str):
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in prose or a comment
        return line.split(' #')[0].split()


def split_commands(words):
    command = []
    for word in words:
        if word in ('&&', '||', ';', '|'):
            if command:
                yield command
            command = []
        else:
            command.append(word)
    if command:
        yield command


def options_shown(words):
    """The options among a command's words (``[--opt]`` included)."""
    for word in words:
        word = word.strip('[]')
        if word.startswith('--') and len(word) > 2:
            yield word.split('=', 1)[0]
        elif re.fullmatch(r'-[A-Za-z]', word):
            yield word


@functools.lru_cache(maxsize=None)
def makefile_targets():
    """target -> its recipe lines."""
    targets, current = {}, []
    for line in (REPO / 'Makefile').read_text().splitlines():
        match = re.match(r'^([\w.$()/-]+(?:\s+[\w.-]+)*)\s*:(?!=)', line)
        if match and not line.startswith('\t'):
            current = []
            for name in match.group(1).split():
                targets[name] = current
        elif line.startswith('\t'):
            current.append(line.strip())
    return targets


def check_command(words, where):
    """Problems with one command (rules 4 and 5). The command is the first
    word after any ``VAR=value`` assignments."""
    while words and re.match(r'^\w+=', words[0]):
        words = words[1:]
    if not words:
        return []
    first, args = words[0], words[1:]
    if first == 'make':
        return check_make(args, where)
    if first == 'bash' and args:
        first, args = args[0], args[1:]
    elif re.fullmatch(r'(?:\S*/)?python[\d.]*', first) and args:
        first, args = args[0], args[1:]
        if not first.endswith('.py'):
            return []
    tool = first[2:] if first.startswith('./') else first
    if not tool.startswith('tools/'):
        return []
    if tool.endswith('.py'):
        return unknown_options(tool, args, where)
    if tool in SCRIPT_TOOLS:
        return unknown_options(SCRIPT_TOOLS[tool], args, where)
    return [] if (REPO / tool).is_file() else [f'{where}: {tool} does not '
                                                'exist']


def unknown_options(tool, args, where):
    if not (REPO / tool).is_file():
        return [f'{where}: {tool} does not exist']
    accepted = tool_parser(tool)._option_string_actions
    return [f'{where}: {tool} has no option {option}'
            for option in options_shown(args) if option not in accepted]


def check_make(args, where):
    targets = makefile_targets()
    names = [a for a in args if not a.startswith('-') and '=' not in a]
    problems = [f'{where}: the Makefile has no target {name}'
                for name in names if name not in targets]
    for assignment in (a for a in args if '=' in a):
        var, _, value = assignment.partition('=')
        for name in names:
            for recipe in targets.get(name, ()):
                tool = re.search(r'(tools/\S+\.py)', recipe)
                if f'$({var})' in recipe and tool:
                    problems += unknown_options(tool.group(1),
                                                shell_words(value), where)
    return problems


def commands_of_markdown(markdown: str):
    """Shell lines of the fenced shell blocks and the inline code spans that
    start with python, bash, a tools/ script or make."""
    for lang, body in FENCE_RE.findall(markdown):
        if lang.lower() in SHELL_LANGUAGES:
            yield from join_continuations(body).splitlines()
    prose = FENCE_RE.sub('', markdown)
    for span in INLINE_CODE_RE.findall(prose):
        if re.match(r'^(?:\S*python[\d.]*|bash|make)\s|^tools/\S+\.sh\b',
                    span):
            yield span


def commands_of_docstring(docstring: str):
    for line in join_continuations(docstring).splitlines():
        start = line.find('python tools/')
        if start < 0:
            start = line.find('tools/dist_')
        if start >= 0:
            yield line[start:]


def command_problems(lines, where):
    problems = []
    for line in lines:
        for words in split_commands(shell_words(line)):
            problems += check_command(words, where)
    return problems


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
DOCS = doc_files()
TOOLS = tool_files()


def test_documentation_exists():
    assert (REPO / 'README.md').is_file()
    assert len(DOCS) > 1, 'docs/*.md: no pages'


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_doc_paths_exist(doc):
    assert missing_paths(doc.read_text()) == [], (
        f'{rel(doc)} names paths that do not exist')


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_doc_links_resolve(doc):
    assert broken_links(doc) == []


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_doc_module_names_exist(doc):
    assert unknown_modules(doc.read_text()) == []


@pytest.mark.parametrize('doc', DOCS, ids=rel)
def test_doc_commands_use_real_options(doc):
    assert command_problems(commands_of_markdown(doc.read_text()),
                            rel(doc)) == []


@pytest.mark.parametrize('tool', TOOLS, ids=rel)
def test_tool_text_names_real_paths_and_options(tool):
    docstring = tool_docstring(tool)
    text = docstring + '\n' + parser_text(tool_parser(rel(tool)))
    assert missing_paths(text) == [], (
        f'{rel(tool)}: its docstring or argparse text names paths that do '
        'not exist')
    assert unknown_modules(text) == []
    assert command_problems(commands_of_docstring(docstring),
                            rel(tool)) == []


def test_the_checks_can_fail():
    """Each rule rejects what it should, on text made up here."""
    assert missing_paths('see `configs/no_such_config.py` and '
                         'tools/analysis/get_flops.py') == [
                             'configs/no_such_config.py']
    assert missing_paths('configs/cascade_stvit_r_swin_{s,x}_3x.py') == [
        'configs/cascade_stvit_r_swin_{s,x}_3x.py']
    assert missing_paths('configs/nothing_here/*.py') == [
        'configs/nothing_here/*.py']
    assert missing_paths('work_dirs/x/epoch_1.pth configs/<name>.py '
                         'tools/test.py CKPT checkpoints/a.pth') == []
    assert unknown_modules('stvit_mm.apis.no_such_module') == [
        'stvit_mm.apis.no_such_module']
    assert command_problems(
        ['python tools/train.py configs/x.py --no-such-option'],
        'made up') == ['made up: tools/train.py has no option '
                       '--no-such-option']
    assert command_problems(
        ['bash tools/dist_test.sh CFG CKPT 8 --tta --bogus'],
        'made up') == ['made up: tools/test.py has no option --bogus']
    assert command_problems(['make no-such-target'], 'made up') == [
        'made up: the Makefile has no target no-such-target']
    assert command_problems(['make demo DEMO_ARGS="--max-iters 1 --nope"'],
                            'made up') == [
                                'made up: tools/quickstart.py has no option '
                                '--nope']
    assert 'backbone-arguments' in heading_slugs('## Backbone arguments\n')
