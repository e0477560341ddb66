"""The type and range of every value a pretraining config hands to a class,
checked before anything is built (``tools/train.py``'s pre-flight): a bad
value ends in one line naming the key, the value and what is expected,
instead of a traceback hundreds of lines into the run.

Types come from each class's annotations (or an int/float/bool default);
ranges that a type alone does not bound are in :data:`ARGUMENT_RANGES`.
"""
from __future__ import annotations

import inspect
import math

from .preflight import PreflightError, _integer


# The ranges of the arguments a type alone does not bound, by the class that takes them:
# ('>', low), ('>=', low), ('in', low, high) (both ends included) or ('one of', values).
_POSITIVE, _NON_NEGATIVE, _SHARE = ('>', 0), ('>=', 0), ('in', 0, 1)
ARGUMENT_RANGES = {
    'R2O': dict(depth=('one of', (18, 34, 50, 101, 152)), projector_hidden=_POSITIVE, projection_dim=_POSITIVE,
                predictor_hidden=_POSITIVE, num_clusters=_POSITIVE, max_kmeans_clusters=_POSITIVE,
                kmeans_iters=_POSITIVE, kmeans_tol=_NON_NEGATIVE, kmeans_seed=_NON_NEGATIVE),
    'ClusterScheduleHook': dict(start=_POSITIVE, end=_POSITIVE, total_epochs=_POSITIVE),
    'R2OLearningRateHook': dict(lr_per_256=_POSITIVE, warmup_epochs=_NON_NEGATIVE),
    'TargetEMAHook': dict(base_tau=_SHARE),
    'MaskVisualizationHook': dict(interval=_POSITIVE, num_images=_NON_NEGATIVE),
    'MaskQualityHook': dict(interval=_POSITIVE, max_images=_POSITIVE, size=_POSITIVE, batch=_POSITIVE,
                            num_pictures=_NON_NEGATIVE),
    'KnnMonitorHook': dict(train_per_class=_POSITIVE, val_per_class=_POSITIVE, interval=_POSITIVE, k=_POSITIVE,
                           temperature=_POSITIVE, size=_POSITIVE, batch=_POSITIVE, seed=_NON_NEGATIVE),
    'TwoViews': dict(size=_POSITIVE, jitter_prob=_SHARE, grayscale_prob=_SHARE),
    'RawViewSuperpixels': dict(size=_POSITIVE, n_segments=_POSITIVE, compactness=_POSITIVE),
    'LARS': dict(lr=_NON_NEGATIVE, momentum=_NON_NEGATIVE, weight_decay=_NON_NEGATIVE, eta=_POSITIVE),
    'LoggerHook': dict(interval=_POSITIVE),
}


def _in_range(value, bound) -> bool:
    if bound is None or value is None:
        return True
    if bound[0] == 'one of':
        return value in bound[1]
    if not isinstance(value, (int, float)):
        return True  # a string or a tensor where the annotation admits one: its type was the check
    if bound[0] == '>':
        return value > bound[1]
    if bound[0] == '>=':
        return value >= bound[1]
    return bound[1] <= value <= bound[2]


def _range_words(bound) -> str:
    if bound[0] == 'one of':
        return 'one of ' + ', '.join(map(str, bound[1]))
    if bound[0] == 'in':
        return f'in [{bound[1]}, {bound[2]}]'
    return f'{bound[0]} {bound[1]}'


def _simple_types(annotation):
    """The classes an annotation admits (None among them for Optional), or
    None when it is not a plain class or a union of plain classes (a
    container, a callable, a forward reference: not checked)."""
    import types
    import typing
    if annotation is None or annotation is type(None):
        return (type(None),)
    if isinstance(annotation, type):
        return (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_simple_types(arg) for arg in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else tuple(t for p in parts for t in p)
    return None


def _admits(kinds: tuple, value) -> bool:
    """Whether ``value`` is one of ``kinds``: an int is no bool and a bool no
    int; a number (float) may be an int; a float must be finite."""
    for kind in kinds:
        if kind is bool:
            if isinstance(value, bool):
                return True
        elif kind is int:
            if _integer(value):
                return True
        elif kind is float:
            if (_integer(value) or isinstance(value, float)) and math.isfinite(value):
                return True
        elif isinstance(value, kind):
            return True
    return False


_KIND_WORDS = {bool: 'True or False', int: 'an integer', float: 'a number', str: 'a string',
               type(None): 'None', list: 'a list', tuple: 'a list', dict: 'a dict'}


def _expected(kinds: tuple, bound=None) -> str:
    """'an integer > 0', 'a number in [0, 1]', 'a string or None', ..."""
    words = ' or '.join(dict.fromkeys(_KIND_WORDS.get(k, k.__name__) for k in kinds))
    if bound is None:
        return words
    if bound[0] == 'one of':
        return _range_words(bound)
    numbers = [w for w in dict.fromkeys(_KIND_WORDS.get(k, k.__name__) for k in kinds if k is not type(None))]
    text = f"{' or '.join(numbers)} {_range_words(bound)}"
    return text + (' or None' if type(None) in kinds else '')


def argument_types(cls) -> dict:
    """{argument: classes admitted} of ``cls(...)``, from its annotations,
    else from a default that is a bool, int or float. Plain strings are left
    to the class: R2O's switches name their allowed values when built."""
    import typing
    target = cls.__init__ if isinstance(cls, type) else cls
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001  an annotation that does not evaluate: the defaults only
        hints = {}
    found = {}
    for name, parameter in inspect.signature(target).parameters.items():
        if name in ('self', 'params') or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        kinds = _simple_types(hints[name]) if name in hints else None
        default = parameter.default
        if kinds is None and name not in hints and isinstance(default, (bool, int, float)):
            kinds = (float,) if isinstance(default, float) else (type(default),)
        if kinds is not None and default is None and type(None) not in kinds:
            kinds += (type(None),)  # `x: int = None`
        if kinds is not None and kinds != (str,):  # a switch's string: its class names the values it takes
            found[name] = kinds
    return found


def check_arguments(key: str, cls, arguments: dict) -> None:
    """Raises PreflightError naming ``key.argument``, the value and what is
    expected, for the first argument of ``cls(**arguments)`` whose value is
    not of its annotated type or out of ARGUMENT_RANGES."""
    types_of = argument_types(cls)
    bounds = ARGUMENT_RANGES.get(getattr(cls, '__name__', ''), {})
    for name, value in arguments.items():
        kinds = types_of.get(name)
        if kinds is None:
            continue
        bound = bounds.get(name)
        if not _admits(kinds, value) or not _in_range(value, bound):
            raise PreflightError(f'config error in {key}.{name}: {_expected(kinds, bound)}, got {value!r}')


def check_config_values(cfg) -> None:
    """Type and range of every value a run hands to a class (the model, the
    optimiser, the parameter schedulers, every hook, the dataset and its
    pipeline, the log processor) and of the runner's seed, before anything
    is built: one line naming the key (PreflightError)."""
    from mmengine.registry import (DATASETS, HOOKS, LOG_PROCESSORS, MODELS, OPTIMIZERS, PARAM_SCHEDULERS,
                                   TRANSFORMS)
    parts = [('model', cfg.get('model'), MODELS)]
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer')
    parts.append(('optim_wrapper.optimizer', optimizer, OPTIMIZERS))
    schedulers = cfg.get('param_scheduler') or []
    schedulers = [schedulers] if isinstance(schedulers, dict) else schedulers
    parts += [(f'param_scheduler.{i}', s, PARAM_SCHEDULERS) for i, s in enumerate(schedulers)]
    parts += [(f'custom_hooks.{i}', h, HOOKS) for i, h in enumerate(cfg.get('custom_hooks') or [])]
    parts += [(f'default_hooks.{name}', h, HOOKS) for name, h in (cfg.get('default_hooks') or {}).items()]
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    parts.append(('train_dataloader.dataset', dataset, DATASETS))
    parts += [(f'train_dataloader.dataset.pipeline.{i}', t, TRANSFORMS)
              for i, t in enumerate(dataset.get('pipeline') or [])]
    parts.append(('log_processor', dict(cfg.get('log_processor') or {}, type='LogProcessor'), LOG_PROCESSORS))
    for key, part, registry in parts:
        if not isinstance(part, dict) or not isinstance(part.get('type'), (str, type)):
            continue  # a missing or unknown type is the builder's to report, with its key
        cls = registry.get(part['type']) if isinstance(part['type'], str) else part['type']
        if cls is None:
            continue
        check_arguments(key, cls, {k: v for k, v in part.items() if k not in ('type', '_scope_')})
    randomness = cfg.get('randomness') or {}
    seed = randomness.get('seed')
    if seed is not None and not (_integer(seed) and 0 <= seed < 2 ** 32):
        raise PreflightError(f'config error in randomness.seed: an integer in [0, 2**32) or None, got {seed!r}')
    for name in ('diff_rank_seed', 'deterministic'):
        if name in randomness and not isinstance(randomness[name], bool):
            raise PreflightError(f'config error in randomness.{name}: True or False, got {randomness[name]!r}')
