"""Loading a config the way every tool does."""
from __future__ import annotations

import os.path as osp
import sys

from mmengine.config import Config, DictAction


ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def missing_config_message(path: str) -> str:
    """One line for a config path that does not exist, with the nearest names."""
    import difflib
    import glob
    folder = osp.dirname(path) or '.'
    candidates = sorted(osp.basename(p) for p in glob.glob(osp.join(folder, '*.py')))
    close = difflib.get_close_matches(osp.basename(path), candidates, n=3, cutoff=0.6)
    hint = f'; did you mean {" or ".join(osp.join(folder, c) for c in close)}?' if close else (
        f'; configs are in {ROOT}/configs' if not candidates else '')
    return f'config file {path} does not exist{hint}'


def read_config(path: str) -> Config:
    """``Config.fromfile`` without yapf: mmengine formats the config text with
    yapf each time it is asked for it (the runner asks six or seven times: the
    log, the dump into the work dir, every checkpoint's meta, the visualizer),
    which took 1.1 s of a 7.4 s small transfer run and 0.3 s of a tiny
    pretraining run on a 2-core Xeon. The text stays valid Python with one
    key per line; only yapf's line wrapping is left out. (mmengine 0.10.7's
    ``fromfile`` drops its ``format_python_code`` argument for configs with
    ``_base_`` lists, hence the attribute set here, as mmengine sets its own.)"""
    cfg = Config.fromfile(path)
    object.__setattr__(cfg, '_format_python_code', False)
    return cfg


def load_config(path: str, options: dict | None = None) -> Config:
    """The merged config (``_base_`` resolved) with ``--cfg-options``
    applied; exits with one line when the file does not exist (naming the
    nearest configs) or cannot be read."""
    if not osp.isfile(path):
        sys.exit(missing_config_message(path))
    try:
        cfg = read_config(path)
        cfg.merge_from_dict(options or {})
    except Exception as error:  # noqa: BLE001  a syntax or merge error in the user's config: one line
        sys.exit(f'config error in {path}: {type(error).__name__}: {error}'.replace('\n', ' '))
    return cfg


def json_sha256(payload) -> str:
    """sha256 (hex) of ``payload`` as sorted JSON (values JSON cannot hold as their string)."""
    import hashlib
    import json
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def config_sha256(cfg: Config, leave_out=()) -> str:
    """sha256 (hex) of the merged config as sorted JSON, without the
    top-level keys ``leave_out``: the fingerprint of what a config computes."""
    return json_sha256({k: v for k, v in cfg.to_dict().items() if k not in leave_out})


def require_switch(key: str, value, allowed=(True, False)):
    """Raises ValueError naming the config key when ``value`` is not one of
    ``allowed`` (for on/off switches: a real bool, so that ``'False'``, a
    string and therefore true, is refused instead of silently meaning True)."""
    if not any(value is option or (type(value) is type(option) and value == option) for option in allowed):
        raise ValueError(f'{key} must be one of {", ".join(map(repr, allowed))}, got {value!r}')


def add_wandb_backend(cfg: Config):
    """``R2O_WANDB=<project>``: log to Weights & Biases too (mmengine's
    WandbVisBackend beside the others; ``wandb`` must be installed, it is not
    a dependency of this project)."""
    import os
    project = os.environ.get('R2O_WANDB')
    if not project:
        return
    backends = cfg.visualizer.setdefault('vis_backends', [dict(type='LocalVisBackend')])
    if not any(b.get('type') == 'WandbVisBackend' for b in backends):
        backends.append(dict(type='WandbVisBackend', init_kwargs=dict(project=project)))


class OptionsAction(DictAction):
    """mmengine's ``--cfg-options`` action, with one line (not a traceback)
    for an item without ``=``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            if '=' not in item:
                parser.exit(2, f'{option_string} {item}: expected KEY=VALUE (e.g. {item}=...)\n')
        super().__call__(parser, namespace, values, option_string)


def _config_chain(path: str) -> list[str]:
    """``path`` and the files of its ``_base_`` chain, bases first."""
    import ast
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    bases = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    chain = []
    for base in bases:
        chain += _config_chain(osp.join(osp.dirname(path), base))
    return chain + [path]


def _name_uses(node, name: str, path: tuple = ()):
    """The key paths inside a config expression where the variable ``name`` is used."""
    import ast
    if isinstance(node, ast.Name):
        return [path] if node.id == name else []
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict':
        return [use for keyword in node.keywords if keyword.arg
                for use in _name_uses(keyword.value, name, path + (keyword.arg,))]
    if isinstance(node, ast.Dict):
        return [use for key, value in zip(node.keys, node.values) if isinstance(key, ast.Constant)
                for use in _name_uses(value, name, path + (str(key.value),))]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [use for index, item in enumerate(node.elts) for use in _name_uses(item, name, path + (str(index),))]
    found = any(isinstance(child, ast.Name) and child.id == name for child in ast.walk(node))
    return [path] if found else []


def variable_uses(config_path: str) -> dict[str, set[str]]:
    """{top-level variable: the dotted keys whose values were built from it
    when the config was read} over the ``_base_`` chain, one step each
    (``input_size`` -> ``train_pipeline.1.size``)."""
    import ast
    direct: dict[str, set[str]] = {}
    for path in _config_chain(config_path):
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        assigned = []
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            target = node.targets[0].id
            for variable in assigned:
                for use in _name_uses(node.value, variable):
                    direct.setdefault(variable, set()).add('.'.join((target, *use)))
            assigned.append(target)
    return direct


def built_from(uses: dict[str, set[str]], key: str, seen: frozenset = frozenset()) -> set[str]:
    """The keys of the final config that were copied from ``key`` (a
    variable, or a key inside one), following variables that end up in
    other variables (``input_size`` -> ``train_dataloader.dataset.pipeline.1.size``)."""
    head, _, rest = key.partition('.')
    if head not in uses or head in seen:
        return set()
    found = set()
    for outer in uses[head]:
        target = f'{outer}.{rest}' if rest else outer
        deeper = built_from(uses, target, seen | {head})
        found |= deeper or {target}
    return found


def _lookup(cfg, key: str):
    node = cfg
    for part in key.split('.'):
        if isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(key)
            node = node[int(part)]
        else:
            node = node[part]
    return node


def unfollowed_options(config_path: str, cfg, options: dict) -> list[str]:
    """One line per ``--cfg-options`` item that changes a config variable
    whose value had already been copied into other keys when the config was
    read (``max_epochs`` -> ``train_cfg.max_epochs``), so that the run would
    not follow it; the line names the keys to set instead."""
    uses = variable_uses(config_path)
    lines = []
    for option, value in options.items():
        keys = []
        for key in sorted(built_from(uses, option)):
            if any(other == key or key.startswith(other + '.') for other in options if other != option):
                continue  # set explicitly too
            try:
                if _lookup(cfg, key) != value:
                    keys.append(key)
            except (KeyError, TypeError, IndexError):
                continue
        if keys:
            lines.append(f'--cfg-options {option}={value}: the config copied {option} into {", ".join(keys)} '
                         'when it was read, so the run would not follow it; set '
                         + ' '.join(f'{key}={value}' for key in keys) + ' instead')
    return lines
