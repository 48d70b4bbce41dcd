"""Inert stand-ins for the classes a checkpoint names but the loader does
not import.

Released third-party checkpoints often carry metadata objects of classes
this environment does not have or should not import (an
``argparse.Namespace`` of training arguments, an mmcv 1.x ``Config``, a
yacs ``CfgNode``). The safe loader registers a stand-in under each such
name for the length of one load, so the pickle builds these records
instead of running the foreign code.
"""
from collections import Counter, OrderedDict

from .refusals import short_repr

__all__ = [
    'StandIn', 'StandInDict', 'stand_in_class', 'swap_in_stand_in_dicts'
]


class StandIn:
    """Inert record of an object a checkpoint asked to build from a global
    that was not imported.

    Unpickling an object means calling a global: ``cls.__new__(cls, *args)``
    (pickle's NEWOBJ) or ``global(*args)`` (REDUCE), then optionally
    ``obj.__setstate__(state)`` (BUILD). A stand-in is registered under the
    foreign name instead of the real global, so all three steps run this
    class's code, which only stores ``args`` and ``state``. Nothing is
    imported and nothing of the foreign module runs.

    This is exact for objects built from a class (NEWOBJ + BUILD, or REDUCE
    on a class): ``args`` and ``state`` are what the class would have
    received. If the name was a function, the stand-in records the call
    ``qualname(*args)`` that was *not* made. Either way the result is data
    only; whether a name is a class cannot be known without importing it,
    which is exactly what this avoids. Names from modules that can run code
    (see ``refusals.DANGEROUS_MODULES``) are refused outright instead.

    Attributes:
        qualname (str): The foreign global, e.g. ``'argparse.Namespace'``.
        args (tuple): Arguments the pickle passed when creating it.
        state: What the pickle passed to ``__setstate__``; for a plain class
            the instance ``__dict__``. ``None`` if it set none.
    """
    qualname = None

    def __new__(cls, *args):
        self = super().__new__(cls)
        self.args = args
        self.state = None
        return self

    def __init__(self, *args):
        pass  # ``__new__`` already recorded the arguments

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return (f'StandIn({self.qualname}, args={short_repr(self.args)}, '
                f'state={short_repr(self.state)})')

    def __reduce__(self):
        # Its class exists only for one load, so pickle could not find it.
        raise TypeError(
            f'A stand-in for {self.qualname} cannot be saved; drop it or '
            'save its args/state instead.')


class StandInDict(dict):
    """Inert record of an instance of a foreign ``dict`` subclass.

    Config objects of several libraries are ``dict`` subclasses (mmcv 1.x
    ``ConfigDict``, yacs ``CfgNode``, ``EasyDict``). Their items are kept as
    the items of this plain ``dict``.

    Attributes:
        qualname (str): The foreign class, e.g. ``'yacs.config.CfgNode'``.
        args (tuple): Arguments the pickle passed when creating it.
        state: Instance attributes the pickle set that are not copies of the
            items, or ``None``.
    """

    def __init__(self, qualname, args=(), state=None):
        super().__init__()
        self.qualname = qualname
        self.args = args
        self.state = state

    def __repr__(self):
        return f'StandInDict({self.qualname}, {short_repr(dict(self))})'


def stand_in_class(qualname, dict_like, created_dicts):
    """Makes the class registered under ``qualname`` for one load.

    torch's restricted unpickler only adds items to objects whose type is
    exactly ``dict``, ``OrderedDict`` or ``Counter``, so the stand-in for a
    ``dict`` subclass hands out a plain ``OrderedDict``; it is recorded in
    ``created_dicts`` and turned into a :class:`StandInDict` after loading
    (:func:`swap_in_stand_in_dicts`).

    Args:
        qualname (str): The foreign global.
        dict_like (bool): Whether the pickle adds items to its instances.
        created_dicts (list): Receives ``(items, qualname, args)`` for each
            instance a dict-like stand-in creates.

    Returns:
        type: A subclass of :class:`StandIn`.
    """
    namespace = {'qualname': qualname, '__module__': __name__}
    if dict_like:

        def __new__(cls, *args):
            items = OrderedDict()
            created_dicts.append((items, qualname, args))
            return items

        namespace['__new__'] = __new__
    return type(f'StandIn[{qualname}]', (StandIn, ), namespace)


def swap_in_stand_in_dicts(obj, created_dicts):
    """Replaces the ``OrderedDict``\\ s made for foreign ``dict`` subclasses
    with :class:`StandInDict`\\ s, wherever they are referenced.

    Args:
        obj: The loaded checkpoint.
        created_dicts (list): As filled by the classes of
            :func:`stand_in_class`.

    Returns:
        ``obj`` with the replacements (a new object where ``obj`` itself
        or a tuple on the way had to be rebuilt).
    """
    swaps = {
        id(items): StandInDict(qualname, args)
        for items, qualname, args in created_dicts
    }
    seen = {}

    def swap(node):
        key = id(node)
        if key in swaps:
            return swaps[key]
        if key in seen:
            return seen[key]
        seen[key] = node
        kind = type(node)
        if kind in (dict, OrderedDict, Counter, StandInDict):
            for k, v in node.items():
                node[k] = swap(v)
        elif kind is list:
            node[:] = [swap(v) for v in node]
        elif kind is tuple:
            new = tuple(swap(v) for v in node)
            if any(a is not b for a, b in zip(new, node)):
                seen[key] = new
                return new
        elif isinstance(node, StandIn):
            node.args = swap(node.args)
            node.state = swap(node.state)
        return node

    for items, _, _ in created_dicts:
        record = swaps[id(items)]
        record.args = swap(record.args)
        record.update((k, swap(v)) for k, v in items.items())
        # Instance attributes set by the pickle's BUILD step; classes such as
        # addict's ``Dict`` pickle the items themselves as their state.
        attrs = {
            k: swap(v)
            for k, v in vars(items).items()
            if not (k in items and items[k] is v)
        }
        record.state = attrs or None
    return swap(obj)
