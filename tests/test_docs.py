"""The documentation site builds with mkdocs --strict: every page is in the
navigation, every internal link and anchor resolves (mkdocs.yml's validation)."""
import glob
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def nav_pages(entries) -> list[str]:
    pages = []
    for entry in entries:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_docs_page_is_in_the_navigation():
    with open(os.path.join(ROOT, 'mkdocs.yml')) as handle:
        config = yaml.safe_load(handle)
    pages = nav_pages(config['nav'])
    assert sorted(pages) == sorted(name for name in os.listdir(os.path.join(ROOT, 'docs')) if name.endswith('.md'))
    assert len(pages) == len(set(pages))


def test_mkdocs_build_strict(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(tmp_path / 'site')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, NO_MKDOCS_2_WARNING='1'))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / 'site' / 'index.html').is_file() and (tmp_path / 'site' / 'method' / 'index.html').is_file()
    # A broken anchor fails the strict build under this project's settings (validation.anchors: warn).
    broken = tmp_path / 'docs'
    broken.mkdir()
    (broken / 'index.md').write_text('# Home\n\n[there](other.md#no-such-heading)\n')
    (broken / 'other.md').write_text('# Other\n')
    with open(os.path.join(ROOT, 'mkdocs.yml')) as handle:
        config = yaml.safe_load(handle)  # this project's settings, validation included
    config.update(docs_dir=str(broken), nav=[{'Home': 'index.md'}, {'Other': 'other.md'}])
    (tmp_path / 'mkdocs.yml').write_text(yaml.safe_dump(config))
    failed = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '-f', str(tmp_path / 'mkdocs.yml'),
                             '--site-dir', str(tmp_path / 'site2')], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, NO_MKDOCS_2_WARNING='1'))
    assert failed.returncode != 0 and 'no-such-heading' in failed.stdout + failed.stderr


def test_the_docs_give_one_test_count_the_suites_own_and_speak_of_no_sessions(request):
    """A reader sees one test count, the one the suite collects (checked when
    the whole suite runs), and nothing of how the project was written."""
    import re
    text = ''
    for path in ['README.md'] + sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md'))):
        with open(os.path.join(ROOT, path)) as handle:
            text += handle.read() + '\n'
    counts = set(re.findall(r'\b(\d+) tests\b', text)) | set(re.findall(r'\b(\d+) passed\b', text))
    assert len(counts) == 1, counts
    whole_suite = (request.config.args_source == pytest.Config.ArgsSource.TESTPATHS
                   and not request.config.option.keyword and not request.config.option.markexpr)
    if whole_suite:
        assert int(counts.pop()) == request.session.testscollected
    for phrase in (r'\bsessions?\b', r'previous demo', r'\bthe old default\b'):
        assert not re.search(phrase, text, flags=re.I), phrase
